"""Evaluation: probabilistic forecast metrics, generation scores, backtesting and plots
(``pyrossm.metrics`` is this package)."""

from . import generation, metrics, plots
from .backtest import backtest
from .dependency import dependency_matrix, dependency_measures
from .generation import *  # noqa: F401,F403  (names listed in generation.__all__)
from .metrics import *  # noqa: F401,F403  (names listed in metrics.__all__)
from .plots import *  # noqa: F401,F403  (names listed in plots.__all__)

__all__ = (
    list(metrics.__all__)
    + list(generation.__all__)
    + list(plots.__all__)
    + ["backtest", "dependency_measures", "dependency_matrix"]
)
