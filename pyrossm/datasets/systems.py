r"""
A suite of synthetic systems with exact one-step laws.

Every system has a scalar observation ``x`` and an exact law of ``x_t`` given the latent state
at ``t - 1`` (and the observed covariates at ``t``) that is a one-dimensional Gaussian mixture
(:class:`~pyrossm.datasets.synthetic.GaussianMixture1D`, one mixture per series).  They differ in
kind:

============================  ==================================================================
``bimodal_walk``              the bimodal random walk of the DDSSM paper (two equal modes)
``trimodal_walk``             three modes with unequal weights
``state_dependent_modes``     two modes near zero, one far from it (the number of modes moves)
``covariate_gated``           an observed covariate ``u_t`` switches a bimodal jump on and off
``two_dim_latent``            a 2-D latent (damped rotation + a jump) seen through a projection
``regime_switching_seasonal`` a sticky 2-regime Markov switch plus a seasonal term
============================  ==================================================================

Each is a :class:`System` in the registry :data:`SYSTEMS` (:func:`systems` lists them in order,
:func:`get_system` finds one by name) so that a benchmark can loop over them::

    for system in pyrossm.datasets.systems():
        data, latent = system.simulate(num_series=1024, length=32, seed=0, return_latent=True)
        law = system.one_step_law(latent, 31, data)      # exact law of x_31 given the state at 30
        law.pdf(grid[:, None])                           # (G, num_series)

Conventions shared by every simulator:

- ``simulate(num_series=1024, length=32, seed=0, *, return_latent=False)`` draws everything from
  ``numpy.random.default_rng(seed)`` (the same arguments give identical data) and returns an
  :class:`xarray.Dataset` with dims ``("series", "time")``, integer coords ``0..N-1`` and
  ``0..T-1``, the variable ``x`` (and the covariate ``u`` for ``covariate_gated``) and attrs naming
  the system, its equations and parameters; with ``return_latent=True`` the tuple
  ``(data, latent)``, ``latent`` a Dataset with the latent variables the law needs (``z`` of dims
  ``("series", "time")``, or ``("series", "time", "latent")`` for the 2-D system; ``regime`` for
  the regime-switching system) and the same attrs.
- ``time`` index ``t = 0`` is the first observation; the state *before* it is fixed (``z = 0``),
  except the regime of ``regime_switching_seasonal``, drawn from its stationary law. So
  ``one_step_law(latent, t, data)`` is defined for every ``0 <= t < T``: for ``t >= 1`` it
  conditions on the latent state at ``t - 1``, for ``t = 0`` on the initial state.
- The observation noise is ``N(0, 0.2)`` (a variance, as in the DDSSM paper) everywhere.
- Mixtures whose number of modes changes with the state (``state_dependent_modes``,
  ``covariate_gated``) keep a fixed number of components and give the unused ones weight 0: the
  number of modes of a law is the number of its components with positive weight.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import xarray as xr

from ..validation import check_nonnegative_int, check_positive_int
from .filtering import ParticleModel, predictive_law
from .synthetic import GaussianMixture1D, bimodal_random_walk, bimodal_transition_law

__all__ = [
    "SYSTEMS",
    "System",
    "bimodal_walk",
    "bimodal_walk_law",
    "covariate_gated",
    "covariate_gated_law",
    "get_system",
    "regime_switching_seasonal",
    "regime_switching_seasonal_law",
    "state_dependent_modes",
    "state_dependent_modes_law",
    "systems",
    "trimodal_walk",
    "trimodal_walk_law",
    "two_dim_latent",
    "two_dim_latent_law",
]

#: observation noise variance of every system
NOISE_VAR = 0.2
_NOISE_SD = math.sqrt(NOISE_VAR)


# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------


def _check_arguments(num_series, length, seed, return_latent):
    num_series = check_positive_int("num_series", num_series)
    length = check_positive_int("length", length)
    if seed is not None:
        seed = check_nonnegative_int("seed", seed)
    if not isinstance(return_latent, (bool, np.bool_)):
        raise ValueError(f"return_latent must be a bool, got {return_latent!r}")
    return num_series, length, seed


def _coords(num_series, length):
    return {"series": np.arange(num_series), "time": np.arange(length)}


def _output(name, equations, params, seed, observed, latent, return_latent):
    """``observed`` / ``latent``: dicts name -> (dims, array); all with ``(series, time)`` first."""
    num_series, length = observed["x"][1].shape[:2]
    coords = _coords(num_series, length)
    attrs = {"system": name, "equations": equations, **params, "seed": -1 if seed is None else int(seed)}
    data = xr.Dataset(observed, coords=coords, attrs=attrs)
    if not return_latent:
        return data
    latent_coords = dict(coords)
    if any("latent" in dims for dims, _ in latent.values()):
        latent_coords["latent"] = np.arange(next(v.shape[2] for d, v in latent.values() if "latent" in d))
    return data, xr.Dataset(latent, coords=latent_coords, attrs=attrs)


def _previous(latent, t, name, initial):
    """The latent variable ``name`` at ``t - 1`` (``initial`` broadcast to its shape at ``t = 0``)."""
    if not isinstance(latent, xr.Dataset):
        raise TypeError(
            "latent must be the xarray Dataset a simulator returns with return_latent=True, "
            f"got {type(latent).__name__}"
        )
    if name not in latent.data_vars:
        raise ValueError(f"latent has no variable {name!r}; it has {sorted(latent.data_vars)}")
    length = latent.sizes["time"]
    t = check_nonnegative_int("t", t)
    if t >= length:
        raise ValueError(f"t must be a time index in [0, {length}), got {t}")
    values = latent[name].transpose("series", "time", ...).values
    if t == 0:
        return np.broadcast_to(np.asarray(initial, dtype=values.dtype), values[:, 0].shape).copy()
    return values[:, t - 1]


def _covariate(data, t, name, num_series):
    """The covariate ``name`` at time index ``t``, ``(num_series,)``."""
    if data is None or not isinstance(data, xr.Dataset) or name not in data.data_vars:
        raise ValueError(f"this law needs the covariate {name!r} at time t: pass the simulated Dataset as data")
    values = data[name].transpose("series", "time").values
    if values.shape[0] != num_series:
        raise ValueError(f"data has {values.shape[0]} series but latent has {num_series}")
    if not 0 <= t < values.shape[1]:
        raise ValueError(f"t must be a time index of data's {values.shape[1]} steps, got {t}")
    return values[:, t]


# ---------------------------------------------------------------------------------------------
# 1. bimodal walk (DDSSM paper, Sec. 4)
# ---------------------------------------------------------------------------------------------

BIMODAL = {"decay": 0.9, "step": 4.0, "noise_var": NOISE_VAR}


def bimodal_walk(num_series=1024, length=32, seed=0, *, return_latent=False):
    r"""
    The bimodal random walk of Sec. 4 of the DDSSM paper
    (:func:`~pyrossm.datasets.bimodal_random_walk` with its defaults), in the suite's interface.

    Generative process (``z_{-1} = 0``):

    .. math::

        z_t = 0.9 z_{t-1} + 4 s_t, \quad s_t \sim \text{Uniform}\{-1, +1\}, \qquad
        x_t = z_t + \epsilon_t, \quad \epsilon_t \sim \mathcal{N}(0, 0.2).

    :param int num_series: number of series ``N``.
    :param int length: number of time steps ``T``.
    :param int seed: seed of ``numpy.random.default_rng`` (``None``: fresh entropy).
    :param bool return_latent: also return the latent Dataset (variable ``z``, ``(N, T)``).
    :returns: Dataset with ``x`` ``(N, T)``; with ``return_latent`` the tuple ``(data, latent)``.
    """
    num_series, length, seed = _check_arguments(num_series, length, seed, return_latent)
    data, z = bimodal_random_walk(num_series=num_series, length=length, seed=seed, return_latent=True, **BIMODAL)
    data.attrs["system"] = "bimodal_walk"
    if not return_latent:
        return data
    return data, xr.Dataset({"z": z}, attrs=data.attrs)


def bimodal_walk_law(latent, t, data=None) -> GaussianMixture1D:
    r"""
    Exact law of ``x_t`` given ``z_{t-1}`` in :func:`bimodal_walk`:
    :math:`\tfrac12 \mathcal{N}(0.9 z_{t-1} + 4, 0.2) + \tfrac12 \mathcal{N}(0.9 z_{t-1} - 4, 0.2)`.

    :param latent: the latent Dataset of :func:`bimodal_walk` (``z`` ``(N, T)``).
    :param int t: time index ``0 <= t < T`` (``t = 0``: given ``z_{-1} = 0``).
    :param data: unused (the system has no covariates).
    :returns: :class:`GaussianMixture1D` with batch shape ``(N,)`` and 2 components.
    """
    return _bimodal_law({"z": _previous(latent, t, "z", 0.0)}, t)


def _bimodal_law(state, t, u=None):
    return bimodal_transition_law(state["z"], **BIMODAL)


def _bimodal_step(state, t, u, rng):
    signs = 2.0 * rng.integers(0, 2, size=state["z"].shape) - 1.0
    return {"z": BIMODAL["decay"] * state["z"] + BIMODAL["step"] * signs}


# ---------------------------------------------------------------------------------------------
# 2. trimodal walk
# ---------------------------------------------------------------------------------------------

TRIMODAL = {"decay": 0.8, "jumps": [-4.0, 0.0, 5.0], "jump_probs": [0.2, 0.5, 0.3], "noise_var": NOISE_VAR}


def trimodal_walk(num_series=1024, length=32, seed=0, *, return_latent=False):
    r"""
    A random walk with three jumps of unequal probability: a trimodal one-step law.

    Generative process (``z_{-1} = 0``):

    .. math::

        z_t = 0.8 z_{t-1} + s_t, \quad s_t \in \{-4, 0, +5\} \text{ with probabilities }
        (0.2, 0.5, 0.3), \qquad x_t = z_t + \epsilon_t, \quad \epsilon_t \sim \mathcal{N}(0, 0.2).

    The stationary latent has mean 3.5 and standard deviation 5.3.  Draws: all jumps, then all
    noises.

    :param int num_series: number of series ``N``.
    :param int length: number of time steps ``T``.
    :param int seed: seed of ``numpy.random.default_rng`` (``None``: fresh entropy).
    :param bool return_latent: also return the latent Dataset (variable ``z``, ``(N, T)``).
    :returns: Dataset with ``x`` ``(N, T)``; with ``return_latent`` the tuple ``(data, latent)``.
    """
    num_series, length, seed = _check_arguments(num_series, length, seed, return_latent)
    rng = np.random.default_rng(seed)
    p = TRIMODAL
    jumps = np.asarray(p["jumps"])[rng.choice(3, size=(num_series, length), p=p["jump_probs"])]
    noise = rng.normal(0.0, _NOISE_SD, size=(num_series, length))
    z = np.empty((num_series, length))
    previous = np.zeros(num_series)
    for t in range(length):
        previous = p["decay"] * previous + jumps[:, t]
        z[:, t] = previous
    equations = "z_t = 0.8 z_{t-1} + s_t, s_t in {-4, 0, 5} w.p. (0.2, 0.5, 0.3), z_{-1} = 0; x_t = z_t + N(0, 0.2)"
    dims = ("series", "time")
    return _output("trimodal_walk", equations, p, seed, {"x": (dims, z + noise)}, {"z": (dims, z)}, return_latent)


def trimodal_walk_law(latent, t, data=None) -> GaussianMixture1D:
    r"""
    Exact law of ``x_t`` given ``z_{t-1}`` in :func:`trimodal_walk`:
    :math:`\sum_k w_k \mathcal{N}(0.8 z_{t-1} + a_k, 0.2)`, ``a = (-4, 0, 5)``,
    ``w = (0.2, 0.5, 0.3)``.

    :param latent: the latent Dataset of :func:`trimodal_walk` (``z`` ``(N, T)``).
    :param int t: time index ``0 <= t < T`` (``t = 0``: given ``z_{-1} = 0``).
    :param data: unused (the system has no covariates).
    :returns: :class:`GaussianMixture1D` with batch shape ``(N,)`` and 3 components.
    """
    return _trimodal_law({"z": _previous(latent, t, "z", 0.0)}, t)


def _trimodal_law(state, t, u=None):
    p = TRIMODAL
    means = p["decay"] * state["z"][:, None] + np.asarray(p["jumps"])
    return GaussianMixture1D(np.asarray(p["jump_probs"]), means, math.sqrt(p["noise_var"]))


def _trimodal_step(state, t, u, rng):
    p = TRIMODAL
    jumps = np.asarray(p["jumps"])[rng.choice(3, size=state["z"].shape, p=p["jump_probs"])]
    return {"z": p["decay"] * state["z"] + jumps}


# ---------------------------------------------------------------------------------------------
# 3. state-dependent number of modes
# ---------------------------------------------------------------------------------------------

STATE_DEPENDENT = {"threshold": 1.5, "step": 3.0, "far_decay": 0.5, "far_sd": 0.3, "noise_var": NOISE_VAR}


def state_dependent_modes(num_series=1024, length=32, seed=0, *, return_latent=False):
    r"""
    A system whose number of modes depends on the state: a two-way jump near zero, a unimodal
    reversion far from zero.

    Generative process (``z_{-1} = 0``):

    .. math::

        z_t = \begin{cases}
            z_{t-1} + 3 s_t, \quad s_t \sim \text{Uniform}\{-1, +1\} & |z_{t-1}| < 1.5 \\
            0.5 z_{t-1} + \eta_t, \quad \eta_t \sim \mathcal{N}(0, 0.3^2) & |z_{t-1}| \ge 1.5
        \end{cases}, \qquad
        x_t = z_t + \epsilon_t, \quad \epsilon_t \sim \mathcal{N}(0, 0.2).

    The latent stays within about ``[-5, 5]``; roughly a third of the steps start near zero.
    Draws: all signs, all latent noises, then all observation noises.

    :param int num_series: number of series ``N``.
    :param int length: number of time steps ``T``.
    :param int seed: seed of ``numpy.random.default_rng`` (``None``: fresh entropy).
    :param bool return_latent: also return the latent Dataset (variable ``z``, ``(N, T)``).
    :returns: Dataset with ``x`` ``(N, T)``; with ``return_latent`` the tuple ``(data, latent)``.
    """
    num_series, length, seed = _check_arguments(num_series, length, seed, return_latent)
    rng = np.random.default_rng(seed)
    p = STATE_DEPENDENT
    signs = 2.0 * rng.integers(0, 2, size=(num_series, length)) - 1.0
    eta = rng.normal(0.0, p["far_sd"], size=(num_series, length))
    noise = rng.normal(0.0, _NOISE_SD, size=(num_series, length))
    z = np.empty((num_series, length))
    previous = np.zeros(num_series)
    for t in range(length):
        near = np.abs(previous) < p["threshold"]
        previous = np.where(near, previous + p["step"] * signs[:, t], p["far_decay"] * previous + eta[:, t])
        z[:, t] = previous
    equations = (
        "z_t = z_{t-1} + 3 s_t, s_t ~ U{-1,+1} if |z_{t-1}| < 1.5, else z_t = 0.5 z_{t-1} + N(0, 0.3^2); "
        "z_{-1} = 0; x_t = z_t + N(0, 0.2)"
    )
    dims = ("series", "time")
    return _output(
        "state_dependent_modes", equations, p, seed, {"x": (dims, z + noise)}, {"z": (dims, z)}, return_latent
    )


def state_dependent_modes_law(latent, t, data=None) -> GaussianMixture1D:
    r"""
    Exact law of ``x_t`` given ``z_{t-1}`` in :func:`state_dependent_modes`: for
    ``|z_{t-1}| < 1.5`` the two modes
    :math:`\tfrac12 \mathcal{N}(z_{t-1} + 3, 0.2) + \tfrac12 \mathcal{N}(z_{t-1} - 3, 0.2)`, else
    the single mode :math:`\mathcal{N}(0.5 z_{t-1}, 0.3^2 + 0.2)`.

    Components: ``(z + 3, z - 3, 0.5 z)`` with weights ``(1/2, 1/2, 0)`` near zero and
    ``(0, 0, 1)`` far from it.

    :param latent: the latent Dataset of :func:`state_dependent_modes` (``z`` ``(N, T)``).
    :param int t: time index ``0 <= t < T`` (``t = 0``: given ``z_{-1} = 0``, two modes).
    :param data: unused (the system has no covariates).
    :returns: :class:`GaussianMixture1D` with batch shape ``(N,)`` and 3 components.
    """
    return _state_dependent_law({"z": _previous(latent, t, "z", 0.0)}, t)


def _state_dependent_law(state, t, u=None):
    z, p = state["z"], STATE_DEPENDENT
    near = (np.abs(z) < p["threshold"])[:, None]
    weights = np.where(near, [0.5, 0.5, 0.0], [0.0, 0.0, 1.0])
    means = np.stack([z + p["step"], z - p["step"], p["far_decay"] * z], axis=-1)
    far_sd = math.sqrt(p["far_sd"] ** 2 + p["noise_var"])
    return GaussianMixture1D(weights, means, np.array([_NOISE_SD, _NOISE_SD, far_sd]))


def _state_dependent_step(state, t, u, rng):
    z, p = state["z"], STATE_DEPENDENT
    signs = 2.0 * rng.integers(0, 2, size=z.shape) - 1.0
    eta = rng.normal(0.0, p["far_sd"], size=z.shape)
    return {"z": np.where(np.abs(z) < p["threshold"], z + p["step"] * signs, p["far_decay"] * z + eta)}


# ---------------------------------------------------------------------------------------------
# 4. covariate-gated jumps
# ---------------------------------------------------------------------------------------------

GATED = {"decay": 0.7, "step": 3.0, "gate_prob": 0.5, "ar_sd": 0.5, "noise_var": NOISE_VAR}


def covariate_gated(num_series=1024, length=32, seed=0, *, return_latent=False):
    r"""
    An observed covariate ``u_t`` (a fair Bernoulli gate) decides between a bimodal jump and a
    unimodal AR step.

    Generative process (``z_{-1} = 0``):

    .. math::

        u_t \sim \text{Bernoulli}(0.5), \qquad
        z_t = 0.7 z_{t-1} + \begin{cases}
            3 s_t, \quad s_t \sim \text{Uniform}\{-1, +1\} & u_t = 1 \\
            \eta_t, \quad \eta_t \sim \mathcal{N}(0, 0.5^2) & u_t = 0
        \end{cases}, \qquad
        x_t = z_t + \epsilon_t, \quad \epsilon_t \sim \mathcal{N}(0, 0.2).

    ``u`` is a data variable of the Dataset (``0.0`` / ``1.0``): fit it as a covariate,
    ``pyrossm.fit(..., covariates=["u"])``.  Draws: all gates, all signs, all latent noises,
    then all observation noises.

    :param int num_series: number of series ``N``.
    :param int length: number of time steps ``T``.
    :param int seed: seed of ``numpy.random.default_rng`` (``None``: fresh entropy).
    :param bool return_latent: also return the latent Dataset (variable ``z``, ``(N, T)``).
    :returns: Dataset with ``x`` and ``u``, both ``(N, T)``; with ``return_latent`` the tuple
        ``(data, latent)``.
    """
    num_series, length, seed = _check_arguments(num_series, length, seed, return_latent)
    rng = np.random.default_rng(seed)
    p = GATED
    u = (rng.random((num_series, length)) < p["gate_prob"]).astype(np.float64)
    signs = 2.0 * rng.integers(0, 2, size=(num_series, length)) - 1.0
    eta = rng.normal(0.0, p["ar_sd"], size=(num_series, length))
    noise = rng.normal(0.0, _NOISE_SD, size=(num_series, length))
    innovation = np.where(u == 1.0, p["step"] * signs, eta)
    z = np.empty((num_series, length))
    previous = np.zeros(num_series)
    for t in range(length):
        previous = p["decay"] * previous + innovation[:, t]
        z[:, t] = previous
    equations = (
        "u_t ~ Bernoulli(0.5); z_t = 0.7 z_{t-1} + 3 s_t, s_t ~ U{-1,+1} if u_t = 1, "
        "else z_t = 0.7 z_{t-1} + N(0, 0.5^2); z_{-1} = 0; x_t = z_t + N(0, 0.2)"
    )
    dims = ("series", "time")
    observed = {"x": (dims, z + noise), "u": (dims, u)}
    return _output("covariate_gated", equations, p, seed, observed, {"z": (dims, z)}, return_latent)


def covariate_gated_law(latent, t, data) -> GaussianMixture1D:
    r"""
    Exact law of ``x_t`` given ``z_{t-1}`` and the covariate ``u_t`` in
    :func:`covariate_gated`: for ``u_t = 1`` the two modes
    :math:`\tfrac12 \mathcal{N}(0.7 z_{t-1} + 3, 0.2) + \tfrac12 \mathcal{N}(0.7 z_{t-1} - 3, 0.2)`,
    for ``u_t = 0`` the single mode :math:`\mathcal{N}(0.7 z_{t-1}, 0.5^2 + 0.2)`.

    Components: ``(0.7 z + 3, 0.7 z - 3, 0.7 z)`` with weights ``(1/2, 1/2, 0)`` or ``(0, 0, 1)``.

    :param latent: the latent Dataset of :func:`covariate_gated` (``z`` ``(N, T)``).
    :param int t: time index ``0 <= t < T`` (``t = 0``: given ``z_{-1} = 0``).
    :param data: the Dataset with the covariate ``u`` ``(N, T)`` (``u_t`` is read).
    :returns: :class:`GaussianMixture1D` with batch shape ``(N,)`` and 3 components.
    """
    z = _previous(latent, t, "z", 0.0)
    return _gated_law({"z": z}, t, _covariate(data, t, "u", len(z)))


def _gated_law(state, t, u):
    z, p = state["z"], GATED
    gate = (u == 1.0)[:, None]
    weights = np.where(gate, [0.5, 0.5, 0.0], [0.0, 0.0, 1.0])
    centre = p["decay"] * z
    means = np.stack([centre + p["step"], centre - p["step"], centre], axis=-1)
    ar_sd = math.sqrt(p["ar_sd"] ** 2 + p["noise_var"])
    return GaussianMixture1D(weights, means, np.array([_NOISE_SD, _NOISE_SD, ar_sd]))


def _gated_step(state, t, u, rng):
    z, p = state["z"], GATED
    signs = 2.0 * rng.integers(0, 2, size=z.shape) - 1.0
    eta = rng.normal(0.0, p["ar_sd"], size=z.shape)
    return {"z": p["decay"] * z + np.where(u == 1.0, p["step"] * signs, eta)}


# ---------------------------------------------------------------------------------------------
# 5. two-dimensional latent
# ---------------------------------------------------------------------------------------------

TWO_DIM = {
    "radius": 0.9,
    "angle": math.pi / 6,
    "step": 3.0,
    "latent_sd": 0.3,
    "projection": [1.0, -0.5],
    "noise_var": NOISE_VAR,
}


def _rotation():
    p = TWO_DIM
    c, s = math.cos(p["angle"]), math.sin(p["angle"])
    return p["radius"] * np.array([[c, -s], [s, c]])


def two_dim_latent(num_series=1024, length=32, seed=0, *, return_latent=False):
    r"""
    A 2-D latent -- a damped rotation plus a two-way jump along its first axis -- observed
    through a 1-D projection plus noise.

    Generative process (``z_{-1} = (0, 0)``):

    .. math::

        z_t = 0.9 R(\pi/6) z_{t-1} + 3 s_t e_1 + \eta_t, \quad
        s_t \sim \text{Uniform}\{-1, +1\}, \quad \eta_t \sim \mathcal{N}(0, 0.3^2 I_2), \qquad
        x_t = z_{t,1} - 0.5 z_{t,2} + \epsilon_t, \quad \epsilon_t \sim \mathcal{N}(0, 0.2),

    with :math:`R(\theta)` the rotation by :math:`\theta` and :math:`e_1 = (1, 0)`.  One
    observation does not determine the latent: the law of ``x_t`` depends on both coordinates of
    ``z_{t-1}`` (:math:`c^\top A \approx (0.55, -0.84)` for :math:`c = (1, -0.5)`).
    Draws: all signs, all latent noises, then all observation noises.

    :param int num_series: number of series ``N``.
    :param int length: number of time steps ``T``.
    :param int seed: seed of ``numpy.random.default_rng`` (``None``: fresh entropy).
    :param bool return_latent: also return the latent Dataset (variable ``z``, dims
        ``("series", "time", "latent")``, ``(N, T, 2)``).
    :returns: Dataset with ``x`` ``(N, T)``; with ``return_latent`` the tuple ``(data, latent)``.
    """
    num_series, length, seed = _check_arguments(num_series, length, seed, return_latent)
    rng = np.random.default_rng(seed)
    p = TWO_DIM
    A, c = _rotation(), np.asarray(p["projection"])
    signs = 2.0 * rng.integers(0, 2, size=(num_series, length)) - 1.0
    eta = rng.normal(0.0, p["latent_sd"], size=(num_series, length, 2))
    noise = rng.normal(0.0, _NOISE_SD, size=(num_series, length))
    z = np.empty((num_series, length, 2))
    previous = np.zeros((num_series, 2))
    for t in range(length):
        previous = previous @ A.T + eta[:, t]
        previous[:, 0] += p["step"] * signs[:, t]
        z[:, t] = previous
    equations = (
        "z_t = 0.9 R(pi/6) z_{t-1} + 3 s_t e_1 + N(0, 0.3^2 I), s_t ~ U{-1,+1}, z_{-1} = 0; "
        "x_t = z_{t,1} - 0.5 z_{t,2} + N(0, 0.2)"
    )
    return _output(
        "two_dim_latent",
        equations,
        p,
        seed,
        {"x": (("series", "time"), z @ c + noise)},
        {"z": (("series", "time", "latent"), z)},
        return_latent,
    )


def two_dim_latent_law(latent, t, data=None) -> GaussianMixture1D:
    r"""
    Exact law of ``x_t`` given ``z_{t-1}`` in :func:`two_dim_latent`, with ``A = 0.9 R(pi/6)``
    and ``c = (1, -0.5)``:
    :math:`\tfrac12 \mathcal{N}(c^\top A z_{t-1} + 3, v) + \tfrac12 \mathcal{N}(c^\top A z_{t-1} - 3, v)`,
    :math:`v = 0.3^2 \lVert c \rVert^2 + 0.2`.

    :param latent: the latent Dataset of :func:`two_dim_latent` (``z`` ``(N, T, 2)``).
    :param int t: time index ``0 <= t < T`` (``t = 0``: given ``z_{-1} = 0``).
    :param data: unused (the system has no covariates).
    :returns: :class:`GaussianMixture1D` with batch shape ``(N,)`` and 2 components.
    """
    return _two_dim_law({"z": _previous(latent, t, "z", 0.0)}, t)


def _two_dim_law(state, t, u=None):
    p = TWO_DIM
    c = np.asarray(p["projection"])
    centre = state["z"] @ _rotation().T @ c
    jump = p["step"] * c[0]
    sd = math.sqrt(p["latent_sd"] ** 2 * float(c @ c) + p["noise_var"])
    return GaussianMixture1D(np.array([0.5, 0.5]), centre[:, None] + np.array([jump, -jump]), sd)


def _two_dim_step(state, t, u, rng):
    p = TWO_DIM
    z = state["z"] @ _rotation().T + rng.normal(0.0, p["latent_sd"], size=state["z"].shape)
    z[:, 0] += p["step"] * (2.0 * rng.integers(0, 2, size=len(z)) - 1.0)
    return {"z": z}


# ---------------------------------------------------------------------------------------------
# 6. regime switching with a seasonal term
# ---------------------------------------------------------------------------------------------

REGIME = {
    "stay_prob": 0.9,
    "means": [-2.0, 3.0],
    "decays": [0.8, 0.3],
    "sds": [0.3, 1.0],
    "season_amplitude": 2.0,
    "season_period": 12,
    "noise_var": NOISE_VAR,
}


def _season(t):
    p = REGIME
    return p["season_amplitude"] * math.sin(2.0 * math.pi * t / p["season_period"])


def regime_switching_seasonal(num_series=1024, length=32, seed=0, *, return_latent=False):
    r"""
    A sticky two-regime Markov switch (different mean, AR coefficient and noise per regime)
    plus a seasonal term of period 12.

    Generative process (``z_{-1} = 0``, ``r_{-1} \sim \text{Uniform}\{0, 1\}``, the stationary law):

    .. math::

        P(r_t = r_{t-1}) = 0.9, \qquad
        z_t = \mu_{r_t} + \phi_{r_t} (z_{t-1} - \mu_{r_t}) + \sigma_{r_t} \eta_t, \quad
        \eta_t \sim \mathcal{N}(0, 1), \qquad
        x_t = z_t + 2 \sin(2 \pi t / 12) + \epsilon_t, \quad \epsilon_t \sim \mathcal{N}(0, 0.2),

    with :math:`\mu = (-2, 3)`, :math:`\phi = (0.8, 0.3)`, :math:`\sigma = (0.3, 1)` and ``t``
    the time index (``0..T-1``: every series starts at the same phase).  Draws: the initial
    regimes, all switch decisions, all latent noises, then all observation noises.

    :param int num_series: number of series ``N``.
    :param int length: number of time steps ``T``.
    :param int seed: seed of ``numpy.random.default_rng`` (``None``: fresh entropy).
    :param bool return_latent: also return the latent Dataset (variables ``z`` (float) and
        ``regime`` (int, 0 or 1), both ``(N, T)``).
    :returns: Dataset with ``x`` ``(N, T)``; with ``return_latent`` the tuple ``(data, latent)``.
    """
    num_series, length, seed = _check_arguments(num_series, length, seed, return_latent)
    rng = np.random.default_rng(seed)
    p = REGIME
    mu, phi, sigma = (np.asarray(p[k]) for k in ("means", "decays", "sds"))
    regime_prev = rng.integers(0, 2, size=num_series)
    switch = rng.random((num_series, length)) >= p["stay_prob"]
    eta = rng.standard_normal((num_series, length))
    noise = rng.normal(0.0, _NOISE_SD, size=(num_series, length))
    z = np.empty((num_series, length))
    regime = np.empty((num_series, length), dtype=np.int64)
    z_prev = np.zeros(num_series)
    for t in range(length):
        regime_prev = np.where(switch[:, t], 1 - regime_prev, regime_prev)
        m = mu[regime_prev]
        z_prev = m + phi[regime_prev] * (z_prev - m) + sigma[regime_prev] * eta[:, t]
        z[:, t], regime[:, t] = z_prev, regime_prev
    season = np.array([_season(t) for t in range(length)])
    equations = (
        "P(r_t = r_{t-1}) = 0.9, r_{-1} ~ U{0,1}; z_t = mu_r + phi_r (z_{t-1} - mu_r) + sigma_r N(0, 1), "
        "r = r_t, mu = (-2, 3), phi = (0.8, 0.3), sigma = (0.3, 1), z_{-1} = 0; "
        "x_t = z_t + 2 sin(2 pi t / 12) + N(0, 0.2)"
    )
    dims = ("series", "time")
    return _output(
        "regime_switching_seasonal",
        equations,
        p,
        seed,
        {"x": (dims, z + season + noise)},
        {"z": (dims, z), "regime": (dims, regime)},
        return_latent,
    )


def regime_switching_seasonal_law(latent, t, data=None) -> GaussianMixture1D:
    r"""
    Exact law of ``x_t`` given ``(z_{t-1}, r_{t-1})`` and ``t`` in
    :func:`regime_switching_seasonal`, a mixture over the next regime ``k``:

    .. math::

        \sum_{k \in \{0, 1\}} P(r_t = k \mid r_{t-1})\,
        \mathcal{N}\big(\mu_k + \phi_k (z_{t-1} - \mu_k) + 2 \sin(2 \pi t / 12),\;
        \sigma_k^2 + 0.2\big),

    with weights ``(0.9, 0.1)`` ordered by whether the regime stays (``(0.5, 0.5)`` at ``t = 0``,
    where ``r_{-1}`` is drawn from the stationary law).

    :param latent: the latent Dataset of :func:`regime_switching_seasonal` (``z``, ``regime``,
        both ``(N, T)``).
    :param int t: time index ``0 <= t < T`` (``t = 0``: given ``z_{-1} = 0``).
    :param data: unused (the system has no covariates).
    :returns: :class:`GaussianMixture1D` with batch shape ``(N,)`` and 2 components (regime 0,
        regime 1).
    """
    z = _previous(latent, t, "z", 0.0)
    # at t = 0 the regime r_{-1} is not a state of the latent Dataset: its stationary law
    regime = _previous(latent, t, "regime", 0) if t > 0 else None
    return _regime_law({"z": z, "regime": regime}, t)


def _regime_law(state, t, u=None):
    """``state["regime"]`` ``None``: ``r_{t-1}`` drawn from its stationary law (1/2, 1/2)."""
    z, regime, p = state["z"], state["regime"], REGIME
    mu, phi, sigma = (np.asarray(p[k]) for k in ("means", "decays", "sds"))
    if regime is None:
        weights = np.full((len(z), 2), 0.5)
    else:
        stay = p["stay_prob"]
        weights = np.where((regime == 0)[:, None], [stay, 1.0 - stay], [1.0 - stay, stay])
    means = mu + phi * (z[:, None] - mu) + _season(t)
    stds = np.sqrt(sigma**2 + p["noise_var"])
    return GaussianMixture1D(weights, means, stds)


def _regime_initial(num, rng):
    return {"z": np.zeros(num), "regime": rng.integers(0, 2, size=num)}


def _regime_step(state, t, u, rng):
    p = REGIME
    mu, phi, sigma = (np.asarray(p[k]) for k in ("means", "decays", "sds"))
    switch = rng.random(len(state["z"])) >= p["stay_prob"]
    regime = np.where(switch, 1 - state["regime"], state["regime"])
    m = mu[regime]
    z = m + phi[regime] * (state["z"] - m) + sigma[regime] * rng.standard_normal(len(regime))
    return {"z": z, "regime": regime}


# ---------------------------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class System:
    """
    A synthetic system with an exact one-step law, as a benchmark sees it.

    :param str name: the registry name.
    :param simulate: ``simulate(num_series=1024, length=32, seed=0, *, return_latent=False)`` ->
        Dataset with ``x`` (and the covariates) of dims ``("series", "time")``, or
        ``(data, latent)`` with ``return_latent=True``.
    :param one_step_law: ``one_step_law(latent, t, data)`` -> :class:`GaussianMixture1D` of
        ``x_t`` given the latent state at ``t - 1`` (and the covariates at ``t``, read from
        ``data``), batch shape ``(num_series,)``.
    :param tuple covariates: names of the covariate variables of the data (pass them to
        ``pyrossm.fit(..., covariates=list(system.covariates))``).
    :param str summary: one line on what the system tests.
    :param particles: the dynamics as :func:`~pyrossm.datasets.filtering.predictive_law` needs
        them (:class:`~pyrossm.datasets.filtering.ParticleModel`).
    """

    name: str
    simulate: Callable = field(repr=False)
    one_step_law: Callable = field(repr=False)
    covariates: tuple = ()
    summary: str = ""
    particles: ParticleModel | None = field(default=None, repr=False)

    def predictive_law(self, data, t, num_particles=2048, seed=0) -> GaussianMixture1D:
        """
        The exact 1-step predictive law of ``x_t`` given the observed ``x_{0:t-1}`` (and the
        covariates through ``t``): what a perfect model forecasts, unlike :attr:`one_step_law`,
        which also knows the true latent state (:func:`~pyrossm.datasets.filtering.predictive_law`).

        :param data: the simulated Dataset (``N`` series).  :param int t: the predicted time index.
        :returns: :class:`GaussianMixture1D` with batch shape ``(N,)``.
        """
        return predictive_law(self.particles, data, t, num_particles=num_particles, seed=seed)


def _zero_state(num, rng):
    return {"z": np.zeros(num)}


def _latent_is_observed(state, t):
    return state["z"]


def _particles(step, law, *, observation_mean=_latent_is_observed, initial=_zero_state, covariate=None):
    return ParticleModel(initial, step, observation_mean, law, NOISE_VAR, covariate)


_PARTICLES = {
    "bimodal_walk": _particles(_bimodal_step, _bimodal_law),
    "trimodal_walk": _particles(_trimodal_step, _trimodal_law),
    "state_dependent_modes": _particles(_state_dependent_step, _state_dependent_law),
    "covariate_gated": _particles(_gated_step, _gated_law, covariate="u"),
    "two_dim_latent": _particles(
        _two_dim_step,
        _two_dim_law,
        observation_mean=lambda state, t: state["z"] @ np.asarray(TWO_DIM["projection"]),
        initial=lambda num, rng: {"z": np.zeros((num, 2))},
    ),
    "regime_switching_seasonal": _particles(
        _regime_step, _regime_law, observation_mean=lambda state, t: state["z"] + _season(t), initial=_regime_initial
    ),
}

#: the suite, by name, in a fixed order
SYSTEMS = {
    s.name: s
    for s in (
        System("bimodal_walk", bimodal_walk, bimodal_walk_law, (), "two equal modes (DDSSM paper, Sec. 4)"),
        System("trimodal_walk", trimodal_walk, trimodal_walk_law, (), "three modes, unequal weights"),
        System(
            "state_dependent_modes",
            state_dependent_modes,
            state_dependent_modes_law,
            (),
            "two modes near zero, one far from it",
        ),
        System(
            "covariate_gated", covariate_gated, covariate_gated_law, ("u",), "an observed gate u_t switches the jump"
        ),
        System("two_dim_latent", two_dim_latent, two_dim_latent_law, (), "2-D latent seen through a projection"),
        System(
            "regime_switching_seasonal",
            regime_switching_seasonal,
            regime_switching_seasonal_law,
            (),
            "sticky 2-regime switch + period-12 season",
        ),
    )
}
SYSTEMS = {name: replace(system, particles=_PARTICLES[name]) for name, system in SYSTEMS.items()}


def systems(names=None) -> list:
    """
    The systems of the suite, in order.

    :param names: ``None`` (all) or an iterable of registry names.
    :returns: list of :class:`System`.
    :raises ValueError: naming an unknown system.
    """
    if names is None:
        return list(SYSTEMS.values())
    if isinstance(names, str):
        names = [names]
    return [get_system(name) for name in names]


def get_system(name) -> System:
    """
    One system of the suite by name.

    :raises ValueError: if ``name`` is not in :data:`SYSTEMS` (the message lists them).
    """
    if name not in SYSTEMS:
        raise ValueError(f"unknown system {name!r}; the suite has {list(SYSTEMS)}")
    return SYSTEMS[name]
