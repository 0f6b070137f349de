"""NoiseSchedule: derived buffers, the default beta ranges, and the closed-form forward KL."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from pyrossm.diffusion import NoiseSchedule

KS = [1, 2, 16, 128, 1000]


def as64(t):
    return t.double()


def reference_betas(K, kind):
    """The betas from their definitions, in float64, independently of the module."""
    if kind == "linear":
        return torch.linspace(0.1 / K, min(20.0 / K, 0.999), K, dtype=torch.float64)
    s = 0.008
    k = torch.arange(K + 1, dtype=torch.float64)
    f = torch.cos((k / K + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)


def close(got, ref, rtol=1e-5):
    """float32 buffer vs float64 reference: only the final rounding may differ."""
    torch.testing.assert_close(got.double(), ref, rtol=rtol, atol=0)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("K", KS)
def test_derived_buffers(K, kind):
    sch = NoiseSchedule(K, kind)
    assert sch.num_steps == K
    for name in (
        "betas",
        "alphas",
        "alpha_bars",
        "sigmas",
        "loss_weights",
        "eps_weights",
        "alpha_bars_prev",
        "posterior_variances",
    ):
        buf = getattr(sch, name)
        assert buf.shape == (K,), name
        assert buf.dtype == torch.float32, name
        assert torch.isfinite(buf).all(), name
    betas = reference_betas(K, kind)
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    close(sch.betas, betas)
    close(sch.alphas, alphas)
    close(sch.alpha_bars, abar)
    close(sch.sigmas, ((1 - abar) / abar).sqrt())
    w = betas / (2 * alphas * (1 - abar))  # Eq. 33
    close(sch.eps_weights, w)
    close(sch.loss_weights, betas * abar / (2 * alphas * (1 - abar)))  # Eq. 44
    # Eq. 42: w~ = w c_out^2 / sigma^2, c_out = sigma / sqrt(sigma^2 + 1)
    sig2 = (1 - abar) / abar
    close(sch.loss_weights, w * (sig2 / (sig2 + 1)) / sig2)
    # relations among the float32 buffers themselves
    torch.testing.assert_close(sch.alphas, 1 - sch.betas, rtol=0, atol=1e-7)
    torch.testing.assert_close(sch.alpha_bars, torch.cumprod(sch.alphas, 0), rtol=1e-4, atol=0)
    torch.testing.assert_close(
        sch.loss_weights,
        sch.eps_weights * sch.alpha_bars,  # Eq. 43
        rtol=1e-5,
        atol=0,
    )
    # Ho et al.'s posterior variance beta~_k and abar_{k-1}
    abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    close(sch.alpha_bars_prev, abar_prev)
    close(sch.posterior_variances, (1 - abar_prev) / (1 - abar) * betas)
    assert sch.posterior_variances[0].item() == 0.0
    # abar strictly decreasing, sigma strictly increasing
    assert (sch.alpha_bars[1:] < sch.alpha_bars[:-1]).all()
    assert (sch.sigmas[1:] > sch.sigmas[:-1]).all()


@pytest.mark.parametrize("K", [16, 128, 1000])
def test_linear_defaults_rescale_ho_et_al(K):
    sch = NoiseSchedule(K)
    assert sch.kind == "linear"
    assert sch.betas[0].item() == pytest.approx(0.1 / K, rel=1e-6)
    end = min(20.0 / K, 0.999)  # 20 / K is clipped at 0.999 for K < 21
    assert sch.betas[-1].item() == pytest.approx(end, rel=1e-6)
    assert sch.beta_start == pytest.approx(0.1 / K) and sch.beta_end == pytest.approx(end)
    # evenly spaced
    diffs = sch.betas.double().diff()
    torch.testing.assert_close(diffs, torch.full_like(diffs, (end - 0.1 / K) / (K - 1)), rtol=1e-3, atol=1e-8)
    # the terminal marginal is close to N(0, I)
    assert sch.alpha_bars[-1].item() < 1e-3
    expected = math.prod(1 - (0.1 / K + (end - 0.1 / K) * i / (K - 1)) for i in range(K))
    assert sch.alpha_bars[-1].item() == pytest.approx(expected, rel=1e-4)


def test_linear_default_beta_end_is_clipped_for_tiny_K():
    sch = NoiseSchedule(10)
    assert sch.betas[-1].item() == pytest.approx(0.999, rel=1e-6)
    assert sch.betas[0].item() == pytest.approx(0.01, rel=1e-6)


def test_linear_custom_endpoints():
    sch = NoiseSchedule(1000, "linear", beta_start=1e-4, beta_end=0.02)  # Ho et al. (2020)
    assert sch.betas[0].item() == pytest.approx(1e-4, rel=1e-6)
    assert sch.betas[-1].item() == pytest.approx(0.02, rel=1e-6)
    assert sch.alpha_bars[-1].item() == pytest.approx(4.04e-5, rel=0.02)


@pytest.mark.parametrize("K", [16, 128, 1000])
def test_cosine(K):
    sch = NoiseSchedule(K, "cosine")
    abar = sch.alpha_bars.double()
    assert (abar[1:] < abar[:-1]).all()
    assert (sch.betas > 0).all() and (sch.betas <= 0.999 + 1e-7).all()
    # Nichol & Dhariwal's closed form (before clipping, which only touches the last steps)
    s = 0.008
    k = torch.arange(K + 1, dtype=torch.float64)
    f = torch.cos((k / K + s) / (1 + s) * math.pi / 2) ** 2
    ref = f[1:] / f[0]
    unclipped = (1 - ref[1:] / ref[:-1]) <= 0.999
    n = int(unclipped.sum()) + 1  # abar_k matches up to the first clipped beta
    torch.testing.assert_close(abar[:n], ref[:n], rtol=1e-4, atol=1e-7)
    assert sch.alpha_bars[-1].item() < 1e-3


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("K", [16, 128, 1000])
@pytest.mark.parametrize("d", [1, 3])
def test_forward_kl_matches_torch_kl(K, kind, d):
    sch = NoiseSchedule(K, kind)
    gen = torch.Generator().manual_seed(K + d)
    z0 = 3 * torch.randn(5, 4, d, generator=gen)
    got = sch.forward_kl(z0)
    assert got.shape == (5, 4)
    abar = sch.alpha_bars[-1].double()
    q = Normal(abar.sqrt() * z0.double(), (1 - abar).sqrt())
    p = Normal(torch.zeros((), dtype=torch.float64), torch.ones((), dtype=torch.float64))
    ref = kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-5)
    # also against the multivariate-normal KL
    mvn_q = MultivariateNormal(abar.sqrt() * z0.double(), (1 - abar) * torch.eye(d, dtype=torch.float64))
    mvn_p = MultivariateNormal(torch.zeros(d, dtype=torch.float64), torch.eye(d, dtype=torch.float64))
    torch.testing.assert_close(got.double(), kl_divergence(mvn_q, mvn_p), rtol=1e-5, atol=1e-5)
    assert (got >= 0).all()


def test_forward_kl_is_differentiable():
    sch = NoiseSchedule(16)
    z0 = torch.tensor([[1.0, -2.0]], requires_grad=True)
    sch.forward_kl(z0).sum().backward()
    torch.testing.assert_close(z0.grad, sch.alpha_bars[-1] * z0.detach())


def test_add_noise_is_eq_36():
    sch = NoiseSchedule(128)
    gen = torch.Generator().manual_seed(0)
    z0, eps = torch.randn(6, 2, generator=gen), torch.randn(6, 2, generator=gen)
    k = torch.tensor([0, 1, 5, 64, 126, 127])
    z_tilde = sch.alpha_bars[k].sqrt()[:, None] * z0 + (1 - sch.alpha_bars[k]).sqrt()[:, None] * eps
    torch.testing.assert_close(
        sch.add_noise(z0, k, eps), z_tilde / sch.alpha_bars[k].sqrt()[:, None], rtol=1e-5, atol=1e-4
    )


def test_constant_per_dim_matches_its_definition():
    sch = NoiseSchedule(64)
    betas = sch.betas.double()
    abar = torch.cumprod(1 - betas, 0)
    bt = (1 - abar[:-1]) / (1 - abar[1:]) * betas[1:]
    r = bt / betas[1:]
    expected = 0.5 * (r - 1 - r.log()).sum() + 0.5 * math.log(2 * math.pi * betas[0].item())
    assert sch.constant_per_dim == pytest.approx(float(expected), rel=1e-4)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_steps=0),
        dict(num_steps=-3),
        dict(num_steps=2.5),
        dict(num_steps=True),
        dict(num_steps="8"),
        dict(kind="quadratic"),
        dict(kind=None),
        dict(beta_start=0.0),
        dict(beta_start=-0.1),
        dict(beta_start=0.5, beta_end=0.1),
        dict(beta_end=1.0),
        dict(beta_end=1.5),
    ],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        NoiseSchedule(**kwargs)


@pytest.mark.parametrize("kwargs", [dict(beta_end=0.2), dict(beta_start=1e-3)])
def test_cosine_rejects_linear_betas_naming_them(kwargs):
    with pytest.raises(ValueError, match="beta_start and beta_end"):
        NoiseSchedule(16, "cosine", **kwargs)


@pytest.mark.parametrize("K", [1, 2, 32, 128])
def test_karras_noise_levels(K):
    """sigma_k follows Karras et al.'s rho = 7 ramp from sigma_min to sigma_max; the derived
    buffers satisfy the same identities as the other kinds."""
    sch = NoiseSchedule(K, "karras", sigma_min=0.01, sigma_max=50.0)
    if K == 1:
        ref = torch.tensor([50.0], dtype=torch.float64)
    else:
        ramp = torch.linspace(0, 1, K, dtype=torch.float64)
        ref = (0.01 ** (1 / 7) + ramp * (50.0 ** (1 / 7) - 0.01 ** (1 / 7))) ** 7
    close(sch.sigmas, ref, rtol=1e-4)
    abar = 1 / (1 + ref**2)
    close(sch.alpha_bars, abar, rtol=1e-4)
    assert torch.all((sch.betas > 0) & (sch.betas < 1))
    assert torch.all(sch.sigmas[1:] > sch.sigmas[:-1])
    betas = 1 - abar / torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    close(sch.betas, betas, rtol=1e-4)
    close(sch.loss_weights, betas * abar / (2 * (1 - betas) * (1 - abar)), rtol=1e-4)  # Eq. 44


def test_karras_defaults_and_forward_kl():
    sch = NoiseSchedule(32, "karras")
    assert sch.sigmas[0].item() == pytest.approx(0.002, rel=1e-4)
    assert sch.sigmas[-1].item() == pytest.approx(80.0, rel=1e-4)
    z0 = torch.tensor([[0.5], [-2.0]])
    abar = 1 / (1 + 80.0**2)
    ref = 0.5 * (abar * z0[:, 0] ** 2 - abar - math.log1p(-abar))
    torch.testing.assert_close(sch.forward_kl(z0), ref, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kind="karras", sigma_min=0.0),
        dict(kind="karras", sigma_min=2.0, sigma_max=1.0),
        dict(kind="karras", sigma_max=float("inf")),
        dict(kind="karras", sigma_min="0.1"),
        dict(kind="karras", beta_end=0.2),
        dict(kind="linear", sigma_min=0.01),
        dict(kind="cosine", sigma_max=10.0),
    ],
)
def test_karras_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="sigma|beta"):
        NoiseSchedule(16, **kwargs)


def test_only_the_chosen_kinds_parameters_are_kept_and_shown():
    linear, cosine, karras = NoiseSchedule(32), NoiseSchedule(32, "cosine"), NoiseSchedule(32, "karras")
    assert (linear.beta_start, linear.beta_end) == (0.1 / 32, 20 / 32)
    assert linear.sigma_min is None and linear.sigma_max is None
    assert cosine.beta_start is None and cosine.beta_end is None and cosine.sigma_min is None
    assert (karras.sigma_min, karras.sigma_max) == (0.002, 80.0) and karras.beta_end is None
    assert repr(linear) == "NoiseSchedule(num_steps=32, kind='linear', beta_start=0.003125, beta_end=0.625)"
    assert repr(cosine) == "NoiseSchedule(num_steps=32, kind='cosine')"
    assert repr(karras) == "NoiseSchedule(num_steps=32, kind='karras', sigma_min=0.002, sigma_max=80)"
