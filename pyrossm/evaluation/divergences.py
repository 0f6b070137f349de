"""Divergences between two sample sets (or samples and a density), per series.

Every function takes ``samples`` with a leading sample dim ``(S, N, ...)`` and a ``reference``
with its own leading sample dim ``(S2, N, ...)`` (``S2`` may differ from ``S``), and returns one
value per series, shape ``(N,)``.  A :class:`xarray.DataArray` must carry its sample dim as
``draw`` (anywhere: it is moved first, and the reference's other dims are put in the samples'
order).  Sample values must be finite.

The input helpers at the top are shared with :mod:`pyrossm.evaluation.metrics`.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from ..validation import check_positive_int

__all__ = ["jsd", "jsd_to_density", "wasserstein", "sliced_wasserstein", "mmd"]

SAMPLE_DIM = "draw"
_CHUNK_ELEMENTS = 2**23  # bound on the size of pairwise/projection intermediates per chunk


# ------------------------------------------------------------------ input helpers
def _to_numpy(a, name):
    """float64 numpy copy of an array-like / tensor / DataArray, or a ``TypeError`` naming ``name``."""
    if isinstance(a, xr.Dataset):
        raise TypeError(f"{name} must be an array, tensor or DataArray, not an xarray.Dataset (select one variable)")
    if isinstance(a, xr.DataArray):
        a = a.values
    elif isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    try:
        out = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a numeric array, tensor or DataArray; got {type(a).__name__}") from err
    return out if out.flags.writeable else out.copy()  # torch refuses read-only views


def _samples_first(a, name):
    """``(array, other dims)``: a DataArray is transposed to put its ``draw`` dim first."""
    if isinstance(a, xr.DataArray):
        if SAMPLE_DIM not in a.dims:
            raise ValueError(f"{name} DataArray has dims {a.dims}; expected a {SAMPLE_DIM!r} sample dim")
        a = a.transpose(SAMPLE_DIM, ...)
        return _to_numpy(a, name), a.dims[1:]
    return _to_numpy(a, name), None


def _like(other, name, dims, with_samples):
    """Converts ``other``; a DataArray is transposed to ``dims`` (the samples' non-sample dims)."""
    if isinstance(other, xr.DataArray):
        if with_samples and SAMPLE_DIM not in other.dims:
            raise ValueError(f"{name} DataArray has dims {other.dims}; expected a {SAMPLE_DIM!r} sample dim")
        if dims is not None:
            target = ((SAMPLE_DIM,) if with_samples else ()) + tuple(dims)
            if set(other.dims) != set(target):
                raise ValueError(f"{name} DataArray has dims {other.dims}; expected the dims of samples {target}")
            other = other.transpose(*target)
        elif with_samples:
            other = other.transpose(SAMPLE_DIM, ...)
    return _to_numpy(other, name)


def _sample_pair(samples, reference, min_samples=1):
    """Validated ``(S, M)``-reshaped pair and the trailing shape ``(N, ...)`` of the samples."""
    s, dims = _samples_first(samples, "samples")
    r = _like(reference, "reference", dims, with_samples=True)
    if s.ndim == 1:
        s = s[:, None]
    if r.ndim == 1:
        r = r[:, None]
    if s.shape[1:] != r.shape[1:]:
        raise ValueError(
            f"reference shape {r.shape} does not match samples shape {s.shape} after "
            "the leading sample dim (expected (S2,) + samples.shape[1:])"
        )
    for name, a in (("samples", s), ("reference", r)):
        if a.shape[0] < min_samples:
            raise ValueError(
                f"{name} needs at least {min_samples} draws along the leading sample dim; got {a.shape[0]}"
            )
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or infinite values")
    return s, r


def _series_mean(values, num_series):
    """Mean over everything but the series dim: ``(N, ...) -> (N,)``."""
    return np.asarray(values, dtype=np.float64).reshape(num_series, -1).mean(axis=1)


def _chunks(total, per_item):
    """Slices of ``range(total)`` with at most ``_CHUNK_ELEMENTS / per_item`` items each."""
    step = max(1, _CHUNK_ELEMENTS // max(1, per_item))
    return [slice(i, min(i + step, total)) for i in range(0, total, step)]


# ------------------------------------------------------------------ Jensen-Shannon
def _jsd_discrete(p, q):
    """JSD in bits between probability vectors along axis 0."""
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum(0)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum(0)
    return 0.5 * (kl_p + kl_q)


def _histogram(x, lo, hi, bins):
    """Per-column histogram ``(S, M) -> (bins, M)`` probabilities; outside mass goes to end bins."""
    num = x.shape[1]
    pos = np.clip(np.floor((x - lo) / ((hi - lo) / bins)), 0, bins - 1).astype(np.int64)
    counts = np.bincount((pos + bins * np.arange(num)).ravel(), minlength=bins * num)
    counts = counts.reshape(num, bins).T.astype(np.float64)
    return counts / counts.sum(0, keepdims=True)


def _bound(value, name, shape):
    """A binning bound broadcast to the marginals ``shape`` and flattened."""
    v = _to_numpy(value, name)
    try:
        return np.broadcast_to(v, shape).reshape(-1)
    except ValueError:
        raise ValueError(f"{name} must be a scalar or broadcast to {shape}; got shape {v.shape}") from None


def jsd(samples, reference, bins=100, low=None, high=None):
    """Jensen-Shannon divergence (base 2, in ``[0, 1]``) between samples and a reference, per series.

    ``JSD(P, Q) = 1/2 KL(P || M) + 1/2 KL(Q || M)`` with ``M = (P + Q) / 2`` (Lin, 1991), in bits,
    between histograms.  When ``reference`` is a sample set, both are binned on the *same*
    ``bins`` equal-width bins over the common range ``[min(samples, reference),
    max(samples, reference)]`` of each marginal (or ``[low, high]``; mass outside falls in the end
    bins).  When ``reference`` is a callable density the computation is delegated to
    :func:`jsd_to_density` (its binning: the samples' range widened by 10%).

    **References**

    [1] Jianhua Lin (1991), `Divergence measures based on the Shannon entropy`,
        IEEE Trans. Inf. Theory 37(1).

    :param samples: ``(S, N, ...)`` draws (``(S,)`` is one problem); with a callable reference
        ``(S, N)`` or ``(S,)``.
    :param reference: ``(S2, N, ...)`` draws of the reference distribution, or a vectorised
        density ``pdf(x (K, N)) -> (K, N)``.
    :param int bins: number of bins.
    :param low: lower end of the binning range (scalar or per-marginal); default the common minimum.
    :param high: upper end; default the common maximum.
    :returns: ``(N,)`` JSD per series, averaged over the marginals after the series dim.
    """
    check_positive_int("bins", bins)
    if callable(reference):
        s = _samples_first(samples, "samples")[0]
        if s.ndim not in (1, 2):
            raise ValueError(f"samples must have shape (S,) or (S, N) with a density reference; got {s.shape}")
        if not np.all(np.isfinite(s)):
            raise ValueError("samples contains NaN or infinite values")
        return jsd_to_density(s, reference, bins=bins, low=low, high=high)
    s, r = _sample_pair(samples, reference)
    shape = s.shape[1:]
    s, r = s.reshape(s.shape[0], -1), r.reshape(r.shape[0], -1)
    lo = np.minimum(s.min(0), r.min(0)) if low is None else _bound(low, "low", shape)
    hi = np.maximum(s.max(0), r.max(0)) if high is None else _bound(high, "high", shape)
    if low is not None and high is not None and np.any(hi <= lo):
        raise ValueError("low must be smaller than high")
    hi = np.where(hi > lo, hi, lo + 1.0)  # a degenerate range: every value in the first bin
    score = _jsd_discrete(_histogram(s, lo, hi, bins), _histogram(r, lo, hi, bins))
    return _series_mean(score, shape[0])


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
    edges = lo + (hi - lo) * np.linspace(0.0, 1.0, bins + 1)[:, None]  # (bins+1, N)
    width = (hi - lo) / bins
    p = _histogram(s, lo, hi, bins)  # (bins, N)
    sub = (np.arange(20) + 0.5) / 20
    points = edges[:-1, None, :] + sub[None, :, None] * width  # (bins, 20, N)
    q = np.asarray(pdf(points.reshape(bins * 20, -1)), dtype=np.float64).reshape(bins, 20, -1).mean(1)
    q = q / q.sum(0, keepdims=True)
    return _jsd_discrete(p, q)


# ------------------------------------------------------------------ Wasserstein
def _w1(x, y):
    """Wasserstein-1 between the empirical laws of the columns: ``(S1, M), (S2, M) -> (M,)``.

    ``W1 = integral |F_x(t) - F_y(t)| dt``, exact for step CDFs: on the pooled sorted values the
    CDF gap is constant between neighbours.
    """
    pooled = np.concatenate([x, y], axis=0)
    order = np.argsort(pooled, axis=0, kind="stable")
    values = np.take_along_axis(pooled, order, axis=0)
    from_x = order < x.shape[0]
    gap = np.cumsum(from_x, axis=0) / x.shape[0] - np.cumsum(~from_x, axis=0) / y.shape[0]
    return (np.abs(gap[:-1]) * np.diff(values, axis=0)).sum(axis=0)


def wasserstein(samples, reference):
    """Wasserstein-1 distance between two empirical 1-D distributions, per marginal.

    ``W1(P, Q) = integral |F_P(t) - F_Q(t)| dt`` (the area between the empirical CDFs, equal to
    the L1 distance between quantile functions), exact for any sample sizes
    (Villani, 2009, Remark 2.19; as :func:`scipy.stats.wasserstein_distance`).

    :param samples: ``(S, N, ...)`` draws (``(S,)`` is one problem).
    :param reference: ``(S2, N, ...)`` draws of the reference distribution.
    :returns: ``(N,)``: W1 of each marginal, averaged over the dims after the series dim.
    """
    s, r = _sample_pair(samples, reference)
    num_series = s.shape[1]
    return _series_mean(_w1(s.reshape(s.shape[0], -1), r.reshape(r.shape[0], -1)), num_series)


def sliced_wasserstein(samples, reference, num_projections=128, seed=0):
    """Sliced Wasserstein-1 distance between two multivariate sample sets, per series.

    ``SW1(P, Q) = E_theta W1(theta^T X, theta^T Y)`` over directions ``theta`` uniform on the unit
    sphere (Bonneel et al., 2015), estimated with ``num_projections`` random directions drawn
    from ``numpy.random.default_rng(seed)`` (the same directions for every series).  All dims
    after the series dim are flattened into one vector: ``(S, N, T, D)`` compares the laws of
    whole ``T * D`` trajectories.  For one dim it equals :func:`wasserstein` exactly; it is
    translation invariant, scales as ``|c|`` under ``x -> c x``, and a shift of the reference
    by ``v`` gives ``E|theta^T v|``.

    **References**

    [1] Nicolas Bonneel, Julien Rabin, Gabriel Peyre, Hanspeter Pfister (2015),
        `Sliced and Radon Wasserstein Barycenters of Measures`, J. Math. Imaging Vis. 51.

    :param samples: ``(S, N, D)`` (or ``(S, N, ...)``, flattened; ``(S, N)`` means ``D = 1``).
    :param reference: ``(S2, N, D)``.
    :param int num_projections: number of random directions.
    :param int seed: seed of the directions.
    :returns: ``(N,)``.
    """
    check_positive_int("num_projections", num_projections)
    s, r = _sample_pair(samples, reference)
    num_series = s.shape[1]
    s, r = s.reshape(s.shape[0], num_series, -1), r.reshape(r.shape[0], num_series, -1)
    theta = np.random.default_rng(seed).normal(size=(num_projections, s.shape[-1]))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    out = np.empty(num_series)
    for c in _chunks(num_series, (s.shape[0] + r.shape[0]) * num_projections):
        ps, pr = s[:, c] @ theta.T, r[:, c] @ theta.T  # (S, C, P)
        w = _w1(ps.reshape(ps.shape[0], -1), pr.reshape(pr.shape[0], -1))
        out[c] = w.reshape(-1, num_projections).mean(axis=1)
    return out


# ------------------------------------------------------------------ MMD
def mmd(samples, reference, bandwidth=None):
    """Squared maximum mean discrepancy with a Gaussian (RBF) kernel, unbiased estimate, per series.

    ``MMD_u^2 = 1/(m(m-1)) sum_{i!=j} k(x_i, x_j) + 1/(n(n-1)) sum_{i!=j} k(y_i, y_j)
    - 2/(mn) sum_{i,j} k(x_i, y_j)`` with ``k(x, y) = exp(-|x - y|^2 / (2 bandwidth^2))``
    (Gretton et al., 2012, Lemma 6).  Being unbiased it can be slightly negative when both sets
    come from the same law.  ``bandwidth=None`` uses the median heuristic: the median Euclidean
    distance between distinct points of the pooled sample of each series (1 if that median is 0).
    All dims after the series dim are flattened into one vector.

    **References**

    [1] Arthur Gretton, Karsten M. Borgwardt, Malte J. Rasch, Bernhard Schoelkopf, Alexander
        Smola (2012), `A Kernel Two-Sample Test`, JMLR 13.

    :param samples: ``(S, N, D)`` with ``S >= 2`` (or ``(S, N, ...)``; ``(S, N)`` means ``D = 1``).
    :param reference: ``(S2, N, D)`` with ``S2 >= 2``.
    :param bandwidth: positive kernel length scale, scalar or ``(N,)``; ``None``: median heuristic.
    :returns: ``(N,)``.
    """
    s, r = _sample_pair(samples, reference, min_samples=2)
    num_series, m, n = s.shape[1], s.shape[0], r.shape[0]
    x = torch.as_tensor(s.reshape(m, num_series, -1)).transpose(0, 1)  # (N, m, D)
    y = torch.as_tensor(r.reshape(n, num_series, -1)).transpose(0, 1)
    if bandwidth is not None:
        bw = (
            np.broadcast_to(_to_numpy(bandwidth, "bandwidth"), (num_series,))
            if np.ndim(bandwidth) <= 1 and np.size(bandwidth) in (1, num_series)
            else None
        )
        if bw is None:
            raise ValueError(
                f"bandwidth must be a scalar or have shape ({num_series},); got shape {np.shape(bandwidth)}"
            )
        if not np.all(np.isfinite(bw) & (bw > 0)):
            raise ValueError(f"bandwidth must be positive and finite; got {bandwidth!r}")
    mode = "donot_use_mm_for_euclid_dist"  # exact distances: the diagonal is exactly 0
    out = np.empty(num_series)
    for c in _chunks(num_series, (m + n) ** 2):
        xc, yc = x[c], y[c]
        if bandwidth is None:
            pooled = torch.cat([xc, yc], dim=1)
            iu = torch.triu_indices(m + n, m + n, offset=1)
            d = torch.cdist(pooled, pooled, compute_mode=mode)[:, iu[0], iu[1]].numpy()
            h = np.median(d, axis=1)
            h = np.where(h > 0, h, 1.0)
        else:
            h = bw[c]
        scale = torch.as_tensor(2.0 * h**2)[:, None, None]

        def kernel_sum(a, b, drop_diagonal):
            k = torch.exp(-(torch.cdist(a, b, compute_mode=mode) ** 2) / scale)
            if drop_diagonal:
                k = k - torch.diag_embed(torch.diagonal(k, dim1=-2, dim2=-1))
            return k.sum((-2, -1))

        value = (
            kernel_sum(xc, xc, True) / (m * (m - 1))
            + kernel_sum(yc, yc, True) / (n * (n - 1))
            - 2.0 * kernel_sum(xc, yc, False) / (m * n)
        )
        out[c] = value.numpy()
    return out
