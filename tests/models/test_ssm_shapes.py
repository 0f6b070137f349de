"""Shapes and wiring of the StateSpaceModel model/guide pair (DKF preset), over orders, latent
sizes, covariates and initial-state priors."""

from __future__ import annotations

import itertools

import pyro
import pytest
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample

from pyrossm.models import DKF, GaussianEmission, GaussianTransition, SmoothingEncoder, StateSpaceModel, VHPInit

N, T, D = 3, 6, 2
CONFIGS = list(itertools.product([1, 2, 3], [1, 4], [0, 2], ["vhp", "normal"]))
IDS = [f"j{j}-M{m}-V{v}-{init}" for j, m, v, init in CONFIGS]


@pytest.fixture
def build(random_batch):
    """``build(order, latent_dim, covariate_dim, init, **options) -> (tiny DKF, (x, mask, covariates))``."""

    def make(order, latent_dim, covariate_dim, init, **options):
        torch.manual_seed(0)
        model = DKF(
            obs_dim=D,
            latent_dim=latent_dim,
            order=order,
            covariate_dim=covariate_dim,
            init=init,
            channels=4,
            hidden_dim=4,
            encoder_layers=1,
            emission_layers=1,
            transition_layers=1,
            **options,
        )
        return model, random_batch(N, T, D, covariate_dim)

    return make


def sample_sites(trace):
    return [name for name, site in trace.nodes.items() if site["type"] == "sample" and not site_is_subsample(site)]


@pytest.mark.parametrize("order,latent_dim,covariate_dim,init", CONFIGS, ids=IDS)
def test_traces_have_the_documented_sites(order, latent_dim, covariate_dim, init, build):
    model, args = build(order, latent_dim, covariate_dim, init)
    x, mask, cov = args
    vhp = init == "vhp"
    guide_trace = poutine.trace(model.guide).get_trace(*args)
    model_trace = poutine.trace(poutine.replay(model.model, trace=guide_trace)).get_trace(*args)

    assert sample_sites(guide_trace) == (["z", "z_aux"] if vhp else ["z"])
    assert sample_sites(model_trace) == (["z_aux", "z", "x"] if vhp else ["z", "x"])

    z = guide_trace.nodes["z"]
    assert z["value"].shape == (N, T, latent_dim)
    assert not z["is_observed"]
    assert z["fn"].batch_shape == (N,) and z["fn"].event_shape == (T, latent_dim)
    # the model's z is the guide's z (replay), scored by the prior
    assert model_trace.nodes["z"]["value"] is z["value"]
    assert model_trace.nodes["z"]["fn"].event_shape == (T, latent_dim)

    obs = model_trace.nodes["x"]
    assert obs["is_observed"]
    assert obs["value"] is x
    assert obs["fn"].batch_shape == (N,) and obs["fn"].event_shape == (T, D)

    if vhp:
        for trace in (guide_trace, model_trace):
            assert trace.nodes["z_aux"]["value"].shape == (N, order, latent_dim)
        assert model_trace.nodes["z_aux"]["value"] is guide_trace.nodes["z_aux"]["value"]
    else:
        assert "z_aux" not in guide_trace.nodes and "z_aux" not in model_trace.nodes

    model_trace.compute_log_prob()
    for name in sample_sites(model_trace):
        assert model_trace.nodes[name]["log_prob"].shape == (N,)
    # x is scored only where observed: the masked sum of the elementwise emission densities
    expected = (model.emission_dist(z["value"], cov).log_prob(x) * mask).sum((-1, -2))
    assert torch.allclose(obs["log_prob"], expected, atol=1e-5)
    # ... and changing a missing entry of x does not change it
    x2 = torch.where(mask, x, torch.full_like(x, 100.0))
    replayed = poutine.trace(poutine.replay(model.model, trace=guide_trace)).get_trace(x2, mask, cov)
    replayed.compute_log_prob()
    assert torch.allclose(replayed.nodes["x"]["log_prob"], obs["log_prob"], atol=1e-5)


@pytest.mark.parametrize("order,latent_dim,covariate_dim,init", CONFIGS, ids=IDS)
def test_vectorized_elbo_is_finite_and_every_group_gets_gradients(order, latent_dim, covariate_dim, init, build):
    model, args = build(order, latent_dim, covariate_dim, init)
    elbo = pyro.infer.Trace_ELBO(num_particles=3, vectorize_particles=True, max_plate_nesting=1)
    loss = elbo.differentiable_loss(model.model, model.guide, *args)
    assert loss.shape == ()
    assert torch.isfinite(loss)
    loss.backward()

    groups = model.parameter_groups()
    assert set(groups) == {"encoder", "emission", "transition", "init"}
    assert (len(groups["init"]) > 0) == (init == "vhp")
    # the groups partition the model's parameters
    grouped = [id(p) for params in groups.values() for p in params]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    for name, params in groups.items():
        for p in params:
            assert p.grad is not None, f"a parameter of group {name!r} got no gradient"
            assert torch.isfinite(p.grad).all(), f"non-finite gradient in group {name!r}"
        if params:
            assert sum(float(p.grad.abs().sum()) for p in params) > 0, name


