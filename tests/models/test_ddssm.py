"""DDSSM: the ELBO with a diffusion transition (one denoiser call per evaluation), fit / forecast /
sample / smooth / save-load through the public API, and a fast bimodal random walk check."""

from __future__ import annotations

import itertools

import numpy as np
import pyro
import pytest
import torch
from pyro import poutine

import pyrossm
from pyrossm.datasets import bimodal_random_walk
from pyrossm.distributions import DiffusionTransition
from pyrossm.models import DDSSM
from pyrossm.models.ddssm import HEUN_LEVELS
from pyrossm.models.registry import get_spec
from pyrossm.models.transition import DiffusionDynamics

N, T, D = 3, 6, 2
K = 16
STEPS_LINEAR = 400
CONFIGS = list(itertools.product([1, 3], [1, 2], [0, 2]))
IDS = [f"M{m}-j{j}-V{v}" for m, j, v in CONFIGS]
#: tiny DDSSM architecture, for DDSSM(...) and pyrossm.fit(model="ddssm", ...)
TINY = dict(
    channels=4,
    hidden_dim=4,
    encoder_layers=1,
    emission_layers=1,
    diffusion_channels=4,
    diffusion_layers=1,
    num_diffusion_steps=K,
)


def build(latent_dim, order, covariate_dim, **kwargs):
    torch.manual_seed(0)
    return DDSSM(obs_dim=D, latent_dim=latent_dim, order=order, covariate_dim=covariate_dim, **{**TINY, **kwargs})


