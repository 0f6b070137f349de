import math
from fractions import Fraction

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from pyrossm import datasets
from pyrossm.datasets import (
    GaussianMixture1D,
    bimodal_random_walk,
    bimodal_transition_law,
    kalman_filter,
    kalman_predictive,
    linear_gaussian,
)

# -- bimodal random walk -----------------------------------------------------------------------


def test_bimodal_shapes_and_coords():
    ds, z = bimodal_random_walk(num_series=16, length=8, seed=3, return_latent=True)
    assert isinstance(ds, xr.Dataset) and list(ds.data_vars) == ["x"]
    assert ds["x"].dims == ("series", "time") and ds["x"].shape == (16, 8)
    np.testing.assert_array_equal(ds["time"].values, np.arange(8))
    np.testing.assert_array_equal(ds["series"].values, np.arange(16))
    assert ds["time"].dtype.kind == "i"
    assert z.name == "z" and z.dims == ("series", "time") and z.shape == (16, 8)
    assert ds.attrs["noise_var"] == 0.2 and ds.attrs["decay"] == 0.9 and ds.attrs["step"] == 4.0
    # with z0 = 0 the first latent value is +-step
    assert set(np.unique(z.values[:, 0])) <= {-4.0, 4.0}


def test_bimodal_seed_reproduces():
    a = bimodal_random_walk(num_series=32, length=10, seed=7)
    b = bimodal_random_walk(num_series=32, length=10, seed=7)
    c = bimodal_random_walk(num_series=32, length=10, seed=8)
    np.testing.assert_array_equal(a["x"].values, b["x"].values)
    assert not np.array_equal(a["x"].values, c["x"].values)
    _, za = bimodal_random_walk(num_series=32, length=10, seed=7, return_latent=True)
    _, zb = bimodal_random_walk(num_series=32, length=10, seed=7, return_latent=True)
    np.testing.assert_array_equal(za.values, zb.values)


def test_bimodal_latent_increments_are_exactly_step():
    ds, z = bimodal_random_walk(num_series=1024, length=32, seed=0, return_latent=True)
    z = z.values
    previous = np.concatenate([np.zeros((z.shape[0], 1)), z[:, :-1]], axis=1)  # z0 = 0
    increments = z - 0.9 * previous
    fraction = np.isclose(np.abs(increments), 4.0, rtol=0, atol=1e-9).mean()
    assert fraction == 1.0
    # signs are fair: fraction of +4 within 5 standard errors of 1/2
    positive = (increments > 0).mean()
    assert abs(positive - 0.5) < 5 * math.sqrt(0.25 / increments.size)


def test_bimodal_observation_noise_and_observed_increments():
    n, length = 1024, 32
    ds, z = bimodal_random_walk(num_series=n, length=length, seed=1, return_latent=True)
    noise = ds["x"].values - z.values
    count = noise.size
    assert abs(noise.mean()) < 5 * math.sqrt(0.2 / count)
    assert abs(noise.var() - 0.2) < 5 * 0.2 * math.sqrt(2.0 / count)
    x = ds["x"].values
    increments = x[:, 1:] - 0.9 * x[:, :-1]  # 4 s_t + eps_t - 0.9 eps_{t-1}, sd ~ 0.6
    assert (np.abs(np.abs(increments) - 4.0) < 2.0).mean() > 0.99


def test_bimodal_parameters():
    ds, z = bimodal_random_walk(
        num_series=4, length=3, seed=0, decay=0.5, step=1.0, noise_var=0.0, z0=2.0, return_latent=True
    )
    np.testing.assert_array_equal(ds["x"].values, z.values)
    assert set(np.unique(z.values[:, 0])) <= {0.0, 2.0}  # 0.5 * 2 +- 1
    with pytest.raises(ValueError, match="num_series"):
        bimodal_random_walk(num_series=0)
    with pytest.raises(ValueError, match="noise_var"):
        bimodal_random_walk(noise_var=-1.0)


