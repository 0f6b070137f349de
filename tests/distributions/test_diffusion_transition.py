"""DiffusionTransition: shapes over batch shapes, log_prob as the Eq. 29 bound, sampling, errors.

Numbers come from an exact conditional network: for ``z_t | z_{t-1} ~ N(a z_{t-1} + b u_t, s^2)``
the optimal denoiser is ``(s^2 z^ + sigma^2 mu(c)) / (s^2 + sigma^2)`` with ``mu(c)`` read from the
context, so ``log_prob`` must approach ``Normal(mu(c), s).log_prob`` (up to the Monte-Carlo noise
of the bound and its O(1/K) gap) and ``sample`` must reproduce the conditional law -- both only if
every example is matched with its own history and covariates.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Normal

from pyrossm.diffusion import NoiseSchedule, karras_coefficients
from pyrossm.distributions import DiffusionTransition
from pyrossm.nn import CSDIDenoiser

M, V = 2, 3
BATCH_SHAPES = [(), (5,), (2, 4)]
A, B, S = 0.8, 0.5, 0.6


class ExactConditional(nn.Module):
    """``F*`` for ``z_t ~ N(A z_{t-1} + B u_t[0], S^2)`` per coordinate (order ``j``: last history
    entry; covariate: the first channel at the target step)."""

    def __init__(self, increment=False):
        super().__init__()
        self.increment = increment  # the law of z_t - z_{t-1} instead (for residual=True)

    def forward(self, x_in, c_noise, context):
        history, covariates = context
        mean = A * history[:, -1, :] + B * covariates[:, -1, :1]
        if self.increment:
            mean = mean - history[:, -1, :]
        sigma = torch.exp(4 * c_noise).unsqueeze(-1)
        c_skip, c_out, c_in, _ = karras_coefficients(sigma)
        z_hat = x_in / c_in
        d_star = (S**2 * z_hat + sigma**2 * mean) / (S**2 + sigma**2)
        return (d_star - c_skip * z_hat) / c_out


class Counting(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.calls, self.rows = net, 0, []

    def forward(self, x_in, c_noise, context):
        self.calls += 1
        self.rows.append(x_in.shape[0])
        return self.net(x_in, c_noise, context)


def make_context(batch_shape, order=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    history = 2 * torch.randn(*batch_shape, order, M, generator=gen)
    covariates = torch.randn(*batch_shape, order + 1, V, generator=gen)
    return history, covariates


def true_log_prob(value, history, covariates):
    mean = A * history[..., -1, :] + B * covariates[..., -1, :1]
    return Normal(mean, S).log_prob(value).sum(-1)


def small_denoiser(order=2, seed=0):
    torch.manual_seed(seed)
    net = CSDIDenoiser(M, order, V, channels=4, num_layers=1, embedding_dim=8, diffusion_dim=8)
    # the output layer starts at zero (CSDI): perturb it so gradients reach every layer
    with torch.no_grad():
        net.output.weight.normal_(0, 0.5)
    return net


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES, ids=str)
def test_shapes_expand_sample_log_prob(batch_shape):
    history, covariates = make_context(batch_shape)
    net = small_denoiser()
    d = DiffusionTransition(net, NoiseSchedule(8), history, covariates)
    assert d.batch_shape == batch_shape and d.event_shape == (M,)
    assert not d.has_rsample

    x = d.sample()
    assert x.shape == batch_shape + (M,) and torch.isfinite(x).all()
    xs = d.sample((3,))
    assert xs.shape == (3,) + batch_shape + (M,)
    # samples differ across the sample dim (fresh noise)
    assert not torch.allclose(xs[0], xs[1])

    lp = d.log_prob(x)
    assert lp.shape == batch_shape and torch.isfinite(lp).all()
    lps = d.log_prob(xs)
    assert lps.shape == (3,) + batch_shape and torch.isfinite(lps).all()

    e = d.expand((3,) + batch_shape)
    assert isinstance(e, DiffusionTransition)
    assert e.batch_shape == (3,) + batch_shape and e.event_shape == (M,)
    assert e.sample().shape == (3,) + batch_shape + (M,)
    assert e.log_prob(x).shape == (3,) + batch_shape
    assert e.sampler == d.sampler and e.num_noise_draws == d.num_noise_draws
    assert e.network is net and e.schedule is d.schedule


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES, ids=str)
def test_one_network_call_per_log_prob(batch_shape):
    history, covariates = make_context(batch_shape)
    net = Counting(small_denoiser())
    d = DiffusionTransition(net, NoiseSchedule(8), history, covariates, num_noise_draws=3)
    d.log_prob(torch.zeros(batch_shape + (M,)))
    n = math.prod(batch_shape)
    assert net.calls == 1 and net.rows == [3 * n]


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES, ids=str)
def test_log_prob_is_differentiable(batch_shape):
    history, covariates = make_context(batch_shape)
    history.requires_grad_(True)
    net = small_denoiser()
    d = DiffusionTransition(net, NoiseSchedule(8), history, covariates, num_noise_draws=2)
    value = torch.randn(batch_shape + (M,), requires_grad=True)
    d.log_prob(value).sum().backward()
    assert value.grad is not None and torch.isfinite(value.grad).all() and value.grad.abs().sum() > 0
    assert history.grad is not None and history.grad.abs().sum() > 0
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    assert net.output.weight.grad.abs().sum() > 0 and net.input.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("batch_shape", [(5,), (2, 4)], ids=str)
def test_log_prob_of_the_exact_network_is_the_conditional_density(batch_shape):
    history, covariates = make_context(batch_shape, seed=1)
    value = (
        A * history[..., -1, :]
        + B * covariates[..., -1, :1]
        + S * torch.randn(batch_shape + (M,), generator=torch.Generator().manual_seed(2))
    )
    sch = NoiseSchedule(128)
    torch.manual_seed(0)
    d = DiffusionTransition(ExactConditional(), sch, history, covariates, num_noise_draws=20000)
    lp = d.log_prob(value)
    ref = true_log_prob(value, history, covariates)
    # per-draw std of the bound ~15 nats per dim at K = 128: standard error ~0.15 for M = 2
    assert (lp - ref).abs().max().item() < 0.6, lp - ref
    # a misaligned context (another example's history) would be far off
    shuffled = history.reshape(-1, 2, M).roll(1, 0).reshape(history.shape)
    assert (true_log_prob(value, shuffled, covariates) - ref).abs().max() > 2
    # include_constant=False drops exactly d C
    torch.manual_seed(0)
    no_c = DiffusionTransition(
        ExactConditional(), sch, history, covariates, num_noise_draws=20000, include_constant=False
    ).log_prob(value)
    torch.testing.assert_close(no_c - lp, torch.full(batch_shape, M * sch.constant_per_dim), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(
    "sampler,steps", [("ddpm", None), ("ddim", 64), ("ddim", 8), ("ddpm", 16), ("heun", 16), ("heun", 8)]
)
def test_sample_of_the_exact_network_follows_the_conditional_law(sampler, steps):
    """(With K = 16 the DDPM spread is ~9% too wide here: reverse variances beta_k on a coarse
    schedule; K = 64 is within 5%.)"""
    batch_shape = (2, 3)
    history, covariates = make_context(batch_shape, seed=3)
    sch = NoiseSchedule(64)
    torch.manual_seed(1)
    d = DiffusionTransition(ExactConditional(), sch, history, covariates, sampler=sampler, num_sampling_steps=steps)
    x = d.sample((4000,))
    assert x.shape == (4000,) + batch_shape + (M,)
    mean = A * history[..., -1, :] + B * covariates[..., -1, :1]
    torch.testing.assert_close(x.mean(0), mean, rtol=0, atol=4 * S / math.sqrt(4000) + 0.01)
    std = x.std(0)
    if sampler == "ddpm" and steps is None:
        torch.testing.assert_close(std, torch.full_like(std, S), rtol=0.05, atol=0)
    elif sampler == "heun" and steps == 16:  # second order: within a few % at a quarter of K
        assert (std > 0.95 * S).all() and (std < 1.02 * S).all()
    elif steps == 64:  # all 64 steps: the ODE's Euler error leaves it ~5% under-dispersed
        assert (std > 0.9 * S).all() and (std < 1.02 * S).all()
    else:  # coarse steps (DDIM, Heun, strided DDPM): under-dispersed, but not collapsed
        assert (std > 0.6 * S).all() and (std < S).all()


def test_residual_transition_diffuses_the_increment_from_the_last_state():
    """``residual=True``: the bound and the samples are those of ``z_t - z_{t-1}``, shifted back."""
    batch_shape = (2, 3)
    history, covariates = make_context(batch_shape, seed=4)
    value = torch.randn(batch_shape + (M,), generator=torch.Generator().manual_seed(5))
    net, sch = small_denoiser(), NoiseSchedule(16)
    plain = DiffusionTransition(net, sch, history, covariates, num_noise_draws=3)
    resid = DiffusionTransition(net, sch, history, covariates, num_noise_draws=3, residual=True)
    assert resid.expand((4,) + batch_shape).residual
    torch.testing.assert_close(resid.offset(), history[..., -1, :], rtol=0, atol=0)
    torch.manual_seed(0)
    expected = plain.log_prob(value - history[..., -1, :])
    torch.manual_seed(0)
    torch.testing.assert_close(resid.log_prob(value), expected, rtol=0, atol=0)
    for sampler in ("ddpm", "ddim"):
        plain.sampler = resid.sampler = sampler
        torch.manual_seed(1)
        expected = plain.sample((2,)) + history[..., -1, :]
        torch.manual_seed(1)
        torch.testing.assert_close(resid.sample((2,)), expected, rtol=0, atol=1e-6)

    # with the exact increment denoiser, the density and the law of z_t itself come out
    value = (
        A * history[..., -1, :]
        + B * covariates[..., -1, :1]
        + S * torch.randn(batch_shape + (M,), generator=torch.Generator().manual_seed(6))
    )
    torch.manual_seed(2)
    exact = DiffusionTransition(
        ExactConditional(increment=True), NoiseSchedule(128), history, covariates, num_noise_draws=20000, residual=True
    )
    assert (exact.log_prob(value) - true_log_prob(value, history, covariates)).abs().max() < 0.6
    exact.sampler = "ddpm"
    x = exact.sample((4000,))
    mean = A * history[..., -1, :] + B * covariates[..., -1, :1]
    torch.testing.assert_close(x.mean(0), mean, rtol=0, atol=4 * S / math.sqrt(4000) + 0.01)
    torch.testing.assert_close(x.std(0), torch.full_like(mean, S), rtol=0.07, atol=0)


def test_ddim_uses_num_sampling_steps_network_calls():
    history, covariates = make_context((4,))
    net = Counting(ExactConditional())
    d = DiffusionTransition(net, NoiseSchedule(32), history, covariates, sampler="ddim", num_sampling_steps=5)
    x1 = d.sample((2,))
    assert net.calls == 5 and net.rows == [8] * 5
    net.calls = 0
    DiffusionTransition(net, NoiseSchedule(32), history, covariates, sampler="ddpm").sample()
    assert net.calls == 32
    # DDPM on a shortened chain and Heun's method use num_sampling_steps too
    net.calls = 0
    DiffusionTransition(net, NoiseSchedule(32), history, covariates, sampler="ddpm", num_sampling_steps=6).sample()
    assert net.calls == 6
    net.calls = 0
    DiffusionTransition(net, NoiseSchedule(32), history, covariates, sampler="heun", num_sampling_steps=6).sample()
    assert net.calls == 2 * 6 - 2
    # DDIM is a deterministic map of the initial noise
    torch.manual_seed(5)
    a = d.sample((2,))
    torch.manual_seed(5)
    b = d.sample((2,))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert x1.shape == a.shape


def test_sample_does_not_track_gradients():
    history, covariates = make_context((3,))
    net = small_denoiser()
    d = DiffusionTransition(net, NoiseSchedule(8), history.requires_grad_(True), covariates)
    assert not d.sample().requires_grad


@pytest.mark.parametrize("bad", ["euler", "DDPM", None, 3])
def test_bad_sampler_raises(bad):
    history, covariates = make_context((3,))
    with pytest.raises(ValueError, match="sampler"):
        DiffusionTransition(ExactConditional(), NoiseSchedule(8), history, covariates, sampler=bad)


@pytest.mark.parametrize("bad", [0, -2, 9, 2.5, True])
def test_bad_num_sampling_steps_raises(bad):
    history, covariates = make_context((3,))
    with pytest.raises(ValueError, match="num_sampling_steps"):
        # raised on construction, not first when sampling
        DiffusionTransition(
            ExactConditional(), NoiseSchedule(8), history, covariates, sampler="ddim", num_sampling_steps=bad
        )


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_num_noise_draws_raises(bad):
    history, covariates = make_context((3,))
    with pytest.raises(ValueError, match="num_noise_draws"):
        DiffusionTransition(ExactConditional(), NoiseSchedule(8), history, covariates, num_noise_draws=bad)


# ---------------------------------------------------------------------- the CSDI denoiser learns
@pytest.mark.parametrize("m,j,v,floor", [(1, 1, 0, 0.05), (2, 2, 3, 0.2)])
def test_untrained_denoiser_features_respond_to_their_inputs(m, j, v, floor):
    """Regression test for the denoiser's initialisation: the features before the output ReLU must
    vary with the input.  With PyTorch's default Linear init their per-unit standard deviation
    over inputs was 0.008-0.012 (M=1) / 0.05-0.075 (M=2, j=2, V=3) against means ~0.3, so under
    Adam all units died at once (for every input) within ~100 steps of a DDSSM fit and the
    transition stopped depending on the history; with CSDI's Kaiming-normal init it is 0.14-0.38
    / 0.54-0.75 (seeds 0-4)."""
    sch = NoiseSchedule(16)
    for seed in range(5):
        torch.manual_seed(seed)
        net = CSDIDenoiser(m, j, v)
        acts = []
        net.post.register_forward_hook(lambda module, inputs, output: acts.append(output.detach()))
        gen = torch.Generator().manual_seed(100)
        n = 2000
        k = torch.randint(0, 16, (n,), generator=gen)
        out = net(
            torch.randn(n, m, generator=gen),
            torch.log(sch.sigmas[k]) / 4,
            (2 * torch.randn(n, j, m, generator=gen), torch.randn(n, j + 1, v, generator=gen)),
        )
        assert out.shape == (n, m) and (out == 0).all()  # zero-initialised output layer
        features = acts[0][:, :, -1, :].reshape(-1, acts[0].shape[-1])  # target position
        assert features.std(0).median().item() > floor, seed


@pytest.mark.parametrize("activation", ["silu", "relu"])
def test_denoiser_units_pushed_negative_still_learn_with_silu_only(activation):
    """With every unit before the output projection negative for all inputs (as found, for ReLU,
    after a bimodal DDSSM fit), a ReLU denoiser's network gets no gradient at all and its output
    is constant; SiLU's still varies with the input and passes a gradient."""
    torch.manual_seed(0)
    net = CSDIDenoiser(1, 1, 0, channels=8, num_layers=2, activation=activation)
    with torch.no_grad():
        net.post.bias.fill_(-3.0 - net.post.weight.abs().sum(-1).max() * 20)  # all units < -3
        net.output.weight.fill_(1.0)
    x_in = torch.linspace(-2, 2, 32).unsqueeze(-1)
    out = net(x_in, torch.zeros(32), (0.5 * x_in.unsqueeze(1), torch.zeros(32, 2, 0)))
    out.sum().backward()
    upstream = [net.post.weight.grad, net.input.weight.grad, net.stack.blocks[0].mid.weight.grad]
    if activation == "relu":
        assert out.std() == 0
        assert all(g.abs().max() == 0 for g in upstream)
    else:
        assert out.std() > 0
        assert all(g.abs().max() > 0 for g in upstream)


