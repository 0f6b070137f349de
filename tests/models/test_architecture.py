"""The ``architecture`` option of the state-space presets: ``"compact"`` (the default: MLPs with
the same call signatures) and ``"paper"`` (the Context Producers and the CSDI denoiser, unchanged):
the compact parts' shapes, the compact default bit for bit with paper still available, training /
sampling / forecasting / save-load of compact DKF and DDSSM fits, older files without the option
(paper), and bad values."""

from __future__ import annotations

import json

import numpy as np
import pyro
import pytest
import torch

import pyrossm
from pyrossm.diffusion import denoise, karras_coefficients, level_denoiser
from pyrossm.inference import atomic_torch_save, elbo_terms, safe_torch_load
from pyrossm.io import checksum
from pyrossm.models import DDSSM, DKF
from pyrossm.models.emission import GaussianEmission
from pyrossm.models.encoder import SmoothingEncoder
from pyrossm.models.init import VHPInit
from pyrossm.models.transition import DiffusionDynamics, GaussianTransition
from pyrossm.nn import ContextGaussian, CSDIDenoiser, MLPDenoiser, MLPGaussian, gaussian_network

CONFIGS = [(1, 1, 0), (2, 2, 1), (3, 1, 2)]
IDS = [f"M{m}-j{j}-V{v}" for m, j, v in CONFIGS]
B, D = 5, 2
#: a tiny DDSSM for pyrossm.fit
TINY_DDSSM = dict(
    channels=4,
    hidden_dim=4,
    encoder_layers=1,
    emission_layers=1,
    diffusion_channels=4,
    diffusion_layers=1,
    num_diffusion_steps=8,
    progress=False,
)


def networks(module):
    return {type(m) for m in module.modules()} & {ContextGaussian, MLPGaussian, CSDIDenoiser, MLPDenoiser}


@pytest.mark.parametrize("m,j,v", CONFIGS, ids=IDS)
def test_compact_parts_have_the_shapes_of_the_paper_parts(m, j, v):
    kw = dict(hidden_dim=8, num_layers=2, architecture="compact")
    emission = GaussianEmission(D, m, j, v, **kw)
    d = emission(torch.randn(B, 4, j, m), torch.randn(B, 4, j, v), torch.ones(4, j))
    assert d.batch_shape == (B, 4, D)
    transition = GaussianTransition(m, j, v, **kw)
    d = transition(torch.randn(B, j, m), torch.randn(B, j + 1, v))
    assert (d.batch_shape, d.event_shape) == ((B,), (m,))
    encoder = SmoothingEncoder(D, m, j, v, summary_dim=6, **kw)
    summary = encoder.summarize(torch.randn(B, 7, D), torch.ones(B, 7, D), torch.randn(B, 7, v))
    loc, scale = encoder.step(torch.randn(B, j, m), torch.ones(B, j), summary[:, 0], torch.randn(B, j + 1, v))
    assert loc.shape == scale.shape == (B, m) and bool((scale > 0).all())
    init = VHPInit(m, j, v, **kw)
    q = init.aux_posterior(torch.randn(3, B, j, m), torch.randn(B, j, v))
    assert (q.batch_shape, q.event_shape) == ((3, B), (j, m))
    assert init.prior(torch.randn(B, j, v), q.sample()).log_prob(torch.randn(3, B, j, m)).shape == (3, B)
    dynamics = DiffusionDynamics(m, j, v, num_diffusion_steps=4, channels=8, num_layers=2, architecture="compact")
    d = dynamics(torch.randn(B, j, m), torch.randn(B, j + 1, v))
    assert d.log_prob(torch.randn(B, m)).shape == (B,) and d.sample().shape == (B, m)
    for part in (emission, transition, encoder, init):
        assert networks(part) == {MLPGaussian}
    assert networks(dynamics) == {MLPDenoiser}
    assert networks(GaussianEmission(D, m, j, v)) == {ContextGaussian}
    # the future summary: one GRU layer in the compact architecture, the paper's three otherwise
    assert encoder.summary.gru.num_layers == 1 and SmoothingEncoder(D, m, j, v).summary.gru.num_layers == 3
    assert SmoothingEncoder(D, m, j, v, summary_layers=2, architecture="compact").summary.gru.num_layers == 2


