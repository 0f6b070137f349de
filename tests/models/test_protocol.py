"""The model-family protocol before the real non-SSM families arrive: a small Gaussian VAE over
fixed-length windows fits through ``pyrossm.fit``, samples, saves and loads (registered and
user-built), and refuses what it cannot do; a two-stage toy model trains both stages in one
``fit`` and resumes mid-stage bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyro
import pyro.distributions as dist
import pytest
import torch
import xarray as xr
from torch import nn

import pyrossm
from pyrossm.inference import AnnealedELBO, Callback, Objective, Trainer, TrainerConfig
from pyrossm.models import GenerativeModel, Stage, capabilities
from pyrossm.models.registry import MODELS, register_model


class WindowVAE(GenerativeModel):
    """z ~ N(0, I_M); x_t | z ~ N(W_t z + b_t, s^2) for t = 1..T (one window per series);
    guide q(z | x) = N(mu(x), sigma(x)) from the masked window."""

    def __init__(self, obs_dim, covariate_dim=0, length=8, latent_dim=2):
        super().__init__()
        self.obs_dim, self.covariate_dim, self.length, self.latent_dim = obs_dim, covariate_dim, length, latent_dim
        self.encoder = nn.Sequential(nn.Linear(2 * length * obs_dim, 16), nn.Tanh(), nn.Linear(16, 2 * latent_dim))
        self.decoder = nn.Linear(latent_dim, length * obs_dim)
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.config = dict(length=length, latent_dim=latent_dim, obs_dim=obs_dim, covariate_dim=covariate_dim)

    @property
    def min_length(self):
        return self.length

    def structure(self):
        return {**super().structure(), "length": self.length, "latent_dim": self.latent_dim}

    def parameter_groups(self):
        return {"encoder": list(self.encoder.parameters()), "decoder": [*self.decoder.parameters(), self.log_scale]}

    def training_stages(self, settings):
        return [Stage("elbo", AnnealedELBO(self.model, self.guide, settings.annealing, settings.num_particles))]

    def _likelihood(self, z):
        loc = self.decoder(z).reshape(*z.shape[:-1], self.length, self.obs_dim)
        return dist.Normal(loc, self.log_scale.exp())

    def model(self, x, mask, covariates, annealing=1.0):
        x, mask = x[:, -self.length :], mask[:, -self.length :]
        with pyro.plate("series", x.shape[0], dim=-1):
            with pyro.poutine.scale(scale=annealing):
                z = pyro.sample("z", dist.Normal(x.new_zeros(self.latent_dim), 1.0).to_event(1))
            pyro.sample("x", self._likelihood(z).mask(mask).to_event(2), obs=x)

    def guide(self, x, mask, covariates, annealing=1.0):
        x, mask = x[:, -self.length :], mask[:, -self.length :]
        h = self.encoder(torch.cat([x * mask, mask.to(x.dtype)], -1).flatten(1))
        loc, scale = h[..., : self.latent_dim], nn.functional.softplus(h[..., self.latent_dim :]) + 1e-3
        with pyro.plate("series", x.shape[0], dim=-1), pyro.poutine.scale(scale=annealing):
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    @torch.no_grad()
    def generate(self, num_series, length, covariates=None):
        draws = covariates.shape[0] if covariates is not None and covariates.dim() == 4 else 1
        z = torch.randn(draws, num_series, self.latent_dim)
        return self._likelihood(z).sample()[..., :length, :]


@pytest.fixture
def windows():
    """32 series x 8 steps of a 2-factor linear model (+ noise), two channels."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(32, 2))
    basis = rng.normal(size=(2, 8, 2))
    x = np.einsum("nm,mtd->ntd", z, basis) + 0.1 * rng.normal(size=(32, 8, 2))
    return xr.Dataset(
        {"a": (("series", "time"), x[..., 0]), "b": (("series", "time"), x[..., 1])},
        coords={"series": np.arange(32), "time": np.arange(8)},
    )


@pytest.fixture
def registered():
    register_model("window_vae", WindowVAE, "a test VAE")
    yield
    MODELS.pop("window_vae")


