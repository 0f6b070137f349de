"""Matplotlib figures for forecasts, latent trajectories, sample paths and training histories.

Every function takes an optional ``ax=`` and returns the matplotlib ``Axes`` it drew on, or the
``Figure`` when it draws several panels (:func:`plot_history`).  Nothing calls ``plt.show()``.
Bad input (an unknown variable, a missing dim, a series that is not in the data) raises
``ValueError`` naming the argument.

======================================  ======================================================
function                                input
======================================  ======================================================
:func:`plot_forecast`                   context + :meth:`FitResult.forecast` output (fan chart)
:func:`plot_latent`                     :meth:`FitResult.smooth` output (latent fan chart)
:func:`plot_sample_paths`               :meth:`FitResult.sample` / ``forecast`` output
:func:`plot_history`                    :attr:`FitResult.history` (loss, ELBO terms, lambda)
:func:`plot_predictive_density`         flat arrays of predictive samples (histograms)
:func:`plot_dependency`                 :func:`~pyrossm.evaluation.dependency_measures` output
======================================  ======================================================

**arviz-plots on posterior predictive checks.**  :meth:`FitResult.posterior_predictive` (and
:meth:`FitResult.to_datatree`) return an arviz-style ``xr.DataTree`` (groups
``posterior_predictive`` with dims ``(chain, draw, series, time)`` and ``observed_data`` with
``(series, time)``, the same variable names in both), which the ``arviz_plots`` PPC functions
take as it is (pass ``backend="matplotlib"`` or set ``arviz_base.rcParams["plot.backend"]``):

- ``arviz_plots.plot_ppc_dist(dt)`` -- densities of replicated data against the observed data,
  pooled over series and time; ``coords={"series": s}`` restricts it to one series.
- ``arviz_plots.plot_ppc_tstat(dt, t_stat="mean")`` -- a test statistic (``"mean"``,
  ``"median"``, ``"std"``, a quantile such as ``"0.9"``, or a callable) of each replicate
  against the observed one.
- ``arviz_plots.plot_ppc_pit(...)`` and ``arviz_plots.plot_ppc_interval(...)`` need observations
  along a single dim: pass ``coords={"series": s}`` (one series over time), or flatten all of
  them with :func:`stack_observations` (which also drops missing observations, which would
  otherwise count as PIT values of 0).  ``plot_ppc_pit(..., coverage=True)`` works the same way.

The ``posterior`` group of :meth:`FitResult.to_datatree` (``z`` with dims
``(chain, draw, series, time, latent)``) works with ``arviz_plots.plot_dist`` and
``plot_forest``, best restricted with ``coords={"series": s, "time": [...]}`` (one panel per
point otherwise); :func:`plot_latent` draws it over time.

Not applicable to these models: ``plot_ppc_rootogram`` (discrete data only), ``plot_ppc_pava``
and ``plot_ppc_pava_residuals`` (binary data), ``plot_ppc_censored`` (censored data) and
``plot_loo_pit`` (needs a ``log_likelihood`` group, which pyrossm does not produce).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..validation import check_positive_int

__all__ = [
    "plot_forecast",
    "plot_latent",
    "plot_sample_paths",
    "plot_history",
    "plot_predictive_density",
    "plot_dependency",
    "stack_observations",
]

#: quantiles drawn by the fan charts: 90% band, 50% band, median
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_SAMPLE_DIMS = ("chain", "draw")


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 3.5))
    return ax


# ---------------------------------------------------------------------- input checks
def _dataset(obj, arg, group="posterior_predictive"):
    """``obj`` as a Dataset: a DataTree gives its ``group``."""
    if isinstance(obj, xr.DataTree):
        if group not in obj.children:
            raise ValueError(f"{arg} is a DataTree without a {group!r} group (groups: {sorted(obj.children)})")
        return obj[group].to_dataset()
    if not isinstance(obj, xr.Dataset):
        raise ValueError(f"{arg} must be an xarray Dataset, got {type(obj).__name__}")
    return obj


def _variable(ds, variable, arg):
    if variable not in ds.data_vars:
        raise ValueError(f"variable {variable!r} is not in {arg}; its variables are {sorted(map(str, ds.data_vars))}")
    return ds[variable]


def _require_dims(da, dims, arg):
    missing = [d for d in dims if d not in da.dims]
    if missing:
        raise ValueError(f"{arg} lacks dim(s) {missing}: it has dims {tuple(da.dims)}, expected {tuple(dims)}")


def _select_series(da, series, arg):
    """``da`` at one ``series`` coordinate value (the dim is dropped)."""
    _require_dims(da, ["series"], arg)
    values = da["series"].values
    if not np.isin(np.asarray([series]), values).any():
        preview = values[:10].tolist()
        raise ValueError(
            f"series={series!r} is not a series of {arg} (series coordinates "
            f"{preview}{' ...' if len(values) > 10 else ''})"
        )
    return da.sel(series=series)


def _select_feature(da, feature, keep, arg, feature_arg="feature"):
    """Selects ``feature`` along the one dim of ``da`` that is not in ``keep``."""
    extra = [d for d in da.dims if d not in keep]
    if not extra:
        if feature is not None:
            raise ValueError(f"{feature_arg}={feature!r} given but {arg} has no feature dim (dims {tuple(da.dims)})")
        return da
    if len(extra) > 1:
        raise ValueError(f"{arg} has dims {tuple(da.dims)}: expected at most one dim besides {tuple(keep)}")
    dim = extra[0]
    if feature is None:
        if da.sizes[dim] == 1:
            return da.isel({dim: 0})
        raise ValueError(
            f"{arg} has the feature dim {dim!r} of size {da.sizes[dim]}: pass "
            f"{feature_arg}= one of {da[dim].values.tolist()}"
        )
    if dim in da.coords and feature not in da[dim].values:
        raise ValueError(
            f"{feature_arg}={feature!r} is not a coordinate of dim {dim!r} of {arg} ({da[dim].values.tolist()})"
        )
    return da.sel({dim: feature}) if dim in da.coords else da.isel({dim: feature})


def _fan(ax, time, draws, sample_dims, color, label_prefix=""):
    """90% and 50% bands and the median of ``draws`` over ``sample_dims``; returns the quantiles."""
    q = draws.quantile(list(_QUANTILES), dim=list(sample_dims)).transpose("quantile", ...).values
    ax.fill_between(time, q[0], q[4], color=color, alpha=0.2, label=f"{label_prefix}90% interval")
    ax.fill_between(time, q[1], q[3], color=color, alpha=0.4, label=f"{label_prefix}50% interval")
    ax.plot(time, q[2], color=color, lw=1.5, label=f"{label_prefix}median")
    return q


# ---------------------------------------------------------------------- forecasts
def plot_forecast(context, forecast, variable, series, truth=None, ax=None, feature=None):
    """Fan chart: observed history, forecast median and 50% / 90% bands, optional truth.

    Draws (in this order) the observed line, the 90% band, the 50% band (``fill_between``
    collections), the median line and, if given, the truth line.

    :param context: ``xr.Dataset`` ``(series, time)`` with the history.
    :param forecast: ``xr.Dataset`` ``(draw, series, time)`` from :meth:`FitResult.forecast`
        (a leading ``chain`` dim is pooled with ``draw``).
    :param str variable: variable to plot.  :param series: series coordinate value.
    :param truth: optional ``xr.Dataset`` holding the realised values over the forecast times.
    :param ax: matplotlib Axes (a new figure if None).
    :param feature: coordinate value of the feature dim, for a variable that has one.
    :returns: the Axes.
    :raises ValueError: naming ``variable``, ``series`` or ``feature`` when they are not in the
        data, or ``forecast`` when it lacks the ``draw`` / ``time`` dims.
    """
    context, forecast = _dataset(context, "context", "observed_data"), _dataset(forecast, "forecast")
    fc = _variable(forecast, variable, "forecast")
    _require_dims(fc, ["draw", "series", "time"], "forecast")
    sample_dims = [d for d in _SAMPLE_DIMS if d in fc.dims]
    fc = _select_feature(_select_series(fc, series, "forecast"), feature, sample_dims + ["time"], "forecast")
    hist = _select_series(_variable(context, variable, "context"), series, "context")
    hist = _select_feature(hist, feature, ["time"], "context")
    ax = _axes(ax)
    ax.plot(hist["time"].values, hist.values, color="black", lw=1.2, label="observed")
    t = fc["time"].values
    _fan(ax, t, fc, sample_dims, "C0")
    if truth is not None:
        tr = _select_series(_variable(_dataset(truth, "truth", "observed_data"), variable, "truth"), series, "truth")
        tr = _select_feature(tr, feature, ["time"], "truth").sel(time=t)
        ax.plot(t, tr.values, color="C3", ls="--", marker=".", label="truth")
    ax.set_xlabel("time")
    ax.set_ylabel(variable)
    ax.legend(loc="best", fontsize=8)
    return ax


# ---------------------------------------------------------------------- latent trajectories
def plot_latent(smoothed, series, ax=None, truth=None, latent=0):
    """Latent trajectory of one series: median and 50% / 90% bands over time, optional truth.

    Draws the 90% band, the 50% band (``fill_between`` collections), the median line and, if
    given, the true latent (dashed).  A latent variable model identifies its latent only up to
    the transformations its emission can absorb (e.g. sign and scale for a linear one), so the
    comparison with a known latent is visual, not exact.

    :param smoothed: :meth:`FitResult.smooth` output, an ``xr.Dataset`` with ``z`` of dims
        ``(draw, series, time, latent)``; also a ``DataArray`` of those dims, or the DataTree of
        :meth:`FitResult.to_datatree` (its ``posterior`` group, dims
        ``(chain, draw, series, time, latent)``; chains and draws are pooled).
    :param series: series coordinate value.
    :param ax: matplotlib Axes (a new figure if None).
    :param truth: optional true latent, a ``DataArray`` ``(series, time)`` (e.g. the second item
        of ``pyrossm.datasets.bimodal_random_walk(..., return_latent=True)``) or
        ``(series, time, latent)``, or a Dataset with variable ``z``.
    :param latent: coordinate value of the latent dimension to plot (``0 .. M-1``).
    :returns: the Axes.
    :raises ValueError: naming ``smoothed``, ``series``, ``latent`` or ``truth``.
    """
    if isinstance(smoothed, xr.DataArray):
        z = smoothed
    else:
        z = _variable(_dataset(smoothed, "smoothed", "posterior"), "z", "smoothed")
    _require_dims(z, ["draw", "series", "time", "latent"], "smoothed")
    sample_dims = [d for d in _SAMPLE_DIMS if d in z.dims]
    z = _select_series(z, series, "smoothed")
    if latent not in z["latent"].values:
        raise ValueError(
            f"latent={latent!r} is not a coordinate of the latent dim of smoothed ({z['latent'].values.tolist()})"
        )
    z = z.sel(latent=latent)
    ax = _axes(ax)
    t = z["time"].values
    _fan(ax, t, z, sample_dims, "C0")
    if truth is not None:
        if isinstance(truth, xr.Dataset):
            truth = _variable(truth, "z", "truth")
        if not isinstance(truth, xr.DataArray):
            raise ValueError(f"truth must be an xarray DataArray (series, time), got {type(truth).__name__}")
        _require_dims(truth, ["series", "time"], "truth")
        tr = _select_series(truth, series, "truth")
        if "latent" in tr.dims:
            if latent not in tr["latent"].values:
                raise ValueError(f"latent={latent!r} is not a coordinate of the latent dim of truth")
            tr = tr.sel(latent=latent)
        if tr.ndim != 1:
            raise ValueError(f"truth has dims {tuple(truth.dims)}: expected (series, time) or (series, time, latent)")
        ax.plot(tr["time"].values, tr.values, color="C3", ls="--", marker=".", label="true latent")
    ax.set_xlabel("time")
    ax.set_ylabel(f"z[{latent}]")
    ax.legend(loc="best", fontsize=8)
    return ax


# ---------------------------------------------------------------------- sample paths
def plot_sample_paths(samples, variable, series=None, num_paths=20, ax=None, context=None, feature=None):
    """Thin lines for a few sampled paths of one variable, optionally after the observed context.

    With ``series`` given, the paths are the first ``num_paths`` draws of that series (e.g. from
    :meth:`FitResult.forecast`); with ``series=None`` they are the first ``num_paths`` of all
    ``(draw, series)`` paths in order (e.g. the generated series of :meth:`FitResult.sample`).
    One line per path (only the first is labelled ``"sample paths"``), then the context line.

    :param samples: ``xr.Dataset`` ``(draw, series, time)`` (a leading ``chain`` dim is pooled
        with ``draw``), or a DataTree (its ``posterior_predictive`` group).
    :param str variable: variable to plot.  :param series: series coordinate value or None.
    :param int num_paths: at most this many lines.
    :param ax: matplotlib Axes (a new figure if None).
    :param context: optional ``xr.Dataset`` ``(series, time)`` with observed data of ``series``,
        drawn in black (requires ``series``).
    :param feature: coordinate value of the feature dim, for a variable that has one.
    :returns: the Axes.
    :raises ValueError: naming ``variable``, ``series``, ``num_paths``, ``feature``, ``context``
        or ``samples``.
    """
    check_positive_int("num_paths", num_paths)
    da = _variable(_dataset(samples, "samples"), variable, "samples")
    _require_dims(da, ["draw", "series", "time"], "samples")
    path_dims = [d for d in _SAMPLE_DIMS if d in da.dims]
    if series is None:
        if context is not None:
            raise ValueError("context is drawn for one series: pass series= as well")
        path_dims.append("series")
    else:
        da = _select_series(da, series, "samples")
    da = _select_feature(da, feature, path_dims + ["time"], "samples")
    t = da["time"].values
    paths = da.transpose(*path_dims, "time").values.reshape(-1, len(t))[:num_paths]
    ax = _axes(ax)
    for i, path in enumerate(paths):
        ax.plot(t, path, color="C0", lw=0.7, alpha=0.6, label="sample paths" if i == 0 else "_nolegend_")
    if context is not None:
        hist = _select_series(
            _variable(_dataset(context, "context", "observed_data"), variable, "context"), series, "context"
        )
        hist = _select_feature(hist, feature, ["time"], "context")
        ax.plot(hist["time"].values, hist.values, color="black", lw=1.2, label="observed")
    ax.set_xlabel("time")
    ax.set_ylabel(variable)
    ax.legend(loc="best", fontsize=8)
    return ax


# ---------------------------------------------------------------------- training history
_LAMBDA_COLUMNS = ("annealing", "lambda")


def _history_frame(history):
    if hasattr(history, "history") and isinstance(history.history, pd.DataFrame):  # a FitResult
        history = history.history
    if isinstance(history, xr.DataTree):
        history = _dataset(history, "history", "training_history")
    if isinstance(history, xr.Dataset):  # FitResult.to_datatree()["training_history"]
        history = history.to_dataframe().reset_index()
    if not isinstance(history, pd.DataFrame):
        raise ValueError(f"history must be a pandas DataFrame (FitResult.history), got {type(history).__name__}")
    if "loss" not in history.columns:
        raise ValueError(f"history has no 'loss' column (columns {list(history.columns)})")
    return history


def plot_history(history, terms=None, ax=None, window=None):
    """Training curves: the objective with lambda on a twin axis, and the per-site ELBO terms.

    Top panel: ``loss`` (the annealed negative ELBO per series that SVI minimises), the
    negative unannealed ELBO ``-elbo`` and, where present, ``-val_elbo`` as markers (it is NaN on
    steps without validation); the annealing weight lambda (column ``annealing``, or ``lambda``)
    is drawn dashed on a twin y-axis.  Bottom panel: the per-site ELBO terms (per series).

    :param history: :attr:`FitResult.history` (a DataFrame, one row per step, columns ``step``,
        ``loss``, ``elbo``, ``annealing``, ``elbo_<site>``, ...); also a FitResult, or the
        ``training_history`` Dataset (or whole DataTree) of :meth:`FitResult.to_datatree`.
    :param terms: column names for the bottom panel (default: every ``elbo_<site>`` column).
    :param ax: None (a new figure) or a sequence of two Axes of one figure.
    :param int window: if given, also draw running means over ``window`` steps (the raw curves
        are then faint) and draw the terms smoothed.
    :returns: the ``Figure``; ``fig.axes`` holds the two panels and the lambda twin axis.
    :raises ValueError: naming ``history``, ``terms``, ``ax`` or ``window``.
    """
    history = _history_frame(history)
    if window is not None:
        window = check_positive_int("window", window)
    available = [c for c in history.columns if str(c).startswith("elbo_")]
    if terms is None:
        terms = available
    else:
        terms = [terms] if isinstance(terms, str) else list(terms)
        unknown = [t for t in terms if t not in history.columns]
        if unknown:
            raise ValueError(
                f"terms {unknown} are not columns of history (ELBO terms: {available}; "
                f"columns: {list(history.columns)})"
            )
    if ax is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True)
    else:
        axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        if len(axes) != 2:
            raise ValueError(f"ax must be None or a sequence of two Axes, got {len(axes)} Axes")
        fig = axes[0].figure
    top, bottom = axes
    steps = history["step"].to_numpy() if "step" in history.columns else np.arange(len(history))

    def curve(axis, values, color, label):
        values = pd.Series(np.asarray(values, dtype=float))
        if window is None:
            axis.plot(steps, values.to_numpy(), color=color, lw=1.2, label=label)
        else:
            axis.plot(steps, values.to_numpy(), color=color, lw=0.8, alpha=0.3, label="_nolegend_")
            axis.plot(
                steps,
                values.rolling(window, min_periods=1).mean().to_numpy(),
                color=color,
                lw=1.5,
                label=f"{label} (running mean, {window})",
            )

    curve(top, history["loss"], "C0", "loss")
    if "elbo" in history.columns:
        curve(top, -history["elbo"], "C1", "-ELBO")
    if "val_elbo" in history.columns:
        val = history["val_elbo"].to_numpy(dtype=float)
        keep = np.isfinite(val)
        top.plot(steps[keep], -val[keep], color="C2", ls="none", marker="o", ms=4, label="-ELBO (validation)")
    top.set_ylabel("loss per series")
    lam_col = next((c for c in _LAMBDA_COLUMNS if c in history.columns), None)
    handles, labels = top.get_legend_handles_labels()
    if lam_col is not None:
        twin = top.twinx()
        (lam_line,) = twin.plot(
            steps, history[lam_col].to_numpy(dtype=float), color="0.4", ls="--", lw=1.2, label="lambda (annealing)"
        )
        twin.set_ylabel("lambda")
        twin.set_ylim(0.0, max(1.05, float(np.nanmax(history[lam_col])) * 1.05))
        handles, labels = handles + [lam_line], labels + [lam_line.get_label()]
    top.legend(handles, labels, loc="best", fontsize=8)
    top.set_title("training objective")

    for i, term in enumerate(terms):
        values = pd.Series(history[term].to_numpy(dtype=float))
        if window is not None:
            values = values.rolling(window, min_periods=1).mean()
        bottom.plot(steps, values.to_numpy(), color=f"C{i}", lw=1.2, label=str(term))
    bottom.set_ylabel("ELBO term per series")
    bottom.set_xlabel("step")
    bottom.set_title("ELBO terms")
    if terms:
        bottom.legend(loc="best", fontsize=8)
    return fig


# ---------------------------------------------------------------------- densities
def plot_predictive_density(samples, grid=None, pdf=None, labels=None, ax=None, bins=80):
    """Histogram(s) of predictive samples against an optional known density.

    :param samples: ``(S,)`` array or a dict ``label -> (S,)`` array.
    :param grid: points where ``pdf`` is drawn.  :param pdf: callable ``grid -> density``.
    :returns: the Axes.
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