def perturb_output_layer(model, seed=0):
    """The denoiser's output projection starts at zero (CSDI); perturb it so that every layer of
    the transition network receives gradient."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        out = model.transition.network.output
        out.weight.copy_(0.3 * torch.randn(out.weight.shape, generator=gen))


def loss_fn(num_particles=2):
    return pyro.infer.Trace_ELBO(
        num_particles=num_particles, vectorize_particles=True, max_plate_nesting=1
    ).differentiable_loss


# ------------------------------------------------------------------ the model
def test_ddssm_is_a_state_space_model_with_diffusion_dynamics():
    model = build(2, 2, 1, num_noise_draws=3, sampler="ddim", num_sampling_steps=4)
    assert isinstance(model.transition, DiffusionDynamics)
    assert model.transition.schedule.num_steps == K
    assert model.transition.num_noise_draws == 3
    d = model.transition(torch.zeros(5, 2, 2), torch.zeros(5, 3, 1))
    assert isinstance(d, DiffusionTransition)
    assert d.batch_shape == (5,) and d.event_shape == (2,)
    assert d.sampler == "ddim" and d.num_sampling_steps == 4 and d.num_noise_draws == 3
    assert model.config["num_diffusion_steps"] == K and model.config["sampler"] == "ddim"
    groups = model.parameter_groups()
    # the denoiser and the default linear mean (residual_transition="linear")
    parts = [*model.transition.network.parameters(), *model.transition.shift.parameters()]
    assert {id(p) for p in parts} == {id(p) for p in groups["transition"]}


@pytest.mark.parametrize(
    "kwargs,culprit",
    [
        (dict(sampler="euler"), "sampler"),
        (dict(sampler="ddim", num_sampling_steps=K + 1), "num_sampling_steps"),
        (dict(sampler="ddim", num_sampling_steps=0), "num_sampling_steps"),
        (dict(num_noise_draws=0), "num_noise_draws"),
        (dict(init="gaussian"), "init"),
        (dict(schedule="quadratic"), "schedule"),
        (dict(num_diffusion_steps=0), "num_steps"),
    ],
)
def test_bad_arguments_raise_on_construction(kwargs, culprit):
    with pytest.raises(ValueError, match=culprit):
        build(1, 1, 0, **kwargs)


@pytest.mark.parametrize("architecture", ["paper", "compact"])
@pytest.mark.parametrize("latent_dim,order,covariate_dim", CONFIGS, ids=IDS)
def test_elbo_is_finite_with_finite_gradients_and_one_denoiser_call(
    latent_dim, order, covariate_dim, architecture, random_batch
):
    model = build(latent_dim, order, covariate_dim, num_noise_draws=2, architecture=architecture)
    args = random_batch(N, T, D, covariate_dim)
    perturb_output_layer(model)
    calls = []
    hook = model.transition.network.register_forward_hook(
        lambda module, inputs, output: calls.append((inputs[0].shape, output.shape))
    )
    torch.manual_seed(0)
    loss = loss_fn(2)(model.model, model.guide, *args)
    hook.remove()
    assert loss.shape == () and torch.isfinite(loss)
    # one denoiser call for all 2 particles x N series x (T - j) transitions x 2 noise draws
    rows = 2 * N * (T - order) * 2
    assert calls == [((rows, latent_dim), (rows, latent_dim))]
    loss.backward()
    for name, params in model.parameter_groups().items():
        grads = [p.grad for p in params if p.requires_grad]
        assert grads, name
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name
        assert sum(g.abs().sum().item() for g in grads) > 0, name
    net = model.transition.network
    first = net.input if architecture == "paper" else net.layers[0]  # CSDIDenoiser / MLPDenoiser
    assert first.weight.grad.abs().sum() > 0 and net.embedding.mlp[0].weight.grad.abs().sum() > 0


def test_model_trace_scores_z_with_the_diffusion_bound(random_batch):
    """The ``z`` site's log-density is init + sum_t (-bound_t): rebuild it from the parts."""
    model = build(1, 1, 0, init="normal", num_noise_draws=4)
    x, mask, cov = random_batch(N, T, D, 0)
    perturb_output_layer(model)
    guide_trace = poutine.trace(model.guide).get_trace(x, mask, cov)
    model_trace = poutine.trace(poutine.replay(model.model, trace=guide_trace)).get_trace(x, mask, cov)
    torch.manual_seed(11)  # the bound's (k, eps) draws happen in compute_log_prob
    model_trace.compute_log_prob()
    z = guide_trace.nodes["z"]["value"]  # (N, T, M)
    assert model_trace.nodes["z"]["value"] is z
    assert model_trace.nodes["z"]["log_prob"].shape == (N,)
    torch.manual_seed(11)
    init_lp = torch.distributions.Normal(0.0, 1.0).log_prob(z[:, :1, :]).sum((-1, -2))
    hist = z[:, :-1, :].reshape(N * (T - 1), 1, 1)
    cov_w = torch.zeros(N * (T - 1), 2, 0)
    trans = DiffusionTransition(model.transition.network, model.transition.schedule, hist, cov_w, num_noise_draws=4)
    expected = init_lp + trans.log_prob(z[:, 1:, :].reshape(N * (T - 1), 1)).reshape(N, T - 1).sum(-1)
    torch.testing.assert_close(model_trace.nodes["z"]["log_prob"], expected, rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------------ the public API
@pytest.fixture(scope="module")
def data(make_ds):
    return make_ds()


@pytest.fixture(scope="module")
def cov_data(make_ds):
    return make_ds(covariate=True)


@pytest.fixture(scope="module")
def fitted(data):
    return pyrossm.fit(
        model="ddssm",
        data=data,
        latent_dim=2,
        order=2,
        num_steps=5,
        seed=0,
        progress=False,
        sampler="ddim",
        num_sampling_steps=4,
        **TINY,
    )


@pytest.fixture(scope="module")
def cov_fitted(cov_data):
    return pyrossm.fit(model="ddssm", data=cov_data, covariates=["u"], num_steps=5, seed=0, progress=False, **TINY)


def test_fit_history_and_config(fitted):
    h = fitted.history
    assert len(h) == 5 and list(h["step"]) == list(range(5))
    assert np.isfinite(h["loss"]).all() and np.isfinite(h["elbo"]).all()
    assert fitted.config["model"] == "ddssm"
    assert fitted.config["model_config"]["num_diffusion_steps"] == K
    assert isinstance(fitted.model, DDSSM) and fitted.model.order == 2 and fitted.model.latent_dim == 2
    assert "ddssm" in repr(fitted)


def test_forecast_sample_smooth_shapes(fitted, data):
    s, n, length = 7, data.sizes["series"], data.sizes["time"]
    fc = fitted.forecast(data, horizon=3, num_samples=s, seed=0)
    assert fc["x"].dims == ("draw", "series", "time")
    assert fc["x"].shape == (s, n, 3)
    assert list(fc["time"].values) == [length, length + 1, length + 2]
    assert np.isfinite(fc["x"].values).all()
    # different draws differ
    assert np.unique(fc["x"].values[:, 0, 0]).size == s

    gen = fitted.sample(num_series=4, length=5, num_samples=2, seed=0)
    assert gen["x"].dims == ("draw", "series", "time") and gen["x"].shape == (2, 4, 5)
    assert np.isfinite(gen["x"].values).all()

    zs = fitted.smooth(data, num_samples=3, seed=0)
    assert zs["z"].dims == ("draw", "series", "time", "latent")
    assert zs["z"].shape == (3, n, length, 2)
    assert np.isfinite(zs["z"].values).all()

    dt = fitted.posterior_predictive(data, num_samples=2, seed=0)
    assert dt["posterior_predictive"].to_dataset()["x"].shape == (1, 2, n, length)


def test_forecast_with_covariates_heun_by_default_and_ddpm(cov_fitted, cov_data, make_future):
    transition = cov_fitted.model.transition
    assert transition.sampler == "heun" and transition.num_sampling_steps == min(HEUN_LEVELS, K)
    assert cov_fitted.config["model_config"]["num_sampling_steps"] is None  # saved as given
    for sampler in ("heun", "ddpm"):
        with transition.sampling(sampler, None if sampler == "ddpm" else transition.num_sampling_steps):
            fc = cov_fitted.forecast(
                cov_data, horizon=3, num_samples=4, seed=0, future_covariates=make_future(horizon=3)
            )
        assert fc["x"].shape == (4, cov_data.sizes["series"], 3) and set(fc.data_vars) == {"x"}
        assert np.isfinite(fc["x"].values).all()


def test_forecast_runs_the_reverse_diffusion_per_step(fitted, data):
    """Forecasting calls the denoiser num_sampling_steps times per horizon step, batched over
    draws and series."""
    rows = []  # (the output layer: sampling calls the network's conditioned shortcut, not forward)
    hook = fitted.model.transition.network.output.register_forward_hook(
        lambda module, inputs, output: rows.append(inputs[0].shape[0])
    )
    try:
        fitted.forecast(data, horizon=2, num_samples=5, seed=0)
    finally:
        hook.remove()
    assert rows == [5 * data.sizes["series"]] * (2 * 4)


def test_sampling_context_switches_sampler_and_restores(fitted, data):
    """``transition.sampling`` changes the number of denoiser calls per step, then restores."""
    transition = fitted.model.transition
    rows = []
    hook = transition.network.output.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    try:
        with transition.sampling("ddpm"):
            fitted.forecast(data, horizon=1, num_samples=2, seed=0)
        calls_ddpm = len(rows)
        with transition.sampling("ddim", num_sampling_steps=2):
            fitted.forecast(data, horizon=1, num_samples=2, seed=0)
    finally:
        hook.remove()
    assert calls_ddpm == K and len(rows) - calls_ddpm == 2
    assert transition.sampler == "ddim" and transition.num_sampling_steps == 4
    with pytest.raises(ValueError, match="num_sampling_steps"):
        with transition.sampling("ddim", num_sampling_steps=K + 1):
            pass
    assert transition.num_sampling_steps == 4


def test_forecast_is_reproducible_and_save_load_round_trip(fitted, data, tmp_path):
    a = fitted.forecast(data, horizon=2, num_samples=6, seed=3)
    b = fitted.forecast(data, horizon=2, num_samples=6, seed=3)
    c = fitted.forecast(data, horizon=2, num_samples=6, seed=4)
    assert np.array_equal(a["x"].values, b["x"].values)
    assert not np.array_equal(a["x"].values, c["x"].values)
    path = fitted.save(tmp_path / "ddssm.pyrossm")
    loaded = pyrossm.load(path)
    assert isinstance(loaded.model, DDSSM)
    assert loaded.model.config == fitted.model.config
    assert loaded.model.transition.sampler == "ddim" and loaded.model.transition.num_sampling_steps == 4
    d = loaded.forecast(data, horizon=2, num_samples=6, seed=3)
    assert np.array_equal(a["x"].values, d["x"].values)
    assert np.array_equal(fitted.sample(3, 4, seed=1)["x"].values, loaded.sample(3, 4, seed=1)["x"].values)
    assert repr(loaded) == repr(fitted)


def test_fits_saved_before_activation_existed_load_with_relu(data, tmp_path):
    """A file without ``activation`` in its model config was written by a pyrossm whose networks
    all used ReLU: a SiLU fit whose key is removed loads with ReLU everywhere, and forecasts as a
    ReLU model with the same parameters does."""
    import json

    from pyrossm.inference import atomic_torch_save, safe_torch_load

    # such files were all fitted with the paper networks (then the default), whose heads are checked below
    silu = pyrossm.fit(
        model="ddssm",
        data=data,
        latent_dim=2,
        order=2,
        num_steps=2,
        seed=0,
        progress=False,
        activation="silu",
        architecture="paper",
        **TINY,
    )
    assert silu.model.config["activation"] == "silu"
    payload = safe_torch_load(silu.save(tmp_path / "new.pyrossm"))
    config = json.loads(payload["config"])
    del config["model_config"]["activation"]
    payload["config"] = json.dumps(config)
    payload["version"] = 1  # such files were version 1: no checksum
    del payload["checksum"]
    atomic_torch_save(payload, tmp_path / "old.pyrossm")
    old = pyrossm.load(tmp_path / "old.pyrossm")
    assert old.model.config["activation"] == "relu"
    # the heads' MLPs (the noise-level embedding's SiLU MLP is CSDI's and not switched)
    heads = [
        m
        for name, m in old.model.named_modules()
        if ".head." in name and not isinstance(m, torch.nn.Linear) and not list(m.children())
    ]
    assert heads and all(isinstance(m, torch.nn.ReLU) for m in heads)
    assert {m.activation for m in old.model.modules() if hasattr(m, "activation")} == {"relu"}
    relu = DDSSM(**{**silu.model.config, "activation": "relu"})
    relu.load_state_dict(silu.model.state_dict())
    as_relu = pyrossm.api.FitResult(relu, silu.contract, silu.history, silu.config, silu.device)
    expected = as_relu.forecast(data, horizon=2, num_samples=6, seed=3)
    got = old.forecast(data, horizon=2, num_samples=6, seed=3)
    assert np.array_equal(expected["x"].values, got["x"].values)
    assert not np.array_equal(silu.forecast(data, horizon=2, num_samples=6, seed=3)["x"].values, got["x"].values)


def test_fit_rejects_bad_diffusion_arguments_before_training(data):
    with pytest.raises(TypeError, match="num_difusion_steps"):
        pyrossm.fit(model="ddssm", data=data, num_steps=1, num_difusion_steps=8)
    with pytest.raises(ValueError, match="num_sampling_steps"):
        pyrossm.fit(model="ddssm", data=data, num_steps=1, sampler="ddim", num_sampling_steps=100, **TINY)
    for model in ("ddssm", "dkf"):
        with pytest.raises(ValueError, match="activation must be one of \\['relu', 'silu'\\]"):
            pyrossm.fit(model=model, data=data, num_steps=1, activation="tanh")


# ------------------------------------------------------------------ the bimodal random walk
#: Settings that learn the bimodal transition (DDSSM paper, Sec. 4) on a CPU.  Measured 1-step
#: predictive mass within +-1.5 of (+4, -4): (0.32, 0.34), (0.32, 0.31), (0.36, 0.29) for seeds 0,
#: 1, 2; 600 steps: (0.28, 0.29).  A slower encoder / emission / init than transition (as in the
#: paper's Table 3) matters: with lr 0.01 everywhere, 1200 steps gave (0.36, 0.29) for seed 0 but a
#: unimodal predictive (0.17, 0.20) for seed 1.  No setting found passes reliably within ~40 s
#: (about 300 steps): at 250-300 steps the predictive is still broad (mass near the modes
#: 0.21-0.50; two humps only with a constant lambda of 0.1 and no clipping), whatever the lambda
#: warm-up, constant lambda (0.1, 0.3), learning rates (a transition lr of 0.02-0.03 is worse than
#: 0.01), noise draws (2-8) or clipping (none, 10, 1000).  With the
#: denoiser's old default init these settings gave a uniform predictive (0.11, 0.11): a dead
#: transition network. About 100-120 s on one CPU thread.
BIMODAL_FIT = dict(
    num_steps=1000,
    batch_size=128,
    num_noise_draws=4,
    learning_rate=0.003,
    learning_rates=dict(transition=0.01),
    annealing="cosine",  # lambda 0.01 -> 1 over 333 steps
    channels=8,
    hidden_dim=8,
    encoder_layers=1,
    emission_layers=1,
    diffusion_channels=16,
    diffusion_layers=3,
    num_diffusion_steps=16,
)


@pytest.mark.slow
def test_bimodal_random_walk_one_step_predictive_is_bimodal():
    """The 1-step predictive of ``x_T`` given ``x_{1:T-1}``, minus ``0.9 z_{T-1}`` (the true
    latent), concentrates around the two jumps +4 and -4: a Gaussian transition cannot do this."""
    length, num_test = 12, 64
    ds, latent = bimodal_random_walk(num_series=256, length=length, seed=0, return_latent=True)
    res = pyrossm.fit(model="ddssm", data=ds, latent_dim=1, order=1, seed=0, progress=False, **BIMODAL_FIT)
    assert np.isfinite(res.history["elbo"]).all()
    context = ds.isel(time=slice(0, length - 1), series=slice(0, num_test))
    fc = res.forecast(context, horizon=1, num_samples=512, seed=0)
    assert fc["x"].shape == (512, num_test, 1)
    jumps = fc["x"].values[:, :, 0] - 0.9 * latent.values[None, :num_test, length - 2]
    up = float(np.mean(np.abs(jumps - 4.0) < 1.5))
    down = float(np.mean(np.abs(jumps + 4.0) < 1.5))
    assert up + down > 0.5, (up, down)
    assert up >= 0.2 and down >= 0.2, (up, down)
    # and little mass in between: measured 0.024-0.029; 0.09 for a unimodal fit
    assert np.mean(np.abs(jumps) < 1.0) < 0.06


@pytest.mark.parametrize("residual", [False, True, "linear"])
def test_residual_transition_fits_forecasts_and_round_trips(data, tmp_path, residual):
    res = pyrossm.fit(
        "ddssm",
        data,
        num_steps=2,
        batch_size=None,
        progress=False,
        residual_transition=residual,
        sampler="ddim",
        num_sampling_steps=4,
        **TINY,
    )
    assert res.model.transition.residual == residual
    assert res.config["model_config"]["residual_transition"] == residual
    fc = res.forecast(data, horizon=2, num_samples=5, seed=0)
    assert fc["x"].shape == (5, data.sizes["series"], 2)
    assert np.isfinite(fc["x"].values).all()
    loaded = pyrossm.load(res.save(tmp_path / "residual.pyrossm"))
    assert loaded.model.transition.residual == residual
    if residual == "linear":  # the learned mean is part of the saved state
        assert res.model.transition.shift.linear.weight.abs().sum() > 0
        torch.testing.assert_close(
            loaded.model.transition.shift.linear.weight, res.model.transition.shift.linear.weight, rtol=0, atol=0
        )
    assert np.array_equal(fc["x"].values, loaded.forecast(data, horizon=2, num_samples=5, seed=0)["x"].values)
    assert build(1, 1, 0).transition.residual == "linear"  # the default: a learned linear mean
    assert build(1, 1, 0).transition.level_sampling == "loss-aware"  # and loss-aware levels


def test_fits_saved_before_the_residual_option_load_with_the_papers_transition():
    """Saved options without ``residual_transition`` (fits from before the option) migrate to
    ``False``, what they were trained with, not to today's ``"linear"``; saved values stay."""
    spec = get_spec("ddssm")
    old = {"obs_dim": 1, "latent_dim": 1, "order": 1}
    migrated = spec.migrated(old)
    assert migrated["residual_transition"] is False and "residual_transition" not in old
    assert migrated["level_sampling"] == "uniform"  # nor before loss-aware levels
    assert migrated["encoder_hidden_dim"] is None  # nor before the encoder's own width
    assert spec.build(**migrated).transition.levels is None
    assert migrated["activation"] == "relu" and migrated["architecture"] == "paper"  # older migrations too
    assert spec.build(**migrated).transition.shift is None
    assert spec.migrated({**old, "residual_transition": "linear"})["residual_transition"] == "linear"
    assert "residual_transition" not in get_spec("dkf").migrated(old)  # a DDSSM option only


@pytest.mark.parametrize("family", ["ddssm", "dkf"])
def test_encoder_hidden_dim_widens_the_guides_network_only(family):
    """``encoder_hidden_dim`` sets the width of the encoder's network; its future summary, the
    emission and the init keep ``hidden_dim``; ``None`` is ``hidden_dim``; bad values are refused."""
    spec = get_spec(family)
    wide = spec.build(obs_dim=1, hidden_dim=16, encoder_hidden_dim=24)
    plain = spec.build(obs_dim=1, hidden_dim=16, encoder_hidden_dim=None)
    widths = {layer.out_features for layer in wide.encoder.net.trunk if isinstance(layer, torch.nn.Linear)}
    assert widths == {24} and wide.encoder.summary_dim == plain.encoder.summary_dim == 16
    assert {layer.out_features for layer in plain.encoder.net.trunk if isinstance(layer, torch.nn.Linear)} == {16}
    for part in ("emission", "init", "transition"):
        assert sum(p.numel() for p in getattr(wide, part).parameters()) == sum(
            p.numel() for p in getattr(plain, part).parameters()
        )
    assert wide.config["encoder_hidden_dim"] == 24
    same = spec.build(obs_dim=1, hidden_dim=16, encoder_hidden_dim=16)
    torch.manual_seed(0)
    a = spec.build(obs_dim=1, hidden_dim=16, encoder_hidden_dim=None)
    torch.manual_seed(0)
    b = spec.build(obs_dim=1, hidden_dim=16, encoder_hidden_dim=16)
    assert [p.shape for p in same.parameters()] == [p.shape for p in plain.parameters()]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    default = spec.build(obs_dim=1).config["encoder_hidden_dim"]
    assert default == (32 if family == "ddssm" else None)  # the DDSSM's default, measured on the suite
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="encoder_hidden_dim must be a positive int"):
            spec.build(obs_dim=1, encoder_hidden_dim=bad)


