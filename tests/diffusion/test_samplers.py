"""DDPM and DDIM samplers, checked with the exact denoiser of Gaussian data ``N(m, s^2)``.

``D*(z^, sigma) = (s^2 z^ + sigma^2 m) / (s^2 + sigma^2)`` is reached through the preconditioned
network ``F* = (D* - c_skip z^) / c_out`` (which recovers ``sigma = exp(4 c_noise)`` and
``z^ = x_in / c_in``), so the samplers, :func:`denoise` and the Karras coefficients are tested
together.  For Gaussian data the probability-flow ODE ``dz^/dsigma = (z^ - D*) / sigma`` has the
closed-form solution ``z^(sigma) = m + (z^_K - m) sqrt((s^2 + sigma^2) / (s^2 + sigma_K^2))``.

Measured (m = 0.5, s = 0.7, linear schedule, fixed seeds): DDPM KS p-values 0.063 (K = 128, 4000
samples) and 0.57 / 0.87 (2-D, K = 128); DDIM through all K steps vs the ODE solution, max abs
error over 2000 draws 0.32 (K = 16), 0.044 (K = 128), 0.0059 (K = 1000); DDIM on n of 1000
evenly spaced steps, std of 4000 draws (s = 0.7): 0.29 (n = 4), 0.54 (10), 0.65 (32), 0.69 (128),
0.70 (1000) -- coarse Euler steps of the probability-flow ODE shrink the spread.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from pyrossm.diffusion import NoiseSchedule, ddim_sample, ddpm_sample, denoise, heun_sample, karras_coefficients

M_DATA, S_DATA = 0.5, 0.7


def gaussian_network(m, s):
    """``F*`` for ``N(m, s^2)`` data (``m``, ``s`` broadcast against ``(B, d)``)."""

    def network(x_in, c_noise, context):
        sigma = torch.exp(4 * c_noise).unsqueeze(-1)
        c_skip, c_out, c_in, _ = karras_coefficients(sigma)
        z_hat = x_in / c_in
        d_star = (s**2 * z_hat + sigma**2 * m) / (s**2 + sigma**2)
        return (d_star - c_skip * z_hat) / c_out

    return network


def make_denoiser(schedule, network, calls=None):
    """The sampler interface ``denoiser(z_hat (..., d), k_index) -> D`` over ``denoise``."""

    def denoiser(z_hat, k_index):
        if calls is not None:
            calls.append(k_index)
        flat = z_hat.reshape(-1, z_hat.shape[-1])
        sigma = schedule.sigmas[k_index].expand(flat.shape[0])
        return denoise(network, flat, sigma, None)[0].reshape(z_hat.shape)

    return denoiser


def ode_solution(z_tilde_k, schedule, m=M_DATA, s=S_DATA):
    """Probability-flow ODE solution at sigma = 0 from ``z~^K`` (closed form for Gaussian data)."""
    z_hat_k = z_tilde_k / schedule.alpha_bars[-1].sqrt()
    sigma_k = schedule.sigmas[-1]
    return m + (z_hat_k - m) * s / torch.sqrt(s**2 + sigma_k**2)


# ---------------------------------------------------------------------------------- DDPM
def test_ddpm_matches_gaussian_data_ks():
    sch = NoiseSchedule(128)
    gen = torch.Generator().manual_seed(0)
    x = ddpm_sample(make_denoiser(sch, gaussian_network(M_DATA, S_DATA)), sch, (4000, 1), generator=gen)
    assert x.shape == (4000, 1) and torch.isfinite(x).all()
    p = stats.kstest(x[:, 0].numpy(), "norm", args=(M_DATA, S_DATA)).pvalue
    assert p > 0.01, p
    assert abs(x.mean().item() - M_DATA) < 4 * S_DATA / math.sqrt(4000)
    assert x.std().item() == pytest.approx(S_DATA, rel=0.05)


def test_ddpm_diagonal_gaussian_with_leading_batch_shape():
    sch = NoiseSchedule(128)
    m, s = torch.tensor([0.5, -2.0]), torch.tensor([0.7, 1.5])
    gen = torch.Generator().manual_seed(1)
    x = ddpm_sample(make_denoiser(sch, gaussian_network(m, s)), sch, (40, 50, 2), generator=gen)
    assert x.shape == (40, 50, 2)
    flat = x.reshape(-1, 2)
    for i in range(2):
        p = stats.kstest(flat[:, i].numpy(), "norm", args=(m[i].item(), s[i].item())).pvalue
        assert p > 0.01, (i, p)
    # the two coordinates are independent
    assert abs(torch.corrcoef(flat.T)[0, 1].item()) < 4 / math.sqrt(2000)


def test_ddpm_visits_every_step_in_reverse_and_reports_progress():
    sch = NoiseSchedule(16)
    calls, done = [], []
    ddpm_sample(
        make_denoiser(sch, gaussian_network(0.0, 1.0), calls), sch, (3, 2), progress=lambda i, n: done.append((i, n))
    )
    assert calls == list(range(15, -1, -1))
    assert done == [(i, 16) for i in range(1, 17)]


def test_ddpm_single_step_returns_the_denoised_value():
    """With K = 1, abar_1 = alpha_1: the reverse mean is exactly D, and no noise is added."""
    sch = NoiseSchedule(1, beta_start=0.3, beta_end=0.3)
    target = torch.tensor([[1.5, -0.25]])
    x = ddpm_sample(lambda z_hat, k: target.expand_as(z_hat), sch, (4, 2))
    torch.testing.assert_close(x, target.expand(4, 2), rtol=1e-5, atol=1e-5)


def test_ddpm_step_is_the_forward_posterior_mean_plus_beta_noise():
    """K = 2, replaying the generator: z~^1 = mu~(z~^2, D) + sqrt(beta_2) xi (Eq. 31), then D."""
    sch = NoiseSchedule(2, beta_start=0.2, beta_end=0.6)
    d_value = torch.tensor([0.3, -1.1])
    seen = []

    def denoiser(z_hat, k):
        seen.append((k, z_hat.clone()))
        return d_value.expand_as(z_hat)

    out = ddpm_sample(denoiser, sch, (5, 2), generator=torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    z2 = torch.randn(5, 2, generator=gen)
    xi = torch.randn(5, 2, generator=gen)
    b1, b2 = sch.betas.double().tolist()
    a2 = 1 - b2
    ab1, ab2 = 1 - b1, (1 - b1) * (1 - b2)
    mu = (math.sqrt(ab1) * b2 / (1 - ab2)) * d_value + (math.sqrt(a2) * (1 - ab1) / (1 - ab2)) * z2
    z1 = mu + math.sqrt(b2) * xi
    assert [k for k, _ in seen] == [1, 0]
    torch.testing.assert_close(seen[0][1], z2 / math.sqrt(ab2), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(seen[1][1], z1 / math.sqrt(ab1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, d_value.expand(5, 2), rtol=1e-5, atol=1e-5)


def test_ddpm_generator_reproducible():
    sch = NoiseSchedule(16)
    den = make_denoiser(sch, gaussian_network(M_DATA, S_DATA))
    a = ddpm_sample(den, sch, (7, 1), generator=torch.Generator().manual_seed(3))
    b = ddpm_sample(den, sch, (7, 1), generator=torch.Generator().manual_seed(3))
    c = ddpm_sample(den, sch, (7, 1), generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)


# ---------------------------------------------------------------------------------- DDIM
def ode_error(sample, K, num_sampling_steps=None):
    """Max abs error over 2000 draws of a deterministic sampler (``ddim_sample`` or
    ``heun_sample``) against the probability-flow ODE's closed form, from the same ``z~^K``."""
    sch = NoiseSchedule(K)
    z_k = torch.randn(2000, 1, generator=torch.Generator().manual_seed(11))
    z0 = sample(
        make_denoiser(sch, gaussian_network(M_DATA, S_DATA)),
        sch,
        (2000, 1),
        num_sampling_steps=num_sampling_steps,
        generator=torch.Generator().manual_seed(11),
    )
    return (z0 - ode_solution(z_k, sch)).abs().max().item()


