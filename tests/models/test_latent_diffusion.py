"""Time-series latent diffusion and the collapse-simulation framework: fits through ``pyrossm.fit``,
stages train only their groups, the framework's objective is Eq. 14-15, the diffusion prior and
the stopped sampler, save/load, ragged and multivariate data, option checks."""

from __future__ import annotations

import numpy as np
import pyro
import pytest
import torch
import xarray as xr
from pyro import poutine

import pyrossm
from pyrossm.diffusion import NoiseSchedule, ddpm_sample
from pyrossm.distributions import DiffusionPrior
from pyrossm.inference import ObservedSites
from pyrossm.inference.config import ObjectiveSettings
from pyrossm.models import CollapseSimulation, LatentDiffusion
from pyrossm.nn import AutoregressiveDecoder, VectorDenoiser

SMALL = dict(hidden_dim=8, latent_dim=4, diffusion_steps=40, prior_widths=[8, 4])
FRAMEWORK = dict(SMALL, vi_steps=4, collapse_from=8)


@pytest.fixture(scope="module")
def data():
    """40 series x 10 steps, two channels: a random-level sine, the second a noisy copy;
    series 0 ends early (trailing NaN), one value missing in series 1."""
    rng = np.random.default_rng(0)
    t = np.arange(10)
    level = rng.normal(size=(40, 1))
    a = level + np.sin(t / 2 + rng.uniform(0, 6, size=(40, 1)))
    b = a + 0.1 * rng.normal(size=a.shape)
    a[0, 7:] = b[0, 7:] = np.nan
    b[1, 3] = np.nan
    return xr.Dataset(
        {"a": (("series", "time"), a), "b": (("series", "time"), b)}, coords={"series": np.arange(40), "time": t}
    )


VARIANTS = [
    ("latent_diffusion", dict(SMALL, backbone="lstm")),
    ("latent_diffusion", dict(SMALL, backbone="transformer", remedy="kl_annealing")),
    ("latent_diffusion", dict(SMALL, remedy="variable_masking")),
    ("latent_diffusion", dict(SMALL, backbone="transformer", remedy="skip_connections")),
    ("collapse_simulation", dict(FRAMEWORK, backbone="lstm")),
    ("collapse_simulation", dict(FRAMEWORK, backbone="transformer")),
]


@pytest.mark.parametrize("name,options", VARIANTS)
def test_every_variant_fits_both_stages_and_samples(data, name, options, tmp_path):
    before = pyrossm.models.build_model(name, obs_dim=2, **options)
    res = pyrossm.fit(name, data, num_steps=6, batch_size=16, progress=False, seed=0, **options)
    h = res.history
    assert list(h["stage"].unique()) == ["autoencoder", "prior"] and len(h) == 12
    assert np.isfinite(h["loss"]).all()
    gen = res.sample(num_series=3, length=7, num_samples=2, seed=1)
    assert dict(gen.sizes) == {"draw": 2, "series": 3, "time": 7} and set(gen.data_vars) == {"a", "b"}
    assert np.isfinite(gen["a"].values).all()
    assert gen.equals(res.sample(num_series=3, length=7, num_samples=2, seed=1))
    assert not gen.equals(res.sample(num_series=3, length=7, num_samples=2, seed=2))
    back = pyrossm.load(res.save(tmp_path / "fit.pyrossm"))
    assert type(back.model) is type(res.model) and back.model.config == res.model.config
    assert back.sample(3, 7, seed=5).equals(res.sample(3, 7, seed=5))
    assert res.capabilities == ()
    assert type(before) is type(res.model)


def test_stages_train_only_their_groups(data):
    pyro.set_rng_seed(0)
    model = LatentDiffusion(obs_dim=2, **SMALL)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    groups = model.parameter_groups()
    names = {id(p): n for n, p in model.named_parameters()}
    group_of = {names[id(p)]: g for g, ps in groups.items() for p in ps}
    assert set(group_of) == set(names.values())  # every parameter in exactly one group
    res = pyrossm.fit(model, data, num_steps=4, batch_size=16, progress=False, seed=0)
    end = res.model.state_dict()
    changed = {g for n, g in group_of.items() if not torch.equal(start[n], end[n])}
    assert changed == {"encoder", "decoder", "prior"}
    # a prior-only stage leaves the autoencoder alone
    stages = res.model.training_stages(ObjectiveSettings())
    assert [s.name for s in stages] == ["autoencoder", "prior"]
    assert stages[0].groups == ("encoder", "decoder") and stages[1].groups == ("prior",)


def _tensors(n=5, t=6, d=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, t, d, generator=g)
    return x, torch.ones(n, t, d, dtype=torch.bool), torch.zeros(n, t, 0)


