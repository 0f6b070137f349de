"""elbo_terms equals Pyro's Trace_ELBO, its per-site split, annealing, AnnealedELBO (the objective
built on it) and AnnealingSchedule."""

from __future__ import annotations

import json
import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

from pyrossm.inference import AnnealedELBO, AnnealingSchedule, elbo_terms
from pyrossm.models import DKF

N, T, D = 4, 6, 2


def setup(order=2, init="vhp", covariate_dim=1, seed=0):
    torch.manual_seed(seed)
    model = DKF(
        obs_dim=D,
        latent_dim=2,
        order=order,
        covariate_dim=covariate_dim,
        init=init,
        channels=4,
        hidden_dim=4,
        encoder_layers=1,
        emission_layers=1,
        transition_layers=1,
    )
    gen = torch.Generator().manual_seed(seed + 1)
    mask = torch.rand(N, T, D, generator=gen) > 0.3
    x = torch.where(mask, torch.randn(N, T, D, generator=gen), torch.zeros(()))
    cov = torch.randn(N, T, covariate_dim, generator=gen)
    return model, (x, mask, cov)


def pyro_loss(model, args, num_particles, seed, **kwargs):
    torch.manual_seed(seed)
    elbo = pyro.infer.Trace_ELBO(num_particles=num_particles, vectorize_particles=True, max_plate_nesting=1)
    return elbo.differentiable_loss(model.model, model.guide, *args, **kwargs)


def our_loss(model, args, num_particles, seed, **kwargs):
    torch.manual_seed(seed)
    return elbo_terms(model.model, model.guide, *args, num_particles=num_particles, **kwargs)


@pytest.mark.parametrize(
    "order,init,covariate_dim,num_particles",
    [(1, "normal", 0, 1), (2, "vhp", 1, 3), (3, "vhp", 0, 4), (2, "normal", 2, 2)],
)
def test_loss_equals_trace_elbo_for_the_same_seed(order, init, covariate_dim, num_particles):
    model, args = setup(order, init, covariate_dim)
    for seed in (0, 1):
        expected = pyro_loss(model, args, num_particles, seed)
        loss, terms = our_loss(model, args, num_particles, seed)
        assert loss.shape == ()
        assert abs(loss.item() - expected.item()) <= 1e-4 * abs(expected.item())
        # the terms split the same number: one per sample site, summing to the ELBO
        sites = {"z", "x"} | ({"z_aux"} if init == "vhp" else set())
        assert set(terms) == sites | {"elbo_unscaled"}
        assert sum(terms[s] for s in sites) == pytest.approx(-loss.item(), rel=1e-5)
        assert terms["elbo_unscaled"] == pytest.approx(-loss.item(), rel=1e-5)
    # a different seed is a different Monte-Carlo estimate (so the equality above is not trivial)
    assert our_loss(model, args, num_particles, 0)[0].item() != our_loss(model, args, num_particles, 1)[0].item()


def test_gradients_equal_trace_elbo_gradients():
    model, args = setup()
    params = list(model.parameters())
    g_pyro = torch.autograd.grad(pyro_loss(model, args, 3, seed=5), params, allow_unused=True)
    g_ours = torch.autograd.grad(our_loss(model, args, 3, seed=5)[0], params, allow_unused=True)
    for a, b in zip(g_pyro, g_ours):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("annealing", [0.01, 0.3, 0.75])
def test_annealing_scales_the_rate_terms(annealing):
    model, args = setup()
    loss1, full = our_loss(model, args, 3, seed=2)
    loss_a, scaled = our_loss(model, args, 3, seed=2, annealing=annealing)
    for site in ("z", "z_aux"):
        # (float32 log p - log q: the difference of two larger numbers, hence rel=1e-4)
        assert scaled[site] == pytest.approx(annealing * full[site], rel=1e-4)
    assert scaled["x"] == pytest.approx(full["x"], rel=1e-6)
    # the unscaled ELBO (the reported bound) does not depend on the annealing weight
    assert scaled["elbo_unscaled"] == pytest.approx(full["elbo_unscaled"], rel=1e-5)
    assert loss_a.item() == pytest.approx(-(scaled["x"] + scaled["z"] + scaled["z_aux"]), rel=1e-5)
    # ... and equals Trace_ELBO under the same annealing
    assert loss_a.item() == pytest.approx(pyro_loss(model, args, 3, seed=2, annealing=annealing).item(), rel=1e-4)


