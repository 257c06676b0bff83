"""Sequences: NV dynamical decoupling and HDAWG programs (:mod:`.dd`, :mod:`.hdawg_program`);
trapped-ion TTL sequences (``ion_*`` modules)."""
