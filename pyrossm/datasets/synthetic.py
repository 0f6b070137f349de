"""
Synthetic systems with known truth:

- :func:`bimodal_random_walk` — the one-dimensional system of Sec. 4 of the DDSSM paper, whose
  transition law is an exact two-component Gaussian mixture (:func:`bimodal_transition_law`);
- :func:`linear_gaussian` — a linear Gaussian state-space model, whose exact filtering and
  predictive distributions are given by :func:`kalman_filter` / :func:`kalman_predictive`.

All simulators return :class:`xarray.Dataset` objects following the pyrossm data contract:
dims ``("series", "time")`` (+ a ``feature`` dim for multivariate observations).
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from scipy import special, stats

from ..validation import check_positive_int

__all__ = [
    "GaussianMixture1D",
    "bimodal_random_walk",
    "bimodal_transition_law",
    "kalman_filter",
    "kalman_predictive",
    "linear_gaussian",
]


def _check_nonnegative(name, value) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite non-negative number; got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------
# Bimodal random walk (DDSSM paper, Sec. 4)
# ---------------------------------------------------------------------------------------------


def bimodal_random_walk(
    num_series=1024,
    length=32,
    seed=0,
    *,
    decay=0.9,
    step=4.0,
    noise_var=0.2,
    z0=0.0,
    return_latent=False,
):
    r"""
    Simulate the bimodal random walk of Sec. 4 of the DDSSM paper.

    .. math::

        z_t = \text{decay} \cdot z_{t-1} + \text{step} \cdot s_t, \quad
        s_t \sim \text{Uniform}\{-1, +1\}, \qquad
        x_t = z_t + \epsilon_t, \quad \epsilon_t \sim \mathcal{N}(0, \text{noise\_var}).

    ``noise_var`` is a *variance* (the paper writes :math:`\mathcal{N}(0, 0.2)`). The paper
    leaves the initial state unstated; here ``z0`` is the state *before* the first step, so the
    first latent value is ``z_1 = decay * z0 + step * s_1`` (with the default ``z0 = 0``,
    ``z_1 = +-step``). The latent transition is therefore exactly a two-point law and the
    observation's transition law given the previous latent state is the Gaussian mixture
    :func:`bimodal_transition_law`.

    Draws come from ``numpy.random.default_rng(seed)``: all signs first, then all noises, so
    the same arguments give identical data.

    :param int num_series: number of series ``N``.
    :param int length: number of time steps ``T``.
    :param int seed: random seed.
    :param float decay: autoregressive coefficient.
    :param float step: jump size.
    :param float noise_var: observation noise variance.
    :param float z0: latent state before the first step.
    :param bool return_latent: also return the latent trajectories.
    :returns: a Dataset with variable ``"x"`` of dims ``("series", "time")``, integer coords
        ``series = 0..N-1`` and ``time = 0..T-1``, parameters in ``attrs``; with
        ``return_latent=True`` the tuple ``(dataset, z)`` where ``z`` is a DataArray named
        ``"z"`` with the same dims and coords.
    """
    num_series = check_positive_int("num_series", num_series)
    length = check_positive_int("length", length)
    noise_var = _check_nonnegative("noise_var", noise_var)
    rng = np.random.default_rng(seed)
    signs = 2.0 * rng.integers(0, 2, size=(num_series, length)) - 1.0
    noise = rng.normal(0.0, math.sqrt(noise_var), size=(num_series, length))
    z = np.empty((num_series, length))
    previous = np.full(num_series, float(z0))
    for t in range(length):
        previous = decay * previous + step * signs[:, t]
        z[:, t] = previous
    x = z + noise
    coords = {"series": np.arange(num_series), "time": np.arange(length)}
    attrs = {
        "system": "bimodal random walk (DDSSM paper, Sec. 4)",
        "equations": "z_t = decay*z_{t-1} + step*s_t, s_t ~ U{-1,+1}; x_t = z_t + N(0, noise_var)",
        "decay": float(decay),
        "step": float(step),
        "noise_var": noise_var,
        "z0": float(z0),
        "seed": -1 if seed is None else int(seed),
    }
    ds = xr.Dataset({"x": (("series", "time"), x)}, coords=coords, attrs=attrs)
    if return_latent:
        latent = xr.DataArray(z, dims=("series", "time"), coords=coords, name="z", attrs=attrs)
        return ds, latent
    return ds


class GaussianMixture1D:
    """
    A batch of one-dimensional Gaussian mixtures with ``K`` components.

    ``weights``, ``means`` and ``stds`` broadcast to a common shape ``batch_shape + (K,)``.

    :param weights: ``(..., K)`` non-negative weights summing to 1 over the last dim.
    :param means: ``(..., K)`` component means.
    :param stds: ``(..., K)`` positive component standard deviations.
    """

    def __init__(self, weights, means, stds):
        weights, means, stds = np.broadcast_arrays(
            np.asarray(weights, dtype=np.float64),
            np.asarray(means, dtype=np.float64),
            np.asarray(stds, dtype=np.float64),
        )
        if weights.ndim == 0:
            raise ValueError("weights, means and stds need a last (component) dim")
        if (weights < 0).any() or not np.allclose(weights.sum(-1), 1.0):
            raise ValueError("weights must be non-negative and sum to 1 over the last dim")
        if not (stds > 0).all():
            raise ValueError("stds must be positive")
        self.weights, self.means, self.stds = weights.copy(), means.copy(), stds.copy()

    @property
    def batch_shape(self) -> tuple:
        return self.weights.shape[:-1]

    @property
    def num_components(self) -> int:
        return self.weights.shape[-1]

    def pdf(self, x) -> np.ndarray:
        """
        Density at ``x``.

        :param x: values broadcastable against ``batch_shape``, e.g. a grid of shape
            ``(G, 1)`` for a batch of shape ``(B,)`` gives ``(G, B)``.
        """
        x = np.asarray(x, dtype=np.float64)[..., None]
        return (self.weights * stats.norm.pdf(x, self.means, self.stds)).sum(-1)

    def logpdf(self, x) -> np.ndarray:
        """Log density at ``x`` (broadcast as in :meth:`pdf`)."""
        x = np.asarray(x, dtype=np.float64)[..., None]
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights)
        return special.logsumexp(log_w + stats.norm.logpdf(x, self.means, self.stds), axis=-1)

    def cdf(self, x) -> np.ndarray:
        """Cumulative distribution function at ``x`` (broadcast as in :meth:`pdf`)."""
        x = np.asarray(x, dtype=np.float64)[..., None]
        return (self.weights * stats.norm.cdf(x, self.means, self.stds)).sum(-1)

    def sample(self, n, rng=None) -> np.ndarray:
        """
        Draw ``n`` independent samples for every batch member.

        :param int n: number of samples.
        :param rng: a :class:`numpy.random.Generator` or a seed.
        :returns: ``(n, *batch_shape)`` array.
        """
        rng = np.random.default_rng(rng)
        shape = (int(n),) + self.batch_shape
        u = rng.random(shape)
        cumulative = np.cumsum(self.weights, axis=-1)
        component = np.minimum((u[..., None] >= cumulative).sum(-1), self.num_components - 1)
        means = np.broadcast_to(self.means, shape + (self.num_components,))
        stds = np.broadcast_to(self.stds, shape + (self.num_components,))
        mu = np.take_along_axis(means, component[..., None], axis=-1)[..., 0]
        sigma = np.take_along_axis(stds, component[..., None], axis=-1)[..., 0]
        return mu + sigma * rng.standard_normal(shape)

    @property
    def mean(self) -> np.ndarray:
        """``batch_shape`` mixture means."""
        return (self.weights * self.means).sum(-1)

    @property
    def var(self) -> np.ndarray:
        """``batch_shape`` mixture variances."""
        second = (self.weights * (self.stds**2 + self.means**2)).sum(-1)
        return second - self.mean**2

    def __repr__(self) -> str:
        return f"GaussianMixture1D(batch_shape={self.batch_shape}, num_components={self.num_components})"


def bimodal_transition_law(z_prev, *, decay=0.9, step=4.0, noise_var=0.2) -> GaussianMixture1D:
    """
    The exact law of ``x_{t+1}`` given ``z_t`` in :func:`bimodal_random_walk`:
    ``0.5 N(decay*z + step, noise_var) + 0.5 N(decay*z - step, noise_var)``.

    :param z_prev: latent state(s) ``z_t``, any shape (the batch shape of the result).
    :param float noise_var: observation noise variance (must be positive).
    :returns: a :class:`GaussianMixture1D` with 2 components.
    """
    noise_var = _check_nonnegative("noise_var", noise_var)
    if noise_var == 0:
        raise ValueError("noise_var must be positive for a density; got 0")
    centre = decay * np.asarray(z_prev, dtype=np.float64)[..., None]
    means = centre + np.array([step, -step])
    return GaussianMixture1D(np.array([0.5, 0.5]), means, math.sqrt(noise_var))


# ---------------------------------------------------------------------------------------------
# Linear Gaussian state-space model and its exact Kalman filter
# ---------------------------------------------------------------------------------------------


def _lgssm_params(A, C, Q, R, m0, P0):
    """Bring LGSSM parameters to matrix form; scalars mean multiples of identity."""
    A, C = np.asarray(A, dtype=np.float64), np.asarray(C, dtype=np.float64)
    if A.ndim == 2:
        k = A.shape[0]
    elif C.ndim == 2:
        k = C.shape[1]
    else:
        k = 1
    if A.ndim == 0:
        A = A * np.eye(k)
    if C.ndim == 0:
        C = C * np.eye(k)
    if A.shape != (k, k):
        raise ValueError(f"A must be a scalar or a ({k}, {k}) matrix; got shape {A.shape}")
    if C.ndim != 2 or C.shape[1] != k:
        raise ValueError(f"C must be a scalar or an (obs_dim, {k}) matrix; got shape {C.shape}")
    d = C.shape[0]

    def covariance(name, value, size):
        value = np.asarray(value, dtype=np.float64)
        if value.ndim == 0:
            value = value * np.eye(size)
        elif value.ndim == 1:
            value = np.diag(value)
        if value.shape != (size, size):
            raise ValueError(
                f"{name} must be a scalar, a ({size},) diagonal or a ({size}, {size}) matrix; got shape {value.shape}"
            )
        if not np.allclose(value, value.T) or np.linalg.eigvalsh(value).min() < -1e-12:
            raise ValueError(f"{name} must be a symmetric positive semi-definite matrix")
        return value

    Q, P0, R = covariance("Q", Q, k), covariance("P0", P0, k), covariance("R", R, d)
    m0 = np.asarray(m0, dtype=np.float64)
    m0 = np.full(k, float(m0)) if m0.ndim == 0 else m0
    if m0.shape != (k,):
        raise ValueError(f"m0 must be a scalar or a ({k},) vector; got shape {m0.shape}")
    return A, C, Q, R, m0, P0


def _psd_sqrt(matrix):
    """A square root L with L @ L.T == matrix, for positive semi-definite matrices."""
    eigval, eigvec = np.linalg.eigh(matrix)
    return eigvec * np.sqrt(np.clip(eigval, 0.0, None))


def linear_gaussian(
    num_series=256,
    length=50,
    seed=0,
    *,
    A=0.9,
    C=1.0,
    Q=0.5,
    R=0.3,
    m0=0.0,
    P0=1.0,
    return_latent=False,
):
    """
    Simulate a linear Gaussian state-space model.

    ``z_1 ~ N(m0, P0)``, ``z_t = A z_{t-1} + N(0, Q)``, ``x_t = C z_t + N(0, R)``. The latent
    dim ``k`` comes from ``A`` (or ``C``'s columns), the observation dim ``d`` from ``C``'s
    rows; scalars mean multiples of the identity and 1-D ``Q``, ``R``, ``P0`` are diagonals.

    :param int num_series: number of series ``N``.
    :param int length: number of time steps ``T``.
    :param int seed: random seed for ``numpy.random.default_rng``.
    :param A: ``()`` or ``(k, k)`` transition matrix.
    :param C: ``()`` or ``(d, k)`` emission matrix.
    :param Q: ``()``, ``(k,)`` or ``(k, k)`` transition noise covariance.
    :param R: ``()``, ``(d,)`` or ``(d, d)`` observation noise covariance.
    :param m0: ``()`` or ``(k,)`` initial mean.
    :param P0: ``()``, ``(k,)`` or ``(k, k)`` initial covariance.
    :param bool return_latent: also return the latent states.
    :returns: a Dataset with variable ``"x"`` of dims ``("series", "time")`` when ``d == 1``,
        else ``("series", "time", "feature")``; with ``return_latent=True`` the tuple
        ``(dataset, z)``, ``z`` a DataArray of dims ``("series", "time")`` (``k == 1``) or
        ``("series", "time", "latent")``.
    """
    num_series = check_positive_int("num_series", num_series)
    length = check_positive_int("length", length)
    A, C, Q, R, m0, P0 = _lgssm_params(A, C, Q, R, m0, P0)
    k, d = A.shape[0], C.shape[0]
    rng = np.random.default_rng(seed)
    z = np.empty((num_series, length, k))
    z[:, 0] = m0 + rng.standard_normal((num_series, k)) @ _psd_sqrt(P0).T
    q_sqrt = _psd_sqrt(Q)
    for t in range(1, length):
        z[:, t] = z[:, t - 1] @ A.T + rng.standard_normal((num_series, k)) @ q_sqrt.T
    x = z @ C.T + rng.standard_normal((num_series, length, d)) @ _psd_sqrt(R).T
    coords = {"series": np.arange(num_series), "time": np.arange(length)}
    attrs = {
        "system": "linear Gaussian state-space model",
        "latent_dim": k,
        "obs_dim": d,
        "seed": -1 if seed is None else int(seed),
    }
    if d == 1:
        ds = xr.Dataset({"x": (("series", "time"), x[..., 0])}, coords=coords, attrs=attrs)
    else:
        ds = xr.Dataset(
            {"x": (("series", "time", "feature"), x)}, coords={**coords, "feature": np.arange(d)}, attrs=attrs
        )
    if not return_latent:
        return ds
    if k == 1:
        latent = xr.DataArray(z[..., 0], dims=("series", "time"), coords=coords, name="z")
    else:
        latent = xr.DataArray(z, dims=("series", "time", "latent"), coords={**coords, "latent": np.arange(k)}, name="z")
    return ds, latent


def _as_observations(x, d):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[-1] != d:
        raise ValueError(f"x must have shape (N, T) or (N, T, {d}); got {x.shape}")
    return x


def kalman_filter(x, *, A, C, Q, R, m0, P0) -> dict:
    """
    Exact Kalman filter for a batch of series, with missing observations.

    ``NaN`` entries are missing: a fully missing step is a pure prediction, a partially
    missing step updates on the observed entries only. The filter is vectorised over series
    (missing entries are handled by zeroing their rows of ``C`` and decoupling them in ``R``,
    which is exact) and loops over time.

    :param x: ``(N, T)`` or ``(N, T, d)`` observations.
    :param A, C, Q, R, m0, P0: model parameters as in :func:`linear_gaussian`.
    :returns: a dict with ``"mean"`` ``(N, T, k)`` and ``"cov"`` ``(N, T, k, k)`` of the
        filtered states, ``"pred_mean"`` / ``"pred_cov"`` of the one-step predicted states,
        and ``"log_likelihood"`` ``(N,)``, the log density of the observed entries.
    """
    A, C, Q, R, m0, P0 = _lgssm_params(A, C, Q, R, m0, P0)
    k, d = A.shape[0], C.shape[0]
    x = _as_observations(x, d)
    n, length, _ = x.shape
    mean = np.broadcast_to(m0, (n, k)).copy()
    cov = np.broadcast_to(P0, (n, k, k)).copy()
    out = {
        "mean": np.empty((n, length, k)),
        "cov": np.empty((n, length, k, k)),
        "pred_mean": np.empty((n, length, k)),
        "pred_cov": np.empty((n, length, k, k)),
        "log_likelihood": np.zeros(n),
    }
    eye_k, eye_d = np.eye(k), np.eye(d)
    for t in range(length):
        if t > 0:
            mean = mean @ A.T
            cov = A @ cov @ A.T + Q
        out["pred_mean"][:, t], out["pred_cov"][:, t] = mean, cov
        observed = ~np.isnan(x[:, t])  # (n, d)
        both = observed[:, :, None] & observed[:, None, :]
        C_t = C * observed[:, :, None]  # (n, d, k)
        R_t = np.where(both, R, 0.0) + eye_d * ~observed[:, :, None]
        residual = np.where(observed, x[:, t] - mean @ C.T, 0.0)
        S = C_t @ cov @ C_t.transpose(0, 2, 1) + R_t
        S = 0.5 * (S + S.transpose(0, 2, 1))
        chol = np.linalg.cholesky(S)
        solved = np.linalg.solve(chol, residual[..., None])[..., 0]
        log_det = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(-1)
        n_obs = observed.sum(-1)
        out["log_likelihood"] += -0.5 * (log_det + (solved**2).sum(-1) + n_obs * math.log(2 * math.pi))
        gain = np.linalg.solve(S, C_t @ cov).transpose(0, 2, 1)  # (n, k, d) = P C_t' S^-1
        mean = mean + (gain @ residual[..., None])[..., 0]
        factor = eye_k - gain @ C_t
        cov = factor @ cov @ factor.transpose(0, 2, 1) + gain @ R_t @ gain.transpose(0, 2, 1)
        cov = 0.5 * (cov + cov.transpose(0, 2, 1))
        out["mean"][:, t], out["cov"][:, t] = mean, cov
    return out


def kalman_predictive(x, horizon, *, A, C, Q, R, m0, P0):
    """
    Exact ``h``-step predictive distribution of a linear Gaussian SSM after filtering ``x``.

    The predictive is for ``x_{T+1}, ..., x_{T+h}`` where ``T`` is the last column of ``x``
    (trailing ``NaN`` steps are filtered as pure predictions, so slice ragged series first).

    :param x: ``(N, T)`` or ``(N, T, d)`` observations, ``NaN`` = missing.
    :param int horizon: number of future steps ``h``.
    :param A, C, Q, R, m0, P0: model parameters as in :func:`linear_gaussian`.
    :returns: ``(mean, cov, log_likelihood)``: marginal predictive means ``(N, h, d)`` and
        covariances ``(N, h, d, d)`` of each future step, and the filter log-likelihood of the
        observed entries ``(N,)``.
    """
    horizon = check_positive_int("horizon", horizon)
    A, C, Q, R, m0, P0 = _lgssm_params(A, C, Q, R, m0, P0)
    filtered = kalman_filter(x, A=A, C=C, Q=Q, R=R, m0=m0, P0=P0)
    mean, cov = filtered["mean"][:, -1], filtered["cov"][:, -1]
    n, d = mean.shape[0], C.shape[0]
    pred_mean = np.empty((n, horizon, d))
    pred_cov = np.empty((n, horizon, d, d))
    for j in range(horizon):
        mean = mean @ A.T
        cov = A @ cov @ A.T + Q
        pred_mean[:, j] = mean @ C.T
        pred_cov[:, j] = C @ cov @ C.T + R
    return pred_mean, pred_cov, filtered["log_likelihood"]
