"""Local gate tomography (LGT), the paper's L1 (Fig. 5c): *one* subroutine runs the
six tomography bases B in {+X, -X, +Y, -Y, +Z, -Z}; for each it initialises the qubit
in |0>, rotates it about the axis D by the angle phi (the gate under test), rotates
basis B onto Z and measures (outcome 0 <-> eigenvalue +1 of B). One subroutine thus
gives six results; the qubit is allocated and freed six times inside it.

Inputs: ``blocks``: list of (D, phi) per subroutine, D in 'X', 'Y' and phi in units of
pi/2 (0, 2 = pi, 1 = pi/2, -1 = -pi/2); the paper's six inputs are :data:`INPUTS`.
Result ``m``: one list of six outcomes per subroutine, in the order of :data:`BASES6`.
"""

from netqasm.sdk import Qubit
from netqasm.sdk.external import NetQASMConnection

from qnodeos_hw.experiments.apps.lgt_bases import BASES6, INPUTS, TO_Z  # noqa: F401


def _rot(q, axis, n_half_pi):
    n = int(n_half_pi) % 4
    if n:  # a rotation by 0 is the identity: nothing is played
        getattr(q, f"rot_{axis}")(n=n, d=1)


def main(app_config=None, blocks=(("X", 0),)):
    name = app_config.app_name if app_config is not None else "lgt"
    outcomes = []
    with NetQASMConnection(name, max_qubits=1) as conn:
        for d_axis, phi in blocks:
            if d_axis not in ("X", "Y"):
                raise ValueError(f"rotation axis D must be X or Y, got {d_axis!r}")
            ms = []
            for basis in BASES6:             # one subroutine: the six bases
                q = Qubit(conn)              # init |0>
                _rot(q, d_axis, phi)         # the gate under test
                if TO_Z[basis] is not None:
                    _rot(q, *TO_Z[basis])    # basis B onto Z
                ms.append(q.measure())       # measure (frees the qubit)
            conn.flush()
            outcomes.append([int(m) for m in ms])
    return {"m": outcomes, "blocks": [[d, int(p)] for d, p in blocks]}
