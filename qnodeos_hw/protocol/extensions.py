"""Message types of the end-node API outside netqasm's type space (one byte, then the
payload; README "Protocol notes")."""

#: host -> QNPU: qubit-state query (``get_qubit_state``); QNPU -> host: its answer
EXT_STATE_REQ = 0xE0
EXT_STATE_REP = 0xE1
#: QNPU -> host: the named error detail, sent just before netqasm's ``ErrorMessage``
EXT_ERROR = 0xE2
#: host -> QNPU: JSON ``{"app_id", "name"}``, the program's name (no answer)
EXT_APP_NAME = 0xE3
#: connection opening / closing of a program (modelled time carries its clock)
EXT_HELLO = 0xE4
EXT_BYE = 0xE5


class NotSimulatedError(RuntimeError):
    """Asked for something only a simulated station can give (e.g. the density matrix);
    named in an ``EXT_STATE_REP`` answer as ``"NotSimulatedError"``."""
