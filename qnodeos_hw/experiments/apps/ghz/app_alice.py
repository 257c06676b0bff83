"""GHZ state of three nodes, alice's program: keep half of a pair with bob (delivered
with Z outcomes equal to its partner's), then measure it in ``basis`` (Z or X) once bob has
fused his two halves (his message says so)."""

from netqasm.sdk import EPRSocket
from netqasm.sdk.external import NetQASMConnection, Socket


def main(app_config=None, basis="Z", reps=1):
    sock = Socket("alice", "bob")
    epr = EPRSocket("bob")
    out = []
    with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:
        for _ in range(reps):
            q = epr.create_keep()[0]
            conn.flush()
            sock.recv()  # bob fused the pairs: the GHZ state is ready
            if basis == "X":
                q.H()
            m = q.measure()
            conn.flush()
            out.append(int(m))
    return {"m": out}
