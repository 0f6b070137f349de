"""Metrics and divergences: closed forms, brute-force references, scipy, xarray, evaluate()."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch
import xarray as xr
from scipy.spatial.distance import jensenshannon, pdist

import pyrossm
from pyrossm.evaluation import metrics as M

RNG = np.random.default_rng


def normal_crps(mu, sigma, y):
    """Closed-form CRPS of N(mu, sigma^2) at y (Gneiting & Raftery, 2007, eq. 21)."""
    z = (y - mu) / sigma
    return sigma * (z * (2 * scipy.stats.norm.cdf(z) - 1) + 2 * scipy.stats.norm.pdf(z) - 1 / math.sqrt(math.pi))


def brute_crps(x, y):
    x = np.asarray(x, float)
    return np.abs(x - y).mean() - 0.5 * np.abs(x[:, None] - x[None, :]).mean()


def test_public_surface():
    expected = {
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
    }
    assert set(M.__all__) == expected
    for name in expected:
        assert getattr(pyrossm.metrics, name) is getattr(M, name)


# ------------------------------------------------------------------ CRPS
def test_crps_matches_the_normal_closed_form():
    mu, sigma = 0.5, 1.5
    y = np.array([-3.0, -1.0, 0.5, 1.0, 4.0])
    samples = RNG(0).normal(mu, sigma, size=(40_000, 5))
    got = M.crps(samples[:, :, None], y[:, None])
    # sd of the estimate is below sigma * sqrt(1 + z^2) / sqrt(S) < 0.025
    np.testing.assert_allclose(got, normal_crps(mu, sigma, y), atol=0.03)


def test_crps_exact_on_a_hand_computed_case():
    # E|X - 2| = 4/3, E|X - X'| = 12/9  ->  CRPS = 4/3 - 2/3
    samples = np.array([0.0, 1.0, 3.0])[:, None, None]
    assert M.crps(samples, np.array([[2.0]]))[0] == pytest.approx(2 / 3, abs=1e-12)


def test_crps_ignores_missing_observations_and_reduce_false():
    rng = RNG(1)
    samples, obs = rng.normal(size=(50, 2, 4)), rng.normal(size=(2, 4))
    obs[0, 1] = np.nan
    full = M.crps(samples, obs, reduce=False)
    assert full.shape == (2, 4) and np.isnan(full[0, 1])
    expected = [
        np.mean([brute_crps(samples[:, 0, t], obs[0, t]) for t in (0, 2, 3)]),
        np.mean([brute_crps(samples[:, 1, t], obs[1, t]) for t in range(4)]),
    ]
    np.testing.assert_allclose(M.crps(samples, obs), expected, rtol=1e-12)


# ------------------------------------------------------------------ CRPS-sum
def tiny_sum_case():
    # draws (S=2, N=1, T=2, D=2): sums [3, 1] and [4, 2]; observed sums [2, 4]
    samples = np.array([[[[1.0, 2.0], [0.0, 1.0]]], [[[2.0, 2.0], [1.0, 1.0]]]])
    observed = np.array([[[1.0, 1.0], [2.0, 2.0]]])
    return samples, observed


def test_crps_sum_hand_computed():
    samples, observed = tiny_sum_case()
    # t0: X in {3, 4}, y = 2: 1.5 - 0.25 = 1.25;  t1: X in {1, 2}, y = 4: 2.5 - 0.25 = 2.25
    assert M.crps_sum(samples, observed, normalize=False)[0] == pytest.approx(1.75)
    assert M.crps_sum(samples, observed)[0] == pytest.approx(3.5 / 6)  # sum c_t / sum |y_t|
    np.testing.assert_allclose(M.crps_sum(samples, observed, reduce=False), [[1.25 / 3, 2.25 / 3]])


def test_crps_sum_of_one_channel_is_crps():
    rng = RNG(2)
    samples, obs = rng.normal(size=(30, 3, 5)), rng.normal(size=(3, 5))
    np.testing.assert_allclose(M.crps_sum(samples, obs, normalize=False), M.crps(samples, obs), rtol=1e-12)
    np.testing.assert_allclose(
        M.crps_sum(samples[..., None], obs[..., None], normalize=False), M.crps(samples, obs), rtol=1e-12
    )
    np.testing.assert_allclose(M.crps_sum(samples, obs), M.crps(samples, obs) / np.abs(obs).mean(1), rtol=1e-12)


def test_crps_sum_quantile_levels_reproduce_the_gluonts_weighted_quantile_loss():
    rng = RNG(3)
    samples, obs = rng.normal(1.0, 1.0, size=(200, 2, 6, 3)), rng.normal(1.0, 1.0, size=(2, 6, 3))
    levels = np.arange(1, 20) / 20
    total, target = samples.sum(-1), obs.sum(-1)
    expected = []
    for n in range(2):
        q = np.quantile(total[:, n], levels, axis=0)  # (Q, T)
        loss = 2 * np.abs((q - target[n]) * ((target[n] <= q) - levels[:, None])).sum(1)
        expected.append(np.mean(loss / np.abs(target[n]).sum()))
    got = M.crps_sum(samples, obs, quantile_levels=levels)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # ... which approximates the exact CRPS-sum
    np.testing.assert_allclose(got, M.crps_sum(samples, obs), rtol=0.1)


def test_crps_sum_skips_a_time_step_with_a_missing_channel():
    samples, observed = tiny_sum_case()
    observed[0, 1, 0] = np.nan
    assert M.crps_sum(samples, observed, normalize=False)[0] == pytest.approx(1.25)
    assert M.crps_sum(samples, observed)[0] == pytest.approx(1.25 / 2)


# ------------------------------------------------------------------ energy score
def test_energy_score_with_one_feature_equals_crps():
    rng = RNG(4)
    samples, obs = rng.normal(size=(64, 3, 5)), rng.normal(size=(3, 5))
    np.testing.assert_allclose(M.energy_score(samples[..., None], obs[..., None]), M.crps(samples, obs), rtol=1e-12)


def test_energy_score_brute_force_double_loop():
    rng = RNG(5)
    S, N, T, D = 4, 2, 3, 3
    samples, obs = rng.normal(size=(S, N, T, D)), rng.normal(size=(N, T, D))
    obs[1, 2, 0] = np.nan
    expected = np.full((N, T), np.nan)
    for n, t in itertools.product(range(N), range(T)):
        if np.isnan(obs[n, t]).any():
            continue
        to_y = sum(np.linalg.norm(samples[i, n, t] - obs[n, t]) for i in range(S)) / S
        pairs = sum(np.linalg.norm(samples[i, n, t] - samples[j, n, t]) for i in range(S) for j in range(S))
        expected[n, t] = to_y - 0.5 * pairs / S**2
    np.testing.assert_allclose(M.energy_score(samples, obs, reduce=False), expected, rtol=1e-12)
    np.testing.assert_allclose(M.energy_score(samples, obs), np.nanmean(expected, axis=1), rtol=1e-12)


# ------------------------------------------------------------------ coverage, width, mae, rmse
def test_coverage_and_width_on_a_constructed_case():
    samples = np.broadcast_to(np.arange(11.0)[:, None, None], (11, 1, 6))  # 80% interval = [1, 9]
    obs = np.array([[0.0, 1.0, 5.0, 9.0, 9.5, np.nan]])
    assert M.coverage(samples, obs, level=0.8)[0] == pytest.approx(3 / 5)
    np.testing.assert_array_equal(M.coverage(samples, obs, level=0.8, reduce=False), [[0, 1, 1, 1, 0, np.nan]])
    assert M.interval_width(samples, level=0.8)[0] == pytest.approx(8.0)
    np.testing.assert_allclose(M.interval_width(samples, level=0.5, reduce=False), np.full((1, 6), 5.0))


def test_coverage_of_a_calibrated_normal_is_the_level():
    rng = RNG(6)
    T = 4000
    samples, obs = rng.normal(size=(1000, 1, T)), rng.normal(size=(1, T))
    # binomial sd sqrt(0.09 / T) = 0.005, plus the sample-quantile noise of the same order
    assert M.coverage(samples, obs, level=0.9)[0] == pytest.approx(0.9, abs=0.02)
    assert M.interval_width(samples, level=0.9)[0] == pytest.approx(2 * 1.6449, abs=0.02)


def test_mae_and_rmse_of_the_median():
    samples = np.stack([np.zeros((2, 2)), np.array([[1.0, 4.0], [2.0, 5.0]]), np.full((2, 2), 9.0)])
    obs = np.array([[0.0, 7.0], [0.0, np.nan]])  # errors of the median: [1, -3], [2, NaN]
    np.testing.assert_allclose(M.mae(samples, obs), [2.0, 2.0])
    np.testing.assert_allclose(M.rmse(samples, obs), [math.sqrt(5.0), 2.0])
    np.testing.assert_allclose(M.mae(samples, obs, reduce=False), [[1.0, 3.0], [2.0, np.nan]])
    even = np.array([0.0, 1.0, 2.0, 10.0])[:, None, None]  # median of an even count: 1.5
    assert M.mae(even, np.zeros((1, 1)))[0] == pytest.approx(1.5)


# ------------------------------------------------------------------ divergences
def test_jsd_identical_and_disjoint():
    x = RNG(7).normal(size=(500, 3))
    np.testing.assert_allclose(M.jsd(x, x), 0.0, atol=1e-15)
    np.testing.assert_allclose(M.jsd(x, x[::-1] + 0.0), 0.0, atol=1e-15)
    u = RNG(8).uniform(size=(400, 2))
    np.testing.assert_allclose(M.jsd(u, u + 2.0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(M.jsd(np.ones((5, 2)), np.ones((3, 2))), 0.0, atol=1e-15)  # degenerate range


def test_jsd_matches_numpy_histograms_and_scipy():
    rng = RNG(9)
    x, y = rng.normal(size=(300, 2)), rng.normal(0.5, 1.5, size=(500, 2))
    expected = []
    for n in range(2):
        lo, hi = min(x[:, n].min(), y[:, n].min()), max(x[:, n].max(), y[:, n].max())
        p = np.histogram(x[:, n], bins=30, range=(lo, hi))[0]
        q = np.histogram(y[:, n], bins=30, range=(lo, hi))[0]
        expected.append(jensenshannon(p / p.sum(), q / q.sum(), base=2) ** 2)
    np.testing.assert_allclose(M.jsd(x, y, bins=30), expected, rtol=1e-10)
    # extra dims are averaged per series
    xx, yy = x.reshape(300, 1, 2), y.reshape(500, 1, 2)
    np.testing.assert_allclose(M.jsd(xx, yy, bins=30), [np.mean(expected)], rtol=1e-10)


def test_jsd_against_a_density_delegates_to_jsd_to_density():
    x = RNG(10).normal(size=(2000, 3))
    got = M.jsd(x, scipy.stats.norm.pdf, bins=40, low=-4, high=4)
    np.testing.assert_array_equal(got, M.jsd_to_density(x, scipy.stats.norm.pdf, bins=40, low=-4, high=4))
    assert np.all(got < 0.02)
    assert np.all(M.jsd(x + 3.0, scipy.stats.norm.pdf, low=-4, high=7) > 0.5)


def test_wasserstein_matches_scipy_and_shift():
    rng = RNG(11)
    x, y = rng.normal(size=(97, 3, 2)), rng.exponential(size=(41, 3, 2))
    expected = [np.mean([scipy.stats.wasserstein_distance(x[:, n, d], y[:, n, d]) for d in range(2)]) for n in range(3)]
    np.testing.assert_allclose(M.wasserstein(x, y), expected, rtol=1e-12)
    np.testing.assert_allclose(M.wasserstein(x, x + 0.75), 0.75, rtol=1e-12)
    np.testing.assert_allclose(M.wasserstein(x, x), 0.0, atol=1e-15)
    ties = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
    assert M.wasserstein(ties, np.array([1.0, 0.0]))[0] == pytest.approx(
        scipy.stats.wasserstein_distance(ties, [1.0, 0.0])
    )


def test_sliced_wasserstein_one_dim_equals_wasserstein_and_scales():
    rng = RNG(12)
    x, y = rng.normal(size=(80, 4, 1)), rng.normal(1.0, 2.0, size=(60, 4, 1))
    np.testing.assert_allclose(M.sliced_wasserstein(x, y, num_projections=5), M.wasserstein(x, y), rtol=1e-12)
    x2, y2 = rng.normal(size=(80, 4, 3)), rng.normal(size=(60, 4, 3)) * 2.0
    base = M.sliced_wasserstein(x2, y2)
    shift = np.array([3.0, -1.0, 2.0])
    np.testing.assert_allclose(M.sliced_wasserstein(x2 + shift, y2 + shift), base, rtol=1e-10)
    np.testing.assert_allclose(M.sliced_wasserstein(-2.5 * x2, -2.5 * y2), 2.5 * base, rtol=1e-10)
    np.testing.assert_array_equal(M.sliced_wasserstein(x2, y2, seed=0), base)
    assert not np.allclose(M.sliced_wasserstein(x2, y2, seed=1), base)
    # (S, N, T, D) is the flattened (S, N, T * D)
    x4, y4 = x2.reshape(80, 4, 3, 1), y2.reshape(60, 4, 3, 1)
    np.testing.assert_array_equal(M.sliced_wasserstein(x4, y4), base)


def test_sliced_wasserstein_of_a_translation():
    # each projection of a translate by v is shifted by theta.v: SW1 = E|theta.v| = |v| 2/pi in 2-D
    x = RNG(13).normal(size=(50, 1, 2))
    v = np.array([3.0, 4.0])
    got = M.sliced_wasserstein(x, x + v, num_projections=20_000)[0]
    assert got == pytest.approx(5.0 * 2 / math.pi, rel=0.02)


def brute_mmd(x, y, h):
    k = lambda a, b: math.exp(-np.sum((a - b) ** 2) / (2 * h * h))  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd_equals_the_brute_force_unbiased_estimator():
    rng = RNG(14)
    x, y = rng.normal(size=(6, 3, 2)), rng.normal(0.5, 1.0, size=(5, 3, 2))
    np.testing.assert_allclose(
        M.mmd(x, y, bandwidth=0.7), [brute_mmd(x[:, n], y[:, n], 0.7) for n in range(3)], rtol=1e-12
    )
    heuristic = [np.median(pdist(np.concatenate([x[:, n], y[:, n]]))) for n in range(3)]
    np.testing.assert_allclose(M.mmd(x, y), [brute_mmd(x[:, n], y[:, n], heuristic[n]) for n in range(3)], rtol=1e-12)
    np.testing.assert_allclose(
        M.mmd(x, y, bandwidth=[0.5, 1.0, 2.0]),
        [brute_mmd(x[:, n], y[:, n], h) for n, h in enumerate([0.5, 1.0, 2.0])],
        rtol=1e-12,
    )


def test_mmd_same_law_near_zero_different_law_positive():
    rng = RNG(15)
    x, y = rng.normal(size=(400, 4, 2)), rng.normal(size=(300, 4, 2))
    same = M.mmd(x, y)
    assert np.all(np.abs(same) < 0.01)
    # N(0, I) vs N(v, I) in D dims, kernel length h: E k = (h^2 / (h^2 + 2))^(D/2) exp(-|v|^2 / (2 (h^2 + 2)))
    expected = 2 * (1 / 3) * (1 - math.exp(-1 / 6))  # h = 1, |v| = 1, D = 2
    np.testing.assert_allclose(M.mmd(x, y + np.array([1.0, 0.0]), bandwidth=1.0), expected, atol=0.03)
    assert np.all(M.mmd(x, y + np.array([1.0, 0.0])) > 0.05)  # median heuristic


# ------------------------------------------------------------------ xarray inputs
def test_xarray_inputs_give_the_numpy_numbers():
    rng = RNG(16)
    s, o, r = rng.normal(size=(40, 3, 5, 2)), rng.normal(size=(3, 5, 2)), rng.normal(size=(30, 3, 5, 2))
    o[1, 2, 0] = np.nan
    dims = ("draw", "series", "time", "f")
    # sample dim not first; observed in yet another order
    S = xr.DataArray(s, dims=dims).transpose("series", "time", "draw", "f")
    O = xr.DataArray(o, dims=dims[1:]).transpose("time", "series", "f")
    R = xr.DataArray(r, dims=dims).transpose("f", "series", "draw", "time")
    for f in (M.crps, M.crps_sum, M.energy_score, M.coverage, M.mae, M.rmse):
        np.testing.assert_allclose(f(S, O), f(s, o), rtol=1e-12, err_msg=f.__name__)
    np.testing.assert_allclose(M.interval_width(S), M.interval_width(s), rtol=1e-12)
    for f in (M.jsd, M.wasserstein, M.sliced_wasserstein, M.mmd):
        np.testing.assert_allclose(f(S, R), f(s, r), rtol=1e-12, err_msg=f.__name__)
    torch_s = torch.as_tensor(s, dtype=torch.float64).requires_grad_()
    np.testing.assert_allclose(M.crps(torch_s, torch.as_tensor(o)), M.crps(s, o), rtol=1e-12)


# ------------------------------------------------------------------ evaluate
@pytest.fixture
def fc_truth():
    rng = RNG(17)
    S, N, T = 50, 4, 3
    times = np.arange(5, 5 + T)
    fc = xr.Dataset(
        {
            "x": (("draw", "series", "time"), rng.normal(size=(S, N, T))),
            "y": (("draw", "series", "time", "f"), rng.normal(size=(S, N, T, 2))),
        },
        coords={"series": ["a", "b", "c", "d"], "time": times, "f": ["u", "v"]},
    )
    truth = xr.Dataset(
        {
            "x": (("series", "time"), rng.normal(size=(N, 10))),
            "y": (("time", "series", "f"), rng.normal(size=(10, N, 2))),
        },
        coords={"series": ["d", "c", "b", "a"], "time": np.arange(10), "f": ["v", "u"]},
    )
    return fc, truth


def test_evaluate_table_and_values(fc_truth):
    fc, truth = fc_truth
    table = M.evaluate(fc, truth)
    assert isinstance(table, pd.DataFrame) and table.index.name == "variable"
    assert list(table.index) == ["x", "y"]
    assert list(table.columns) == ["crps", "crps_sum", "energy_score", "coverage_90", "width_90", "mae", "rmse"]
    x_s, x_o = fc["x"].values, truth["x"].sel(series=fc.series, time=fc.time).values
    y_s = fc["y"].values
    y_o = truth["y"].sel(series=fc.series, time=fc.time, f=fc.f).transpose("series", "time", "f").values
    assert table.loc["x", "crps"] == pytest.approx(M.crps(x_s, x_o).mean(), rel=1e-12)
    assert table.loc["y", "crps"] == pytest.approx(M.crps(y_s, y_o).mean(), rel=1e-12)
    assert table.loc["y", "crps_sum"] == pytest.approx(M.crps_sum(y_s, y_o).mean(), rel=1e-12)
    assert table.loc["y", "energy_score"] == pytest.approx(M.energy_score(y_s, y_o).mean(), rel=1e-12)
    assert table.loc["x", "energy_score"] == pytest.approx(table.loc["x", "crps"], rel=1e-12)
    assert table.loc["y", "coverage_90"] == pytest.approx(M.coverage(y_s, y_o).mean(), rel=1e-12)
    assert table.loc["x", "width_90"] == pytest.approx(M.interval_width(x_s).mean(), rel=1e-12)
    assert table.loc["x", "mae"] == pytest.approx(M.mae(x_s, x_o).mean(), rel=1e-12)
    assert table.loc["y", "rmse"] == pytest.approx(M.rmse(y_s, y_o).mean(), rel=1e-12)


def test_evaluate_metric_selection_level_and_per_series(fc_truth):
    fc, truth = fc_truth
    truth["x"][0, 6] = np.nan  # series "d", time 6: ignored
    table = M.evaluate(fc, truth, metrics=["coverage", "crps", "interval_width"], level=0.95)
    assert list(table.columns) == ["coverage_95", "crps", "width_95"]
    per = M.evaluate(fc, truth, metrics=["crps"], per_series=True)
    assert per.index.names == ["variable", "series"] and per.shape == (8, 1)
    assert list(per.loc["x"].index) == ["a", "b", "c", "d"]
    x_o = truth["x"].sel(series=fc.series, time=fc.time).values
    np.testing.assert_allclose(per.loc["x", "crps"].values, M.crps(fc["x"].values, x_o), rtol=1e-12)
    assert np.isfinite(per.values).all()
    np.testing.assert_allclose(per.groupby(level="variable").mean()["crps"].values, table["crps"].values)


def test_evaluate_errors(fc_truth):
    fc, truth = fc_truth
    with pytest.raises(ValueError, match=r"unknown.*'bogus'.*valid names.*'crps'"):
        M.evaluate(fc, truth, metrics=["crps", "bogus"])
    with pytest.raises(ValueError, match="truth has no variable 'y'"):
        M.evaluate(fc, truth[["x"]])
    with pytest.raises(ValueError, match="'x'.*'time'"):
        M.evaluate(fc, truth.isel(time=slice(0, 6)))
    with pytest.raises(ValueError, match="'x'.*'time'"):
        M.evaluate(fc, truth.assign_coords(time=np.arange(100, 110)))
    with pytest.raises(ValueError, match="forecast variable 'x'"):
        M.evaluate(fc.isel(draw=0), truth)
    with pytest.raises(ValueError, match="truth variable 'x'"):
        M.evaluate(fc, truth.assign(x=truth["x"].expand_dims(g=2)))
    with pytest.raises(TypeError, match="forecast"):
        M.evaluate(fc["x"], truth)
    with pytest.raises(ValueError, match="truth has no variable 'y'"):  # a DataArray is converted
        M.evaluate(fc, truth["x"])
    with pytest.raises(TypeError, match="data must be"):
        M.evaluate(fc, [1.0, 2.0])
    with pytest.raises(ValueError, match="level"):
        M.evaluate(fc, truth, level=90)
    with pytest.raises(ValueError, match="metrics"):
        M.evaluate(fc, truth, metrics=["crps", "crps"])


# ------------------------------------------------------------------ argument errors
def test_argument_errors():
    s, o = np.zeros((5, 2, 3)), np.zeros((2, 3))
    with pytest.raises(ValueError, match="observed"):
        M.crps(s, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="samples"):
        M.crps(np.zeros(5), np.zeros(()))
    with pytest.raises(TypeError, match="samples"):
        M.crps(xr.Dataset({"x": (("draw", "series"), np.zeros((5, 2)))}), np.zeros(2))
    with pytest.raises(TypeError, match="observed"):
        M.mae(s, "abc")
    with pytest.raises(ValueError, match="samples.*'draw'"):
        M.crps(xr.DataArray(s, dims=("sample", "series", "time")), o)
    with pytest.raises(ValueError, match="observed.*dims"):
        M.crps(xr.DataArray(s, dims=("draw", "series", "time")), xr.DataArray(o, dims=("series", "t")))
    with pytest.raises(ValueError, match="samples"):
        M.crps_sum(np.zeros((5, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="quantile_levels"):
        M.crps_sum(s, o, quantile_levels=[0.5, 1.0])
    with pytest.raises(ValueError, match="feature dim"):
        M.energy_score(np.zeros((5, 2)), np.zeros(2))
    for bad in (0, 1, 1.5, -0.1, True, "0.9"):
        with pytest.raises(ValueError, match="level"):
            M.coverage(s, o, level=bad)
    with pytest.raises(ValueError, match="level"):
        M.interval_width(s, level=1.0)
    with pytest.raises(ValueError, match="samples"):
        M.interval_width(np.zeros(5))
    with pytest.raises(ValueError, match="observed"):
        M.rmse(s, np.zeros(3))
    with pytest.raises(ValueError, match="bins"):
        M.jsd(s, s, bins=0)
    with pytest.raises(ValueError, match="reference"):
        M.jsd(s, np.zeros((5, 3, 3)))
    with pytest.raises(ValueError, match="low"):
        M.jsd(s, s, low=1.0, high=0.0)
    with pytest.raises(ValueError, match="samples"):
        M.jsd(s, scipy.stats.norm.pdf)
    with pytest.raises(ValueError, match="samples.*NaN"):
        M.wasserstein(np.full((3, 2), np.nan), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="reference"):
        M.wasserstein(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="reference.*'draw'"):
        M.wasserstein(
            xr.DataArray(np.zeros((3, 2)), dims=("draw", "series")),
            xr.DataArray(np.zeros((3, 2)), dims=("x", "series")),
        )
    with pytest.raises(ValueError, match="num_projections"):
        M.sliced_wasserstein(s, s, num_projections=0)
    with pytest.raises(ValueError, match="samples.*at least 2"):
        M.mmd(np.zeros((1, 2, 2)), np.zeros((5, 2, 2)))
    with pytest.raises(ValueError, match="reference.*at least 2"):
        M.mmd(np.zeros((5, 2, 2)), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="bandwidth"):
        M.mmd(s, s, bandwidth=0.0)
    with pytest.raises(ValueError, match="bandwidth"):
        M.mmd(s, s, bandwidth=[1.0, 2.0, 3.0])


def test_metrics_alias_is_importable():
    """``pyrossm.metrics`` is the evaluation package, also as an import path."""
    import pyrossm
    from pyrossm.metrics import coverage, crps

    assert pyrossm.metrics is pyrossm.evaluation
    assert crps is pyrossm.evaluation.crps and coverage is pyrossm.evaluation.metrics.coverage


def test_evaluate_takes_the_truth_in_every_form_fit_takes(fc_truth):
    fc, truth = fc_truth
    fc, truth = fc[["x"]], truth[["x"]]
    table = M.evaluate(fc, truth)
    wide = truth.to_dataframe().reset_index()  # a wide DataFrame (series, time, x)
    pd.testing.assert_frame_equal(M.evaluate(fc, wide), table)
    pd.testing.assert_frame_equal(M.evaluate(fc, truth["x"]), table)  # a DataArray
