"""GHZ state of three nodes, bob's program: fuse his halves of alice-bob and bob-charlie
pairs (CNOT, measure the second in Z, charlie corrects with X), then measure in
``basis``. Alice, bob and charlie then hold (|000> + |111>)/sqrt(2) (ideal pairs)."""

from netqasm.sdk import EPRSocket
from netqasm.sdk.external import NetQASMConnection, Socket


def main(app_config=None, basis="Z", reps=1):
    to_alice, to_charlie = Socket("bob", "alice"), Socket("bob", "charlie")
    epr_a, epr_c = EPRSocket("alice"), EPRSocket("charlie")
    out, fusion = [], []
    with NetQASMConnection(app_config.app_name, epr_sockets=[epr_a, epr_c]) as conn:
        for _ in range(reps):
            qa = epr_a.recv_keep()[0]
            qc = epr_c.create_keep()[0]
            qa.cnot(qc)
            f = qc.measure()
            conn.flush()
            to_charlie.send(str(int(f)))
            to_alice.send("fused")
            if basis == "X":
                qa.H()
            m = qa.measure()
            conn.flush()
            out.append(int(m))
            fusion.append(int(f))
    return {"m": out, "fusion": fusion}
