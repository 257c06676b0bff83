"""GHZ state of three nodes, charlie's program: keep half of a pair with bob, apply X if
bob's fusion outcome is 1, then measure in ``basis``."""

from netqasm.sdk import EPRSocket
from netqasm.sdk.external import NetQASMConnection, Socket


def main(app_config=None, basis="Z", reps=1):
    sock = Socket("charlie", "bob")
    epr = EPRSocket("bob")
    out = []
    with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:
        for _ in range(reps):
            q = epr.recv_keep()[0]
            conn.flush()
            if int(sock.recv()) == 1:
                q.X()
            if basis == "X":
                q.H()
            m = q.measure()
            conn.flush()
            out.append(int(m))
    return {"m": out}