# -- transition law ----------------------------------------------------------------------------


def test_transition_law_components():
    law = bimodal_transition_law(np.array([0.0, 1.0, -2.0]))
    assert isinstance(law, GaussianMixture1D)
    assert law.batch_shape == (3,) and law.num_components == 2
    np.testing.assert_allclose(law.means, [[4.0, -4.0], [4.9, -3.1], [2.2, -5.8]])
    np.testing.assert_allclose(law.stds, math.sqrt(0.2))
    np.testing.assert_allclose(law.weights, 0.5)
    np.testing.assert_allclose(law.mean, [0.0, 0.9, -1.8])
    np.testing.assert_allclose(law.var, 16.2)


def test_transition_law_pdf_integrates_to_one():
    law = bimodal_transition_law(np.array([-3.0, 0.0, 5.0]))
    grid = np.linspace(-30.0, 30.0, 60001)[:, None]  # (G, 1) against batch (3,)
    density = law.pdf(grid)
    assert density.shape == (60001, 3)
    np.testing.assert_allclose(np.trapezoid(density, grid[:, 0], axis=0), 1.0, atol=1e-8)
    inner = np.abs(grid[:, 0]) < 15.0
    np.testing.assert_allclose(np.log(density[inner]), law.logpdf(grid[inner]), rtol=1e-10)
    assert np.isfinite(law.logpdf(np.array([[-200.0], [200.0]]))).all()
    # cdf agrees with the integrated pdf
    cdf_numeric = np.trapezoid(density[:30001], grid[:30001, 0], axis=0)
    np.testing.assert_allclose(law.cdf(0.0), cdf_numeric, atol=1e-6)
    np.testing.assert_allclose(law.cdf(np.array([-1e3, 1e3])[:, None]), [[0.0] * 3, [1.0] * 3])


def test_transition_law_sample_moments():
    law = bimodal_transition_law(np.array([0.0, 2.0]))
    n = 200_000
    draws = law.sample(n, np.random.default_rng(0))
    assert draws.shape == (n, 2)
    np.testing.assert_allclose(draws.mean(0), law.mean, atol=5 * math.sqrt(16.2 / n))
    np.testing.assert_allclose(draws.var(0), law.var, atol=0.05)
    np.testing.assert_array_equal(draws, law.sample(n, 0))  # an int seed is a Generator seed


def test_transition_law_matches_simulation():
    ds, z = bimodal_random_walk(num_series=2048, length=4, seed=5, return_latent=True)
    law = bimodal_transition_law(z.values[:, :-1])
    pit = law.cdf(ds["x"].values[:, 1:]).ravel()
    assert stats.kstest(pit, "uniform").pvalue > 1e-3


