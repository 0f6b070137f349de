r"""
The exact 1-step predictive law of a simulated system given its observed past, by a particle
filter.

A system's ``one_step_law`` conditions on the true latent state, which no model sees.  What a
perfect model of the system can forecast from the data is the Bayes predictive

.. math::

    p(x_t \mid x_{0:t-1}, u_{0:t}) = \int p(x_t \mid s_{t-1}, u_t)\,
        p(s_{t-1} \mid x_{0:t-1}, u_{0:t-1})\, ds_{t-1},

the one-step law averaged over the filtering posterior of the state.  Where the observations pin
the state down (the noise-free jump walks) the two coincide; where the latent has its own noise,
or more dimensions than the observation, the predictive is wider and the gap between the two is
out of every model's reach.

:func:`predictive_law` runs a bootstrap particle filter (Gordon et al., 1993) with
``num_particles`` particles per series through ``t - 1``, vectorised over series and particles,
and returns the mixture of the exact one-step laws over the particles, merged into few
components (:func:`merge_components`) so that its density is cheap to evaluate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..validation import check_nonnegative_int, check_positive_int
from .synthetic import GaussianMixture1D

__all__ = ["ParticleModel", "filter_states", "merge_components", "predictive_law"]


@dataclass(frozen=True)
class ParticleModel:
    """
    A system's latent dynamics as a particle filter needs them.  A state is a dict of arrays with
    a leading dim of particles ``P`` (e.g. ``{"z": (P,)}``, ``{"z": (P, 2)}``).

    :param initial: ``initial(P, rng) -> state`` before ``t = 0``.
    :param step: ``step(state, t, u_t, rng) -> state`` at ``t`` from the state at ``t - 1``
        (``u_t``: ``(P,)`` covariate values or ``None``).
    :param observation_mean: ``observation_mean(state, t) -> (P,)`` mean of ``x_t`` given the state
        at ``t``.
    :param law: ``law(state, t, u_t) -> GaussianMixture1D`` of batch ``(P,)``: the exact law of
        ``x_t`` given the state at ``t - 1``.
    :param float noise_var: the observation noise variance.
    :param str covariate: name of the data variable read as ``u_t`` (``None``: no covariate).
    """

    initial: Callable
    step: Callable
    observation_mean: Callable
    law: Callable
    noise_var: float
    covariate: str | None = None


def _resample(log_w, rng):
    """Systematic resampling per row: ``(N, P)`` log weights -> ``(N, P)`` particle indices."""
    num, size = log_w.shape
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    cum = np.cumsum(w, axis=1)
    cum /= cum[:, -1:]
    cum[:, -1] = 1.0
    positions = (np.arange(size) + rng.random((num, 1))) / size  # (N, P), increasing per row
    offset = np.arange(num)[:, None]
    index = np.searchsorted((cum + offset).ravel(), (positions + offset).ravel(), side="left")
    return np.minimum(index.reshape(num, size) - offset * size, size - 1)


def _take(state, index):
    """Reorders the particles of ``state`` (leading dim ``N * P``) by ``(N, P)`` row-local indices."""
    num, size = index.shape
    flat = (index + np.arange(num)[:, None] * size).ravel()
    return {k: v[flat] for k, v in state.items()}


def _series_values(data, name, t):
    """``(N, t)`` values of ``data[name]`` at time indices ``0..t-1``."""
    return data[name].transpose("series", "time").values[:, :t].astype(np.float64)


def filter_states(model: ParticleModel, data: xr.Dataset, t: int, num_particles: int, rng) -> dict:
    """
    Equally weighted particles of the filtering posterior of the state at ``t - 1`` given
    ``x_{0:t-1}`` (and the covariates), by the bootstrap filter: propagate with ``model.step``,
    weight by the Gaussian observation density, resample (systematic) at every step.

    :param data: Dataset with ``x`` (and the covariate) of dims ``("series", "time")``, ``N`` series;
        a NaN observation gives no weight (the particles only propagate).
    :param int t: ``0 <= t`` (``t = 0``: the initial state).
    :returns: state with leading dim ``N * P`` (series-major: particle ``p`` of series ``n`` at
        ``n * P + p``).
    """
    num_series = data.sizes["series"]
    x = _series_values(data, "x", t)
    u = _series_values(data, model.covariate, t) if model.covariate else None
    state = model.initial(num_series * num_particles, rng)
    for step in range(t):
        u_t = None if u is None else np.repeat(u[:, step], num_particles)
        state = model.step(state, step, u_t, rng)
        mean = model.observation_mean(state, step).reshape(num_series, num_particles)
        observed = x[:, step : step + 1]
        log_w = np.where(np.isfinite(observed), -0.5 * (observed - mean) ** 2 / model.noise_var, 0.0)
        state = _take(state, _resample(log_w, rng))
    return state


def merge_components(weights, means, stds, resolution=0.25) -> GaussianMixture1D:
    """
    A mixture of many components as one of few, each component's mean and variance kept.

    Components of the same standard deviation whose means fall in one bin of width
    ``resolution * std`` are replaced by one Gaussian with their total weight, their weighted
    mean and, as variance, ``std^2`` plus the weighted variance of their means (moment matching;
    the means of one bin differ by at most a quarter of ``std`` by default, so the merged
    density differs from the sum by terms of order ``resolution^4``).  Rows are padded with
    components of weight 0 to a common count.

    :param weights: ``(N, C)`` non-negative, rows summing to 1.
    :param means: ``(N, C)``.
    :param stds: ``(N, C)`` positive (a few distinct values).
    :param float resolution: bin width as a fraction of the component's sd, in ``(0, 1]``.
    :returns: :class:`GaussianMixture1D` of batch ``(N,)``.
    """
    if not 0 < resolution <= 1:
        raise ValueError(f"resolution must be in (0, 1], got {resolution!r}")
    weights, means, stds = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (weights, means, stds)))
    num = weights.shape[0]
    sd_values, sd_class = np.unique(stds, return_inverse=True)
    sd_class = sd_class.reshape(stds.shape)
    width = resolution * sd_values[sd_class]
    cell = np.floor((means - means.min(axis=1, keepdims=True)) / width).astype(np.int64)
    # one integer key per (series, sd class, bin), series-major; merged by sorting the keys
    num_cells, num_classes = int(cell.max()) + 1, len(sd_values)
    rows = np.broadcast_to(np.arange(num)[:, None], cell.shape)
    keys = ((rows * num_classes + sd_class) * num_cells + cell).ravel()
    unique_keys, group = np.unique(keys, return_inverse=True)
    unique = np.stack([unique_keys // (num_classes * num_cells), (unique_keys // num_cells) % num_classes], axis=-1)
    w = weights.ravel()
    total = np.bincount(group, w, minlength=len(unique))
    safe = np.where(total > 0, total, 1.0)
    mean = np.bincount(group, w * means.ravel(), minlength=len(unique)) / safe
    spread = np.bincount(group, w * (means.ravel() - mean[group]) ** 2, minlength=len(unique)) / safe
    sd = np.sqrt(sd_values[unique[:, 1]] ** 2 + spread)
    # scatter the groups of each series into rows padded with weight 0
    row = unique[:, 0]
    start = np.searchsorted(row, np.arange(num))
    column = np.arange(len(unique)) - start[row]
    width_out = int(column.max()) + 1
    out_w, out_m, out_s = np.zeros((num, width_out)), np.zeros((num, width_out)), np.ones((num, width_out))
    out_w[row, column], out_m[row, column], out_s[row, column] = total, mean, sd
    out_w /= out_w.sum(axis=1, keepdims=True)
    # padding: at the row's first mean, so that the law's range is not stretched by it
    out_m = np.where(out_w > 0, out_m, out_m[:, :1])
    return GaussianMixture1D(out_w, out_m, out_s)


def predictive_law(
    model: ParticleModel, data: xr.Dataset, t: int, num_particles: int = 2048, seed=0, resolution=0.25
) -> GaussianMixture1D:
    """
    The Bayes 1-step predictive law of ``x_t`` given ``x_{0:t-1}`` (and the covariates through
    ``u_t``) under the true system: the exact one-step law averaged over ``num_particles``
    filtering particles of the state at ``t - 1`` per series, merged by :func:`merge_components`.

    :param ParticleModel model: the system's dynamics (``System.particles``).
    :param data: the simulated Dataset, ``N`` series, at least ``t + 1`` steps when the system
        has a covariate (``u_t`` is read), else at least ``t``.
    :param int t: the time index of the predicted observation.
    :param int num_particles: particles per series ``P`` (the Monte Carlo error of the density
        falls as ``1 / sqrt(P)``; 2048 keeps it well under a 1024-draw sampling floor).
    :param seed: seed of ``numpy.random.default_rng``.
    :returns: :class:`GaussianMixture1D` of batch ``(N,)``.
    """
    if not isinstance(data, xr.Dataset) or "x" not in data.data_vars:
        raise TypeError("data must be a system's simulated xarray Dataset with the variable 'x'")
    if model.covariate and model.covariate not in data.data_vars:
        raise ValueError(f"data has no covariate {model.covariate!r}, which this system's law reads")
    t = check_nonnegative_int("t", t)
    num_particles = check_positive_int("num_particles", num_particles)
    length = data.sizes["time"]
    if t > length or (model.covariate and t >= length):
        raise ValueError(f"t = {t} is past the data's {length} steps (the covariate at t is read)")
    rng = np.random.default_rng(seed)
    state = filter_states(model, data, t, num_particles, rng)
    u_t = None
    if model.covariate:
        u_t = np.repeat(_series_values(data, model.covariate, t + 1)[:, t], num_particles)
    law = model.law(state, t, u_t)  # batch N * P, K components
    num = data.sizes["series"]
    k = law.num_components
    shape = (num, num_particles * k)
    weights = np.broadcast_to(law.weights, (num * num_particles, k)).reshape(shape) / num_particles
    means = np.broadcast_to(law.means, (num * num_particles, k)).reshape(shape)
    stds = np.broadcast_to(law.stds, (num * num_particles, k)).reshape(shape)
    keep = weights.max(axis=0) > 0  # components no particle uses (a gate that is off everywhere)
    return merge_components(weights[:, keep], means[:, keep], stds[:, keep], resolution)
