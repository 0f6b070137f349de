"""Generation scores (pyrossm.evaluation.generation): good generators beat bad ones, seeds
reproduce, inputs are checked, and the closed forms (cross-correlations, Fréchet) hold."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
import xarray as xr

import pyrossm
from pyrossm.evaluation import generation as G
from pyrossm.nn.ts2vec import overlapping_crops

FREQS = (1 / 16, 1 / 8, 1 / 4)  # cycles per step of the three classes


def sinusoids(n, rng, classes=(0, 1, 2), length=16, dim=3, noise=0.3):
    """A 3-class set: a sinusoid of the class's frequency, random phase; channel ``c`` is delayed
    by ``c`` steps (so the channel correlations depend on the class), plus white noise."""
    k = rng.choice(classes, size=n)
    f = np.asarray(FREQS)[k][:, None, None]
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
    t = np.arange(length)[None, :, None] - np.arange(dim)[None, None, :]
    return np.sin(2 * np.pi * f * t + phase) + noise * rng.normal(size=(n, length, dim))


def shuffled(x, rng):
    """Each window's steps permuted (the same permutation for all its channels)."""
    perm = np.argsort(rng.random(x.shape[:2]), axis=1)
    return np.take_along_axis(x, perm[:, :, None], axis=1)


def ar1(real, n, rng):
    """Stationary Gaussian AR(1) windows, mean, variance and lag-1 coefficient fitted per channel."""
    mu = real.mean(axis=(0, 1))
    z = real - mu
    phi = (z[:, 1:] * z[:, :-1]).sum(axis=(0, 1)) / (z[:, :-1] ** 2).sum(axis=(0, 1))
    sd = z.std(axis=(0, 1))
    out = np.empty((n,) + real.shape[1:])
    out[:, 0] = sd * rng.normal(size=(n, real.shape[2]))
    for t in range(1, real.shape[1]):
        out[:, t] = phi * out[:, t - 1] + sd * np.sqrt(1 - phi**2) * rng.normal(size=(n, real.shape[2]))
    return out + mu


# 400 windows per set: the discriminator's test split (160 windows) then resolves the dropped class
N = 400
_rng = np.random.default_rng(0)
REAL = sinusoids(N, _rng)
GENERATORS = {"good": sinusoids(N, _rng)}  # held-out windows of the same process
GENERATORS.update(
    shuffled=shuffled(GENERATORS["good"], _rng), ar1=ar1(REAL, N, _rng), dropped=sinusoids(N, _rng, classes=(0, 1))
)
BAD = ("shuffled", "ar1", "dropped")

# small budgets that keep every call about 2 s on one core
SETTINGS = {
    "discriminative_score": dict(seed=0, num_steps=200),
    "predictive_score": dict(seed=0, num_steps=150),
    "context_fid": dict(seed=0, num_steps=100),
    "correlational_score": dict(max_lag=1),
}


@functools.cache
def score(metric, generator):
    return getattr(G, metric)(REAL, GENERATORS[generator], **SETTINGS[metric])


def small(n=40, seed=0):
    return sinusoids(n, np.random.default_rng(seed))


# ------------------------------------------------------------------ surface
def test_public_surface():
    names = {"discriminative_score", "predictive_score", "correlational_score", "context_fid", "fit_ts2vec"}
    assert names | {"frechet_distance", "FittedTS2Vec"} == set(G.__all__)
    for name in G.__all__:
        assert getattr(pyrossm.metrics, name) is getattr(G, name)
        assert name in pyrossm.evaluation.__all__
    from pyrossm.metrics import context_fid  # the alias module is an import path too

    assert context_fid is G.context_fid


# ------------------------------------------------------------------ (a) good beats bad
@pytest.mark.parametrize("bad", BAD)
def test_discriminative_score_ranks_held_out_real_above_bad_generators(bad):
    good = score("discriminative_score", "good")
    assert 0 <= good < 0.06  # seeds 0-5: at most 0.025
    # seeds 0-5: shuffled and AR(1) >= 0.47, dropped class >= 0.10 (at most ~1/6 + noise)
    assert score("discriminative_score", bad) > good + (0.05 if bad == "dropped" else 0.35)