def test_non_reparameterised_guide_site_is_rejected():
    def model():
        pyro.sample("c", dist.Bernoulli(0.3))

    def guide():
        pyro.sample("c", dist.Bernoulli(0.6))

    with pytest.raises(NotImplementedError, match="'c'"):
        elbo_terms(model, guide)


def test_elbo_of_a_conjugate_model_is_exact_when_the_guide_is_the_posterior():
    """x ~ N(z, 1), z ~ N(0, 1): with q = p(z | x) the ELBO is log p(x) for every sample."""
    x = torch.tensor(1.3)

    def model():
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("x", dist.Normal(z, 1.0), obs=x)

    def guide():
        pyro.sample("z", dist.Normal(x / 2, math.sqrt(0.5)))

    loss, terms = elbo_terms(model, guide, num_particles=7)
    log_evidence = dist.Normal(0.0, math.sqrt(2.0)).log_prob(x).item()
    assert -loss.item() == pytest.approx(log_evidence, abs=1e-5)
    assert terms["elbo_unscaled"] == pytest.approx(log_evidence, abs=1e-5)


# ------------------------------------------------------------------ the objective
def test_annealed_elbo_is_elbo_terms_per_series_at_the_steps_lambda():
    model, args = setup()
    schedule = AnnealingSchedule("linear", start=0.2, end=1.0, warmup_steps=4)
    objective = AnnealedELBO(model.model, model.guide, schedule, num_particles=3)
    lam = schedule(2)
    assert lam == pytest.approx(0.6)
    torch.manual_seed(2)
    loss, terms = objective.loss(args, 2)
    expected_loss, expected = our_loss(model, args, 3, seed=2, annealing=lam)
    assert loss.item() == expected_loss.item() / N
    assert terms == {
        "elbo": expected["elbo_unscaled"] / N,
        "annealing": lam,
        "elbo_x": expected["x"] / N,
        "elbo_z": expected["z"] / N,
        "elbo_z_aux": expected["z_aux"] / N,
    }
    # validation: the unscaled ELBO per series, whatever the step's lambda
    torch.manual_seed(2)
    assert objective.validate(args) == {"elbo": our_loss(model, args, 3, seed=2)[1]["elbo_unscaled"] / N}
    assert AnnealedELBO.validation_names == ("elbo",)


def test_annealed_elbo_resolves_its_warmup_per_stage():
    model, _ = setup()
    objective = AnnealedELBO(model.model, model.guide, AnnealingSchedule(warmup_steps=None), num_particles=2)
    with pytest.raises(ValueError, match="warmup_steps is unset"):
        objective.annealing(0)
    staged = objective.for_stage(9)
    assert staged.annealing == AnnealingSchedule(warmup_steps=3) and staged.num_particles == 2
    assert staged.model is objective.model and staged.guide is objective.guide
    assert [staged.annealing(s) for s in (0, 3, 8)] == pytest.approx([0.01, 1.0, 1.0])
    # no schedule: lambda = 1; a concrete warm-up is kept whatever the stage's length
    assert AnnealedELBO(model.model, model.guide).for_stage(9).annealing(0) == 1.0
    assert AnnealedELBO(model.model, model.guide, AnnealingSchedule(warmup_steps=5)).for_stage(
        9
    ).annealing == AnnealingSchedule(warmup_steps=5)


# ------------------------------------------------------------------ schedules
def test_cosine_schedule_values():
    s = AnnealingSchedule("cosine", start=0.1, end=0.9, warmup_steps=10)
    assert s(0) == pytest.approx(0.1, abs=1e-12)
    assert s(5) == pytest.approx(0.5, abs=1e-12)  # (start + end) / 2
    assert s(2) == pytest.approx(0.1 + 0.8 * 0.5 * (1 - math.cos(math.pi * 0.2)), abs=1e-12)
    assert s(10) == 0.9 and s(11) == 0.9 and s(10_000) == 0.9
    values = [s(k) for k in range(11)]
    assert values == sorted(values)  # monotone ramp


