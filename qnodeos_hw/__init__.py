"""qnodeos-hw."""
