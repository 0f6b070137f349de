"""Many draws are taken in passes of bounded size: same shapes, reproducible, same law."""

import numpy as np
import pytest
import torch

import pyrossm
from pyrossm import draws
from pyrossm.datasets import bimodal_random_walk


def test_draw_chunks_cover_the_draws_in_bounded_passes(monkeypatch):
    monkeypatch.setattr(draws, "ROWS_PER_PASS", 100)
    assert draws.draw_chunks(25, 10) == [10, 10, 5]
    assert draws.draw_chunks(3, 1000) == [1, 1, 1]  # one draw per pass at least
    assert draws.draw_chunks(7, 0) == [7]
    monkeypatch.setattr(draws, "ROWS_PER_PASS", 8192)
    assert draws.draw_chunks(1024, 1024) == [8] * 128
    assert draws.draw_chunks(1024, 1024, "cpu") == [8] * 128
    # larger passes on a GPU (a device object or a string)
    monkeypatch.setattr(draws, "CUDA_ROWS_PER_PASS", 65536)
    assert draws.draw_chunks(1024, 1024, "cuda") == [64] * 16
    assert draws.draw_chunks(1024, 1024, torch.device("cuda", 0)) == [64] * 16


@pytest.fixture(scope="module")
def fitted():
    data = bimodal_random_walk(num_series=16, length=12, seed=0)
    res = pyrossm.fit(
        model="dkf",
        data=data,
        num_steps=5,
        progress=False,
        seed=0,
        channels=4,
        hidden_dim=4,
        encoder_layers=1,
        emission_layers=1,
    )
    return res, data


def test_chunked_forecast_and_posterior_predictive_are_reproducible(fitted, monkeypatch):
    res, data = fitted
    monkeypatch.setattr(draws, "ROWS_PER_PASS", 40)  # 16 series -> 2 draws per pass
    fc1 = res.forecast(data, horizon=3, num_samples=7, seed=3)
    fc2 = res.forecast(data, horizon=3, num_samples=7, seed=3)
    assert fc1["x"].shape == (7, 16, 3)
    np.testing.assert_array_equal(fc1["x"].values, fc2["x"].values)
    tree = res.posterior_predictive(data, num_samples=5, seed=1)
    assert tree["posterior_predictive"]["x"].shape == (1, 5, 16, 12)
    z = res.smooth(data, num_samples=5, seed=1)["z"]
    assert z.shape == (5, 16, 12, 2)  # the default latent_dim


def test_chunked_draws_have_the_same_law_as_one_pass(fitted, monkeypatch):
    res, data = fitted
    one = res.forecast(data, horizon=1, num_samples=4000, seed=0)["x"].values[:, :, 0]
    monkeypatch.setattr(draws, "ROWS_PER_PASS", 16 * 50)
    many = res.forecast(data, horizon=1, num_samples=4000, seed=1)["x"].values[:, :, 0]
    # per series: means agree within 5 standard errors of the difference, sds within 10 %
    se = np.sqrt(one.var(0) / 4000 + many.var(0) / 4000)
    assert np.all(np.abs(one.mean(0) - many.mean(0)) < 5 * se)
    np.testing.assert_allclose(one.std(0), many.std(0), rtol=0.1)
