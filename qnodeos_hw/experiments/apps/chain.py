"""One node of a chain n0 - n1 - ... : per round it takes a pair with its left
neighbour (``recv_keep``) and then one with its right neighbour (``create_keep``),
measuring each half in Z at once (one qubit per node is enough). Used to measure the
cost per entangled pair as the network grows (``benchmarks/chain_pairs.py``).

Inputs: ``left`` / ``right`` (neighbour names, None at the ends), ``pairs`` (rounds).
Returns ``{"left": [outcomes], "right": [outcomes]}``.
"""

from netqasm.sdk import EPRSocket
from netqasm.sdk.external import NetQASMConnection


def main(app_config=None, left=None, right=None, pairs=1):
    name = app_config.app_name if app_config is not None else "n0"
    sockets = {side: EPRSocket(peer) for side, peer in (("left", left), ("right", right)) if peer}
    out = {"left": [], "right": []}
    with NetQASMConnection(name, epr_sockets=list(sockets.values())) as conn:
        for _ in range(int(pairs)):
            if "left" in sockets:
                q = sockets["left"].recv_keep()[0]
                m = q.measure()
                conn.flush()
                out["left"].append(int(m))
            if "right" in sockets:
                q = sockets["right"].create_keep()[0]
                m = q.measure()
                conn.flush()
                out["right"].append(int(m))
    return out