def test_linear_and_constant_schedules():
    lin = AnnealingSchedule("linear", start=0.2, end=1.0, warmup_steps=4)
    assert [lin(k) for k in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0], abs=1e-12)
    const = AnnealingSchedule("constant", start=0.2, end=0.5, warmup_steps=4)
    assert [const(k) for k in range(6)] == [0.5] * 6
    no_ramp = AnnealingSchedule("cosine", start=0.2, end=0.7, warmup_steps=0)
    assert no_ramp(0) == 0.7
    assert AnnealingSchedule(**lin.to_dict()) == lin


@pytest.mark.parametrize(
    "kwargs,culprit",
    [
        (dict(kind="exponential"), "kind"),
        (dict(start=0.0), "start"),
        (dict(start=-0.1), "start"),
        (dict(end=float("nan")), "end"),
        (dict(end=float("inf")), "end"),
        (dict(warmup_steps=-1), "warmup_steps"),
        (dict(warmup_steps=2.5), "warmup_steps"),
    ],
)
def test_invalid_schedules_raise(kwargs, culprit):
    with pytest.raises(ValueError, match=culprit):
        AnnealingSchedule(**kwargs)


def test_piecewise_schedule_interpolates_between_knots():
    s = AnnealingSchedule("piecewise", points=[(2, 0.5), (6, 1.5), (8, 1.0)])
    # the first value before the first knot, linear between knots, the last value after the last
    expected = [0.5, 0.5, 0.5, 0.75, 1.0, 1.25, 1.5, 1.25, 1.0, 1.0, 1.0]
    assert [s(k) for k in range(11)] == pytest.approx(expected, abs=1e-12)
    assert s(10_000) == 1.0
    assert s.points == ((2, 0.5), (6, 1.5), (8, 1.0))  # normalised to (int, float) pairs
    one = AnnealingSchedule("piecewise", points=[[0, 1.3]])
    assert [one(k) for k in (0, 1, 50)] == [1.3, 1.3, 1.3]


def test_piecewise_schedule_round_trips_through_json():
    s = AnnealingSchedule("piecewise", points=[(0, 0.01), (np.int64(200), 1), (300, 1.5)])
    d = json.loads(json.dumps(s.to_dict()))
    assert d["points"] == [[0, 0.01], [200, 1.0], [300, 1.5]]
    assert AnnealingSchedule(**d) == s
    # schedules saved before points existed still load
    old = {"kind": "cosine", "start": 0.01, "end": 1.0, "warmup_steps": 5}
    assert AnnealingSchedule(**old) == AnnealingSchedule(warmup_steps=5)
    assert AnnealingSchedule(**AnnealingSchedule(warmup_steps=5).to_dict()).points == ()


@pytest.mark.parametrize(
    "kwargs,culprit",
    [
        (dict(kind="piecewise"), "needs points"),
        (dict(kind="piecewise", points=[]), "needs points"),
        (dict(kind="piecewise", points="0,1"), "list of"),
        (dict(kind="piecewise", points=[(0, 1.0, 2.0)]), r"points\[0\]"),
        (dict(kind="piecewise", points=[5]), r"points\[0\]"),
        (dict(kind="piecewise", points=[(-1, 1.0)]), r"points\[0\] step"),
        (dict(kind="piecewise", points=[(0.5, 1.0)]), r"points\[0\] step"),
        (dict(kind="piecewise", points=[(0, 1.0), (0, 2.0)]), "strictly increasing"),
        (dict(kind="piecewise", points=[(3, 1.0), (1, 2.0)]), "strictly increasing"),
        (dict(kind="piecewise", points=[(0, 1.0), (4, 0.0)]), r"points\[1\] value"),
        (dict(kind="piecewise", points=[(0, float("nan"))]), r"points\[0\] value"),
        (dict(kind="cosine", points=[(0, 1.0)]), "only apply to kind='piecewise'"),
    ],
)
def test_invalid_piecewise_schedules_raise(kwargs, culprit):
    with pytest.raises(ValueError, match=culprit):
        AnnealingSchedule(**kwargs)
