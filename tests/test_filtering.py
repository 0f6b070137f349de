"""The exact 1-step predictive law of a simulated system by a particle filter
(pyrossm.datasets.filtering) and the particle dynamics of the suite (System.particles)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from pyrossm.datasets import GaussianMixture1D
from pyrossm.datasets.filtering import ParticleModel, _resample, filter_states, merge_components, predictive_law
from pyrossm.datasets.synthetic import kalman_predictive
from pyrossm.datasets.systems import SYSTEMS

NAMES = list(SYSTEMS)  # the suite, in the order tests/test_systems.py pins

# a scalar linear-Gaussian SSM: z_t = a z_{t-1} + N(0, q), x_t = z_t + N(0, r), z_{-1} = 0
A, Q, R = 0.8, 0.5, 0.2


def _lg_step(state, t, u, rng):
    return {"z": A * state["z"] + math.sqrt(Q) * rng.standard_normal(state["z"].shape)}


def _lg_law(state, t, u):
    return GaussianMixture1D(np.ones((len(state["z"]), 1)), A * state["z"][:, None], math.sqrt(Q + R))


LINEAR_GAUSSIAN = ParticleModel(
    initial=lambda num, rng: {"z": np.zeros(num)},
    step=_lg_step,
    observation_mean=lambda state, t: state["z"],
    law=_lg_law,
    noise_var=R,
)


def simulate_linear_gaussian(num_series, length, seed):
    rng = np.random.default_rng(seed)
    z = np.empty((num_series, length))
    previous = np.zeros(num_series)
    for t in range(length):
        previous = A * previous + math.sqrt(Q) * rng.standard_normal(num_series)
        z[:, t] = previous
    x = z + math.sqrt(R) * rng.standard_normal((num_series, length))
    coords = {"series": np.arange(num_series), "time": np.arange(length)}
    return xr.Dataset({"x": (("series", "time"), x)}, coords=coords)


def kalman_moments(x, t):
    """Mean and variance ``(N,)`` of the exact predictive of ``x_t`` given ``x[:, :t]`` (NaN: missing)."""
    if t == 0:
        return np.zeros(len(x)), np.full(len(x), Q + R)
    # the library's filter starts at z_0 ~ N(m0, P0): with z_{-1} = 0, z_0 ~ N(0, q)
    mean, cov, _ = kalman_predictive(x[:, :t], 1, A=[[A]], C=[[1.0]], Q=[[Q]], R=[[R]], m0=[0.0], P0=[[Q]])
    return mean[:, 0, 0], cov[:, 0, 0, 0]


def previous_state(name, latent, t):
    """The state dict at ``t - 1`` (``t >= 1``) as the system's particle functions take it."""
    state = {"z": latent["z"].transpose("series", "time", ...).values[:, t - 1]}
    if name == "regime_switching_seasonal":
        state["regime"] = latent["regime"].transpose("series", "time").values[:, t - 1]
    return state


def covariate_at(name, data, t, num):
    return data["u"].values[:, t] if name == "covariate_gated" else None


# -- merge_components ----------------------------------------------------------------------------


def test_merge_components_keeps_weight_mean_variance_and_density():
    rng = np.random.default_rng(0)
    num, size = 5, 400
    weights = rng.dirichlet(np.ones(size), size=num)
    weights[:, :7] = 0.0  # a few unused components
    weights /= weights.sum(axis=1, keepdims=True)
    means = rng.normal(0.0, 1.5, size=(num, size)) + 2.0 * np.arange(num)[:, None]
    stds = rng.choice([0.45, 1.0], size=(num, size))
    full = GaussianMixture1D(weights, means, stds)
    merged = merge_components(weights, means, stds)
    assert merged.batch_shape == (num,)
    np.testing.assert_allclose(merged.weights.sum(axis=1), 1.0, atol=1e-12)
    assert (merged.weights >= 0).all() and (merged.stds > 0).all()
    np.testing.assert_allclose(merged.mean, full.mean, rtol=0, atol=1e-10)
    np.testing.assert_allclose(merged.var, full.var, rtol=0, atol=1e-10)
    assert merged.num_components < size / 4
    assert (merged.weights > 0).sum(axis=1).max() <= merged.num_components
    used = merged.weights > 0
    assert not used.all()  # rows of different counts: padded
    # the padding (weight 0) lies within the row's used means, not stretching its range
    low = np.where(used, merged.means, np.inf).min(axis=1, keepdims=True)
    high = np.where(used, merged.means, -np.inf).max(axis=1, keepdims=True)
    assert ((merged.means >= low) & (merged.means <= high)).all()
    grid = np.linspace(-15.0, 20.0, 701)[:, None]
    exact, approx = full.pdf(grid), merged.pdf(grid)
    assert np.abs(exact - approx).max() < 1e-3 * exact.max()
    # a coarser resolution merges more, still keeps the moments
    coarse = merge_components(weights, means, stds, resolution=1.0)
    assert coarse.num_components < merged.num_components
    np.testing.assert_allclose(coarse.mean, full.mean, rtol=0, atol=1e-10)
    np.testing.assert_allclose(coarse.var, full.var, rtol=0, atol=1e-10)
    # components of different sd are never merged into one
    one_sd = merge_components(weights, means, np.full_like(stds, 0.45))
    assert one_sd.stds[one_sd.weights > 0].min() >= 0.45 - 1e-12