def test_mlp_gaussian_contains_the_linear_gaussian_model():
    net = gaussian_network("compact", 2, 3, 2, side_dim=1, extra_dim=1, hidden_dim=4, num_layers=1)
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
    seq, side, extra = torch.randn(B, 3, 2), torch.randn(B, 3, 1), torch.randn(B, 1)
    mean, scale = net(seq, side, extra)
    expected = torch.cat([seq.flatten(1), extra], dim=-1) @ net.skip.weight.T
    assert torch.allclose(mean, expected) and torch.allclose(scale, torch.ones(()))
    # without side information where the network has some: zeros
    assert torch.equal(net(seq, None, extra)[0], net(seq, torch.zeros_like(side), extra)[0])


def test_mlp_denoiser_starts_as_the_skip_and_embeds_each_noise_level_once():
    net = MLPDenoiser(2, order=2, covariate_dim=1, hidden_dim=8, num_layers=2)
    z, history, cov = torch.randn(B, 2), torch.randn(B, 2, 2), torch.randn(B, 3, 1)
    sigma = torch.tensor([0.1, 0.5, 0.1, 2.0, 0.5])
    d, out = denoise(net, z, sigma, (history, cov))
    c_skip = 1.0 / (sigma**2 + 1.0)  # sigma_data = 1
    assert torch.equal(out, torch.zeros_like(z)) and torch.allclose(d, c_skip.unsqueeze(-1) * z)
    torch.nn.init.normal_(net.output.weight)
    out = net(z, sigma, (history, cov))
    one_by_one = torch.cat(
        [net(z[i : i + 1], sigma[i : i + 1], (history[i : i + 1], cov[i : i + 1])) for i in range(B)]
    )
    assert torch.allclose(out, one_by_one, atol=1e-6)


@pytest.mark.parametrize("activation", ["relu", "silu"])
def test_a_conditioned_mlp_denoiser_is_the_network_with_its_context_fixed(activation):
    torch.manual_seed(3)
    net = MLPDenoiser(3, order=2, covariate_dim=1, hidden_dim=8, num_layers=3, activation=activation)
    for p in net.parameters():  # away from the zero output layer, FiLM scales far from 1
        torch.nn.init.normal_(p, std=0.3)
    x, history, cov = torch.randn(40, 3), torch.randn(40, 2, 3), torch.randn(40, 3, 1)
    sigmas = torch.tensor([0.02, 0.7, 3.0, 40.0])
    conditioned = net.conditioned((history, cov), karras_coefficients(sigmas)[3])
    by_level = level_denoiser(net, sigmas, (history, cov))
    for k, sigma in enumerate(sigmas):
        expected = net(x, karras_coefficients(sigma.expand(40))[3], (history, cov))
        with torch.no_grad():  # the in-place activations of sampling
            fast = conditioned(x, k)
        with_grad = conditioned(x, k)
        scale = expected.abs().max().item()
        assert scale > 1.0
        assert torch.allclose(fast, expected, atol=1e-5 * scale) and torch.allclose(
            with_grad, expected, atol=1e-5 * scale
        )
        d = denoise(net, x, sigma.expand(40), (history, cov))[0]
        assert torch.allclose(by_level(x, k), d, atol=1e-5 * d.abs().max().item())


def test_diffusion_sampling_draws_the_same_with_and_without_the_conditioned_network():
    dynamics = DiffusionDynamics(
        2, 2, 1, 16, channels=8, num_layers=2, sampler="heun", num_sampling_steps=6, architecture="compact"
    )
    for p in dynamics.network.parameters():
        torch.nn.init.normal_(p, std=0.3)
    history, cov = torch.randn(30, 2, 2), torch.randn(30, 3, 1)
    torch.manual_seed(0)
    fast = dynamics(history, cov).sample()

    class Plain(torch.nn.Module):  # the same network without its conditioned shortcut
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, *args):
            return self.net(*args)

    dynamics.network = Plain(dynamics.network)
    torch.manual_seed(0)
    plain = dynamics(history, cov).sample()
    assert fast.shape == (30, 2) and torch.allclose(fast, plain, atol=1e-4 * plain.abs().max().item())