def test_linear_shift_starts_as_the_papers_parameterisation_and_gets_gradient():
    """``residual="linear"``: ``A``, ``B``, ``b`` start at zero, so the bound equals the plain
    transition's; the bound's gradient reaches them; bad ``residual`` values are refused."""
    history, covariates = torch.randn(6, 2, 3), torch.randn(6, 3, 2)
    value = torch.randn(6, 3)
    torch.manual_seed(0)
    plain = DiffusionDynamics(3, 2, 2, num_diffusion_steps=K, channels=4, num_layers=1)
    torch.manual_seed(0)
    linear = DiffusionDynamics(3, 2, 2, num_diffusion_steps=K, channels=4, num_layers=1, residual="linear")
    assert linear.shift.linear.weight.shape == (3, 2 * 3 + 3 * 2)
    torch.manual_seed(1)
    expected = plain(history, covariates).log_prob(value)
    torch.manual_seed(1)
    bound = linear(history, covariates).log_prob(value)
    torch.testing.assert_close(bound, expected, rtol=0, atol=0)
    bound.sum().backward()
    assert linear.shift.linear.weight.grad.abs().sum() > 0
    assert linear.shift.linear.bias.grad.abs().sum() > 0
    for bad in ("last", 2, None):
        with pytest.raises(ValueError, match="residual must be one of"):
            DiffusionDynamics(1, residual=bad)


