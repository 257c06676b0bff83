"""A GHZ state of three nodes (alice, bob, charlie): an app of our own for nv_3node."""