@pytest.mark.parametrize("cls", [DKF, DDSSM])
def test_compact_is_the_default_bit_for_bit_and_paper_stays_available(cls):
    x, mask, u = torch.randn(4, 6, D), torch.ones(4, 6, D, dtype=torch.bool), torch.randn(4, 6, 1)
    results = []
    for kw in ({}, {"architecture": "compact"}, {"architecture": "paper"}):
        torch.manual_seed(0)
        model = cls(obs_dim=D, latent_dim=2, order=2, covariate_dim=1, channels=4, hidden_dim=4, **kw)
        pyro.set_rng_seed(1)
        loss, _ = elbo_terms(model.model, model.guide, x, mask, u, annealing=0.5, num_particles=2)
        results.append((model.state_dict(), loss.item(), model.config, networks(model)))
    (a, loss_a, config_a, nets_a), (b, loss_b, config_b, nets_b), (_, loss_p, config_p, nets_p) = results
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert loss_a == loss_b and np.isfinite(loss_a)
    assert config_a == config_b and config_a["architecture"] == "compact"
    assert nets_a == nets_b == ({MLPGaussian} if cls is DKF else {MLPGaussian, MLPDenoiser})
    # the paper networks remain a named option
    assert config_p["architecture"] == "paper" and np.isfinite(loss_p)
    assert nets_p == ({ContextGaussian} if cls is DKF else {ContextGaussian, CSDIDenoiser})
    assert {k: v for k, v in config_p.items() if k != "architecture"} == {
        k: v for k, v in config_a.items() if k != "architecture"
    }


@pytest.mark.parametrize("name,options", [("dkf", {}), ("ddssm", TINY_DDSSM)], ids=["dkf", "ddssm"])
def test_compact_fits_train_sample_forecast_and_round_trip(name, options, make_ds, tiny, tmp_path):
    data = make_ds()
    options = options or tiny
    res = pyrossm.fit(name, data, num_steps=3, architecture="compact", **options)
    assert np.isfinite(res.history["loss"]).all() and len(res.history) == 3
    assert res.model.config["architecture"] == "compact"
    assert networks(res.model) == ({MLPGaussian} if name == "dkf" else {MLPGaussian, MLPDenoiser})
    assert res.sample(3, 5, seed=0)["x"].shape == (1, 3, 5)
    forecast = res.forecast(data, horizon=2, num_samples=4, seed=1)
    assert forecast["x"].shape == (4, data.sizes["series"], 2) and np.isfinite(forecast["x"].values).all()
    loaded = pyrossm.load(res.save(tmp_path / "compact.pyrossm"))
    assert loaded.model.config["architecture"] == "compact" and networks(loaded.model) == networks(res.model)
    again = loaded.forecast(data, horizon=2, num_samples=4, seed=1)
    assert np.array_equal(forecast["x"].values, again["x"].values)


def test_files_saved_without_the_architecture_option_load_as_paper(make_ds, tiny, tmp_path):
    # such files were all fitted with the paper networks (then the default)
    res = pyrossm.fit("dkf", make_ds(), num_steps=1, architecture="paper", **tiny)
    payload = safe_torch_load(res.save(tmp_path / "new.pyrossm"))
    config = json.loads(payload["config"])
    assert config["model_config"].pop("architecture") == "paper"
    payload["config"] = json.dumps(config)
    payload["checksum"] = checksum(payload)
    atomic_torch_save(payload, tmp_path / "old.pyrossm")
    old = pyrossm.load(tmp_path / "old.pyrossm")
    assert old.model.config["architecture"] == "paper" and networks(old.model) == {ContextGaussian}


def test_an_unknown_architecture_is_a_value_error_before_training(make_ds, tiny, monkeypatch):
    for build in (
        lambda: DKF(obs_dim=1, architecture="bogus"),
        lambda: DDSSM(obs_dim=1, architecture="Compact"),
        lambda: GaussianEmission(1, 1, architecture=None),
        lambda: DiffusionDynamics(1, architecture="mlp"),
    ):
        with pytest.raises(ValueError, match="architecture must be one of \\['paper', 'compact'\\]"):
            build()

    def no_training(*args, **kwargs):  # pragma: no cover (must not be reached)
        raise AssertionError("training started")

    monkeypatch.setattr(pyrossm.api.Trainer, "fit", no_training)
    for name, options in (("dkf", tiny), ("ddssm", TINY_DDSSM)):
        with pytest.raises(ValueError, match="architecture must be one of .* got 'bogus'"):
            pyrossm.fit(name, make_ds(), num_steps=1, architecture="bogus", **options)
