"""``pyrossm.metrics`` is :mod:`pyrossm.evaluation` (also as an import path:
``from pyrossm.metrics import crps``): the forecast metrics and divergences of
:mod:`pyrossm.evaluation.metrics` and the generation scores of :mod:`pyrossm.evaluation.generation`
(``from pyrossm.metrics import discriminative_score, context_fid``)."""

import sys

from . import evaluation

sys.modules[__name__] = evaluation
