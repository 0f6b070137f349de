"""``python -m pyrossm ...`` (and ``torchrun -m pyrossm fit ...``): the command line."""

import sys

from .cli import main

sys.exit(main())