def test_denoiser_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        CSDIDenoiser(1, 1, 0, activation="tanh")


def test_log_prob_training_learns_a_bimodal_conditional():
    """Maximising ``log_prob`` (the Eq. 29 bound) with a CSDIDenoiser learns
    ``z_t = 0.87 z_{t-1} +- 0.8 + N(0, 0.05^2)``: after 250 Adam steps most DDPM samples lie within
    0.25 of the two modes, on both sides, at every history value.  Measured mass near (+, -)
    with the default ReLU: seed 0 (the one tested) 0.39 / 0.36 with 0.04 between the modes;
    seeds 1-3: 0.29 / 0.27, 0.38 / 0.36, 0.26 / 0.32 (SiLU: 0.44 / 0.32, 0.46 / 0.30,
    0.29 / 0.26, 0.33 / 0.41), so the thresholds hold for seed 0 only.  A capability check, not a
    regression test of the init (ReLU with PyTorch's default init gave 0.25 / 0.26, 0.15 / 0.23,
    0.25 / 0.25, 0.33 / 0.35 for seeds 0-3)."""
    torch.manual_seed(0)
    jump, a = 0.8, 0.87
    net = CSDIDenoiser(1, 1, 0, channels=16, num_layers=3)
    sch = NoiseSchedule(16)
    opt = torch.optim.AdamW(net.parameters(), lr=0.01, weight_decay=0.01)
    n = 1408
    for _ in range(250):
        prev = 1.5 * torch.randn(n, 1)
        z = a * prev + jump * torch.sign(torch.randn(n, 1)) + 0.05 * torch.randn(n, 1)
        loss = -DiffusionTransition(net, sch, prev.unsqueeze(1), torch.zeros(n, 2, 0)).log_prob(z).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt.step()
    prev = torch.linspace(-2, 2, 16).reshape(16, 1, 1)
    x = DiffusionTransition(net, sch, prev, torch.zeros(16, 2, 0)).sample((256,))[..., 0] - a * prev[:, 0, 0]
    up = ((x - jump).abs() < 0.25).float().mean(0)  # per history value
    down = ((x + jump).abs() < 0.25).float().mean(0)
    assert (up + down).mean() > 0.6, ((up + down).mean(), up.mean(), down.mean())
    assert up.mean() > 0.25 and down.mean() > 0.25
    assert ((up > 0.1) & (down > 0.1)).all()  # bimodal at every history value
    assert (x.abs() < 0.3).float().mean() < 0.1  # little mass between the modes