def test_linear_shift_learns_the_linear_part_of_the_dynamics():
    """On ``z_t = 0.7 z_{t-1} + 0.5 + 0.2 eps`` the shift learns the slope 0.7 and the samples
    follow the law."""
    torch.manual_seed(0)
    dynamics = DiffusionDynamics(
        1, 1, 0, num_diffusion_steps=16, channels=4, num_layers=1, num_noise_draws=4, residual="linear"
    )
    optimizer = torch.optim.Adam(dynamics.parameters(), lr=2e-2)
    for _ in range(STEPS_LINEAR):
        prev = 2 * torch.randn(256, 1, 1)
        z = 0.7 * prev[:, 0] + 0.5 + 0.2 * torch.randn(256, 1)
        loss = -dynamics(prev, torch.zeros(256, 2, 0)).log_prob(z).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    # the slope is carried by the shift (a constant is as easy for the denoiser as for ``b``)
    assert abs(dynamics.shift.linear.weight.item() - 0.7) < 0.05
    prev = torch.tensor([-2.0, 0.0, 2.0]).repeat_interleave(2000)[:, None, None]
    with torch.no_grad():
        z = dynamics(prev, torch.zeros(6000, 2, 0)).sample().reshape(3, 2000)
    torch.testing.assert_close(z.mean(1), torch.tensor([-0.9, 0.5, 1.9]), rtol=0, atol=0.1)
    # conditional, not marginal (sd 1.4); a tiny denoiser after 400 steps is about 1.5x too wide
    # (after 300 its mean at z = -2 was 0.103 off with torch 2.13: too few steps, not scatter)
    assert ((z.std(1) > 0.15) & (z.std(1) < 0.4)).all(), z.std(1)


