"""The wire between a CNPU and a QNPU, the only thing the two share (besides the time
base, :mod:`qnodeos_hw.timebase`):

* :mod:`.framing` -- length-prefixed frames, refused before allocation when too long;
* :mod:`.extensions` -- our message types outside netqasm's type space (qubit-state
  query, named error detail, program name, hello/bye);
* :mod:`.subroutine` -- array addresses of binary netqasm instructions (the CNPU's shape
  cache relocates them, the QNPU's compiler keys its cache on them);
* :mod:`.trace` -- the event record both sides write (merged across processes).

Nothing here imports the QNPU, the CNPU or the runner.
"""
