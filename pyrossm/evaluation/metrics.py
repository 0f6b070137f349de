"""Probabilistic forecast metrics on samples (leading sample dim ``draw``)."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr
from pyro.ops.stats import crps_empirical

__all__ = ["crps", "jsd_to_density"]


def _as_tensor(a):
    if isinstance(a, xr.DataArray):
        a = a.values
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def crps(samples, observed, reduce=True):
    """Continuous ranked probability score of an empirical predictive (lower is better).

    ``CRPS(F, y) = E|X - y| - 1/2 E|X - X'|`` with ``X, X' ~ F`` i.i.d. (Gneiting & Raftery, 2007),
    computed by :func:`pyro.ops.stats.crps_empirical`.  Missing observations (NaN) are ignored.

    :param samples: ``(S, N, ...)`` array / tensor / DataArray (sample dim first).
    :param observed: ``(N, ...)``.
    :param bool reduce: average over all dims after the first (per-series values, shape ``(N,)``);
        ``False`` returns the elementwise CRPS ``(N, ...)``.
    """
    samples, observed = _as_tensor(samples), _as_tensor(observed)
    if samples.shape[1:] != observed.shape:
        raise ValueError(f"samples shape {tuple(samples.shape)} does not match observed shape "
                         f"{tuple(observed.shape)} after the leading sample dim")
    missing = torch.isnan(observed)
    score = crps_empirical(samples, torch.where(missing, 0.0, observed))
    score = torch.where(missing, torch.nan, score).numpy()
    if not reduce:
        return score
    return np.nanmean(score.reshape(score.shape[0], -1), axis=1)


def jsd_to_density(samples, pdf, bins=100, low=None, high=None):
    """Jensen-Shannon divergence (base 2, in [0, 1]) between samples and a known 1-D density.

    Binning: ``bins`` equal-width bins on ``[low, high]`` (default: the range of the samples
    widened by 10%); the sample distribution is the histogram (mass outside the range falls in
    the end bins), the reference distribution is the density integrated over each bin by the
    midpoint rule on 20 sub-points per bin, renormalised.

    :param samples: ``(S, N)`` draws for ``N`` independent problems (or ``(S,)``).
    :param pdf: callable ``x (K, N) -> density (K, N)`` (vectorised over problems).
    :returns: ``(N,)`` JSD per problem.
    """
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    lo = np.nanmin(s, axis=0) if low is None else np.broadcast_to(np.asarray(low, float), s.shape[1:])
    hi = np.nanmax(s, axis=0) if high is None else np.broadcast_to(np.asarray(high, float), s.shape[1:])
    if low is None or high is None:
        pad = 0.1 * (hi - lo) + 1e-6
        lo, hi = (lo - pad if low is None else lo), (hi + pad if high is None else hi)
    edges = lo + (hi - lo) * np.linspace(0.0, 1.0, bins + 1)[:, None]                 # (bins+1, N)
    width = (hi - lo) / bins
    pos = np.clip(np.floor((s - lo) / width).astype(int), 0, bins - 1)              # (S, N)
    p = np.zeros((bins, s.shape[1]))
    np.add.at(p, (pos, np.arange(s.shape[1])[None, :].repeat(s.shape[0], 0)), 1.0)
    p /= p.sum(0, keepdims=True)
    sub = (np.arange(20) + 0.5) / 20
    points = edges[:-1, None, :] + sub[None, :, None] * width                       # (bins, 20, N)
    q = np.asarray(pdf(points.reshape(bins * 20, -1)), dtype=np.float64).reshape(bins, 20, -1).mean(1)
    q = q / q.sum(0, keepdims=True)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum(0)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum(0)
    return 0.5 * (kl_p + kl_q)