def plot_dependency(measures, ax=None, title=None, num_se=3.0):
    """Bar chart of the global (``m_{t,0}``) and first-order local (``m_{t,t-1}``) dependency
    over ``t``, with error bars of ``num_se`` standard errors (the paper's Figures 1, 2 and 4).

    :param measures: the ``xr.Dataset`` of :func:`~pyrossm.evaluation.dependency_measures`.
    :returns: the Axes.
    :raises ValueError: naming ``measures`` if it lacks ``global`` / ``local``.
    """
    for name in ("global", "local", "global_se", "local_se"):
        if not isinstance(measures, xr.Dataset) or name not in measures:
            raise ValueError(f"measures must be the Dataset of dependency_measures(), with {name!r}")
    ax = _axes(ax)
    t = measures["time"].values
    width = 0.4
    for offset, name, color, label in (
        (-width / 2, "global", "tab:green", "global $m_{t,0}$"),
        (width / 2, "local", "tab:red", "local $m_{t,t-1}$"),
    ):
        ax.bar(
            t + offset,
            measures[name].values,
            width,
            yerr=num_se * measures[f"{name}_se"].values,
            color=color,
            alpha=0.8,
            label=label,
            capsize=1.5,
            error_kw={"lw": 0.6},
        )
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("t")
    ax.set_ylabel("dependency")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(loc="best", fontsize=7)
    return ax