@pytest.mark.parametrize("bad", BAD)
def test_predictive_score_ranks_held_out_real_above_bad_generators(bad):
    good = score("predictive_score", "good")
    assert good < 0.1  # seeds 0-5: 0.088-0.092; the noise alone is ~0.06 on this scale
    # seeds 0-5, ratio to good: shuffled >= 1.8, AR(1) >= 1.55, dropped class >= 1.2
    assert score("predictive_score", bad) > (1.1 if bad == "dropped" else 1.3) * good


@pytest.mark.parametrize("bad", BAD)
def test_context_fid_ranks_held_out_real_above_bad_generators(bad):
    good = score("context_fid", "good")
    assert 0 <= good < 0.05  # seeds 0-5: 0.011-0.015
    assert score("context_fid", bad) > 0.2  # seeds 0-5: shuffled >= 0.71, AR(1) >= 1.0, dropped >= 0.49


@pytest.mark.parametrize("bad", BAD)
def test_correlational_score_ranks_held_out_real_above_bad_generators(bad):
    good = score("correlational_score", "good")
    assert good < 0.06  # seeds 0-5 (max_lag=1): at most 0.032
    assert score("correlational_score", bad) > 0.15  # seeds 0-5: all >= 0.2


def test_correlational_score_at_lag_0_ignores_the_order_of_steps():
    plain = G.correlational_score(REAL, GENERATORS["good"])
    assert G.correlational_score(REAL, GENERATORS["shuffled"]) == pytest.approx(plain, abs=1e-12)
    for bad in ("ar1", "dropped"):  # seeds 0-5: good <= 0.041, AR(1) >= 0.32, dropped >= 0.27
        assert G.correlational_score(REAL, GENERATORS[bad]) > plain + 0.15


# ------------------------------------------------------------------ (b) seeds
@pytest.mark.parametrize(
    "metric, options",
    [
        ("discriminative_score", dict(num_steps=20)),
        ("predictive_score", dict(num_steps=20)),
        ("predictive_score", dict(num_steps=20, target="last")),
    ],
)
def test_same_seed_same_value_and_global_state_untouched(metric, options):
    real, generated = small(seed=1), small(seed=2)
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    values = [getattr(G, metric)(real, generated, seed=s, **options) for s in (3, 3, 4)]
    assert values[0] == values[1]
    assert values[0] != values[2] or metric == "discriminative_score"  # accuracy is coarse on 16 windows
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)


def test_fit_ts2vec_is_seeded_and_cached():
    real = small(seed=1)
    torch_state = torch.random.get_rng_state()
    a, b = (G.fit_ts2vec(real, seed=3, num_steps=15, cache=False) for _ in range(2))
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.array_equal(a.encode(real), b.encode(real))
    assert a.encode(real).shape == (40, a.repr_dim)
    assert np.all(np.isfinite(a.losses)) and len(a.losses) == 15
    c = G.fit_ts2vec(real, seed=4, num_steps=15, cache=False)
    assert not np.array_equal(a.encode(real), c.encode(real))
    cached = G.fit_ts2vec(real, seed=3, num_steps=15)
    assert G.fit_ts2vec(real.copy(), seed=3, num_steps=15) is cached  # keyed by the values
    assert G.fit_ts2vec(real, seed=3, num_steps=16) is not cached
    generated = small(seed=2)
    fid = G.context_fid(real, generated, seed=3, num_steps=15)
    assert fid == G.context_fid(real, generated, encoder=cached)
    assert fid == G.context_fid(real, generated, encoder=a)  # the same training, uncached


def test_overlapping_crops_share_their_overlap():
    x = torch.arange(5 * 12, dtype=torch.float32).reshape(5, 12, 1)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        crop1, crop2, overlap = overlapping_crops(x, gen)
        assert 2 <= overlap <= min(crop1.shape[1], crop2.shape[1])
        assert torch.equal(crop1[:, -overlap:], crop2[:, :overlap])
        assert torch.all(crop1[:, 1:] - crop1[:, :-1] == 1)  # contiguous steps of one window