def test_a_non_ssm_model_fits_samples_and_refuses_forecasting(windows):
    model = WindowVAE(obs_dim=2)
    res = pyrossm.fit(model, windows, num_steps=60, batch_size=16, learning_rate=1e-2, progress=False, seed=1)
    h = res.history
    assert list(h["stage"].unique()) == ["elbo"] and len(h) == 60
    assert {"lr_encoder", "lr_decoder", "elbo_x", "elbo_z"} <= set(h.columns)
    assert h["elbo"].iloc[-10:].mean() > h["elbo"].iloc[:10].mean() + 1.0  # it learns
    assert capabilities(res.model) == () and res.capabilities == ()
    gen = res.sample(num_series=5, length=8, num_samples=3, seed=0)
    assert dict(gen.sizes) == {"draw": 3, "series": 5, "time": 8} and set(gen.data_vars) == {"a", "b"}
    assert np.isfinite(gen["a"].values).all()
    xr_equal = res.sample(num_series=5, length=8, num_samples=3, seed=0)
    assert gen.equals(xr_equal)  # seeds reproduce
    for call, name in [
        (lambda: res.forecast(windows, horizon=2), "forecast"),
        (lambda: res.log_score(windows), "log_score"),
        (lambda: res.smooth(windows), "smooth"),
        (lambda: res.posterior_predictive(windows), "posterior_predictive"),
    ]:
        with pytest.raises(TypeError, match=rf"{name}\(\) needs a model with the '(forecasting|smoothing)' capability"):
            call()
    assert "capabilities=[]" in repr(res) and "length=8" in repr(res)
    assert "training_history" in res.to_datatree().children


def test_a_non_ssm_model_saves_and_loads_registered_and_user_built(windows, tmp_path, registered):
    res = pyrossm.fit("WINDOW_VAE", windows, num_steps=5, batch_size=8, progress=False, length=8)
    assert res.config["model"] == "window_vae" and res.config["structure"]["length"] == 8
    path = res.save(tmp_path / "vae.pyrossm")
    back = pyrossm.load(path)
    assert isinstance(back.model, WindowVAE)
    for key, value in res.model.state_dict().items():
        assert torch.equal(back.model.state_dict()[key], value)
    assert back.sample(4, 8, seed=3).equals(res.sample(4, 8, seed=3))
    pd.testing.assert_frame_equal(back.history, res.history)
    # a user-built instance: loaded into a given instance, whose structure must match
    user = pyrossm.fit(WindowVAE(obs_dim=2), windows, num_steps=2, progress=False)
    user_path = user.save(tmp_path / "user.pyrossm")
    with pytest.raises(ValueError, match="user-built model"):
        pyrossm.load(user_path)
    assert pyrossm.load(user_path, model=WindowVAE(obs_dim=2)).sample(2, 8, seed=0).equals(user.sample(2, 8, seed=0))
    with pytest.raises(ValueError, match="latent_dim=3 \\(the fit has 2\\)"):
        pyrossm.load(user_path, model=WindowVAE(obs_dim=2, latent_dim=3))


def test_a_non_ssm_model_checks_its_min_length_and_options(windows, registered):
    with pytest.raises(ValueError, match="min_length=10"):
        pyrossm.fit(WindowVAE(obs_dim=2, length=10), windows, num_steps=1, progress=False)
    with pytest.raises(TypeError, match="did you mean 'latent_dim'"):
        pyrossm.fit("window_vae", windows, num_steps=1, progress=False, latent_dims=2)
    with pytest.raises(TypeError, match="model options only apply to registered model names"):
        pyrossm.fit(WindowVAE(obs_dim=2), windows, num_steps=1, progress=False, length=8)


# ------------------------------------------------------------------ two stages
class Reconstruction(Objective):
    """Stage one: mean squared error of ``first`` as an autoencoder of the windows."""

    validation_names = ("neg_mse",)

    def __init__(self, net):
        self.net = net

    def loss(self, batch, step):
        x = batch.filled_values.flatten(1)
        mse = (self.net.first(x) - x).square().mean(-1)
        return mse.mean(), {"mse": float(mse.mean().detach())}

    def validate(self, batch):
        with torch.no_grad():
            return {"neg_mse": -self.loss(batch, 0)[1]["mse"]}


class Prior(Objective):
    """Stage two: fit ``second`` to predict the (frozen) first stage's codes, plus noise."""

    def __init__(self, net):
        self.net = net

    def loss(self, batch, step):
        x = batch.filled_values.flatten(1)
        with torch.no_grad():
            target = self.net.first(x)
        noisy = target + 0.1 * torch.randn_like(target)
        error = (self.net.second(noisy) - target).square().mean()
        return error, {"prior_error": float(error.detach()), "noise_scale": 0.1 * (1 + step)}


