"""Evaluation: probabilistic forecast metrics, backtesting and plots (``pyrossm.metrics`` is this package)."""

from . import metrics, plots
from .backtest import backtest
from .metrics import *  # noqa: F401,F403  (names listed in metrics.__all__)
from .plots import *  # noqa: F401,F403  (names listed in plots.__all__)

__all__ = list(metrics.__all__) + list(plots.__all__) + ["backtest"]