@pytest.mark.parametrize("order,latent_dim,covariate_dim,init", CONFIGS, ids=IDS)
def test_posterior_samples_forecasts_and_generation(order, latent_dim, covariate_dim, init, build):
    model, (x, mask, cov) = build(order, latent_dim, covariate_dim, init)
    S, H = 5, 4
    z = model.sample_posterior(x, mask, cov, num_samples=S)
    assert z.shape == (S, N, T, latent_dim)
    assert not torch.allclose(z[0], z[1])  # independent draws

    future = torch.randn(N, H, covariate_dim)
    torch.manual_seed(11)
    z_future, x_future = model.forecast(z, cov, future, H)
    assert z_future.shape == (S, N, H, latent_dim)
    assert x_future.shape == (S, N, H, D)
    assert torch.isfinite(z_future).all() and torch.isfinite(x_future).all()
    # the rollout is sequential: a shorter horizon with the same seed is a prefix of the longer one
    torch.manual_seed(11)
    z_one, _ = model.forecast(z, cov, future[:, :1], 1)
    assert torch.equal(z_one[..., 0, :], z_future[..., 0, :])

    z_gen, x_gen = model.sample_prior(N, T)
    assert z_gen.shape == (N, T, latent_dim) and x_gen.shape == (N, T, D)
    batched = torch.randn(2, N, T, covariate_dim)
    torch.manual_seed(12)
    z_gen, x_gen = model.sample_prior(N, T, batched)
    assert z_gen.shape == (2, N, T, latent_dim) and x_gen.shape == (2, N, T, D)
    # generate() is sample_prior()'s x
    torch.manual_seed(12)
    assert torch.equal(model.generate(N, T, batched), x_gen)
    # a trajectory exactly as long as the Markov order (no transition step) works too
    z_gen, x_gen = model.sample_prior(N, order)
    assert z_gen.shape == (N, order, latent_dim) and x_gen.shape == (N, order, D)
    assert model.generate(N, order).shape == (N, order, D)


def test_annealing_scales_the_rate_sites_only(build):
    model, args = build(2, 2, 1, "vhp")
    guide_trace = poutine.trace(model.guide).get_trace(*args, annealing=0.25)
    model_trace = poutine.trace(poutine.replay(model.model, trace=guide_trace)).get_trace(*args, annealing=0.25)
    assert model_trace.nodes["z"]["scale"] == 0.25
    assert model_trace.nodes["z_aux"]["scale"] == 0.25
    assert guide_trace.nodes["z"]["scale"] == 0.25
    assert guide_trace.nodes["z_aux"]["scale"] == 0.25
    assert model_trace.nodes["x"]["scale"] == 1.0


@pytest.mark.parametrize("architecture", ["paper", "compact"])
def test_composed_model_matches_the_dkf_preset(build, architecture):
    """A StateSpaceModel assembled from parts equals the preset with the same parts and seed."""
    kw = dict(channels=4, seq_dim=4, hidden_dim=4, architecture=architecture)
    torch.manual_seed(0)
    parts = dict(
        transition=GaussianTransition(2, 2, 1, num_layers=1, **kw),
        emission=GaussianEmission(D, 2, 2, 1, num_layers=1, **kw),
        encoder=SmoothingEncoder(D, 2, 2, 1, summary_dim=4, num_layers=1, summary="decay", **kw),  # the DKF's
        init=VHPInit(2, 2, 1, **kw),
    )
    composed = StateSpaceModel(**parts, latent_dim=2, order=2, obs_dim=D, covariate_dim=1)
    preset, args = build(2, 2, 1, "vhp", architecture=architecture)
    assert composed.config is None and preset.config["order"] == 2
    assert preset.config["architecture"] == architecture
    composed.load_state_dict(preset.state_dict())
    torch.manual_seed(3)
    a = model_log_joint(composed, args)
    torch.manual_seed(3)
    b = model_log_joint(preset, args)
    assert torch.equal(a, b)


def model_log_joint(model, args):
    guide_trace = poutine.trace(model.guide).get_trace(*args)
    model_trace = poutine.trace(poutine.replay(model.model, trace=guide_trace)).get_trace(*args)
    return model_trace.log_prob_sum() - guide_trace.log_prob_sum()


@pytest.mark.parametrize("bad", [0, -1, 1.5, None])
def test_invalid_order_and_latent_dim(bad):
    with pytest.raises((ValueError, TypeError), match="order"):
        DKF(obs_dim=1, order=bad)
    with pytest.raises((ValueError, TypeError), match="latent_dim"):
        DKF(obs_dim=1, latent_dim=bad)


def test_invalid_init_name():
    with pytest.raises(ValueError, match="init"):
        DKF(obs_dim=1, init="uniform")