def test_gaussian_mixture_validation():
    with pytest.raises(ValueError, match="sum to 1"):
        GaussianMixture1D([0.5, 0.6], [0.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="stds"):
        GaussianMixture1D([0.5, 0.5], [0.0, 1.0], 0.0)


# -- linear Gaussian SSM and the Kalman filter -------------------------------------------------


def test_linear_gaussian_shapes_and_seed():
    ds, z = linear_gaussian(num_series=8, length=5, seed=2, return_latent=True)
    assert ds["x"].dims == ("series", "time") and ds["x"].shape == (8, 5)
    assert z.dims == ("series", "time")
    again = linear_gaussian(num_series=8, length=5, seed=2)
    np.testing.assert_array_equal(ds["x"].values, again["x"].values)
    A = [[0.9, 0.1], [0.0, 0.7]]
    C = [[1.0, 0.0], [0.5, 1.0], [0.0, 2.0]]
    ds2, z2 = linear_gaussian(num_series=8, length=5, A=A, C=C, return_latent=True)
    assert ds2["x"].dims == ("series", "time", "feature") and ds2["x"].shape == (8, 5, 3)
    assert z2.dims == ("series", "time", "latent") and z2.shape == (8, 5, 2)
    with pytest.raises(ValueError, match="C must be"):
        linear_gaussian(A=A, C=[[1.0, 0.0, 0.0]])


def test_linear_gaussian_marginal_variance():
    ds = linear_gaussian(num_series=4096, length=3, seed=0, A=0.9, C=1.0, Q=0.5, R=0.3, P0=1.0)
    x = ds["x"].values
    # Var x_1 = P0 + R = 1.3 ; Var x_2 = 0.81 * 1 + 0.5 + 0.3 = 1.61
    np.testing.assert_allclose(x.var(0)[:2], [1.3, 1.61], atol=5 * 1.61 * math.sqrt(2 / 4096))


SCALAR = dict(A=0.9, C=1.0, Q=0.5, R=0.3, m0=0.0, P0=1.0)


def test_kalman_two_step_hand_computed():
    x = np.array([[1.0, 2.0]])
    # step 1: predict N(0, 1); S = 13/10; K = 10/13 -> m1 = 10/13, P1 = 3/13
    # step 2: predict m = 9/13, P = 0.81 * 3/13 + 1/2 = 893/1300; S = 1283/1300; K = 893/1283
    #         m2 = 9/13 + K (2 - 9/13) = 26728/16679, P2 = P R / S = 2679/12830
    m2, P2 = Fraction(26728, 16679), Fraction(2679, 12830)
    A, Q, R = Fraction(9, 10), Fraction(1, 2), Fraction(3, 10)
    mean, cov, loglik = kalman_predictive(x, 2, **SCALAR)
    assert mean.shape == (1, 2, 1) and cov.shape == (1, 2, 1, 1)
    assert mean[0, 0, 0] == pytest.approx(float(A * m2), rel=1e-12)
    assert cov[0, 0, 0, 0] == pytest.approx(float(A * A * P2 + Q + R), rel=1e-12)
    # two steps ahead
    assert mean[0, 1, 0] == pytest.approx(float(A * A * m2), rel=1e-12)
    assert cov[0, 1, 0, 0] == pytest.approx(float(A**4 * P2 + A * A * Q + Q + R), rel=1e-12)
    expected_ll = stats.norm.logpdf(1.0, 0.0, math.sqrt(1.3)) + stats.norm.logpdf(2.0, 9 / 13, math.sqrt(1283 / 1300))
    assert loglik[0] == pytest.approx(expected_ll, rel=1e-12)
    filtered = kalman_filter(x, **SCALAR)
    np.testing.assert_allclose(filtered["mean"][0, :, 0], [10 / 13, float(m2)], rtol=1e-12)
    np.testing.assert_allclose(filtered["cov"][0, :, 0, 0], [3 / 13, float(P2)], rtol=1e-12)


def joint_gaussian(length, A, C, Q, R, m0, P0):
    """Mean (T*d,) and covariance (T*d, T*d) of x_{1:T}, built explicitly."""
    A, C, Q, R = (np.atleast_2d(np.asarray(v, dtype=float)) for v in (A, C, Q, R))
    P0 = np.atleast_2d(np.asarray(P0, dtype=float))
    m0 = np.atleast_1d(np.asarray(m0, dtype=float))
    k = A.shape[0]
    means, variances = [m0], [P0]
    for _ in range(1, length):
        means.append(A @ means[-1])
        variances.append(A @ variances[-1] @ A.T + Q)
    cov_z = np.zeros((length * k, length * k))
    for t in range(length):
        for s in range(t + 1):
            block = np.linalg.matrix_power(A, t - s) @ variances[s]  # Cov(z_t, z_s)
            cov_z[t * k : (t + 1) * k, s * k : (s + 1) * k] = block
            cov_z[s * k : (s + 1) * k, t * k : (t + 1) * k] = block.T
    big_C = np.kron(np.eye(length), C)
    mean = big_C @ np.concatenate(means)
    cov = big_C @ cov_z @ big_C.T + np.kron(np.eye(length), R)
    return mean, cov


def test_kalman_loglik_equals_joint_gaussian_scalar():
    x = linear_gaussian(num_series=3, length=6, seed=4, **SCALAR)["x"].values
    _, _, loglik = kalman_predictive(x, 1, **SCALAR)
    mean, cov = joint_gaussian(6, **SCALAR)
    for i in range(3):
        expected = stats.multivariate_normal(mean, cov).logpdf(x[i])
        assert loglik[i] == pytest.approx(expected, rel=1e-10)


def test_kalman_loglik_equals_joint_gaussian_multivariate_with_missing():
    params = dict(
        A=[[0.8, 0.2], [-0.1, 0.9]],
        C=[[1.0, 0.0], [0.5, -1.0]],
        Q=[[0.3, 0.1], [0.1, 0.2]],
        R=[[0.2, 0.05], [0.05, 0.1]],
        m0=[0.5, -0.5],
        P0=[[1.0, 0.2], [0.2, 0.5]],
    )
    length = 4
    x = linear_gaussian(num_series=3, length=length, seed=9, **params)["x"].values  # (3, 4, 2)
    x[0, 1, :] = np.nan  # a fully missing step
    x[1, 2, 1] = np.nan  # a partially missing step
    x[2, 0, 0] = np.nan
    _, _, loglik = kalman_predictive(x, 2, **params)
    mean, cov = joint_gaussian(length, **params)
    for i in range(3):
        flat = x[i].reshape(-1)
        keep = ~np.isnan(flat)
        expected = stats.multivariate_normal(mean[keep], cov[np.ix_(keep, keep)]).logpdf(flat[keep])
        assert loglik[i] == pytest.approx(expected, rel=1e-10)


def test_kalman_predictive_matches_joint_conditional():
    params = dict(
        A=[[0.8, 0.2], [-0.1, 0.9]],
        C=[[1.0, 0.0], [0.5, -1.0]],
        Q=0.3 * np.eye(2),
        R=0.2 * np.eye(2),
        m0=[0.0, 0.0],
        P0=np.eye(2),
    )
    length, horizon = 3, 2
    x = linear_gaussian(num_series=1, length=length, seed=1, **params)["x"].values
    pred_mean, pred_cov, _ = kalman_predictive(x, horizon, **params)
    mean, cov = joint_gaussian(length + horizon, **params)
    n_obs = length * 2
    gain = cov[n_obs:, :n_obs] @ np.linalg.inv(cov[:n_obs, :n_obs])
    cond_mean = mean[n_obs:] + gain @ (x[0].reshape(-1) - mean[:n_obs])
    cond_cov = cov[n_obs:, n_obs:] - gain @ cov[:n_obs, n_obs:]
    np.testing.assert_allclose(pred_mean[0].reshape(-1), cond_mean, rtol=1e-9, atol=1e-12)
    for j in range(horizon):
        np.testing.assert_allclose(pred_cov[0, j], cond_cov[2 * j : 2 * j + 2, 2 * j : 2 * j + 2], rtol=1e-9)


def test_kalman_missing_step_is_pure_prediction():
    x = np.array([[1.0, np.nan, 2.0]])
    filtered = kalman_filter(x, **SCALAR)
    np.testing.assert_allclose(filtered["mean"][0, 1], 0.9 * filtered["mean"][0, 0], rtol=1e-12)
    np.testing.assert_allclose(filtered["cov"][0, 1], 0.81 * filtered["cov"][0, 0] + 0.5, rtol=1e-12)
    np.testing.assert_allclose(filtered["pred_mean"][0, 1], filtered["mean"][0, 1])
    # trailing missing steps: the predictive continues the prediction
    mean_a, cov_a, ll_a = kalman_predictive(np.array([[1.0, np.nan]]), 1, **SCALAR)
    mean_b, cov_b, ll_b = kalman_predictive(np.array([[1.0]]), 2, **SCALAR)
    np.testing.assert_allclose(mean_a[:, 0], mean_b[:, 1])
    np.testing.assert_allclose(cov_a[:, 0], cov_b[:, 1])
    np.testing.assert_allclose(ll_a, ll_b)


def test_kalman_input_validation():
    with pytest.raises(ValueError, match="x must have shape"):
        kalman_filter(np.zeros((2, 3, 2)), **SCALAR)
    with pytest.raises(ValueError, match="horizon"):
        kalman_predictive(np.zeros((2, 3)), 0, **SCALAR)


# -- real data -----------------------------------------------------------------------------------


def test_geyser():
    ds = datasets.geyser()
    assert set(ds.data_vars) == {"waiting", "duration"}
    assert ds["waiting"].shape == (1, 299) and ds["waiting"].dims == ("series", "time")
    assert ds["series"].values.tolist() == ["geyser"]
    np.testing.assert_array_equal(ds["time"].values, np.arange(299))
    assert ds["waiting"].dtype == np.float64 and ds["duration"].dtype == np.float64
    assert 60.0 < float(ds["waiting"].mean()) < 85.0
    assert 2.0 < float(ds["duration"].mean()) < 5.0
    assert not ds["waiting"].isnull().any()


def test_stock():
    ds = datasets.stock()
    assert list(ds.data_vars) == ["Open", "High", "Low", "Close", "Adj_Close", "Volume"]
    assert ds["Close"].shape == (1, 3685)
    assert ds["series"].values.tolist() == ["goog"]
    np.testing.assert_array_equal(ds["time"].values, np.arange(3685))
    assert (ds["High"] >= ds["Low"]).all()
    assert float(ds["Close"][0, 0]) < float(ds["Close"][0, -1])  # chronological order


def test_loaders_missing_file(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets.real, "DATA_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="geyser.csv"):
        datasets.geyser()
    with pytest.raises(FileNotFoundError, match="stock_goog.csv"):
        datasets.stock()


def test_real_data_is_package_data(monkeypatch, tmp_path):
    # the CSVs are read through importlib.resources from inside the package, not from the checkout
    import importlib.resources
    from pathlib import Path

    import pyrossm

    assert datasets.DATA_DIR == importlib.resources.files("pyrossm.datasets") / "data"
    package_dir = Path(pyrossm.__file__).resolve().parent
    assert Path(str(datasets.DATA_DIR)).resolve() == package_dir / "datasets" / "data"
    for name in ("geyser.csv", "stock_goog.csv", "README.md"):
        assert (datasets.DATA_DIR / name).is_file()
    monkeypatch.chdir(tmp_path)  # any working directory
    assert datasets.geyser()["waiting"].shape == (1, 299)
    assert datasets.stock()["Close"].shape == (1, 3685)


def test_public_names():
    # pyrossm.datasets became a package (synthetic.py, real.py, systems.py, filtering.py): the old names are
    # all still there
    names = [
        "GaussianMixture1D",
        "ParticleModel",
        "SYSTEMS",
        "System",
        "basic_motions",
        "bimodal_random_walk",
        "bimodal_transition_law",
        "bimodal_walk",
        "covariate_gated",
        "energy",
        "get_system",
        "geyser",
        "kalman_filter",
        "kalman_predictive",
        "linear_gaussian",
        "predictive_law",
        "regime_switching_seasonal",
        "state_dependent_modes",
        "stock",
        "trimodal_walk",
        "two_dim_latent",
    ]
    assert sorted(datasets.__all__) == names
    for name in names + ["DATA_DIR", "STOCK_COLUMNS", "BASIC_MOTIONS_CHANNELS"]:
        assert hasattr(datasets, name), name
    assert datasets.STOCK_COLUMNS == ("Open", "High", "Low", "Close", "Adj_Close", "Volume")


def test_real_data_encodes():
    from pyrossm.data import DataContract

    contract, sd = DataContract.fit(datasets.geyser())
    assert sd.values.shape == (1, 299, 2) and sd.lengths.tolist() == [299]
