"""Evaluation: metrics (more arrive with the evaluation issue)."""

from .metrics import crps, jsd_to_density

__all__ = ["crps", "jsd_to_density", "plot_forecast", "plot_predictive_density"]

from .plots import plot_forecast, plot_predictive_density  # noqa: E402