def test_shift_diffuses_the_departure_from_a_context_mean():
    """``shift=m``: the bound and the samples are those of ``z_t - m(c_t)``, shifted back, with
    ``m`` evaluated on each example's own (flattened) context."""
    batch_shape = (2, 3)
    history, covariates = make_context(batch_shape, seed=7)
    value = torch.randn(batch_shape + (M,), generator=torch.Generator().manual_seed(8))

    def mean(h, u):
        assert h.dim() == 3 and u.dim() == 3 and h.shape[0] == u.shape[0]
        return 0.5 * h[:, -1, :] - h[:, 0, :] + u[:, -1, :M]

    offset = mean(history.reshape(-1, 2, M), covariates.reshape(-1, 3, V)).reshape(batch_shape + (M,))
    net, sch = small_denoiser(), NoiseSchedule(16)
    plain = DiffusionTransition(net, sch, history, covariates, num_noise_draws=3)
    shifted = DiffusionTransition(net, sch, history, covariates, num_noise_draws=3, shift=mean)
    assert shifted.expand((4,) + batch_shape).shift is mean
    torch.manual_seed(0)
    expected = plain.log_prob(value - offset)
    torch.manual_seed(0)
    torch.testing.assert_close(shifted.log_prob(value), expected, rtol=0, atol=0)
    # broadcasting a sample dim over the context: each row still gets its own context's mean
    torch.manual_seed(3)
    expected = plain.log_prob(value.expand((4,) + value.shape) - offset)
    torch.manual_seed(3)
    torch.testing.assert_close(shifted.log_prob(value.expand((4,) + value.shape)), expected, rtol=0, atol=0)
    torch.testing.assert_close(shifted.offset(), offset, rtol=0, atol=0)
    torch.testing.assert_close(shifted.expand((4,) + batch_shape).offset(), offset.expand((4,) + offset.shape))
    assert plain.offset() is None
    for sampler in ("ddpm", "ddim"):
        plain.sampler = shifted.sampler = sampler
        torch.manual_seed(1)
        expected = plain.sample((2,)) + offset
        torch.manual_seed(1)
        torch.testing.assert_close(shifted.sample((2,)), expected, rtol=0, atol=1e-6)


def test_shift_argument_errors():
    history, covariates = make_context((2,))
    net, sch = small_denoiser(), NoiseSchedule(8)
    with pytest.raises(ValueError, match="residual=True or a shift"):
        DiffusionTransition(net, sch, history, covariates, residual=True, shift=lambda h, u: h[:, -1, :])
    with pytest.raises(TypeError, match="shift must be a callable"):
        DiffusionTransition(net, sch, history, covariates, shift=torch.zeros(2, M))
