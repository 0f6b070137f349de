"""DKF against the exact Kalman predictive on linear-Gaussian data (issue: foundation)."""

import numpy as np
import pytest

import pyrossm
from pyrossm.datasets import kalman_predictive, linear_gaussian
from pyrossm.evaluation import crps

PARAMS = dict(A=0.9, C=1.0, Q=0.5, R=0.3, m0=0.0, P0=1.0)
LENGTH, HORIZON, SAMPLES = 20, 4, 500


@pytest.fixture(scope="module")
def kalman_comparison():
    train = linear_gaussian(num_series=256, length=LENGTH, seed=0, **PARAMS)
    test = linear_gaussian(num_series=200, length=LENGTH, seed=1, **PARAMS)
    context = test.isel(time=slice(0, LENGTH - HORIZON))
    truth = test["x"].values[:, LENGTH - HORIZON :]
    res = pyrossm.fit(
        "dkf",
        train,
        init="normal",
        channels=8,
        hidden_dim=8,
        num_steps=300,
        batch_size=256,
        learning_rate=3e-3,
        seed=0,
        progress=False,
        trainer={"annealing": {"kind": "cosine", "warmup_steps": 150}},
    )
    fc = res.forecast(context, horizon=HORIZON, num_samples=SAMPLES, seed=0)
    mean, cov, _ = kalman_predictive(context["x"].values, HORIZON, **PARAMS)
    rng = np.random.default_rng(0)
    exact = mean[None, ..., 0] + np.sqrt(cov[..., 0, 0])[None] * rng.standard_normal((SAMPLES,) + mean.shape[:2])
    locf = np.repeat(context["x"].values[None, :, -1:], HORIZON, axis=2)
    return {
        "model": crps(fc["x"].values, truth).mean(),
        "kalman": crps(exact, truth).mean(),
        "locf": crps(locf, truth).mean(),
    }


def test_dkf_multistep_crps_within_15_percent_of_kalman(kalman_comparison):
    c = kalman_comparison
    print(
        f"CRPS: DKF {c['model']:.4f}  Kalman {c['kalman']:.4f}  ratio {c['model'] / c['kalman']:.3f}  "
        f"LOCF {c['locf']:.4f}"
    )
    assert c["model"] <= 1.15 * c["kalman"]


def test_dkf_clearly_better_than_locf(kalman_comparison):
    assert kalman_comparison["model"] <= 0.9 * kalman_comparison["locf"]
