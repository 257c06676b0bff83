"""Local gate tomography (LGT): each block is one subroutine that allocates the qubit,
prepares one of the six cardinal states from |0>, rotates into a tomography basis and
measures (then frees the qubit).

Inputs: ``blocks``: list of (state, basis) with state in '+Z','-Z','+X','-X','+Y','-Y'
and basis in 'X','Y','Z' (outcome 0 <-> eigenvalue +1).
"""

from netqasm.sdk import Qubit
from netqasm.sdk.external import NetQASMConnection

#: preparation from |0> as (axis, angle in units of pi/2)
PREPARE = {"+Z": (), "-Z": (("X", 2),), "+X": (("Y", 1),), "-X": (("Y", 3),),
           "+Y": (("X", 3),), "-Y": (("X", 1),)}


def _rot(q, axis, n_half_pi):
    getattr(q, f"rot_{axis}")(n=n_half_pi % 4, d=1)


def main(app_config=None, blocks=(("+Z", "Z"),)):
    name = app_config.app_name if app_config is not None else "lgt"
    outcomes = []
    with NetQASMConnection(name, max_qubits=1) as conn:
        for state, basis in blocks:
            q = Qubit(conn)
            for axis, n in PREPARE[state]:
                _rot(q, axis, n)
            if basis == "X":
                _rot(q, "Y", 3)                # Ry(-pi/2): |+> -> |0>
            elif basis == "Y":
                _rot(q, "X", 1)                # Rx(pi/2): |+i> -> |0>
            elif basis != "Z":
                raise ValueError(f"tomography basis must be X, Y or Z, got {basis!r}")
            m = q.measure()
            conn.flush()
            outcomes.append(int(m))
    return {"m": outcomes, "blocks": [list(b) for b in blocks]}