def test_merge_components_identical_components_collapse_to_one():
    weights = np.array([[0.25, 0.25, 0.5], [0.5, 0.5, 0.0]])
    means = np.array([[1.0, 1.0, 1.0], [-2.0, 3.0, 100.0]])
    merged = merge_components(weights, means, 0.5)
    # row 0: one component N(1, 0.5^2); row 1: two components, the unused one is dropped or padded
    grid = np.linspace(-5.0, 5.0, 101)[:, None]
    np.testing.assert_allclose(merged.pdf(grid), GaussianMixture1D(weights, means, 0.5).pdf(grid), rtol=1e-12, atol=0)
    assert (merged.weights[0] > 0).sum() == 1
    np.testing.assert_allclose(merged.means[0][merged.weights[0] > 0], [1.0])
    np.testing.assert_allclose(merged.stds[0][merged.weights[0] > 0], [0.5])
    assert (merged.weights[1] > 0).sum() == 2
    np.testing.assert_allclose(np.sort(merged.means[1][merged.weights[1] > 0]), [-2.0, 3.0])


@pytest.mark.parametrize("resolution", [0.0, -0.25, 1.5, 2])
def test_merge_components_rejects_resolution_outside_unit_interval(resolution):
    with pytest.raises(ValueError, match="resolution must be in"):
        merge_components(np.ones((1, 2)) / 2, np.zeros((1, 2)), np.ones((1, 2)), resolution=resolution)


# -- resampling ----------------------------------------------------------------------------------


@pytest.mark.parametrize("floor", [-np.inf, -1e4])
def test_resample_puts_everything_on_the_only_weighted_particle(floor):
    rng = np.random.default_rng(1)
    num, size = 50, 64
    chosen = rng.integers(0, size, size=num)
    chosen[:3] = [0, size - 1, 1]
    log_w = np.full((num, size), floor)
    log_w[np.arange(num), chosen] = rng.normal(0.0, 100.0, size=num)  # any finite value
    index = _resample(log_w, rng)
    assert index.shape == (num, size) and index.dtype.kind == "i"
    np.testing.assert_array_equal(index, np.broadcast_to(chosen[:, None], (num, size)))


def test_resample_indices_in_range_and_proportional():
    rng = np.random.default_rng(2)
    num, size = 40, 200
    log_w = rng.normal(0.0, 2.0, size=(num, size))
    index = _resample(log_w, rng)
    assert index.min() >= 0 and index.max() < size
    # systematic resampling: each particle is copied floor(P w) or ceil(P w) times
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    counts = np.stack([np.bincount(row, minlength=size) for row in index])
    assert (counts >= np.floor(size * w - 1e-9)).all() and (counts <= np.ceil(size * w + 1e-9)).all()
    assert (np.diff(index, axis=1) >= 0).all()  # sorted within a row


def test_resample_equal_weights_returns_each_index_once():
    rng = np.random.default_rng(3)
    for log_w in (np.zeros((30, 128)), np.full((30, 128), -7.5)):
        index = _resample(log_w, rng)
        np.testing.assert_array_equal(index, np.broadcast_to(np.arange(128), (30, 128)))


# -- exactness against a Kalman filter -----------------------------------------------------------


@pytest.mark.parametrize("t", [0, 1, 8])
def test_predictive_law_matches_kalman(t):
    data = simulate_linear_gaussian(num_series=12, length=8, seed=4)
    law = predictive_law(LINEAR_GAUSSIAN, data, t, num_particles=4000, seed=5)
    mean, var = kalman_moments(data["x"].values, t)
    assert law.batch_shape == (12,)
    np.testing.assert_allclose(law.mean, mean, rtol=0, atol=0.05)
    np.testing.assert_allclose(law.var, var, rtol=0.05)
    # the predictive is narrower than the unconditional law once data are seen
    if t > 1:
        stationary = Q / (1 - A**2) + R
        assert law.var.max() < 0.9 * stationary