# ------------------------------------------------------------------ closed forms
def test_correlational_score_exact_value():
    a = np.array([1.0, -1, 1, -1])
    b = np.array([1.0, 1, -1, -1])  # a, b: zero mean, unit sd, orthogonal
    real = np.stack([a, a, b], axis=-1)[None]  # corr(0,1) = 1, corr(0,2) = corr(1,2) = 0
    generated = np.stack([a, b, (a + b) / math.sqrt(2)], axis=-1)[None]  # 0, 1/sqrt2, 1/sqrt2
    expected = (1 + 2 / math.sqrt(2)) / 3
    assert G.correlational_score(real, generated) == pytest.approx(expected, abs=1e-12)
    assert G.correlational_score(generated, real) == pytest.approx(expected, abs=1e-12)
    # a constant channel counts as uncorrelated; the scale and offset of channels do not matter
    constant = np.stack([a, np.ones(4)], axis=-1)[None]
    assert G.correlational_score(np.stack([a, 3 * a + 2], axis=-1)[None], constant) == pytest.approx(1.0)
    # lag 1 of a = (1, -1, 1, -1): a[t+1] a[t] = -1 at every step, and (a, b) pairs at lag 1
    lagged = G.correlational_score(real[:, :, :2], real[:, :, :2] * [1, -1], max_lag=1)
    assert lagged == pytest.approx((2 + 0 + 2 + 2 + 0) / 5)  # pair (0,1) at lag 0, then the 2x2 at lag 1


def test_frechet_distance_closed_form():
    # commuting covariances: |dm|^2 + sum (sqrt(s1) - sqrt(s2))^2
    got = G.frechet_distance([0.0, 0.0], np.diag([1.0, 4.0]), [1.0, 2.0], np.diag([9.0, 1.0]))
    assert got == pytest.approx(5 + (1 - 3) ** 2 + (2 - 1) ** 2)
    # identity against a full covariance A: |dm|^2 + tr(I + A - 2 A^(1/2))
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    w, v = np.linalg.eigh(cov)
    root = (v * np.sqrt(w)) @ v.T
    got = G.frechet_distance([0.0, 1.0], np.eye(2), [1.0, 1.0], cov)
    assert got == pytest.approx(1 + np.trace(np.eye(2) + cov - 2 * root), rel=1e-10)
    assert G.frechet_distance([1.0, 2.0], cov, [1.0, 2.0], cov) == pytest.approx(0.0, abs=1e-10)


def test_context_fid_of_a_set_to_itself_is_zero():
    encoder = G.fit_ts2vec(REAL, **SETTINGS["context_fid"])
    assert G.context_fid(REAL, REAL, encoder=encoder) == pytest.approx(0.0, abs=1e-6)


