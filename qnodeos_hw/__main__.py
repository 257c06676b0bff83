"""``python -m qnodeos_hw``: the ``qnodeos-hw`` command."""

import sys

from .cli import main

sys.exit(main())