def ddim_error(K):
    return ode_error(ddim_sample, K)


def record_calls(sample, n, K):
    """The step indices a sampler's denoiser is called with, and its progress reports, for
    ``num_sampling_steps = n`` of ``K``."""
    sch = NoiseSchedule(K)
    calls, done = [], []
    sample(
        make_denoiser(sch, gaussian_network(0.0, 1.0), calls),
        sch,
        (2, 3),
        num_sampling_steps=n,
        progress=lambda i, total: done.append((i, total)),
    )
    return calls, done


def test_ddim_all_steps_follows_the_probability_flow_ode():
    errors = {K: ddim_error(K) for K in (16, 128, 1000)}
    assert errors[1000] < 0.02
    assert errors[128] < 0.1
    assert errors[16] < 0.6
    # first-order convergence in 1 / K
    assert errors[16] > 4 * errors[128] > 4 * 4 * errors[1000]


def test_ddim_is_deterministic_given_the_initial_noise():
    sch = NoiseSchedule(128)
    den = make_denoiser(sch, gaussian_network(M_DATA, S_DATA))
    a = ddim_sample(den, sch, (6, 1), num_sampling_steps=20, generator=torch.Generator().manual_seed(5))
    b = ddim_sample(den, sch, (6, 1), num_sampling_steps=20, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # monotone map of z~^K (the ODE flow of 1-D Gaussian data is increasing)
    z_k = torch.randn(6, 1, generator=torch.Generator().manual_seed(5))
    order = z_k[:, 0].argsort()
    assert (a[order, 0].diff() > 0).all()


@pytest.mark.parametrize("n", [32, 128])
def test_ddim_fewer_steps_roughly_gaussian(n):
    sch = NoiseSchedule(1000)
    z0 = ddim_sample(
        make_denoiser(sch, gaussian_network(M_DATA, S_DATA)),
        sch,
        (4000, 1),
        num_sampling_steps=n,
        generator=torch.Generator().manual_seed(2),
    )
    assert abs(z0.mean().item() - M_DATA) < 0.03
    assert z0.std().item() == pytest.approx(S_DATA, rel=0.1 if n == 32 else 0.03)


def test_ddim_spread_improves_with_more_steps():
    sch = NoiseSchedule(1000)
    den = make_denoiser(sch, gaussian_network(M_DATA, S_DATA))
    stds = [
        ddim_sample(den, sch, (2000, 1), num_sampling_steps=n, generator=torch.Generator().manual_seed(2)).std().item()
        for n in (4, 10, 32, 1000)
    ]
    assert stds[0] < stds[1] < stds[2] < stds[3]
    assert stds[3] == pytest.approx(S_DATA, rel=0.05)


@pytest.mark.parametrize("n,K", [(1, 16), (2, 16), (5, 16), (16, 16), (7, 100)])
def test_ddim_step_sequence(n, K):
    calls, done = record_calls(ddim_sample, n, K)
    assert calls[0] == K - 1
    assert len(calls) == max(n, 1)
    assert calls == sorted(set(calls), reverse=True)  # strictly decreasing
    if n > 1:
        assert calls[-1] == 0
    assert done == [(i, len(calls)) for i in range(1, len(calls) + 1)]


def test_ddim_one_step_returns_the_denoised_initial_noise():
    sch = NoiseSchedule(16)
    net = gaussian_network(M_DATA, S_DATA)
    out = ddim_sample(
        make_denoiser(sch, net), sch, (5, 1), num_sampling_steps=1, generator=torch.Generator().manual_seed(9)
    )
    z_hat = torch.randn(5, 1, generator=torch.Generator().manual_seed(9)) / sch.alpha_bars[-1].sqrt()
    sigma = sch.sigmas[-1]
    expected = (S_DATA**2 * z_hat + sigma**2 * M_DATA) / (S_DATA**2 + sigma**2)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bad", [0, -1, 17, 2.0, True, "4"])
def test_ddim_rejects_bad_step_counts(bad):
    sch = NoiseSchedule(16)
    with pytest.raises(ValueError, match="num_sampling_steps"):
        ddim_sample(make_denoiser(sch, gaussian_network(0.0, 1.0)), sch, (2, 1), num_sampling_steps=bad)


# ------------------------------------------------------------------ DDIM eta = 1 (strided DDPM)
def test_ddim_eta_one_step_draws_from_the_forward_posterior():
    """K = 2, one step from level 2 to 1, replaying the generator: ``z^_1 = D + (sigma_1^2 /
    sigma_2^2)(z^_2 - D) + sigma_1 sqrt(1 - sigma_1^2 / sigma_2^2) xi`` (the mean and variance of
    ``q(z^_1 | z^_2, z^0 = D)`` in the rescaled space), then ``D``."""
    sch = NoiseSchedule(2, beta_start=0.2, beta_end=0.6)
    d_value = torch.tensor([0.3, -1.1])
    seen = []

    def denoiser(z_hat, k):
        seen.append((k, z_hat.clone()))
        return d_value.expand_as(z_hat)

    out = ddim_sample(denoiser, sch, (5, 2), eta=1.0, generator=torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    z2 = torch.randn(5, 2, generator=gen) / sch.alpha_bars[-1].sqrt()
    xi = torch.randn(5, 2, generator=gen)
    s1, s2 = sch.sigmas.double().tolist()
    z1 = d_value + (s1**2 / s2**2) * (z2 - d_value) + s1 * math.sqrt(1 - s1**2 / s2**2) * xi
    assert [k for k, _ in seen] == [1, 0]
    torch.testing.assert_close(seen[1][1], z1.float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out, d_value.expand(5, 2), rtol=1e-5, atol=1e-5)
    # the same forward-posterior step, checked against the chain's own posterior variance in VP
    # units: Var(z~^1 | z~^2, z^0) = beta_2 (1 - abar_1) / (1 - abar_2), i.e. abar_1 times the above
    b1, b2 = sch.betas.double().tolist()
    ab1, ab2 = 1 - b1, (1 - b1) * (1 - b2)
    assert ab1 * s1**2 * (1 - s1**2 / s2**2) == pytest.approx(b2 * (1 - ab1) / (1 - ab2), rel=1e-6)


def test_ddim_eta_all_steps_matches_gaussian_data_and_more_steps_help():
    """Ancestral steps on the shortened chain: close to the law with all K steps; coarser chains
    shrink the spread (the denoiser's mean stands in for the posterior of ``z^0``; measured sd
    0.48 / 0.53 / 0.60 / 0.67 with 10 / 16 / 32 / 128 of K = 128, against 0.7)."""
    sch = NoiseSchedule(128)
    den = make_denoiser(sch, gaussian_network(M_DATA, S_DATA))
    stds = []
    for n in (10, 32, 128):
        x = ddim_sample(den, sch, (4000, 1), num_sampling_steps=n, eta=1.0, generator=torch.Generator().manual_seed(0))
        assert abs(x.mean().item() - M_DATA) < 4 * S_DATA / math.sqrt(4000)
        stds.append(x.std().item())
    assert stds[0] < stds[1] < stds[2]
    assert stds[2] == pytest.approx(S_DATA, rel=0.05)
    assert stds[0] > 0.6 * S_DATA


def test_ddim_eta_zero_is_the_default_and_eta_is_checked():
    sch = NoiseSchedule(32)
    den = make_denoiser(sch, gaussian_network(M_DATA, S_DATA))
    a = ddim_sample(den, sch, (6, 1), num_sampling_steps=8, generator=torch.Generator().manual_seed(1))
    b = ddim_sample(den, sch, (6, 1), num_sampling_steps=8, eta=0, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    for bad in (-0.1, 1.5, True, "1"):
        with pytest.raises(ValueError, match="eta"):
            ddim_sample(den, sch, (2, 1), eta=bad)


# ---------------------------------------------------------------------------------- Heun
def heun_error(n, K=128):
    return ode_error(heun_sample, K, n)


def test_heun_follows_the_probability_flow_ode_better_than_ddim_per_call():
    """Against the ODE's closed form, max abs error over 2000 draws: Heun on n levels (2n - 2
    calls) against DDIM on 2n - 2 steps, measured 0.22 / 0.39 (n = 8), 0.042 / 0.18 (16),
    0.013 / 0.091 (32); Heun through all 128 levels 0.0028 (DDIM 0.044)."""
    for n, share in ((8, 0.7), (16, 0.3), (32, 0.3)):
        ddim_err = ode_error(ddim_sample, 128, 2 * n - 2)
        assert heun_error(n) < share * ddim_err, (n, heun_error(n), ddim_err)
    assert heun_error(128) < heun_error(32) < heun_error(16) < heun_error(8)
    assert heun_error(128) < 0.01


def test_heun_spread_on_gaussian_data():
    """sd of 4000 draws for data of sd 0.7 (measured 0.634 / 0.684 with 8 / 16 of K = 128 levels)."""
    sch = NoiseSchedule(128)
    den = make_denoiser(sch, gaussian_network(M_DATA, S_DATA))
    x = heun_sample(den, sch, (4000, 1), num_sampling_steps=16, generator=torch.Generator().manual_seed(0))
    assert abs(x.mean().item() - M_DATA) < 0.03
    assert x.std().item() == pytest.approx(S_DATA, rel=0.03)


@pytest.mark.parametrize("n,K", [(1, 16), (2, 16), (5, 16), (16, 16), (7, 100)])
def test_heun_calls_and_progress(n, K):
    """Each level's call in decreasing order, each step into a level above the finest preceded by
    a call there for the correction: ``2 n - 2`` calls for ``n >= 2`` levels."""
    calls, done = record_calls(heun_sample, n, K)
    assert len(calls) == (1 if n == 1 else 2 * n - 2)
    assert calls[0] == K - 1 and calls[-1] == (K - 1 if n == 1 else 0)
    assert calls == sorted(calls, reverse=True)
    assert done == [(i, n) for i in range(1, n + 1)]