def test_framework_objective_is_eq_14_and_15():
    torch.manual_seed(0)
    model = CollapseSimulation(obs_dim=2, **FRAMEWORK).eval()
    x, mask, cov = _tensors(n=64)
    n = x.shape[0]
    guide_trace = poutine.trace(model.guide).get_trace(x, mask, cov)
    model_trace = poutine.trace(poutine.replay(model.model, trace=guide_trace)).get_trace(x, mask, cov)
    j = guide_trace.nodes["vi_step"]["value"]
    k = 8 + guide_trace.nodes["collapse_step"]["value"]  # k ~ U{M..L}, M = 8, L = 40
    assert j.min() >= 0 and j.max() <= 4 and k.min() >= 8 and k.max() <= 40 and len(j.unique()) > 2
    v = model.encode(x, mask)
    z, z_c = guide_trace.nodes["z"]["value"], guide_trace.nodes["z_collapsed"]["value"]
    assert torch.allclose(z[j == 0], v[j == 0])  # j = 0: z = v exactly
    abar = torch.cat([torch.ones(1), model.schedule.alpha_bars])
    # Eq. 14: the likelihood site scaled by abar_{gamma j}, gamma = 2
    assert torch.allclose(model_trace.nodes["x"]["scale"], abar[2 * j])
    # Eq. 15 with the floor at N(0, 1): weight 1 - abar_{ceil(k / eta)}, eta = 1
    floor = torch.distributions.Normal(0.0, 1.0).log_prob(x).sum((-2, -1))
    penalty = -(1 - abar[k]) * torch.maximum(model.likelihood(z_c, x, mask).log_prob(x), floor)
    assert torch.allclose(model_trace.nodes["collapse_penalty"]["fn"].log_factor, penalty, atol=1e-5)
    # the objective sums exactly these observed sites (the latent sites' densities do not count)
    torch.manual_seed(1)
    loss, terms = ObservedSites(model.model, model.guide).loss((x, mask, cov), 0)
    torch.manual_seed(1)
    guide_trace = poutine.trace(model.guide).get_trace(x, mask, cov)
    j = guide_trace.nodes["vi_step"]["value"]
    k = 8 + guide_trace.nodes["collapse_step"]["value"]
    z, z_c = guide_trace.nodes["z"]["value"], guide_trace.nodes["z_collapsed"]["value"]
    expected = (abar[2 * j] * model.likelihood(z, x, mask).log_prob(x)).sum()
    expected = expected - ((1 - abar[k]) * torch.maximum(model.likelihood(z_c, x, mask).log_prob(x), floor)).sum()
    assert torch.allclose(loss, -expected / n, rtol=1e-5)
    assert set(terms) == {"objective", "site_x", "site_collapse_penalty"}


def test_collapse_penalty_is_floored_at_the_uninformed_guess():
    """A decoder that gives every noisy latent a tiny variance earns -inf under Eq. 15 alone."""
    model = CollapseSimulation(obs_dim=2, **FRAMEWORK).eval()
    with torch.no_grad():
        model.decoder.raw_scale.bias.fill_(-30.0)  # scale = MIN_SCALE: a terrible log-likelihood
        model.decoder.loc.bias.fill_(50.0)
    x, mask, cov = _tensors()
    trace = poutine.trace(poutine.replay(model.model, trace=poutine.trace(model.guide).get_trace(x, mask, cov)))
    nodes = trace.get_trace(x, mask, cov).nodes
    floor = torch.distributions.Normal(0.0, 1.0).log_prob(x).sum((-2, -1))
    k = 8 + nodes["collapse_step"]["value"]
    weight = 1 - torch.cat([torch.ones(1), model.schedule.alpha_bars])[k]
    assert torch.allclose(nodes["collapse_penalty"]["fn"].log_factor, -weight * floor)


def test_variable_masking_drops_decoder_inputs_only_in_training():
    torch.manual_seed(0)
    dec = AutoregressiveDecoder(obs_dim=1, latent_dim=2, hidden_dim=4, input_dropout=0.25)
    z, x = torch.zeros(2000, 2), torch.ones(2000, 3, 1)
    e = dec.train()._inputs(z, x)[:, 1:]  # inputs from x_1, x_2
    zero_input = dec.obs_input(torch.zeros(1))
    dropped = torch.isclose(e, zero_input.expand_as(e)).all(-1).float().mean()
    assert abs(float(dropped) - 0.25) < 0.03
    assert not torch.isclose(dec.eval()._inputs(z, x)[:, 1:], zero_input.expand_as(e)).all(-1).any()