class TwoStage(GenerativeModel):
    def __init__(self, obs_dim=1, covariate_dim=0, length=8, steps=(4, 3)):
        super().__init__()
        self.obs_dim, self.covariate_dim, self.steps = obs_dim, covariate_dim, steps
        self.first = nn.Linear(length * obs_dim, length * obs_dim)
        self.second = nn.Linear(length * obs_dim, length * obs_dim)

    def parameter_groups(self):
        return {"first": list(self.first.parameters()), "second": list(self.second.parameters())}

    def training_stages(self, settings):
        return [
            Stage("autoencoder", Reconstruction(self), groups=("first",), num_steps=self.steps[0]),
            Stage("prior", Prior(self), groups=("second",), num_steps=self.steps[1]),
        ]

    def generate(self, num_series, length, covariates=None):
        return torch.zeros(1, num_series, length, self.obs_dim)


class Interrupt(Callback):
    def __init__(self, at):
        self.at = at

    def on_step_end(self, trainer, row):
        if trainer.step == self.at:
            raise KeyboardInterrupt


def _run(series_ds, tmp_path=None, resume=False, callbacks=(), seed=0):
    from pyrossm.data import DataContract

    torch.manual_seed(seed)
    model = TwoStage()
    _, data = DataContract.fit(series_ds)
    config = TrainerConfig.from_dict(
        {
            "seed": seed,
            "progress": False,
            "batch_size": 4,
            "learning_rate": 0.05,
            "checkpoint_every": 1 if tmp_path else 0,
            "ema_decay": 0.5,
        }
    )
    trainer = Trainer(model.training_stages(config.objective), model.parameter_groups(), config, callbacks)
    history = trainer.fit(data.select, len(data), checkpoint_dir=tmp_path, resume=resume)
    return model, history, trainer


def test_two_stages_train_in_order_each_on_its_own_groups(series_ds):
    torch.manual_seed(0)
    initial = TwoStage()
    model, history, trainer = _run(series_ds)
    assert list(history["stage"]) == ["autoencoder"] * 4 + ["prior"] * 3
    assert list(history["step"]) == list(range(7))
    assert history["mse"].iloc[:4].notna().all() and history["mse"].iloc[4:].isna().all()
    assert history["prior_error"].iloc[4:].notna().all()
    # each stage's step counter starts at 0: the second stage's term sees steps 0, 1, 2
    np.testing.assert_allclose(history["noise_scale"].iloc[4:], [0.1, 0.2, 0.3])
    assert history["lr_first"].iloc[:4].notna().all() and history["lr_first"].iloc[4:].isna().all()
    assert history["lr_second"].iloc[4:].notna().all()
    # both networks trained; stage two never touched the first, stage one never the second
    assert not torch.equal(model.first.weight, initial.first.weight)
    assert not torch.equal(model.second.weight, initial.second.weight)
    stopped_after_one = _run(series_ds, callbacks=[StopAfterStage("autoencoder")])[0]
    assert torch.equal(stopped_after_one.first.weight, model.first.weight)  # stage two left it alone
    assert torch.equal(stopped_after_one.second.weight, initial.second.weight)  # stage one left this alone


class StopAfterStage(Callback):
    def __init__(self, name):
        self.name = name

    def on_stage_end(self, trainer, stage):
        if stage.name == self.name:
            trainer.request_stop()


@pytest.mark.parametrize("cut", [2, 4, 5])
def test_two_stages_resume_mid_stage_bit_for_bit(series_ds, tmp_path, cut):
    """Interrupted inside stage one (2), at the boundary (4) or inside stage two (5), the resumed
    run ends with the same parameters and history as the uninterrupted one."""
    full, full_history, _ = _run(series_ds, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        # killed during step `cut` (after it computed, before its checkpoint): the last is at `cut`
        _run(series_ds, tmp_path / "cut", callbacks=[Interrupt(cut + 1)])
    state = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert state["step"] == cut and state["stage"] == (0 if cut <= 4 else 1)
    resumed, resumed_history, _ = _run(series_ds, tmp_path / "cut", resume=True)
    for a, b in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    pd.testing.assert_frame_equal(full_history.drop(columns="seconds"), resumed_history.drop(columns="seconds"))


def test_a_stage_naming_an_unknown_group_is_refused():
    model = TwoStage()
    stages = [Stage("x", Reconstruction(model), groups=("nope",))]
    with pytest.raises(ValueError, match="stage 'x' names unknown parameter groups \\['nope'\\]"):
        Trainer(stages, model.parameter_groups(), {"progress": False})
    with pytest.raises(
        ValueError, match="validation_metric 'elbo' is not among the validation values of stage 'autoencoder'"
    ):
        Trainer(
            model.training_stages(None),
            model.parameter_groups(),
            {"progress": False, "keep_best": True, "validate_every": 1},
        ).fit(lambda idx: None, 4, val_batch=object())