# ---------------------------------------------------------------------- arviz helpers
def stack_observations(dt, dim="obs", dropna=True):
    """Flattens the observation dims of a posterior predictive DataTree into one dim.

    ``arviz_plots.plot_ppc_pit`` and ``plot_ppc_interval`` need each variable's observations
    along one dim; this stacks ``(series, time[, feature])`` of the ``posterior_predictive`` and
    ``observed_data`` groups into ``dim`` (keeping ``series`` and ``time`` as coordinates along
    it) and, with ``dropna``, keeps only the observed (non-NaN) points.  With several variables
    each gets its own dim ``f"{dim}_{name}"``, as their missing points differ.

    :param dt: DataTree of :meth:`FitResult.posterior_predictive` or :meth:`FitResult.to_datatree`.
    :returns: a new DataTree with the groups ``posterior_predictive`` (dims
        ``(chain, draw, dim)``) and ``observed_data`` (``(dim,)``).
    :raises ValueError: naming ``dt`` when a group is missing.
    """
    for group in ("posterior_predictive", "observed_data"):
        _dataset(dt, "dt", group)
    pp, obs = dt["posterior_predictive"].to_dataset(), dt["observed_data"].to_dataset()
    several = len(obs.data_vars) > 1
    pp_out, obs_out = {}, {}
    for name in obs.data_vars:
        if name not in pp.data_vars:
            continue
        new = f"{dim}_{name}" if several else dim
        event = list(obs[name].dims)
        o = obs[name].stack({new: event}, create_index=False)
        p = pp[name].stack({new: event}, create_index=False)
        if dropna:
            keep = np.flatnonzero(np.isfinite(o.values))
            o, p = o.isel({new: keep}), p.isel({new: keep})
        obs_out[name], pp_out[name] = o, p
    return xr.DataTree.from_dict({"posterior_predictive": xr.Dataset(pp_out), "observed_data": xr.Dataset(obs_out)})
