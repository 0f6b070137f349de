"""The loop-free future summary (:class:`pyrossm.nn.DecaySummary`): the doubling sums equal the
explicit discounted sums, ``h_t`` depends on ``x_{t:T}`` only, its initial rates and range, and
the presets' ``summary`` option (build, fit, save / load, migration of older fits, bad values)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import pyrossm
from pyrossm.models.registry import get_spec
from pyrossm.nn import DecaySummary, FutureSummary, future_summary
from pyrossm.nn.summary import discounted_future_sums


def explicit(values, rates):
    length = values.shape[0]
    return torch.stack(
        [(1 - rates) * sum(rates ** (s - t) * values[s] for s in range(t, length)) for t in range(length)]
    )


@pytest.mark.parametrize("length", [1, 2, 5, 8, 37])
def test_doubling_sums_are_the_discounted_sums(length):
    torch.manual_seed(0)
    values = torch.randn(length, 3, 2, 4, dtype=torch.double)
    rates = torch.tensor([0.0, 0.3, 0.9, 0.999], dtype=torch.double)
    torch.testing.assert_close(discounted_future_sums(values, rates), explicit(values, rates), rtol=0, atol=1e-12)
    # a constant input is its own average, but for the truncation at the end: 1 - a^(T - t)
    ones = torch.ones(length, 1, 4, dtype=torch.double)
    steps_left = torch.arange(length, 0, -1, dtype=torch.double).view(length, 1, 1)
    torch.testing.assert_close(discounted_future_sums(ones, rates), 1 - rates**steps_left, rtol=0, atol=1e-12)


def test_gradients_match_the_explicit_sums():
    torch.manual_seed(1)
    values = torch.randn(11, 2, 3, dtype=torch.double, requires_grad=True)
    logits = torch.randn(3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, a: discounted_future_sums(v, torch.sigmoid(a)), (values, logits))


def test_decay_summary_shape_range_causality_and_rates():
    torch.manual_seed(2)
    n, length, h = 4, 9, 16
    summary = DecaySummary(obs_dim=2, covariate_dim=1, hidden_dim=h)
    x, cov = torch.randn(n, length, 2), torch.randn(n, length, 1)
    mask = torch.rand(n, length, 2) > 0.2
    out = summary(x * mask, mask, cov)
    assert out.shape == (n, length, h) and out.abs().max() < 1
    # initial rates exp(-1 / tau), tau log-spaced from 1 to 32 steps
    scales = -1 / summary.rates.detach().log()
    torch.testing.assert_close(scales[[0, -1]], torch.tensor([1.0, 32.0]), rtol=1e-5, atol=0)
    ratios = scales[1:] / scales[:-1]
    torch.testing.assert_close(ratios, torch.full_like(ratios, 32 ** (1 / (h - 1))), rtol=1e-4, atol=0)
    # h_t reads x_{t:T} only
    x2 = x.clone()
    x2[:, 5] += 1.0
    with torch.no_grad():
        moved = (summary(x2, mask, cov) - summary(x, mask, cov)).abs().amax(dim=(0, 2))
    assert moved[6:].max() == 0 and moved[:6].min() > 0
    # the rates learn: the loss reaches them
    out.square().sum().backward()
    assert summary.rate_logits.grad.abs().min() > 0 and torch.isfinite(summary.rate_logits.grad).all()
    assert DecaySummary(1, hidden_dim=1).rates.item() == pytest.approx(math.exp(-1))


def test_future_summary_by_name():
    assert isinstance(future_summary("gru", 1, 0, 8, 2), FutureSummary)
    assert future_summary("gru", 1, 0, 8, 2).gru.num_layers == 2
    assert isinstance(future_summary("decay", 1, 0, 8, 2), DecaySummary)
    for bad in ("lstm", None, 3):
        with pytest.raises(ValueError, match="summary must be one of"):
            future_summary(bad, 1)


@pytest.mark.parametrize("family", ["dkf", "ddssm"])
def test_presets_summary_option(family, tmp_path):
    """``summary`` picks the guide's future summary; fits train, forecast and reload with it;
    options saved before it existed load with the GRU; bad values are refused at the boundary."""
    spec = get_spec(family)
    assert isinstance(spec.build(obs_dim=1, summary="decay").encoder.summary, DecaySummary)
    assert isinstance(spec.build(obs_dim=1, summary="gru").encoder.summary, FutureSummary)
    assert spec.migrated({"obs_dim": 1})["summary"] == "gru"
    with pytest.raises(ValueError, match="summary must be one of"):
        spec.build(obs_dim=1, summary="transformer")
    data = pyrossm.datasets.bimodal_random_walk(12, 8, seed=0)[["x"]]
    extra = {"num_diffusion_steps": 8} if family == "ddssm" else {}
    res = pyrossm.fit(model=family, data=data, num_steps=3, seed=0, progress=False, summary="decay", **extra)
    assert res.config["model_config"]["summary"] == "decay"
    loaded = pyrossm.load(res.save(tmp_path / "decay.pyrossm"))
    assert isinstance(loaded.model.encoder.summary, DecaySummary)
    torch.testing.assert_close(loaded.model.encoder.summary.rate_logits, res.model.encoder.summary.rate_logits)
    a = res.forecast(data, horizon=2, num_samples=4, seed=0)["x"].values
    assert a.shape == (4, 12, 2) and np.isfinite(a).all()
    assert np.array_equal(a, loaded.forecast(data, horizon=2, num_samples=4, seed=0)["x"].values)
