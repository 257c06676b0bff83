"""DQC server (circuits S1 and S2 of the paper's Fig. 4a).

Per repetition: receive the EPR half (netqasm corrects the heralded Bell state to
Phi+; S1, S2 and the next S1 are sent without blocking -- the QNPU runs a program's
subroutines in order, so S2 waits there for S1's pair, and the server's CNPU receives
delta without first waiting for S1's reply), keep it (the NV station keeps it under
dynamical decoupling) while waiting for ``delta`` from the client, apply Rz(delta), H,
and measure in the tomography basis
of that repetition (``bases``: 'X', 'Y' or 'Z'; outcome 0 <-> eigenvalue +1).
The state before the basis change is |psi> = H Rz(alpha)|+>.

Inputs: ``bases`` (list of 'X'/'Y'/'Z', one per repetition), ``client`` (the client
program's name), ``epr_socket_id`` / ``socket_id``.
"""

from netqasm.sdk import EPRSocket
from netqasm.sdk.external import NetQASMConnection, Socket


def main(app_config=None, bases=("Z",), client="client", epr_socket_id=0, socket_id=0):
    name = app_config.app_name if app_config is not None else "server"
    socket = Socket(name, client, socket_id=socket_id)
    epr = EPRSocket(client, epr_socket_id=epr_socket_id, remote_epr_socket_id=epr_socket_id)
    outcomes = []
    bases = list(bases)
    with NetQASMConnection(name, epr_sockets=[epr]) as conn:
        if bases:
            q = epr.recv_keep()[0]
            conn.flush(block=False)           # S1: the pair is delivered when heralded
        for i, basis in enumerate(bases):
            delta = int(socket.recv())        # the qubit waits under DD meanwhile
            q.rot_Z(n=delta % 8, d=2)         # S2 (runs after S1 on the QNPU)
            q.H()
            if basis == "X":
                q.H()                         # |+> -> |0>
            elif basis == "Y":
                q.rot_X(n=1, d=1)             # Rx(pi/2): |+i> -> |0>
            elif basis != "Z":
                raise ValueError(f"tomography basis must be X, Y or Z, got {basis!r}")
            outcomes.append(q.measure())
            conn.flush(block=False)           # S2 leaves at once ...
            if i + 1 < len(bases):
                q = epr.recv_keep()[0]        # ... and the next S1 right behind it, so the
                conn.flush(block=False)       # pair is not made (and kept) long before asked
        conn.block()                          # every outcome has arrived
        outcomes = [int(m) for m in outcomes]
    return {"m": outcomes, "bases": bases}