# ------------------------------------------------------------------ input forms
def as_dataset(x, names=("a", "b", "c"), draws=None):
    """``(N, T, D)`` -> Dataset; with ``draws`` the windows are split into ``(draw, series)``."""
    dims, shape = ("series", "time"), x.shape[:2]
    if draws:
        dims, shape = ("draw", "series", "time"), (draws, x.shape[0] // draws, x.shape[1])
    return xr.Dataset({n: (dims, x[..., i].reshape(shape)) for i, n in enumerate(names)})


def test_datasets_tensors_and_arrays_agree():
    real, generated = small(seed=1), small(seed=2)
    expected = G.correlational_score(real, generated, max_lag=1)
    ds_real = as_dataset(real)
    ds_gen = as_dataset(generated, draws=4)[["c", "a", "b"]]  # matched by name; draw stacked into series
    assert G.correlational_score(ds_real, ds_gen, max_lag=1) == pytest.approx(expected, abs=1e-12)
    assert G.correlational_score(torch.tensor(real), torch.tensor(generated), max_lag=1) == expected
    # a variable with a feature dim is flattened into channels, in the order of the variables
    featured = ds_real[["c"]].assign(ab=(("series", "time", "feature"), real[..., :2]))
    assert G.correlational_score(featured, real[..., [2, 0, 1]], max_lag=1) == pytest.approx(0.0, abs=1e-12)
    encoder = G.fit_ts2vec(ds_real, seed=0, num_steps=5)
    assert np.array_equal(encoder.encode(ds_real[["c", "b", "a"]]), encoder.encode(real))
    fid = G.context_fid(real, generated, encoder=encoder)
    assert G.context_fid(ds_real[["c", "b", "a"]], ds_gen, encoder=encoder) == pytest.approx(fid, rel=1e-12)
    # (draw, series) is stacked draw-major: here the windows' original order
    assert G.discriminative_score(ds_real, ds_gen, num_steps=5) == G.discriminative_score(real, generated, num_steps=5)


# ------------------------------------------------------------------ (c) errors
ALL = ("discriminative_score", "predictive_score", "correlational_score", "context_fid")


@pytest.mark.parametrize("metric", ALL)
def test_mismatched_or_invalid_windows_are_refused(metric):
    real, fn = small(), getattr(G, metric)
    with pytest.raises(ValueError, match=r"generated windows have \(T, D\) = \(15, 3\)"):
        fn(real, real[:, :15])
    with pytest.raises(ValueError, match=r"generated windows have \(T, D\) = \(16, 2\)"):
        fn(real, real[..., :2])
    with pytest.raises(ValueError, match="real must have shape \\(N, T, D\\)"):
        fn(real[..., 0], real)
    bad = real.copy()
    bad[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="generated contains NaN"):
        fn(real, bad)
    with pytest.raises(TypeError, match="generated must be an xarray.Dataset"):
        fn(real, "windows")
    with pytest.raises(TypeError, match="real must be an xarray.Dataset"):
        fn(as_dataset(real)["a"], real)
    with pytest.raises(ValueError, match="generated has variables"):
        fn(as_dataset(real), as_dataset(real, names=("a", "b", "x")))
    with pytest.raises(ValueError, match="real variable 'a' has dims"):
        fn(as_dataset(real).rename(time="step"), real)
    drawn_a = as_dataset(real)
    drawn_a["a"] = drawn_a["a"].expand_dims(draw=2)  # 80 windows of a, 40 of b and c
    with pytest.raises(ValueError, match="real variable 'b' has 40 windows; 'a' has 80"):
        fn(drawn_a, real)


def test_too_few_windows_and_bad_settings_are_refused():
    real = small()
    with pytest.raises(ValueError, match="generated has 4 windows; this score needs at least 5"):
        G.discriminative_score(real, real[:4])
    with pytest.raises(ValueError, match="real has 1 windows"):
        G.context_fid(real[:1], real)
    with pytest.raises(ValueError, match="needs 2"):
        G.predictive_score(real[:, :1], real[:, :1])
    with pytest.raises(ValueError, match="D >= 2"):
        G.correlational_score(real[..., :1], real[..., :1])
    with pytest.raises(ValueError, match="D >= 2"):
        G.predictive_score(real[..., :1], real[..., :1], target="last")
    with pytest.raises(ValueError, match="target must be"):
        G.predictive_score(real, real, target="first")
    with pytest.raises(ValueError, match="num_steps must be a positive int"):
        G.discriminative_score(real, real, num_steps=0)
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        G.predictive_score(real, real, hidden_size=2.5)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        G.context_fid(real, real, seed=-1)
    with pytest.raises(ValueError, match="learning_rate must be a positive number"):
        G.fit_ts2vec(real, learning_rate=0)
    with pytest.raises(ValueError, match="max_lag must be a non-negative int"):
        G.correlational_score(real, real, max_lag=-1)
    with pytest.raises(TypeError, match="encoder must have an encode"):
        G.context_fid(real, real, encoder=object())
    with pytest.raises(TypeError, match="fit options"):
        G.context_fid(real, real, encoder=G.fit_ts2vec(real, num_steps=2), num_steps=3)
    with pytest.raises(ValueError, match="windows have D = 2 channels; the encoder was trained on 3"):
        G.fit_ts2vec(real, num_steps=2).encode(real[..., :2])