def test_skip_connections_feed_z_to_every_step():
    torch.manual_seed(0)
    plain = AutoregressiveDecoder(obs_dim=1, latent_dim=2, hidden_dim=4).eval()
    skip = AutoregressiveDecoder(obs_dim=1, latent_dim=2, hidden_dim=4, skip=True).eval()
    x = torch.randn(1, 4, 1)
    z1, z2 = torch.zeros(1, 2), torch.ones(1, 2)
    # the inputs e_j, j >= 1, depend on z only with skip connections
    assert torch.equal(plain._inputs(z1, x)[:, 1:], plain._inputs(z2, x)[:, 1:])
    assert not torch.allclose(skip._inputs(z1, x)[:, 1:], skip._inputs(z2, x)[:, 1:])


def test_stopped_sampler_and_diffusion_prior():
    schedule = NoiseSchedule(10)
    net = VectorDenoiser(3, (8, 4))

    def denoiser(z_hat, k):
        return z_hat * 0.5

    full = ddpm_sample(denoiser, schedule, (4, 3), generator=torch.Generator().manual_seed(0))
    at_zero = ddpm_sample(denoiser, schedule, (4, 3), generator=torch.Generator().manual_seed(0), stop_index=0)
    assert torch.equal(full, at_zero)
    start = torch.randn((4, 3), generator=torch.Generator().manual_seed(0))
    at_top = ddpm_sample(denoiser, schedule, (4, 3), generator=torch.Generator().manual_seed(0), stop_index=10)
    assert torch.equal(at_top, start)  # stopping at L returns z~^L untouched
    mixed = ddpm_sample(
        denoiser, schedule, (4, 3), generator=torch.Generator().manual_seed(0), stop_index=torch.tensor([0, 10, 0, 10])
    )
    assert torch.equal(mixed[[0, 2]], full[[0, 2]]) and torch.equal(mixed[[1, 3]], start[[1, 3]])
    with pytest.raises(ValueError, match="stop_index"):
        ddpm_sample(denoiser, schedule, (2, 3), stop_index=11)
    prior = DiffusionPrior(net, schedule, 3, (5,), max_stop=4)
    assert prior.sample((2,)).shape == (2, 5, 3) and prior.log_prob(torch.zeros(2, 5, 3)).shape == (2, 5)
    # an untrained denoiser (zero output layer) returns c_skip z^: the bound is finite
    assert torch.isfinite(prior.log_prob(torch.zeros(5, 3))).all()


def test_options_are_checked():
    with pytest.raises(ValueError, match="backbone"):
        LatentDiffusion(obs_dim=1, backbone="gru")
    with pytest.raises(ValueError, match="remedy"):
        LatentDiffusion(obs_dim=1, remedy="annealing")
    with pytest.raises(ValueError, match="covariates"):
        LatentDiffusion(obs_dim=1, covariate_dim=2)
    with pytest.raises(ValueError, match=r"N, M <= L"):
        CollapseSimulation(obs_dim=1, vi_steps=50, collapse_from=1001)
    CollapseSimulation(obs_dim=1, vi_steps=150, collapse_from=100)  # Table 2 has N > M
    with pytest.raises(ValueError, match="gamma"):
        CollapseSimulation(obs_dim=1, vi_steps=50, collapse_from=100, diffusion_steps=120, gamma=3)
    with pytest.raises(ValueError, match="eta"):
        CollapseSimulation(obs_dim=1, eta=0.5)
    with pytest.raises(ValueError, match="latent_dim"):
        LatentDiffusion(obs_dim=1, latent_dim=0)


def test_framework_defaults_are_appendix_g():
    model = CollapseSimulation(obs_dim=1)
    c = model.config
    assert (c["vi_steps"], c["collapse_from"], c["diffusion_steps"], c["gamma"], c["eta"]) == (50, 100, 1000, 2, 1.0)
    assert (c["hidden_dim"], c["latent_dim"], c["dropout"], c["prior_widths"]) == (128, 128, 0.1, [128, 64, 32])
    assert model.prior().max_stop == 50 and LatentDiffusion(obs_dim=1).prior().max_stop == 0


def test_fit_with_covariates_is_refused_before_training(data):
    ds = data.assign(u=data["a"] * 0 + 1.0)
    with pytest.raises(ValueError, match="does not use covariates"):
        pyrossm.fit("latent_diffusion", ds, covariates=["u"], num_steps=1, progress=False, **SMALL)


def test_kl_annealing_ramps_the_kl_weight_over_a_third_of_the_stage(data):
    res = pyrossm.fit("latent_diffusion", data, num_steps=9, progress=False, remedy="kl_annealing", **SMALL)
    lam = res.history.loc[res.history["stage"] == "autoencoder", "annealing"].to_numpy()
    np.testing.assert_allclose(lam[[0, 3, 8]], [1e-3, 1.0, 1.0], rtol=1e-6)
    assert np.all(np.diff(lam[:4]) > 0)
    plain = pyrossm.fit("latent_diffusion", data, num_steps=3, progress=False, **SMALL)
    assert (plain.history.loc[plain.history["stage"] == "autoencoder", "annealing"] == 1.0).all()
