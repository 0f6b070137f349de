"""Matplotlib figures for forecasts and predictive densities (each returns the Axes)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_forecast", "plot_predictive_density"]


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt
        _, ax = plt.subplots(figsize=(7, 3.5))
    return ax


def plot_forecast(context, forecast, variable, series, truth=None, ax=None, feature=None):
    """Fan chart: observed history, forecast median and 50% / 90% bands, optional truth.

    :param context: ``xr.Dataset`` ``(series, time)`` with the history.
    :param forecast: ``xr.Dataset`` ``(draw, series, time)`` from :meth:`FitResult.forecast`.
    :param str variable: variable to plot.  :param series: series coordinate value.
    :param truth: optional ``xr.Dataset`` holding the realised values over the forecast times.
    """
    ax = _axes(ax)
    sel = {"series": series}
    if feature is not None:
        sel[forecast[variable].dims[-1]] = feature
    hist = context[variable].sel(sel)
    fc = forecast[variable].sel(sel)
    ax.plot(hist["time"].values, hist.values, color="black", lw=1.2, label="observed")
    t = fc["time"].values
    q = fc.quantile([0.05, 0.25, 0.5, 0.75, 0.95], dim="draw").values
    ax.fill_between(t, q[0], q[4], color="C0", alpha=0.2, label="90% interval")
    ax.fill_between(t, q[1], q[3], color="C0", alpha=0.4, label="50% interval")
    ax.plot(t, q[2], color="C0", lw=1.5, label="median")
    if truth is not None:
        tr = truth[variable].sel(sel).sel(time=t)
        ax.plot(t, tr.values, color="C3", ls="--", marker=".", label="truth")
    ax.set_xlabel("time")
    ax.set_ylabel(variable)
    ax.legend(loc="best", fontsize=8)
    return ax


def plot_predictive_density(samples, grid=None, pdf=None, labels=None, ax=None, bins=80):
    """Histogram(s) of predictive samples against an optional known density.

    :param samples: ``(S,)`` array or a dict ``label -> (S,)`` array.
    :param grid: points where ``pdf`` is drawn.  :param pdf: callable ``grid -> density``.
    """
    ax = _axes(ax)
    groups = samples if isinstance(samples, dict) else {labels or "model": samples}
    for i, (name, values) in enumerate(groups.items()):
        ax.hist(np.ravel(values), bins=bins, density=True, alpha=0.45, color=f"C{i}", label=name)
    if pdf is not None and grid is not None:
        ax.plot(grid, pdf(grid), color="black", lw=1.5, label="true density")
    ax.set_ylabel("density")
    ax.legend(loc="best", fontsize=8)
    return ax
