"""pyrossm.fit / FitResult / pyrossm.load: outputs, persistence, safety and errors at the boundary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

import pyrossm
from pyrossm.inference import Trainer, TrainerConfig, atomic_torch_save
from pyrossm.inference.config import REMOVED_SETTINGS
from pyrossm.models import DKF, GaussianEmission, GaussianTransition, SmoothingEncoder, StateSpaceModel, VHPInit
from pyrossm.models.registry import SSM_TRAINER_DEFAULTS

H = 3


@pytest.fixture(scope="module")
def data(make_ds):
    return make_ds()


@pytest.fixture(scope="module")
def fitted(data, tiny):
    return pyrossm.fit(data=data, num_steps=3, order=2, latent_dim=2, **tiny)


@pytest.fixture(scope="module")
def cov_data(make_ds):
    return make_ds(covariate=True)


@pytest.fixture(scope="module")
def cov_fitted(cov_data, tiny):
    return pyrossm.fit(data=cov_data, covariates=["u"], num_steps=3, **tiny)


def user_model(obs_dim=1, latent_dim=2, order=2, covariate_dim=0, seed=0):
    torch.manual_seed(seed)
    kw = dict(channels=4, seq_dim=4, hidden_dim=4, num_layers=1)
    return StateSpaceModel(
        transition=GaussianTransition(latent_dim, order, covariate_dim, **kw),
        emission=GaussianEmission(obs_dim, latent_dim, order, covariate_dim, **kw),
        encoder=SmoothingEncoder(obs_dim, latent_dim, order, covariate_dim, summary_dim=4, summary_layers=1, **kw),
        init=VHPInit(latent_dim, order, covariate_dim, **{k: v for k, v in kw.items()}),
        latent_dim=latent_dim,
        order=order,
        obs_dim=obs_dim,
        covariate_dim=covariate_dim,
    )


# ------------------------------------------------------------------ forecast
def test_forecast_dims_horizon_and_integer_time(fitted, data):
    fc = fitted.forecast(data, horizon=H, num_samples=5, seed=0)
    assert isinstance(fc, xr.Dataset)
    assert list(fc.data_vars) == ["x"]
    assert fc["x"].dims == ("draw", "series", "time")
    assert dict(fc.sizes) == {"draw": 5, "series": 6, "time": H}
    assert fc["time"].values.tolist() == [8, 9, 10]
    assert fc["series"].values.tolist() == data["series"].values.tolist()
    assert np.isfinite(fc["x"].values).all()
    assert fc["x"].std("draw").min() > 0  # draws differ


def test_forecast_is_reproducible_with_a_seed(fitted, data):
    a = fitted.forecast(data, horizon=2, num_samples=4, seed=7)
    b = fitted.forecast(data, horizon=2, num_samples=4, seed=7)
    c = fitted.forecast(data, horizon=2, num_samples=4, seed=8)
    assert np.array_equal(a["x"].values, b["x"].values)
    assert not np.array_equal(a["x"].values, c["x"].values)
    # a seeded call leaves the global RNG alone
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    fitted.forecast(data, horizon=2, num_samples=4, seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_forecast_continues_a_daily_datetime_coordinate(make_ds, tiny):
    days = pd.date_range("2024-02-25", periods=8, freq="D")
    ds = make_ds(time=days)
    res = pyrossm.fit(data=ds, num_steps=2, **tiny)
    fc = res.forecast(ds, horizon=4, num_samples=2, seed=0)
    expected = pd.date_range("2024-03-04", periods=4, freq="D")
    assert pd.DatetimeIndex(fc["time"].values).equals(expected)
    assert dict(fc.sizes) == {"draw": 2, "series": 6, "time": 4}


def test_forecast_from_a_subset_of_series_and_a_shorter_context(fitted, data):
    context = data.isel(series=[4, 1], time=slice(0, 5))
    fc = fitted.forecast(context, horizon=2, num_samples=3, seed=0)
    assert fc["series"].values.tolist() == [4, 1]
    assert fc["time"].values.tolist() == [5, 6]


def test_covariate_model_demands_future_covariates(cov_fitted, cov_data, make_future):
    with pytest.raises(ValueError, match="future_covariates"):
        cov_fitted.forecast(cov_data, horizon=H, num_samples=2)
    fut = make_future(horizon=H)
    fc = cov_fitted.forecast(cov_data, horizon=H, num_samples=2, future_covariates=fut, seed=0)
    assert dict(fc.sizes) == {"draw": 2, "series": 6, "time": H}
    assert list(fc.data_vars) == ["x"]  # covariates are not forecast
    with pytest.raises(ValueError, match="horizon"):
        cov_fitted.forecast(cov_data, horizon=H + 1, num_samples=2, future_covariates=fut)


def test_future_covariates_are_matched_by_series_not_position(cov_fitted, cov_data, make_future):
    fut = make_future(horizon=H)
    fut["u"] = fut["u"] * 10  # make them matter
    a = cov_fitted.forecast(cov_data, horizon=H, num_samples=3, future_covariates=fut, seed=1)
    b = cov_fitted.forecast(
        cov_data, horizon=H, num_samples=3, future_covariates=fut.isel(series=[5, 4, 3, 2, 1, 0]), seed=1
    )
    assert np.array_equal(a["x"].values, b["x"].values)
    other = fut.copy(deep=True)
    other["u"] = -other["u"]
    c = cov_fitted.forecast(cov_data, horizon=H, num_samples=3, future_covariates=other, seed=1)
    assert not np.array_equal(a["x"].values, c["x"].values)


def test_model_without_covariates_rejects_future_covariates(fitted, data, make_future):
    with pytest.raises(ValueError, match="future_covariates"):
        fitted.forecast(data, horizon=H, future_covariates=make_future(horizon=H))


# ------------------------------------------------------------------ sample / smooth / ppc
def test_sample_shapes(fitted, cov_fitted, make_future):
    gen = fitted.sample(num_series=4, length=5, num_samples=3, seed=0)
    assert gen["x"].dims == ("draw", "series", "time")
    assert dict(gen.sizes) == {"draw": 3, "series": 4, "time": 5}
    assert np.isfinite(gen["x"].values).all()
    again = fitted.sample(num_series=4, length=5, num_samples=3, seed=0)
    assert np.array_equal(gen["x"].values, again["x"].values)
    with pytest.raises(ValueError, match="length"):
        fitted.sample(num_series=4, length=1)  # order is 2
    cov = make_future(num_series=4, horizon=5)
    gen = cov_fitted.sample(num_series=4, length=5, num_samples=2, covariates=cov, seed=0)
    assert dict(gen.sizes) == {"draw": 2, "series": 4, "time": 5}
    with pytest.raises(ValueError, match="covariates"):
        cov_fitted.sample(num_series=4, length=5)


def test_smooth_shapes(fitted, data):
    zs = fitted.smooth(data, num_samples=7, seed=0)
    assert zs["z"].dims == ("draw", "series", "time", "latent")
    assert dict(zs.sizes) == {"draw": 7, "series": 6, "time": 8, "latent": 2}
    assert zs["time"].values.tolist() == list(range(8))
    assert np.isfinite(zs["z"].values).all()


def test_posterior_predictive_datatree(fitted, data):
    dt = fitted.posterior_predictive(data, num_samples=4, seed=0)
    assert isinstance(dt, xr.DataTree)
    assert set(dt.children) == {"posterior_predictive", "observed_data"}
    pp = dt["posterior_predictive"].to_dataset()
    assert pp["x"].dims == ("chain", "draw", "series", "time")
    assert dict(pp.sizes) == {"chain": 1, "draw": 4, "series": 6, "time": 8}
    obs = dt["observed_data"].to_dataset()
    assert obs["x"].dims == ("series", "time")
    np.testing.assert_allclose(obs["x"].values, data["x"].values, rtol=1e-5, atol=1e-5)


def test_posterior_predictive_keeps_missing_values_missing(fitted, data):
    holes = data.copy(deep=True)
    holes["x"][2, 3] = np.nan
    dt = fitted.posterior_predictive(holes, num_samples=2, seed=0)
    obs = dt["observed_data"].to_dataset()["x"].values
    assert np.isnan(obs[2, 3]) and np.isnan(obs).sum() == 1
    assert np.isfinite(dt["posterior_predictive"].to_dataset()["x"].values).all()


# ------------------------------------------------------------------ persistence
def test_save_load_round_trip(fitted, data, tmp_path):
    path = fitted.save(tmp_path / "run.pyrossm")
    assert path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["run.pyrossm"]
    loaded = pyrossm.load(path)
    a = fitted.forecast(data, horizon=H, num_samples=4, seed=3)
    b = loaded.forecast(data, horizon=H, num_samples=4, seed=3)
    assert np.array_equal(a["x"].values, b["x"].values)
    pd.testing.assert_frame_equal(fitted.history, loaded.history)
    assert "dkf" in repr(loaded)
    assert repr(loaded) == repr(fitted)
    assert isinstance(loaded.model, DKF) and loaded.model.order == 2 and loaded.model.latent_dim == 2
    # device objects are accepted (FitResult.device is one)
    assert pyrossm.load(path, device=fitted.device).device == torch.device("cpu")


def test_dkf_files_from_before_the_activation_option_load_with_relu(data, tiny, tmp_path):
    import json

    from pyrossm.inference import atomic_torch_save, safe_torch_load

    # such files were all fitted with the paper networks (then the default), whose modules name their activation
    paper = pyrossm.fit(data=data, num_steps=1, order=2, latent_dim=2, architecture="paper", **tiny)
    payload = safe_torch_load(paper.save(tmp_path / "new.pyrossm"))
    config = json.loads(payload["config"])
    assert config["model_config"].pop("activation") == "relu"  # the default
    payload["config"] = json.dumps(config)
    payload["version"] = 1  # such files were version 1: no checksum
    del payload["checksum"]
    atomic_torch_save(payload, tmp_path / "old.pyrossm")
    old = pyrossm.load(tmp_path / "old.pyrossm")
    assert old.model.config["activation"] == "relu"
    assert {m.activation for m in old.model.modules() if hasattr(m, "activation")} == {"relu"}
    silu = pyrossm.fit(data=data, num_steps=1, activation="silu", **tiny)
    silu.save(tmp_path / "silu.pyrossm")
    assert pyrossm.load(tmp_path / "silu.pyrossm").model.config["activation"] == "silu"


def test_load_rejects_files_that_are_not_pyrossm_fits(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.txt"):
        pyrossm.load(text)
    other = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not a pyrossm fit"):
        pyrossm.load(other)
    with pytest.raises(FileNotFoundError):
        pyrossm.load(tmp_path / "missing.pyrossm")


class Payload:
    """Unpickling this object calls ``open(marker, "w")``, creating the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_load_does_not_unpickle_code(tmp_path):
    # the payload is live: a plain torch.load would run it
    live_marker = tmp_path / "proof-it-runs"
    proof = tmp_path / "proof.pt"
    torch.save(Payload(live_marker), proof)
    torch.load(proof, weights_only=False).close()
    assert live_marker.exists()

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pyrossm"
    torch.save({"format": "pyrossm-fit", "version": 1, "config": Payload(marker)}, evil)
    with pytest.raises(ValueError, match="plain data"):
        pyrossm.load(evil)
    assert not marker.exists()