def test_diffusion_beta_end_sets_the_last_noise_level_and_round_trips(data, tmp_path):
    model = build(1, 1, 0, diffusion_beta_end=0.3)
    betas = model.transition.schedule.betas
    assert betas[-1].item() == pytest.approx(0.3) and betas[0].item() == pytest.approx(0.1 / K)
    assert model.transition.schedule.sigmas[-1] < build(1, 1, 0).transition.schedule.sigmas[-1]
    res = pyrossm.fit("ddssm", data, num_steps=1, batch_size=None, progress=False, diffusion_beta_end=0.3, **TINY)
    loaded = pyrossm.load(res.save(tmp_path / "beta.pyrossm"))
    assert loaded.model.transition.schedule.betas[-1].item() == pytest.approx(0.3)
    with pytest.raises(ValueError, match="beta_end"):
        build(1, 1, 0, diffusion_beta_end=1.5)


def test_diffusion_beta_start_sets_the_first_noise_level_and_round_trips(data, tmp_path):
    model = build(1, 1, 0, diffusion_beta_start=1e-4)
    schedule = model.transition.schedule
    assert schedule.betas[0].item() == pytest.approx(1e-4) and schedule.betas[-1].item() == pytest.approx(
        min(20 / K, 0.999)
    )
    assert schedule.sigmas[0].item() == pytest.approx((1e-4 / (1 - 1e-4)) ** 0.5, rel=1e-5)
    res = pyrossm.fit("ddssm", data, num_steps=1, batch_size=None, progress=False, diffusion_beta_start=1e-4, **TINY)
    assert res.config["model_config"]["diffusion_beta_start"] == 1e-4
    loaded = pyrossm.load(res.save(tmp_path / "beta.pyrossm"))
    assert loaded.model.transition.schedule.betas[0].item() == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="beta_start"):
        build(1, 1, 0, diffusion_beta_start=0.0)
    with pytest.raises(ValueError, match="beta_start"):
        build(1, 1, 0, diffusion_beta_start=0.5, diffusion_beta_end=0.3)


def test_karras_schedule_fits_forecasts_and_round_trips(data, tmp_path):
    model = build(1, 1, 0, schedule="karras")
    sigmas = model.transition.schedule.sigmas
    assert sigmas[0].item() == pytest.approx(0.002, rel=1e-4) and sigmas[-1].item() == pytest.approx(80, rel=1e-4)
    res = pyrossm.fit("ddssm", data, num_steps=2, batch_size=None, progress=False, schedule="karras", **TINY)
    assert np.isfinite(res.history["loss"]).all()
    fc = res.forecast(data, horizon=2, num_samples=5, seed=0)
    loaded = pyrossm.load(res.save(tmp_path / "karras.pyrossm"))
    assert loaded.model.transition.schedule.kind == "karras"
    assert np.array_equal(fc["x"].values, loaded.forecast(data, horizon=2, num_samples=5, seed=0)["x"].values)
    with pytest.raises(ValueError, match="beta_start and beta_end"):
        build(1, 1, 0, schedule="karras", diffusion_beta_end=0.3)
