"""``pyrossm.metrics`` is :mod:`pyrossm.evaluation` (also as an import path:
``from pyrossm.metrics import crps``)."""

import sys

from . import evaluation

sys.modules[__name__] = evaluation
