"""MarkovChain / StateSpacePrior / SmoothingPosterior: the batched (sliding-window) densities equal
the sequential definitions, closed forms for linear-Gaussian chains, batch and sample shapes."""

from __future__ import annotations

import numpy as np
import pyro.distributions as dist
import pytest
import torch
from scipy.stats import multivariate_normal
from torch import nn
from torch.nn import functional as F

from pyrossm.distributions import MarkovChain, SmoothingPosterior, StateSpacePrior
from pyrossm.models import GaussianTransition, SmoothingEncoder

M, V = 2, 3


class LinearGaussian(nn.Module):
    """``z_t ~ N(a * z_{t-1} + b, s^2)`` (only the last history entry matters)."""

    def __init__(self, a=0.7, b=0.3, s=0.5):
        super().__init__()
        self.a, self.b, self.s = a, b, s

    def forward(self, history, covariates):
        return dist.Normal(self.a * history[:, -1] + self.b, self.s).to_event(1)


class Nonlinear(nn.Module):
    """Uses every history entry and every covariate (so window misalignment shows)."""

    def __init__(self, order, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.wh = torch.randn(order * M, 2 * M, generator=g, dtype=torch.float64)
        self.wc = torch.randn((order + 1) * V, 2 * M, generator=g, dtype=torch.float64)

    def forward(self, history, covariates):
        h = history.reshape(len(history), -1) @ self.wh + covariates.reshape(len(covariates), -1) @ self.wc
        loc, raw = h.chunk(2, dim=-1)
        return dist.Normal(torch.tanh(loc), F.softplus(raw) + 0.1).to_event(1)


def sequential_chain_log_prob(conditional, full, covariates, order):
    """``sum_{t >= order} log p(full_t | full_{t-order:t}, cov_{t-order:t+1})``, one step at a time."""
    batch = full.shape[:-2]
    cov = covariates.expand(batch + covariates.shape[-2:])
    total = torch.zeros(batch, dtype=full.dtype)
    for t in range(order, full.shape[-2]):
        hist = full[..., t - order : t, :].reshape(-1, order, full.shape[-1])
        c = cov[..., t - order : t + 1, :].reshape(-1, order + 1, cov.shape[-1])
        total = total + conditional(hist, c).log_prob(full[..., t, :].reshape(-1, full.shape[-1])).reshape(batch)
    return total


# ------------------------------------------------------------------ sequential definitions
@pytest.mark.parametrize("order", [1, 2, 3])
def test_markov_chain_log_prob_equals_sequential_loop(order):
    torch.manual_seed(0)
    length = 5
    cond = Nonlinear(order)
    history = torch.randn(4, order, M, dtype=torch.float64)
    covariates = torch.randn(4, order + length, V, dtype=torch.float64)
    chain = MarkovChain(cond, history, covariates, length)
    assert chain.batch_shape == (4,) and chain.event_shape == (length, M)
    value = torch.randn(4, length, M, dtype=torch.float64)
    expected = sequential_chain_log_prob(cond, torch.cat([history, value], -2), covariates, order)
    assert torch.allclose(chain.log_prob(value), expected, atol=1e-5, rtol=0)
    # the history changes the density (the first steps are conditioned on it)
    other = MarkovChain(cond, history + 1.0, covariates, length)
    assert not torch.allclose(other.log_prob(value), expected)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_state_space_prior_log_prob_equals_sequential_loop(order):
    torch.manual_seed(1)
    length = 7
    cond = Nonlinear(order, seed=1)
    covariates = torch.randn(3, length, V, dtype=torch.float64)
    init = dist.Normal(torch.randn(3, order, M, dtype=torch.float64), 0.8).to_event(2)
    prior = StateSpacePrior(init, cond, covariates, length)
    assert prior.batch_shape == (3,) and prior.event_shape == (length, M)
    value = torch.randn(3, length, M, dtype=torch.float64)
    expected = init.log_prob(value[..., :order, :]) + sequential_chain_log_prob(cond, value, covariates, order)
    assert torch.allclose(prior.log_prob(value), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_prior_with_the_gaussian_transition_network_equals_sequential_loop(order):
    torch.manual_seed(2)
    length = 6
    transition = GaussianTransition(M, order, V, channels=4, num_layers=1, seq_dim=4, hidden_dim=4)
    covariates = torch.randn(2, length, V)
    init = dist.Normal(torch.zeros(2, order, M), 1.0).to_event(2)
    prior = StateSpacePrior(init, transition, covariates, length)
    value = torch.randn(5, 2, length, M)  # a sample dim in front of the batch
    expected = init.log_prob(value[..., :order, :]) + sequential_chain_log_prob(transition, value, covariates, order)
    got = prior.log_prob(value)
    assert got.shape == (5, 2)
    assert torch.allclose(got, expected, atol=1e-5, rtol=0)


# ------------------------------------------------------------------ closed forms
def ar1_moments(z0, a, b, s, length):
    """Mean and covariance of ``z_{1:L}`` for ``z_t = a z_{t-1} + b + s eps`` given ``z_0``."""
    t = np.arange(1, length + 1)
    mean = a**t * z0 + b * np.array([sum(a**k for k in range(n)) for n in t])
    cov = np.empty((length, length))
    for i in range(1, length + 1):
        for j in range(1, length + 1):
            cov[i - 1, j - 1] = s**2 * sum(a ** ((i - k) + (j - k)) for k in range(1, min(i, j) + 1))
    return mean, cov


@pytest.mark.parametrize("order", [1, 2])
def test_linear_gaussian_chain_equals_closed_form_joint(order):
    a, b, s, length = 0.7, 0.3, 0.5, 4
    cond = LinearGaussian(a, b, s)
    history = torch.tensor(np.random.default_rng(0).normal(size=(order, M)))
    covariates = torch.zeros(order + length, 0, dtype=torch.float64)
    chain = MarkovChain(cond, history, covariates, length)
    value = torch.tensor(np.random.default_rng(1).normal(size=(length, M)))
    expected = 0.0
    for m in range(M):  # the dims are independent chains started at z_0 = history[-1]
        mean, cov = ar1_moments(float(history[-1, m]), a, b, s, length)
        expected += multivariate_normal(mean, cov).logpdf(value[:, m].numpy())
    assert chain.log_prob(value).item() == pytest.approx(expected, abs=1e-9, rel=0)


def test_linear_gaussian_state_space_prior_equals_closed_form_joint():
    """Order 1, z_1 ~ N(0, 1): z_{1:L} is jointly Gaussian with known moments."""
    a, b, s, length = -0.6, 0.2, 0.4, 5
    init = dist.Normal(torch.zeros(1, M, dtype=torch.float64), 1.0).to_event(2)
    prior = StateSpacePrior(init, LinearGaussian(a, b, s), torch.zeros(length, 0, dtype=torch.float64), length)
    value = torch.tensor(np.random.default_rng(2).normal(size=(length, M)))
    t = np.arange(length)
    mean = b * np.array([sum(a**k for k in range(n)) for n in t])
    cov = np.empty((length, length))
    for i in range(length):
        for j in range(length):
            cov[i, j] = a ** (i + j) + s**2 * sum(a ** ((i - k) + (j - k)) for k in range(1, min(i, j) + 1))
    expected = sum(multivariate_normal(mean, cov).logpdf(value[:, m].numpy()) for m in range(M))
    assert prior.log_prob(value).item() == pytest.approx(expected, abs=1e-9, rel=0)


def test_linear_gaussian_samples_have_the_closed_form_moments():
    a, b, s, length = 0.7, 0.3, 0.5, 3
    history = torch.tensor([[1.0, -2.0]])
    chain = MarkovChain(LinearGaussian(a, b, s), history, torch.zeros(1 + length, 0), length)
    torch.manual_seed(0)
    samples = chain.sample((20000,)).double()
    assert samples.shape == (20000, length, M)
    for m in range(M):
        mean, cov = ar1_moments(float(history[-1, m]), a, b, s, length)
        assert np.allclose(samples[:, :, m].mean(0).numpy(), mean, atol=0.03)
        assert np.allclose(np.cov(samples[:, :, m].numpy().T), cov, atol=0.03)


# ------------------------------------------------------------------ batch and sample shapes
@pytest.mark.parametrize("batch_shape", [(), (5,), (2, 4)])
def test_markov_chain_batch_and_sample_shapes(batch_shape):
    order, length = 2, 4
    cond = LinearGaussian()
    chain = MarkovChain(cond, torch.randn(order, M), torch.zeros(order + length, 0), length)
    assert chain.batch_shape == () and chain.event_shape == (length, M)
    expanded = chain.expand(batch_shape)
    assert expanded.batch_shape == batch_shape and expanded.event_shape == (length, M)
    torch.manual_seed(0)
    value = expanded.sample()
    assert value.shape == batch_shape + (length, M)
    assert expanded.sample((3,)).shape == (3,) + batch_shape + (length, M)
    assert expanded.rsample((3,)).shape == (3,) + batch_shape + (length, M)
    log_p = expanded.log_prob(value)
    assert log_p.shape == batch_shape
    # every batch element is scored by the same (unexpanded) chain
    flat = value.reshape((-1, length, M))
    each = torch.stack([chain.log_prob(v) for v in flat]).reshape(batch_shape)
    assert torch.allclose(log_p, each, atol=1e-5)


def test_markov_chain_log_prob_broadcasts_value_against_a_batched_history():
    order, length = 2, 3
    history = torch.randn(5, order, M)
    chain = MarkovChain(LinearGaussian(), history, torch.zeros(order + length, 0), length)
    assert chain.batch_shape == (5,)
    value = torch.randn(length, M)
    log_p = chain.log_prob(value)
    assert log_p.shape == (5,)
    assert torch.allclose(log_p, chain.log_prob(value.expand(5, length, M)))
    single = MarkovChain(LinearGaussian(), history[3], torch.zeros(order + length, 0), length)
    assert torch.allclose(log_p[3], single.log_prob(value))


@pytest.mark.parametrize("batch_shape", [(), (5,), (2, 4)])
def test_state_space_prior_batch_and_sample_shapes(batch_shape):
    order, length = 2, 5
    init = dist.Normal(torch.zeros(order, M), 1.0).to_event(2)
    prior = StateSpacePrior(init, LinearGaussian(), torch.zeros(length, 0), length)
    assert prior.batch_shape == ()
    expanded = prior.expand(batch_shape)
    assert expanded.batch_shape == batch_shape and expanded.event_shape == (length, M)
    torch.manual_seed(0)
    value = expanded.sample()
    assert value.shape == batch_shape + (length, M)
    assert expanded.sample((3,)).shape == (3,) + batch_shape + (length, M)
    log_p = expanded.log_prob(value)
    assert log_p.shape == batch_shape
    each = torch.stack([prior.log_prob(v) for v in value.reshape((-1, length, M))]).reshape(batch_shape)
    assert torch.allclose(log_p, each, atol=1e-5)


def test_state_space_prior_rejects_a_length_below_the_order():
    init = dist.Normal(torch.zeros(3, M), 1.0).to_event(2)
    with pytest.raises(ValueError, match="order"):
        StateSpacePrior(init, LinearGaussian(), torch.zeros(2, 0), 2)


def test_rsample_is_reparameterised():
    loc = torch.zeros(2, M, requires_grad=True)
    init = dist.Normal(loc, 1.0).to_event(2)
    prior = StateSpacePrior(init, LinearGaussian(a=0.5), torch.zeros(4, 0), 4)
    assert prior.has_rsample
    prior.rsample().sum().backward()
    # d/d loc of sum_t z_t with z_3 = .5 z_2 + ..., z_4 = .5 z_3 + ...: z_1 only counts once,
    # z_2 counts 1 + .5 + .25 (the conditional reads the last history entry only)
    assert torch.allclose(loc.grad, torch.tensor([[1.0, 1.0], [1.75, 1.75]]))


# ------------------------------------------------------------------ smoothing posterior
def make_posterior(order, covariate_dim=2, seed=0):
    torch.manual_seed(seed)
    encoder = SmoothingEncoder(
        obs_dim=2,
        latent_dim=M,
        order=order,
        covariate_dim=covariate_dim,
        summary_dim=4,
        summary_layers=1,
        channels=4,
        num_layers=1,
        seq_dim=4,
        hidden_dim=4,
    )
    n, length = 3, 6
    x = torch.randn(n, length, 2)
    mask = torch.ones(n, length, 2, dtype=torch.bool)
    cov = torch.randn(n, length, covariate_dim)
    summary = encoder.summarize(x, mask, cov)
    return encoder, SmoothingPosterior(encoder, summary, cov, order, M)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_smoothing_posterior_cached_log_prob_equals_teacher_forced(order):
    encoder, posterior = make_posterior(order)
    assert posterior.batch_shape == (3,) and posterior.event_shape == (6, M)
    q = posterior.expand((4, 3))
    value = q.rsample()
    assert value.shape == (4, 3, 6, M)
    cached = q.log_prob(value)
    assert cached is q._cache[1]  # the sampler's own density, not recomputed
    recomputed = q.log_prob(value.clone())
    assert cached.shape == recomputed.shape == (4, 3)
    assert torch.allclose(cached, recomputed, atol=1e-4)
    # the two paths also give the same reparameterised gradients
    params = list(encoder.parameters())
    g1 = torch.autograd.grad(cached.sum(), params, retain_graph=True, allow_unused=True)
    g2 = torch.autograd.grad(recomputed.sum(), params, allow_unused=True)
    for a, b in zip(g1, g2):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, atol=1e-3, rtol=1e-3)


class StubEncoder(nn.Module):
    """``q(z_t | ...) = N(summary_t + 0.5 * sum(history) + sum(cov_{t-j:t}), 1 + pad.sum())``."""

    def step(self, history, pad_mask, summary, covariates):
        loc = summary[:, :M] + 0.5 * history.sum(1) + covariates.sum((1, 2))[:, None]
        scale = (1.0 + pad_mask.sum(-1, keepdim=True)).expand_as(loc)
        return loc, scale


@pytest.mark.parametrize("order", [1, 2])
def test_smoothing_posterior_density_is_the_product_of_its_conditionals(order):
    length = 5
    summary = torch.randn(2, length, M, dtype=torch.float64)
    cov = torch.randn(2, length, 1, dtype=torch.float64)
    q = SmoothingPosterior(StubEncoder(), summary, cov, order, M)
    value = torch.randn(2, length, M, dtype=torch.float64)
    expected = torch.zeros(2, dtype=torch.float64)
    padded = torch.cat([torch.zeros(2, order, M, dtype=torch.float64), value], 1)
    padded_cov = torch.cat([torch.zeros(2, order, 1, dtype=torch.float64), cov], 1)
    for t in range(length):
        real = min(t, order)  # history entries before t = 0 are padding
        loc = (
            summary[:, t]
            + 0.5 * padded[:, t : t + order].sum(1)
            + padded_cov[:, t : t + order + 1].sum((1, 2))[:, None]
        )
        expected += dist.Normal(loc, 1.0 + real).log_prob(value[:, t]).sum(-1)
    assert torch.allclose(q.log_prob(value), expected, atol=1e-10)


def test_smoothing_posterior_sample_shapes_and_no_grad():
    encoder, posterior = make_posterior(2, covariate_dim=0)
    torch.manual_seed(0)
    s = posterior.expand((7, 3)).sample()
    assert s.shape == (7, 3, 6, M) and not s.requires_grad
    assert posterior.rsample((2,)).shape == (2, 3, 6, M)
    assert not torch.allclose(s[0], s[1])
    # the same draw as rsample's for the same seed; its density only when asked (no cache)
    q = posterior.expand((7, 3))
    q._cache = None
    torch.manual_seed(0)
    again = q.sample()
    assert torch.equal(again, s) and q._cache is None
    torch.manual_seed(0)
    with torch.no_grad():
        assert torch.allclose(q.rsample(), s)
        assert torch.allclose(q.log_prob(again), q._cache[1], atol=1e-4)