def test_predictive_law_with_missing_observations_matches_kalman():
    data = simulate_linear_gaussian(num_series=12, length=8, seed=6)
    x = data["x"].values.copy()
    x[:4, 7] = np.nan  # the last observation missing
    x[4:8, 2:5] = np.nan  # a gap
    x[8, :] = np.nan  # nothing observed
    data = data.assign(x=(("series", "time"), x))
    law = predictive_law(LINEAR_GAUSSIAN, data, 8, num_particles=4000, seed=7)
    assert np.isfinite(law.weights).all() and np.isfinite(law.means).all() and np.isfinite(law.stds).all()
    assert np.isfinite(law.pdf(np.linspace(-5, 5, 11)[:, None])).all()
    mean, var = kalman_moments(x, 8)
    np.testing.assert_allclose(law.mean, mean, rtol=0, atol=0.05)
    np.testing.assert_allclose(law.var, var, rtol=0.05)
    # with nothing observed, the predictive is the marginal law of x_8
    marginal = Q * sum(A ** (2 * k) for k in range(9)) + R
    assert abs(law.var[8] - marginal) < 0.05 * marginal


def _drift(t):
    return 0.7 * math.sin(t)


def _input_step(state, t, u, rng):
    return {"z": A * state["z"] + u + _drift(t) + math.sqrt(Q) * rng.standard_normal(state["z"].shape)}


def _input_law(state, t, u):
    return GaussianMixture1D(np.ones((len(u), 1)), (A * state["z"] + u + _drift(t))[:, None], math.sqrt(Q + R))


WITH_INPUT = ParticleModel(
    initial=lambda num, rng: {"z": np.zeros(num)},
    step=_input_step,
    observation_mean=lambda state, t: state["z"] + 0.5 * t,
    law=lambda state, t, u: GaussianMixture1D(1.0, _input_law(state, t, u).means + 0.5 * t, math.sqrt(Q + R)),
    noise_var=R,
    covariate="v",
)


def test_predictive_law_with_covariate_and_time_matches_kalman():
    """z_t = a z_{t-1} + v_t + d(t) + N(0, q), x_t = z_t + t / 2 + N(0, r): the covariate is read
    per series at the right step, the step and the observation mean get the right time index."""
    rng = np.random.default_rng(10)
    num, length, t = 12, 7, 6
    v = rng.normal(0.0, 2.0, size=(num, length))
    z, previous = np.empty((num, length)), np.zeros(num)
    for s in range(length):
        previous = A * previous + v[:, s] + _drift(s) + math.sqrt(Q) * rng.standard_normal(num)
        z[:, s] = previous
    x = z + 0.5 * np.arange(length) + math.sqrt(R) * rng.standard_normal((num, length))
    x[:3, 2:5] = np.nan
    x[3, :] = np.nan
    dims = ("series", "time")
    data = xr.Dataset({"x": (dims, x), "v": (dims, v)})
    law = predictive_law(WITH_INPUT, data, t, num_particles=4000, seed=11)
    # scalar Kalman filter with a known input
    m, P = np.zeros(num), np.zeros(num)
    for s in range(t):
        m, P = A * m + v[:, s] + _drift(s), A**2 * P + Q
        observed = np.isfinite(x[:, s])
        gain = np.where(observed, P / (P + R), 0.0)
        m = m + gain * np.where(observed, x[:, s] - 0.5 * s - m, 0.0)
        P = (1 - gain) * P
    mean, var = A * m + v[:, t] + _drift(t) + 0.5 * t, A**2 * P + Q + R
    np.testing.assert_allclose(law.mean, mean, rtol=0, atol=0.05)
    np.testing.assert_allclose(law.var, var, rtol=0.05)
    # series 3 saw nothing: its predictive is the law of x_6 from z_{-1} = 0 alone
    prior_mean = sum(A ** (t - s) * (v[3, s] + _drift(s)) for s in range(t + 1)) + 0.5 * t
    assert abs(mean[3] - prior_mean) < 1e-9 and abs(law.mean[3] - prior_mean) < 0.05


