"""The LGT program's bases and inputs (no netqasm imports: usable outside a CNPU)."""

#: the six tomography bases, in the order one L1 subroutine measures them
BASES6 = ("+X", "-X", "+Y", "-Y", "+Z", "-Z")
#: the paper's six (D, phi) inputs, phi in units of pi/2: (X,0), (X,pi), (Y,pi/2),
#: (Y,-pi/2), (X,-pi/2), (X,pi/2) -- they prepare +Z, -Z, +X, -X, +Y, -Y from |0>
INPUTS = (("X", 0), ("X", 2), ("Y", 1), ("Y", -1), ("X", -1), ("X", 1))
#: rotation taking the eigenvalue +1 state of basis B onto |0>, as (axis, units of pi/2)
TO_Z = {"+Z": None, "-Z": ("X", 2), "+X": ("Y", -1), "-X": ("Y", 1), "+Y": ("X", 1),
        "-Y": ("X", -1)}
