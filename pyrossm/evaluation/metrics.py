"""Probabilistic forecast metrics on samples (leading sample dim ``draw``).

Conventions shared by every function here:

- ``samples`` has a leading sample dim, ``(S, N, ...)``, then the series dim ``N``; ``observed``
  has the shape of one draw, ``(N, ...)``.  numpy arrays, torch tensors and
  :class:`xarray.DataArray` are accepted; a DataArray's sample dim must be named ``draw`` (it is
  moved first, wherever it is) and a DataArray ``observed`` is put in the samples' dim order.
- ``NaN`` in ``observed`` marks a missing observation; it is ignored.
- The result is one value per series, shape ``(N,)``: the mean over the other dims (time,
  features) of the observed entries.  ``reduce=False`` returns the unreduced score instead.
- Lower is better for every score except :func:`coverage` (compare with ``level``).

The divergences between sample sets (:func:`jsd`, :func:`wasserstein`,
:func:`sliced_wasserstein`, :func:`mmd`) live in :mod:`pyrossm.evaluation.divergences` and are
re-exported here; :func:`evaluate` scores a forecast ``xr.Dataset`` against the truth.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
import torch
import xarray as xr
from pyro.ops.stats import crps_empirical, energy_score_empirical, quantile

from .divergences import (
    SAMPLE_DIM,
    _chunks,
    _like,
    _samples_first,
    jsd,
    jsd_to_density,
    mmd,
    sliced_wasserstein,
    wasserstein,
)

__all__ = [
    "crps",
    "crps_sum",
    "energy_score",
    "coverage",
    "interval_width",
    "mae",
    "rmse",
    "jsd",
    "jsd_to_density",
    "wasserstein",
    "sliced_wasserstein",
    "mmd",
    "evaluate",
]

#: metric names accepted by :func:`evaluate`, in its default column order
METRICS = ("crps", "crps_sum", "energy_score", "coverage", "interval_width", "mae", "rmse")


# ------------------------------------------------------------------ helpers
def _forecast_pair(samples, observed):
    """float64 tensors ``(S, N, ...)`` and ``(N, ...)``, validated."""
    s, dims = _samples_first(samples, "samples")
    o = _like(observed, "observed", dims, with_samples=False)
    if s.ndim < 2:
        raise ValueError(f"samples must have shape (S, N, ...) with a leading sample dim; got shape {s.shape}")
    if s.shape[1:] != o.shape:
        raise ValueError(
            f"samples shape {s.shape} does not match observed shape {o.shape} after the leading sample dim"
        )
    return torch.as_tensor(s), torch.as_tensor(o)


def _per_series(score, reduce):
    """``(N, ...)`` scores -> numpy; with ``reduce`` the NaN-ignoring mean per series ``(N,)``."""
    score = score.numpy() if isinstance(score, torch.Tensor) else np.asarray(score)
    if not reduce:
        return score
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a series with no observation gives NaN
        return np.nanmean(score.reshape(score.shape[0], -1), axis=1)


def _check_level(level):
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1); got {level!r}")


def _central_interval(samples, level):
    """Lower and upper ``(1 -+ level) / 2`` sample quantiles (linear interpolation)."""
    q = quantile(samples, [(1 - level) / 2, (1 + level) / 2], dim=0)
    return q[0], q[1]


def _median_error(samples, observed):
    s, o = _forecast_pair(samples, observed)
    return quantile(s, 0.5, dim=0) - o  # NaN where observed is missing


# ------------------------------------------------------------------ scores
def crps(samples, observed, reduce=True):
    """Continuous ranked probability score of an empirical predictive (lower is better).

    ``CRPS(F, y) = E|X - y| - 1/2 E|X - X'|`` with ``X, X' ~ F`` i.i.d. (Gneiting & Raftery, 2007),
    computed by :func:`pyro.ops.stats.crps_empirical`.  Missing observations (NaN) are ignored.

    :param samples: ``(S, N, ...)`` array / tensor / DataArray (sample dim first, or ``draw``).
    :param observed: ``(N, ...)``.
    :param bool reduce: average over all dims after the first (per-series values, shape ``(N,)``);
        ``False`` returns the elementwise CRPS ``(N, ...)``.
    """
    samples, observed = _forecast_pair(samples, observed)
    missing = torch.isnan(observed)
    score = crps_empirical(samples, torch.where(missing, 0.0, observed))
    return _per_series(torch.where(missing, torch.nan, score), reduce)


def crps_sum(samples, observed, reduce=True, normalize=True, quantile_levels=None):
    """CRPS of the sum over the feature dim ("CRPS-sum", Salinas et al., 2019; Rasul et al., 2021).

    The target is summed over its last (feature) dim, ``y_t = sum_d y_{t,d}``, and so is every
    draw; the score is the CRPS of the summed predictive at each time step,
    ``c_t = CRPS(F_sum,t, y_t)``.  With ``normalize=True`` (the published definition) it is
    divided by the mean absolute summed target of the series, so the per-series value is
    ``sum_t c_t / sum_t |y_t|``.  A time step with any missing channel is skipped.

    ``quantile_levels=None`` computes ``c_t`` exactly (:func:`pyro.ops.stats.crps_empirical`).
    GluonTS's ``MultivariateEvaluator(target_agg_funcs={"sum": np.sum})`` metric
    ``m_sum_mean_wQuantileLoss``, which the papers report, instead approximates it by the mean over
    quantile levels ``tau`` of the quantile loss ``2 |(q_tau - y)(1{y <= q_tau} - tau)|`` (``q_tau``
    the linearly interpolated sample quantile) and divides the sums over time *and over all
    series* of both parts; pass ``quantile_levels=np.arange(1, 20) / 20`` (the levels used by
    TimeGrad and CSDI) to get that approximation per series.  Averaging these per-series values
    (as :func:`evaluate` does) weights series equally, where GluonTS weights them by ``sum |y|``.

    **References**

    [1] Kashif Rasul, Calvin Seward, Ingmar Schuster, Roland Vollgraf (2021), *Autoregressive
    Denoising Diffusion Models for Multivariate Probabilistic Time Series Forecasting*, ICML.

    :param samples: ``(S, N, T, D)`` (features last) or ``(S, N, T)`` (then ``D = 1``).
    :param observed: ``(N, T, D)`` or ``(N, T)``.
    :param bool reduce: ``True``: ``(N,)``; ``False``: per time step ``(N, T)`` (normalised by the
        series' mean ``|y_t|``, so that their mean over time is the per-series value).
    :param bool normalize: divide by the mean absolute summed target (a series whose summed
        target is zero gives ``inf`` or ``NaN``).
    :param quantile_levels: ``None`` (exact CRPS) or levels in ``(0, 1)`` for the quantile-loss
        approximation.
    """
    s, o = _forecast_pair(samples, observed)
    if s.ndim == 3:
        s, o = s[..., None], o[..., None]
    elif s.ndim != 4:
        raise ValueError(f"samples must have shape (S, N, T, D) or (S, N, T); got {tuple(s.shape)}")
    missing = torch.isnan(o).any(-1)
    total, target = s.sum(-1), torch.where(missing, 0.0, o.sum(-1))
    if quantile_levels is None:
        score = crps_empirical(total, target)
    else:
        levels = torch.as_tensor(np.asarray(quantile_levels, dtype=np.float64)).reshape(-1)
        if levels.numel() == 0 or not bool(((levels > 0) & (levels < 1)).all()):
            raise ValueError(
                f"quantile_levels must be a non-empty sequence of numbers in (0, 1); got {quantile_levels!r}"
            )
        q = quantile(total, levels, dim=0)  # (Q, N, T)
        tau = levels.reshape(-1, 1, 1)
        score = (2.0 * ((q - target) * ((target <= q).double() - tau)).abs()).mean(0)
    score = torch.where(missing, torch.nan, score).numpy()
    if normalize:
        scale = _per_series(np.where(missing.numpy(), np.nan, np.abs(target.numpy())), True)
        with np.errstate(divide="ignore", invalid="ignore"):
            score = score / scale[:, None]
    return _per_series(score, reduce)


def energy_score(samples, observed, reduce=True):
    """Energy score of an empirical multivariate predictive over the last dim (lower is better).

    ``ES(F, y) = E||X - y|| - 1/2 E||X - X'||`` with ``X, X' ~ F`` i.i.d. and the Euclidean norm
    over the last (feature) dim (Gneiting & Raftery, 2007, eq. 22), computed by
    :func:`pyro.ops.stats.energy_score_empirical` (exact pairwise distances).  With one feature it
    equals :func:`crps`.  A vector with any missing component is skipped.  For a DataArray the
    feature dim is its last dim other than ``draw``.

    :param samples: ``(S, N, ..., D)``, e.g. ``(S, N, T, D)``; ``(S, N, T, 1)`` for one feature.
    :param observed: ``(N, ..., D)``.
    :param bool reduce: ``True``: ``(N,)`` (mean over time); ``False``: ``(N, ...)`` (no ``D``).
    """
    s, o = _forecast_pair(samples, observed)
    if s.ndim < 3:
        raise ValueError(
            f"samples must have shape (S, N, ..., D) with a feature dim last; got "
            f"{tuple(s.shape)} (add a trailing dim of size 1 for one feature)"
        )
    num_samples, dim = s.shape[0], s.shape[-1]
    pred = s.reshape(num_samples, -1, dim).transpose(0, 1)  # (M, S, D)
    truth = o.reshape(-1, dim)
    missing = torch.isnan(truth).any(-1)
    truth = torch.where(torch.isnan(truth), 0.0, truth)

    def cdist(a, b):
        return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")

    score = torch.empty(truth.shape[0], dtype=torch.float64)
    for c in _chunks(truth.shape[0], num_samples * num_samples):
        score[c] = energy_score_empirical(pred[c], truth[c], cdist=cdist)
    score = torch.where(missing, torch.nan, score).reshape(o.shape[:-1])
    return _per_series(score, reduce)


def coverage(samples, observed, level=0.9, reduce=True):
    """Fraction of observations inside the central ``level`` interval of the samples.

    The interval runs from the ``(1 - level) / 2`` to the ``(1 + level) / 2`` sample quantile
    (linear interpolation, :func:`pyro.ops.stats.quantile`), ends included.  A calibrated
    predictive has coverage ``level``; see :func:`interval_width` for the sharpness of the same
    interval.

    :param samples: ``(S, N, ...)``.  :param observed: ``(N, ...)``.
    :param float level: nominal coverage in ``(0, 1)``.
    :param bool reduce: ``True``: ``(N,)`` fractions; ``False``: ``(N, ...)`` indicators (0/1, NaN
        where missing).
    """
    _check_level(level)
    s, o = _forecast_pair(samples, observed)
    lower, upper = _central_interval(s, level)
    inside = ((o >= lower) & (o <= upper)).double()
    return _per_series(torch.where(torch.isnan(o), torch.nan, inside), reduce)


def interval_width(samples, level=0.9, reduce=True):
    """Width of the central ``level`` interval of the samples (sharpness; the interval of :func:`coverage`).

    :param samples: ``(S, N, ...)``.
    :param float level: in ``(0, 1)``.
    :param bool reduce: ``True``: mean width per series ``(N,)``; ``False``: ``(N, ...)``.
    """
    _check_level(level)
    s = _samples_first(samples, "samples")[0]
    if s.ndim < 2:
        raise ValueError(f"samples must have shape (S, N, ...) with a leading sample dim; got shape {s.shape}")
    lower, upper = _central_interval(torch.as_tensor(s), level)
    return _per_series(upper - lower, reduce)


def mae(samples, observed, reduce=True):
    """Mean absolute error of the sample median: ``mean |median(X) - y|`` per series.

    :param samples: ``(S, N, ...)``.  :param observed: ``(N, ...)``.
    :param bool reduce: ``True``: ``(N,)``; ``False``: absolute errors ``(N, ...)``.
    """
    return _per_series(_median_error(samples, observed).abs(), reduce)


def rmse(samples, observed):
    """Root mean squared error of the sample median: ``sqrt(mean (median(X) - y)^2)`` per series.

    :param samples: ``(S, N, ...)``.  :param observed: ``(N, ...)``.
    :returns: ``(N,)``.
    """
    return np.sqrt(_per_series(_median_error(samples, observed) ** 2, True))


# ------------------------------------------------------------------ evaluate
def _metric_names(metrics):
    if metrics is None:
        return list(METRICS)
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise ValueError(f"metrics has unknown names {unknown}; valid names are {list(METRICS)}")
    if not names or len(set(names)) != len(names):
        raise ValueError(f"metrics must name each metric at most once, at least one; got {names}")
    return names


def _evaluation_arrays(forecast, truth, var):
    """Samples ``(S, N, T, D)`` and the matching truth ``(N, T, D)`` of one variable."""
    fc = forecast[var]
    core = (SAMPLE_DIM, "series", "time")
    extra = [d for d in fc.dims if d not in core]
    if not set(core) <= set(fc.dims) or len(extra) > 1:
        raise ValueError(
            f"forecast variable {var!r} has dims {fc.dims}; expected "
            "('draw', 'series', 'time') plus at most one feature dim"
        )
    if var not in truth.data_vars:
        raise ValueError(f"truth has no variable {var!r}; it has {list(truth.data_vars)}")
    tr = truth[var]
    if set(tr.dims) != {"series", "time", *extra}:
        raise ValueError(
            f"truth variable {var!r} has dims {tr.dims}; expected {('series', 'time', *extra)} like the forecast"
        )
    selection = {}
    for dim in ("series", "time", *extra):
        if dim in fc.coords and dim in tr.coords:
            wanted, have = pd.Index(fc[dim].values), pd.Index(tr[dim].values)
            if not have.is_unique:
                raise ValueError(f"truth variable {var!r} has duplicate {dim!r} coordinates")
            absent = wanted[~wanted.isin(have)]
            if len(absent):
                raise ValueError(
                    f"truth variable {var!r} does not cover the forecast's {dim!r} "
                    f"coordinates: {len(absent)} missing, e.g. {list(absent[:3])}"
                )
            selection[dim] = wanted.values
        elif fc.sizes[dim] != tr.sizes[dim]:
            raise ValueError(
                f"truth variable {var!r} has {tr.sizes[dim]} {dim!r} entries, the "
                f"forecast {fc.sizes[dim]} (and no coordinates to match them by)"
            )
    tr = tr.sel(selection).transpose("series", "time", *extra)
    samples = fc.transpose(*core, *extra).values.astype(np.float64)
    observed = tr.values.astype(np.float64)
    if not extra:
        samples, observed = samples[..., None], observed[..., None]
    return samples, observed


def evaluate(forecast, truth, metrics=None, level=0.9, per_series=False):
    """Scores a sample forecast against the realised values, one row per target variable.

    Each variable of ``forecast`` is compared with the same variable of ``truth`` selected at the
    forecast's ``series``, ``time`` (and feature) coordinates.  Metrics, each a per-series value
    averaged over the series (NaN-ignoring): ``crps``, ``crps_sum`` (normalised, exact; equals
    the normalised CRPS for a variable without feature dim), ``energy_score`` (over the feature
    dim; equals ``crps`` without one), ``coverage`` (column ``coverage_90`` for ``level=0.9``),
    ``interval_width`` (column ``width_90``), ``mae``, ``rmse`` (of the sample median); see the
    functions of the same names.

    :param forecast: ``xr.Dataset`` with dims ``(draw, series, time[, feature])``, as returned
        by :meth:`pyrossm.FitResult.forecast`.
    :param truth: the realised values with the same variables, covering at least the forecast's
        coordinates: an ``xr.Dataset`` with dims ``(series, time[, feature])`` or anything
        :func:`pyrossm.data.as_dataset` accepts.
    :param metrics: list of metric names (default: all, in the order above).
    :param float level: interval level of ``coverage`` and ``interval_width``.
    :param bool per_series: return one row per ``(variable, series)`` instead of the average.
    :returns: :class:`pandas.DataFrame` indexed by ``variable`` (or ``(variable, series)``),
        one column per metric.
    """
    if not isinstance(forecast, xr.Dataset):
        raise TypeError(f"forecast must be an xarray.Dataset; got {type(forecast).__name__}")
    if not isinstance(truth, xr.Dataset):
        from ..data import as_dataset

        truth = as_dataset(truth)  # any form fit takes (DataFrame, DataArray, Series, array)
    if not forecast.data_vars:
        raise ValueError("forecast has no data variables")
    _check_level(level)
    names = _metric_names(metrics)
    percent = f"{100 * level:g}"
    columns = [{"coverage": f"coverage_{percent}", "interval_width": f"width_{percent}"}.get(n, n) for n in names]
    compute = {
        "crps": lambda s, o: crps(s, o),
        "crps_sum": lambda s, o: crps_sum(s, o),
        "energy_score": lambda s, o: energy_score(s, o),
        "coverage": lambda s, o: coverage(s, o, level=level),
        "interval_width": lambda s, o: interval_width(s, level=level),
        "mae": lambda s, o: mae(s, o),
        "rmse": lambda s, o: rmse(s, o),
    }
    tables, means = [], {}
    for var in forecast.data_vars:
        samples, observed = _evaluation_arrays(forecast, truth, var)
        values = np.stack([compute[n](samples, observed) for n in names], axis=1)  # (N, metrics)
        if per_series:
            series = forecast[var]["series"].values
            index = pd.MultiIndex.from_arrays([[str(var)] * len(series), series], names=["variable", "series"])
            tables.append(pd.DataFrame(values, index=index, columns=columns))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all series NaN -> NaN
                means[str(var)] = np.nanmean(values, axis=0)
    if per_series:
        return pd.concat(tables)
    return pd.DataFrame(list(means.values()), index=pd.Index(list(means), name="variable"), columns=columns)