def test_user_built_model(data, tmp_path):
    model = user_model()
    res = pyrossm.fit(model, data, num_steps=3, progress=False)
    assert res.model is model
    assert len(res.history) == 3
    assert "StateSpaceModel" in repr(res)
    path = res.save(tmp_path / "user.pyrossm")
    with pytest.raises(ValueError, match="model="):
        pyrossm.load(path)
    with pytest.raises(TypeError, match="GenerativeModel"):  # StateSpaceModel is one
        pyrossm.load(path, model="dkf")
    loaded = pyrossm.load(path, model=user_model(seed=123))
    a = res.forecast(data, horizon=2, num_samples=3, seed=0)
    b = loaded.forecast(data, horizon=2, num_samples=3, seed=0)
    assert np.array_equal(a["x"].values, b["x"].values)
    with pytest.raises(ValueError, match=r"latent_dim=3 \(the fit has 2\)"):
        pyrossm.load(path, model=user_model(latent_dim=3))
    # another Markov order is named before any parameter shape is compared
    with pytest.raises(ValueError, match=r"order=3 \(the fit has 2\)"):
        pyrossm.load(path, model=user_model(order=3))


# ------------------------------------------------------------------ errors at the boundary
@pytest.fixture
def no_training(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("training started before the bad input was reported")

    monkeypatch.setattr(Trainer, "fit", boom)


@pytest.mark.parametrize(
    "kwargs,error,culprit",
    [
        (dict(model="kalman"), ValueError, "kalman"),
        (dict(foo=1), TypeError, "foo"),
        (dict(data=None), ValueError, "data"),
        (dict(order=9), ValueError, "order"),
        (dict(order=0), ValueError, "order"),
        (dict(latent_dim=0), ValueError, "latent_dim"),
        (dict(device="gpu"), ValueError, "device"),
        (dict(device="cuda:x"), ValueError, "device"),
        (dict(num_steps=-1), ValueError, "num_steps"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(covariates=["v"]), ValueError, "v"),
        (dict(trainer={"learning_rates": {"decoder": 0.1}}), ValueError, "decoder"),
        (dict(trainer={"annealing": "exponential"}), ValueError, "exponential"),
        (dict(trainer={"keep_best": True, "validate_every": 1}), ValueError, "validation_data"),
        (dict(trainer={"validate_evry": 1}), ValueError, "validate_every"),
        # settings pyrossm had and removed: a saved fit with them loads, a new fit refuses them
        (dict(trainer={"lr_restarts": [1]}), ValueError, "'lr_restarts': this setting was removed from pyrossm"),
        (dict(trainer={"optimizer": {"clip_per_group": True}}), ValueError, "'clip_per_group' .* was removed"),
        (dict(batch_schedule=[[1, 4]]), TypeError, "the trainer setting 'batch_schedule' was removed from pyrossm"),
        (dict(trainer="dkf-tabel3"), ValueError, "dkf-table3"),
        (dict(trainer=3), TypeError, "trainer"),
        (dict(model="Kalman"), ValueError, r"one of \['collapse_simulation', 'ddssm', 'dkf', 'l2d', 'latent_"),
        (dict(num_step=3), TypeError, "'num_steps'"),
        (dict(keep_best=True), TypeError, r"trainer=\{'keep_best': True\}"),
        (dict(annealing="linear"), TypeError, "trainer="),
        (dict(warmup_steps=5), TypeError, r"trainer=\{'annealing': \{'kind': 'cosine', 'warmup_steps': 5\}\}"),
        (dict(annealing_end=1.5), TypeError, r"trainer=\{'annealing': \{'kind': 'cosine', 'end': 1.5\}\}"),
        (dict(init="uniform"), ValueError, "init"),
        (dict(model=3), TypeError, "model"),
        (dict(model=DKF(obs_dim=2, channels=4, hidden_dim=4)), ValueError, "obs_dim"),
        (dict(model=DKF(obs_dim=1, covariate_dim=1, channels=4, hidden_dim=4)), ValueError, "covariate_dim"),
        (dict(model=DKF(obs_dim=1, channels=4, hidden_dim=4), channels=8), TypeError, "channels"),
    ],
)
def test_bad_arguments_are_reported_before_training(kwargs, error, culprit, data, no_training):
    kwargs = {"data": data, "num_steps": 2, "progress": False, **kwargs}
    with pytest.raises(error, match=culprit):
        pyrossm.fit(**kwargs)


def test_order_error_names_the_order_and_the_series(make_ds, no_training):
    ds = make_ds()
    ds["x"][3, 2:] = np.nan  # series 3 has 2 observed steps
    with pytest.raises(ValueError, match=r"^data: series \[3\].*order=3.*lengths \[2\]"):
        pyrossm.fit(data=ds, order=3, num_steps=1, progress=False)
    with pytest.raises(ValueError, match=r"^validation_data: series \[3\].*order=3"):
        pyrossm.fit(data=make_ds(), validation_data=ds, order=3, num_steps=1, progress=False)


def test_numpy_integer_arguments_are_accepted(data, tiny):
    res = pyrossm.fit(data=data, order=np.int64(2), latent_dim=np.int64(1), num_steps=1, **tiny)
    assert res.model.order == 2 and isinstance(res.model.order, int)


@pytest.mark.parametrize(
    "call,culprit",
    [
        (lambda r, d: r.forecast(d, horizon=0), "horizon"),
        (lambda r, d: r.forecast(d, horizon=2, num_samples=0), "num_samples"),
        (lambda r, d: r.forecast(d.rename(x="y"), horizon=2), "y"),
        (lambda r, d: r.forecast(d.isel(time=slice(0, 1)), horizon=2), "order"),
        (lambda r, d: r.smooth(d, num_samples=-3), "num_samples"),
        (lambda r, d: r.sample(num_series=0, length=4), "num_series"),
        (lambda r, d: r.posterior_predictive(d, num_samples=0), "num_samples"),
    ],
)
def test_bad_prediction_arguments(fitted, data, call, culprit):
    with pytest.raises(ValueError, match=culprit):
        call(fitted, data)


# ------------------------------------------------------------------ fit's signature and trainer settings
def test_fit_has_few_named_parameters():
    import inspect

    params = inspect.signature(pyrossm.fit).parameters.values()
    named = [p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    assert len(named) <= 14, named
    assert named[:2] == ["model", "data"]
    assert "trainer" in named and "keep_best" not in named and "learning_rates" not in named


def test_a_misspelt_argument_names_the_closest(data, no_training):
    with pytest.raises(TypeError, match=r"'num_step'.*did you mean 'num_steps'\?"):
        pyrossm.fit(data=data, num_step=3, progress=False)


@pytest.mark.parametrize(
    "name,value",
    [("keep_best", True), ("validate_every", 2), ("learning_rates", {"transition": 1e-2}), ("lr_schedule", "cosine")],
)
def test_a_trainer_setting_given_to_fit_says_to_pass_it_as_trainer(data, no_training, name, value):
    with pytest.raises(TypeError, match=rf"{name!r} is a trainer setting, pass trainer=\{{"):
        pyrossm.fit(data=data, num_steps=1, progress=False, **{name: value})


def test_model_names_are_case_insensitive(data, tiny):
    upper = pyrossm.fit(model="DKF", data=data, num_steps=2, seed=4, **tiny)
    lower = pyrossm.fit(model="dkf", data=data, num_steps=2, seed=4, **tiny)
    assert isinstance(upper.model, DKF) and upper.config["model"] == "dkf"
    pd.testing.assert_frame_equal(upper.history.drop(columns="seconds"), lower.history.drop(columns="seconds"))


def test_trainer_settings_given_flat_nested_or_as_a_config_are_the_same_run(data, tiny):
    # the rate's settings spelled out: a dict is read on top of the DKF's own defaults
    # (SSM_TRAINER_DEFAULTS), a TrainerConfig instance on the library-wide ones (see the end)
    flat = {
        "learning_rate": 1e-3,
        "learning_rates": {"transition": 1e-2},
        "lr_schedule": "cosine",
        "lr_end_factor": 0.1,
        "batch_size": 4,
        "annealing": {"kind": "linear", "start": 0.1, "end": 1.0, "warmup_steps": 2},
    }
    nested = {
        "optimizer": {"learning_rate": 1e-3, "learning_rates": {"transition": 1e-2}},
        "schedule": {"lr_schedule": "cosine", "lr_end_factor": 0.1},
        "batching": {"batch_size": 4},
        "objective": {"annealing": {"kind": "linear", "start": 0.1, "end": 1.0, "warmup_steps": 2}},
    }
    runs = [
        pyrossm.fit(data=data, num_steps=3, seed=2, trainer=t, **tiny)
        for t in (flat, nested, TrainerConfig.from_dict(flat))
    ]
    for other in runs[1:]:
        pd.testing.assert_frame_equal(runs[0].history.drop(columns="seconds"), other.history.drop(columns="seconds"))
    history = runs[0].history
    np.testing.assert_allclose(history["annealing"], [0.1, 0.55, 1.0])
    np.testing.assert_allclose(history["lr_transition"], [1e-2, 1e-2 * (0.1 + 0.9 * 0.75), 1e-2 * (0.1 + 0.9 * 0.25)])
    assert (history["batch_size"] == 4).all()
    trainer = runs[0].config["trainer"]
    assert trainer == TrainerConfig.from_dict({**flat, "num_steps": 3, "seed": 2, "progress": False}).to_dict()
    assert trainer["optimizer"]["learning_rates"] == {"transition": 1e-2}
    # left unspelled, a TrainerConfig instance is taken as it is (the library-wide defaults) while
    # a dict keeps the family's
    unspelled = {k: v for k, v in flat.items() if k not in ("learning_rate", "lr_end_factor")}
    as_config, as_dict = (
        pyrossm.fit(data=data, num_steps=1, seed=2, trainer=t, **tiny).config["trainer"]
        for t in (TrainerConfig.from_dict(unspelled), unspelled)
    )
    library, family = TrainerConfig(), TrainerConfig.from_dict(SSM_TRAINER_DEFAULTS)
    for config, defaults in ((as_config, library), (as_dict, family)):
        assert config["optimizer"]["learning_rate"] == defaults.optimizer.learning_rate
        assert config["schedule"]["lr_end_factor"] == defaults.schedule.lr_end_factor
    assert as_config["optimizer"]["learning_rate"] != as_dict["optimizer"]["learning_rate"]


def test_fit_arguments_replace_the_trainers_values(data, tiny):
    res = pyrossm.fit(
        data=data,
        trainer={"num_steps": 50, "batch_size": 2, "learning_rate": 0.5, "seed": 9},
        num_steps=2,
        batch_size=3,
        learning_rate=0.01,
        seed=1,
        **tiny,
    )
    assert len(res.history) == 2 and (res.history["batch_size"] == 3).all()
    trainer = res.config["trainer"]
    assert (
        trainer["num_steps"],
        trainer["seed"],
        trainer["batching"]["batch_size"],
        trainer["optimizer"]["learning_rate"],
    ) == (2, 1, 3, 0.01)
    # and without them the trainer's values hold
    res = pyrossm.fit(data=data, trainer={"num_steps": 2, "batch_size": 5}, **tiny)
    assert len(res.history) == 2 and (res.history["batch_size"] == 5).all()


#: the trainer settings of a version-1 file: one flat dict (what the former
#: ``TrainerConfig.to_dict()`` wrote, settings since removed included)
V1_TRAINER = {
    "num_steps": 3,
    "batch_size": 4,
    "batch_schedule": [],
    "reset_moments_on_batch_change": False,
    "num_particles": 1,
    "learning_rate": 0.001,
    "learning_rates": {},
    "weight_decay": 0.01,
    "clip_norm": 10.0,
    "clip_per_group": False,
    "lr_schedule": "constant",
    "lr_end_factor": 0.1,
    "lr_restarts": [],
    "lr_warmup_steps": 0,
    "ema_decay": None,
    "annealing": {"kind": "cosine", "start": 0.01, "end": 1.0, "warmup_steps": 1, "points": []},
    "validate_every": 0,
    "validation_metric": "elbo",
    "keep_best": False,
    "restart_from_best": False,
    "checkpoint_every": 0,
    "progress": None,
    "seed": 0,
    "on_nonfinite": "raise",
}


def _rewrite(path, out, version, trainer=None):
    import json

    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "pyrossm-fit" and payload["version"] == 2
    config = json.loads(payload["config"])
    assert set(config["trainer"]) == {
        "num_steps",
        "seed",
        "progress",
        "optimizer",
        "schedule",
        "batching",
        "objective",
        "selection",
        "checkpointing",
    }
    if trainer is not None:
        config["trainer"] = trainer
    payload.update(version=version, config=json.dumps(config))
    atomic_torch_save(payload, out)
    return out


def test_version_1_files_are_migrated_on_load(fitted, data, tmp_path):
    path = fitted.save(tmp_path / "v2.pyrossm")
    old = pyrossm.load(_rewrite(path, tmp_path / "v1.pyrossm", 1, V1_TRAINER))
    a = fitted.forecast(data, horizon=H, num_samples=4, seed=3)
    b = old.forecast(data, horizon=H, num_samples=4, seed=3)
    assert np.array_equal(a["x"].values, b["x"].values)
    pd.testing.assert_frame_equal(fitted.history, old.history)
    trainer = old.config["trainer"]
    current = {k: v for k, v in V1_TRAINER.items() if k not in REMOVED_SETTINGS}
    assert trainer == TrainerConfig.from_dict(current).to_dict()  # nested by section
    assert trainer["batching"]["batch_size"] == 4 and trainer["selection"]["keep_best"] is False
    assert trainer["objective"]["annealing"] == {
        "kind": "cosine",
        "start": 0.01,
        "end": 1.0,
        "warmup_steps": 1,
        "points": [],
    }
    assert "batch_size" not in trainer and "keep_best" not in trainer
    # a migrated file saves as version 2 and loads the same
    again = pyrossm.load(old.save(tmp_path / "again.pyrossm"))
    assert again.config == old.config
    assert torch.load(tmp_path / "again.pyrossm", weights_only=True)["version"] == 2


def test_unreadable_versions_and_v1_settings_are_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "v2.pyrossm")
    with pytest.raises(ValueError, match=r"format version 3, this pyrossm reads versions 1 to 2"):
        pyrossm.load(_rewrite(path, tmp_path / "v3.pyrossm", 3))
    with pytest.raises(ValueError, match=r"format version 0"):
        pyrossm.load(_rewrite(path, tmp_path / "v0.pyrossm", 0))
    bad = dict(V1_TRAINER, lr_schedule="sawtooth")
    with pytest.raises(ValueError, match=r"version-1 file.*sawtooth"):
        pyrossm.load(_rewrite(path, tmp_path / "bad.pyrossm", 1, bad))


#: what the former "ddssm-bimodal-cpu" preset set of the settings pyrossm removed since, nested by
#: section as a version-2 file holds them (non-default values, stretched to a short run)
REMOVED_AS_SAVED = {
    "optimizer": {"clip_per_group": True},
    "schedule": {"lr_restarts": [1, 2]},
    "batching": {"batch_schedule": [[2, 256]], "reset_moments_on_batch_change": True},
    "selection": {"restart_from_best": True},
}


def test_fits_saved_with_since_removed_trainer_settings_load_without_them(fitted, data, tmp_path):
    import json

    from pyrossm.io import checksum

    # a version-2 file as the earlier version wrote it: the settings in their sections, sealed
    payload = torch.load(fitted.save(tmp_path / "now.pyrossm"), weights_only=True)
    config = json.loads(payload["config"])
    for section, settings in REMOVED_AS_SAVED.items():
        config["trainer"][section].update(settings)
    payload["config"] = json.dumps(config)
    payload["checksum"] = checksum(payload)
    atomic_torch_save(payload, tmp_path / "before.pyrossm")
    old = pyrossm.load(tmp_path / "before.pyrossm")
    assert old.config == fitted.config  # the removed settings dropped, the rest as saved
    assert TrainerConfig.from_dict(old.config["trainer"]).to_dict() == old.config["trainer"]
    pd.testing.assert_frame_equal(old.history, fitted.history)
    a = fitted.forecast(data, horizon=H, num_samples=4, seed=3)
    b = old.forecast(data, horizon=H, num_samples=4, seed=3)
    assert np.array_equal(a["x"].values, b["x"].values)
    # saved again, it holds only today's settings
    again = torch.load(old.save(tmp_path / "again.pyrossm"), weights_only=True)
    assert json.loads(again["config"])["trainer"] == fitted.config["trainer"]
    # a version-1 file's flat settings, with the removed ones away from their defaults
    flat = dict(V1_TRAINER, lr_schedule="cosine", keep_best=True, validate_every=1)
    flat.update({k: v for section in REMOVED_AS_SAVED.values() for k, v in section.items()})
    v1 = pyrossm.load(_rewrite(tmp_path / "now.pyrossm", tmp_path / "v1.pyrossm", 1, flat))
    current = {k: v for k, v in flat.items() if k not in REMOVED_SETTINGS}
    assert v1.config["trainer"] == TrainerConfig.from_dict(current).to_dict()
    assert set(REMOVED_SETTINGS) == {k for section in REMOVED_AS_SAVED.values() for k in section}


def test_a_preset_is_stretched_to_num_steps(make_ds, monkeypatch):
    from pyrossm.inference import presets

    # a recipe with a phase of lambda, a faster transition, validation by the 1-step log score
    monkeypatch.setitem(
        presets.TRAINER_PRESETS,
        "phased",
        dict(
            num_steps=6000,
            batch_size=64,
            learning_rate=3e-3,
            learning_rates={"transition": 1e-2},
            lr_schedule="cosine",
            lr_end_factor=0.03,
            annealing={"kind": "piecewise", "points": [[0, 0.01], [200, 1], [1000, 1], [1200, 1.75], [4800, 1.75]]},
            validate_every=300,
            keep_best=True,
            validation_metric="log_score",
        ),
    )
    ddssm_tiny = dict(
        channels=4,
        hidden_dim=4,
        encoder_layers=1,
        emission_layers=1,
        diffusion_channels=4,
        diffusion_layers=1,
        num_diffusion_steps=16,
    )
    data, val = make_ds(num_series=80, seed=1), make_ds(num_series=4, seed=5)
    res = pyrossm.fit(
        model="ddssm",
        data=data,
        validation_data=val,
        trainer="phased",
        num_steps=6,
        seed=0,
        progress=False,
        latent_dim=1,
        **ddssm_tiny,
    )
    expected = TrainerConfig.from_preset("phased", num_steps=6)
    assert res.config["trainer"] == expected.updated(progress=False).to_dict()
    # 6000 steps -> 6: the knots at 0, 1, 2, 3, 5 (of 0, 200, 1000, 1200, 4800), validation every step
    assert expected.objective.annealing.points == ((0, 0.01), (1, 1), (2, 1), (3, 1.75), (5, 1.75))
    assert expected.selection.validate_every == 1
    history = res.history
    assert history["step"].tolist() == list(range(6)) and (history["stage"] == "svi").all()
    assert history["batch_size"].tolist() == [64] * 6
    np.testing.assert_allclose(history["annealing"], [0.01, 1.0, 1.0, 1.75, 1.75, 1.75])
    decay = 0.03 + 0.97 * 0.5 * (1 + np.cos(np.pi * np.arange(6) / 6))  # cosine to 3% over 6 steps
    np.testing.assert_allclose(history["lr_transition"], 1e-2 * decay, rtol=1e-12)
    np.testing.assert_allclose(history["lr_encoder"], 3e-3 * decay, rtol=1e-12)
    assert np.isfinite(history["val_log_score"]).all() and np.isfinite(history["val_elbo"]).all()
    kept = res.config["kept"]
    assert kept["metric"] == "log_score" and kept["step"] == int(history["val_log_score"].idxmax())
    assert kept["val_log_score"] == pytest.approx(history["val_log_score"].max())


def test_series_much_longer_than_a_training_step_needs_get_a_warning(monkeypatch, tiny):
    from pyrossm.inference import Trainer

    long = xr.Dataset({"x": (("series", "time"), np.random.default_rng(0).normal(size=(2, 1100)))})
    monkeypatch.setattr(Trainer, "fit", lambda *args, **kwargs: (_ for _ in ()).throw(RuntimeError("stop")))
    with pytest.warns(UserWarning, match="1100 time steps.*pyrossm.data.windows"), pytest.raises(RuntimeError):
        pyrossm.fit(data=long, num_steps=1, **tiny)


def test_sample_with_covariates_of_the_wrong_shape_says_what_sample_expected(cov_data, tiny, make_future):
    res = pyrossm.fit(data=cov_data, covariates=["u"], num_steps=1, **tiny)
    with pytest.raises(ValueError, match="covariates has 6 series, num_series is 2"):
        res.sample(num_series=2, length=3, covariates=make_future(num_series=6, horizon=3, start=0))
    with pytest.raises(ValueError, match="covariates with 3 time steps are required"):
        res.sample(num_series=2, length=3)