def test_filter_states_shape_and_posterior_moments():
    data = simulate_linear_gaussian(num_series=6, length=5, seed=8)
    state = filter_states(LINEAR_GAUSSIAN, data, 5, 3000, np.random.default_rng(9))
    assert set(state) == {"z"} and state["z"].shape == (6 * 3000,)
    z = state["z"].reshape(6, 3000)  # series-major
    mean, var = kalman_moments(data["x"].values, 5)
    # filtered z_4: predictive of x_5 is N(a m, a^2 v + q + r)
    np.testing.assert_allclose(A * z.mean(axis=1), mean, atol=0.05)
    np.testing.assert_allclose(A**2 * z.var(axis=1) + Q + R, var, rtol=0.05)


# -- the systems: particle dynamics agree with the simulators ------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("t", [0, 10])
def test_particle_step_agrees_with_one_step_law(name, t):
    system = SYSTEMS[name]
    model = system.particles
    assert isinstance(model, ParticleModel) and model.noise_var == pytest.approx(0.2)
    assert model.covariate == ("u" if name == "covariate_gated" else None)
    num = 20000
    data, latent = system.simulate(num_series=num, length=12, seed=21, return_latent=True)
    rng = np.random.default_rng(22)
    state = model.initial(num, rng) if t == 0 else previous_state(name, latent, t)
    new = model.step(state, t, covariate_at(name, data, t, num), rng)
    assert set(new) == set(state)
    mean = model.observation_mean(new, t)
    assert mean.shape == (num,)
    x = mean + math.sqrt(0.2) * rng.standard_normal(num)
    exact_law = system.one_step_law(latent, t, data)
    assert stats.kstest(exact_law.cdf(x), "uniform").pvalue > 1e-3
    # and the first two moments (more power against a wrong noise scale than the KS test)
    standardized = (x - exact_law.mean) / np.sqrt(exact_law.var)
    assert abs(standardized.mean()) < 0.05 and abs(standardized.var() - 1) < 0.05
    # the particle law is the system's law
    law = model.law(state, t, covariate_at(name, data, t, num))
    if t > 0:
        exact = system.one_step_law(latent, t, data)
        np.testing.assert_allclose(law.weights, exact.weights, atol=1e-12)
        np.testing.assert_allclose(law.means, exact.means, atol=1e-12)
        np.testing.assert_allclose(law.stds, exact.stds, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_particle_step_is_a_wrong_law_detector(name):
    """The PIT check above has power: the step at the wrong time/state is rejected."""
    system = SYSTEMS[name]
    data, latent = system.simulate(num_series=2000, length=12, seed=23, return_latent=True)
    rng = np.random.default_rng(24)
    state = previous_state(name, latent, 5)  # the state at t = 4, not 9
    new = system.particles.step(state, 10, covariate_at(name, data, 10, 2000), rng)
    x = system.particles.observation_mean(new, 10) + math.sqrt(0.2) * rng.standard_normal(2000)
    assert stats.kstest(system.one_step_law(latent, 10, data).cdf(x), "uniform").pvalue < 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_predictive_law_is_calibrated(name):
    """The observed ``x_t`` is a draw from the Bayes predictive given the past: uniform PITs."""
    system = SYSTEMS[name]
    data = system.simulate(num_series=300, length=9, seed=31)
    law = system.predictive_law(data, 8, num_particles=400, seed=32)
    assert law.batch_shape == (300,)
    u = law.cdf(data["x"].values[:, 8])
    assert stats.kstest(u, "uniform").pvalue > 1e-3


# -- the systems: predictive law vs latent-conditioned law ---------------------------------------


@pytest.mark.parametrize("name", ["bimodal_walk", "trimodal_walk"])
def test_identified_walks_predictive_equals_one_step_law(name):
    system = SYSTEMS[name]
    data, latent = system.simulate(num_series=150, length=12, seed=41, return_latent=True)
    grid = np.linspace(-25.0, 30.0, 551)[:, None]
    for t in (0, 1, 11):
        predictive = system.predictive_law(data, t, num_particles=256, seed=42)
        exact = system.one_step_law(latent, t, data)
        gap = np.abs(predictive.pdf(grid) - exact.pdf(grid)).max(axis=0)  # (N,)
        assert (gap < 1e-6).mean() >= 0.99, (t, np.sort(gap)[-5:])
        np.testing.assert_allclose(predictive.mean, exact.mean, atol=1e-6)


def test_two_dim_latent_predictive_is_wider_than_latent_law():
    system = SYSTEMS["two_dim_latent"]
    data, latent = system.simulate(num_series=200, length=12, seed=51, return_latent=True)
    predictive = system.predictive_law(data, 11, num_particles=512, seed=52)
    exact = system.one_step_law(latent, 11, data)
    np.testing.assert_allclose(exact.var, 0.3**2 * 1.25 + 0.2 + 3.0**2)  # constant
    # the jumps are identified by the data, so given them the state is linear-Gaussian: the
    # predictive adds Var(c' A z_10 | x_0..10) = c' A P A' c, P the Kalman filtered covariance
    angle = math.pi / 6
    rotation = 0.9 * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    c, Q2 = np.array([1.0, -0.5]), 0.09 * np.eye(2)
    P = Q2  # z_0 given z_{-1} = 0 and its jump
    for t in range(11):
        if t > 0:
            P = rotation @ P @ rotation.T + Q2
        P = P - np.outer(P @ c, c @ P) / (c @ P @ c + 0.2)
    extra = float(c @ rotation @ P @ rotation.T @ c)
    assert 0.1 < extra < 0.2
    gap = predictive.var - exact.var
    assert predictive.var.mean() > exact.var.mean() + 0.1  # many Monte-Carlo sds above
    assert abs(gap.mean() - extra) < 0.1 * extra
    assert (gap > 0).all()
    # wider, not shifted: the predictive mean is the posterior mean of c' A z_10, which differs
    # from its true value by a draw of variance `extra`
    error = predictive.mean - exact.mean
    assert abs(error.mean()) < 4 * math.sqrt(extra / 200)
    assert abs(error.var() / extra - 1) < 0.3


# -- errors, seeds and NaNs ----------------------------------------------------------------------


def test_predictive_law_errors():
    system = SYSTEMS["bimodal_walk"]
    data = system.simulate(num_series=4, length=5, seed=0)
    with pytest.raises(TypeError, match="Dataset"):
        system.predictive_law(data["x"], 2)
    with pytest.raises(TypeError, match="Dataset"):
        system.predictive_law(data["x"].values, 2)
    with pytest.raises(TypeError, match="'x'"):
        system.predictive_law(data.rename(x="y"), 2)
    with pytest.raises(ValueError, match="past the data"):
        system.predictive_law(data, 6)
    assert system.predictive_law(data, 5, num_particles=8).batch_shape == (4,)  # x_5 given x_0..4
    with pytest.raises(ValueError, match="t must be a non-negative int"):
        system.predictive_law(data, -1)
    with pytest.raises(ValueError, match="t must be a non-negative int"):
        system.predictive_law(data, 2.0)
    with pytest.raises(ValueError, match="num_particles must be a positive int"):
        system.predictive_law(data, 2, num_particles=0)
    gated = SYSTEMS["covariate_gated"]
    gated_data = gated.simulate(num_series=4, length=5, seed=0)
    with pytest.raises(ValueError, match="past the data"):
        gated.predictive_law(gated_data, 5)  # u_5 is read
    assert gated.predictive_law(gated_data, 4, num_particles=8).batch_shape == (4,)


def test_predictive_law_seed_reproduces():
    system = SYSTEMS["regime_switching_seasonal"]
    data = system.simulate(num_series=20, length=8, seed=61)
    a = system.predictive_law(data, 7, num_particles=64, seed=3)
    b = system.predictive_law(data, 7, num_particles=64, seed=3)
    c = system.predictive_law(data, 7, num_particles=64, seed=4)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.means, b.means)
    np.testing.assert_array_equal(a.stds, b.stds)
    assert not np.array_equal(a.means, c.means) or not np.array_equal(a.weights, c.weights)


@pytest.mark.parametrize("name", NAMES)
def test_predictive_law_accepts_nan_observations(name):
    system = SYSTEMS[name]
    data = system.simulate(num_series=10, length=7, seed=71)
    x = data["x"].values.copy()
    x[:3, 6] = np.nan
    x[3:6, 1:4] = np.nan
    x[6] = np.nan
    law = system.predictive_law(data.assign(x=(("series", "time"), x)), 7 if name != "covariate_gated" else 6, 64)
    assert law.batch_shape == (10,)
    for values in (law.weights, law.means, law.stds, law.mean, law.var):
        assert np.isfinite(values).all()
    np.testing.assert_allclose(law.weights.sum(axis=1), 1.0)
    density = law.pdf(np.linspace(-20.0, 20.0, 201)[:, None])
    assert np.isfinite(density).all() and (density.sum(axis=0) * 0.2 > 0.5).all()


def test_predictive_law_without_the_covariate_names_it():
    system = SYSTEMS["covariate_gated"]
    data = system.simulate(num_series=4, length=5).drop_vars("u")
    with pytest.raises(ValueError, match="covariate 'u'"):
        system.predictive_law(data, 3)
