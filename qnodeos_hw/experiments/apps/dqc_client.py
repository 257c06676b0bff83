"""DQC client (remote state preparation, circuit C1 of the paper's Fig. 4a).

Per repetition: entangle with the server (create and keep), measure the local half in
the equatorial basis rotated by theta (outcome 0 <-> (|0> + e^{i theta}|1>)/sqrt2), then
send ``delta = alpha + theta - m*pi`` (mod 2pi) to the server. The server (which
corrects the heralded pair to Phi+) then holds Rz(theta - ... ) |+> and its Rz(delta)
turns it into Rz(alpha)|+> -- theta hides alpha from the server.

Inputs: ``alpha``, ``theta`` (int, units of pi/4), ``reps`` (int), ``server`` (the
server program's name), ``epr_socket_id`` / ``socket_id`` (distinct per client-server
pair when several run on one node).
"""

from netqasm.sdk import EPRSocket
from netqasm.sdk.external import NetQASMConnection, Socket

from qnodeos_hw.experiments.apps.dqc_math import delta_of


def main(app_config=None, alpha=0, theta=0, reps=1, server="server", epr_socket_id=0,
         socket_id=0):
    name = app_config.app_name if app_config is not None else "client"
    socket = Socket(name, server, socket_id=socket_id)
    epr = EPRSocket(server, epr_socket_id=epr_socket_id, remote_epr_socket_id=epr_socket_id)
    outcomes, deltas = [], []
    with NetQASMConnection(name, epr_sockets=[epr]) as conn:
        for _ in range(int(reps)):
            q = epr.create_keep()[0]
            q.rot_Z(n=(2 - int(theta)) % 8, d=2)  # Rz(pi/2 - theta): |+_theta> -> |+i>
            q.rot_X(n=1, d=1)                      # Rx(pi/2): |+i> -> |0>
            m = q.measure()
            conn.flush()
            m = int(m)
            delta = delta_of(int(alpha), int(theta), m)
            socket.send(str(delta))
            outcomes.append(m)
            deltas.append(delta)
    return {"m": outcomes, "delta": deltas}
