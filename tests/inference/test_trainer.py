"""Trainer: reproducibility, checkpoint/resume, atomic checkpoints, non-finite losses,
per-group learning rates, validation and minibatching."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyro
import pytest
import torch

import pyrossm
from pyrossm.inference import (
    AnnealedELBO,
    AnnealingSchedule,
    NonFiniteLossError,
    Trainer,
    TrainerConfig,
    safe_torch_load,
)
from pyrossm.inference.trainer import CHECKPOINT_NAME
from pyrossm.models import DKF

N, T = 6, 8
#: the fits' lambda: 0.01 -> 1 by a cosine over 6 steps (the former ``warmup_steps=6``)
RAMP = {"kind": "cosine", "start": 0.01, "end": 1.0, "warmup_steps": 6}
#: a run cut short by a smaller ``num_steps`` is a prefix of the full run only where no schedule
#: depends on ``num_steps``: the DKF's default cosine learning-rate decay does, so the tests that
#: resume such a cut to the full ``num_steps`` pin a constant rate
CONSTANT_LR = {"lr_schedule": "constant"}


def history_without_seconds(history):
    return history.drop(columns=["seconds"])


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def tensors(seed=0, covariate_dim=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N, T, 1, generator=gen).cumsum(1)
    x = (x - x.mean()) / x.std()
    return x, torch.ones(N, T, 1, dtype=torch.bool), torch.randn(N, T, covariate_dim, generator=gen)


def make_trainer(seed=0, **settings):
    """A tiny DKF and a :class:`Trainer` of its stages with the flat trainer ``settings``
    (lambda = 1 throughout unless ``annealing`` is given)."""
    torch.manual_seed(seed)
    model = DKF(
        obs_dim=1,
        latent_dim=1,
        order=1,
        channels=4,
        hidden_dim=4,
        encoder_layers=1,
        emission_layers=1,
        transition_layers=1,
    )
    settings.setdefault("progress", False)
    settings.setdefault("annealing", {"kind": "constant", "end": 1.0})
    config = TrainerConfig.from_dict(settings)
    trainer = Trainer(model.training_stages(config.objective), model.parameter_groups(), config)
    return model, trainer


def args_of(data):
    x, mask, cov = data
    return lambda idx: (x[idx], mask[idx], cov[idx])


def with_settings(fit_kwargs, **settings):
    """``fit_kwargs`` with ``settings`` added to its ``trainer`` dict."""
    return {**fit_kwargs, "trainer": {**fit_kwargs.get("trainer", {}), **settings}}


@pytest.fixture
def fit_kwargs(series_ds, tiny):
    return dict(data=series_ds, seed=3, batch_size=4, trainer={"annealing": RAMP}, **tiny)


# ------------------------------------------------------------------ reproducibility
def test_same_seed_gives_identical_history_and_parameters(fit_kwargs):
    a = pyrossm.fit(num_steps=8, **fit_kwargs)
    b = pyrossm.fit(num_steps=8, **fit_kwargs)
    assert len(a.history) == 8
    pd.testing.assert_frame_equal(history_without_seconds(a.history), history_without_seconds(b.history))
    assert_same_state(a.model, b.model)
    c = pyrossm.fit(num_steps=8, **{**fit_kwargs, "seed": 4})
    assert not a.history["loss"].equals(c.history["loss"])


def test_history_columns(fit_kwargs):
    res = pyrossm.fit(num_steps=5, **fit_kwargs)
    h = res.history
    assert list(h["step"]) == [0, 1, 2, 3, 4]
    for column in (
        "stage",
        "loss",
        "elbo",
        "annealing",
        "batch_size",
        "grad_norm",
        "elbo_x",
        "elbo_z",
        "elbo_z_aux",
        "lr_encoder",
        "lr_emission",
        "lr_transition",
        "lr_init",
        "seconds",
    ):
        assert column in h.columns
    assert (h["stage"] == "svi").all() and (h["batch_size"] == 4).all()
    # elbo is the unscaled sum of the per-site terms (per series)
    lam = h["annealing"]
    assert ((h["elbo_x"] + (h["elbo_z"] + h["elbo_z_aux"]) / lam) - h["elbo"]).abs().max() < 1e-3
    # the annealed loss is minus the scaled terms
    assert ((h["elbo_x"] + h["elbo_z"] + h["elbo_z_aux"]) + h["loss"]).abs().max() < 1e-3
    assert h["annealing"].iloc[0] == 0.01 and h["annealing"].is_monotonic_increasing
    assert h["annealing"].tolist() == pytest.approx([AnnealingSchedule(**RAMP)(s) for s in range(5)], abs=1e-15)


# ------------------------------------------------------------------ checkpoints
def test_resume_equals_an_uninterrupted_run(fit_kwargs, tmp_path):
    kw = with_settings(fit_kwargs, checkpoint_every=5, validate_every=3, **CONSTANT_LR)
    kw["validation_data"] = fit_kwargs["data"]
    full = pyrossm.fit(num_steps=20, checkpoint_dir=tmp_path / "full", **kw)
    assert sorted(os.listdir(tmp_path / "full")) == ["checkpoint.prev.pt", CHECKPOINT_NAME]  # the last two

    pyrossm.fit(num_steps=10, checkpoint_dir=tmp_path / "cut", **kw)  # "interrupted" after step 10
    assert safe_torch_load(tmp_path / "cut" / CHECKPOINT_NAME)["step"] == 10
    resumed = pyrossm.fit(num_steps=20, checkpoint_dir=tmp_path / "cut", resume=True, **kw)

    assert_same_state(full.model, resumed.model)
    pd.testing.assert_frame_equal(history_without_seconds(full.history), history_without_seconds(resumed.history))
    # validation rows before the checkpoint survive the round trip through it
    assert resumed.history["val_elbo"].notna().sum() == 6  # steps 2, 5, 8, 11, 14, 17


def fit_until_a_crash(monkeypatch, step, **fit_arguments):
    """Runs ``pyrossm.fit`` until a ``KeyboardInterrupt`` at ``step`` (as if the process died)."""
    original = Trainer._train_step

    def crash(self, *args, **kwargs):
        if self.step == step:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_train_step", crash)
    with pytest.raises(KeyboardInterrupt):
        pyrossm.fit(**fit_arguments)
    monkeypatch.setattr(Trainer, "_train_step", original)


def test_resume_after_a_crash(fit_kwargs, tmp_path, monkeypatch):
    kw = with_settings(fit_kwargs, checkpoint_every=5)
    full = pyrossm.fit(num_steps=15, **fit_kwargs)
    fit_until_a_crash(monkeypatch, 12, num_steps=15, checkpoint_dir=tmp_path, **kw)
    assert safe_torch_load(tmp_path / CHECKPOINT_NAME)["step"] == 10
    resumed = pyrossm.fit(num_steps=15, checkpoint_dir=tmp_path, resume=True, **kw)
    assert_same_state(full.model, resumed.model)
    pd.testing.assert_frame_equal(history_without_seconds(full.history), history_without_seconds(resumed.history))


def test_resume_without_a_checkpoint_is_a_fresh_seeded_run(fit_kwargs, tmp_path):
    plain = pyrossm.fit(num_steps=4, **fit_kwargs)
    first = pyrossm.fit(num_steps=4, checkpoint_dir=tmp_path, resume=True, **fit_kwargs)
    assert_same_state(plain.model, first.model)
    pd.testing.assert_frame_equal(history_without_seconds(plain.history), history_without_seconds(first.history))
    # without checkpoint_every, the one checkpoint is the end of the (only) stage's
    assert os.listdir(tmp_path) == [CHECKPOINT_NAME]
    assert safe_torch_load(tmp_path / CHECKPOINT_NAME)["step"] == 4


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    data = tensors()
    model, trainer = make_trainer(num_steps=3, batch_size=None, checkpoint_every=3)
    trainer.fit(args_of(data), N, checkpoint_dir=tmp_path)
    assert os.listdir(tmp_path) == [CHECKPOINT_NAME]
    before = safe_torch_load(tmp_path / CHECKPOINT_NAME)
    assert before["step"] == 3

    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip file")  # something reaches the disk, then the crash
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint(tmp_path)
    monkeypatch.setattr(torch, "save", real_save)

    assert os.listdir(tmp_path) == [CHECKPOINT_NAME]  # no temporary file left behind
    after = safe_torch_load(tmp_path / CHECKPOINT_NAME)
    assert after["step"] == 3
    for group, params in before["params"].items():
        for p, q in zip(params, after["params"][group]):
            assert torch.equal(p, q)


def test_checkpoint_round_trip_restores_the_trainer(tmp_path):
    data = tensors()
    _, trainer = make_trainer(num_steps=4, batch_size=3, validate_every=2)
    trainer.fit(args_of(data), N, val_batch=data)
    assert trainer.history()["val_elbo"].notna().sum() == 2
    trainer.save_checkpoint(tmp_path)
    model2, trainer2 = make_trainer(seed=9, num_steps=4, batch_size=3)
    assert trainer2.load_checkpoint(tmp_path)
    assert trainer2.step == 4
    for name in trainer.params:
        for p, q in zip(trainer.params[name], trainer2.params[name]):
            assert torch.equal(p, q)
    pd.testing.assert_frame_equal(trainer.history(), trainer2.history())
    assert not make_trainer()[1].load_checkpoint(tmp_path / "nothing-here")


def test_resume_needs_a_checkpoint_dir():
    _, trainer = make_trainer(num_steps=1)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        trainer.fit(args_of(tensors()), N, resume=True)
    _, trainer = make_trainer(num_steps=1, checkpoint_every=1)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        trainer.fit(args_of(tensors()), N)


# ------------------------------------------------------------------ non-finite losses
def test_non_finite_loss_raises_naming_the_step():
    x, mask, cov = tensors()
    calls = []

    def make_batch(idx):
        calls.append(len(calls))
        # from the 4th step (step 3) on, data so large that the Gaussian log-density overflows to -inf
        bad = x * 1e30 if len(calls) > 3 else x
        return bad[idx], mask[idx], cov[idx]

    model, trainer = make_trainer(num_steps=10, batch_size=None)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 3 \(stage 'svi'\).*loss terms per series"):
        trainer.fit(make_batch, N)
    assert trainer.step == 3 and len(trainer.history()) == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_diverged_parameter_stops_fit_before_returning_a_model(series_ds):
    torch.manual_seed(0)
    model = DKF(
        obs_dim=1,
        channels=4,
        hidden_dim=4,
        encoder_layers=1,
        emission_layers=1,
        transition_layers=1,
        architecture="paper",  # whose emission head has a mean MLP of its own
    )
    with torch.no_grad():  # an emission mean of 1e30: (x - mean)^2 overflows, log p(x | z) = -inf
        model.emission.net.head.mean[-1].bias.fill_(1e30)
    with pytest.raises(NonFiniteLossError, match="step 0"):
        pyrossm.fit(model, series_ds, num_steps=3, progress=False)


def test_non_finite_gradient_raises_and_leaves_parameters_untouched():
    """A finite loss with a NaN gradient (d sqrt(|p - 1|)/dp at p = 1) must not be applied."""
    p = torch.nn.Parameter(torch.tensor(1.0))

    def model(x, annealing=1.0):
        pyro.factor("f", -(p - 1.0).abs().sqrt())

    def guide(x, annealing=1.0):
        pass

    # a bare objective is one stage, "train"
    trainer = Trainer(
        AnnealedELBO(model, guide),
        {"p": [p]},
        TrainerConfig.from_dict({"num_steps": 1, "batch_size": None, "progress": False}),
    )
    with pytest.raises(NonFiniteLossError, match=r"non-finite gradient at step 0 \(stage 'train'\)"):
        trainer.fit(lambda idx: (torch.zeros(1),), 1)
    assert p.item() == 1.0
    assert trainer.history().empty


def test_restore_on_non_finite_reloads_the_checkpoint_and_halves_the_learning_rates(tmp_path):
    x, mask, cov = tensors()
    calls = []

    def make_batch(idx):
        calls.append(None)
        bad = x * 1e30 if len(calls) == 8 else x  # an infinite loss at step 7, only once
        return bad[idx], mask[idx], cov[idx]

    _, trainer = make_trainer(
        num_steps=10, batch_size=None, checkpoint_every=5, on_nonfinite="restore", learning_rate=0.004
    )
    history = trainer.fit(make_batch, N, checkpoint_dir=tmp_path)
    assert list(history["step"]) == list(range(10))
    assert len(calls) == 8 + 5  # steps 0-7, then 5-9 again from the step-5 checkpoint
    assert (history["lr_encoder"].iloc[:5] == 0.004).all()
    assert (history["lr_encoder"].iloc[5:] == 0.002).all()


# ------------------------------------------------------------------ options
def test_per_group_learning_rates_reach_the_optimizer(fit_kwargs):
    rates = {"encoder": 0.01, "transition": 0.002, "init": 0.0005}
    # a constant rate: the family's default cosine decay would change the rates after step 0
    kw = with_settings(fit_kwargs, learning_rates=rates, **CONSTANT_LR)
    res = pyrossm.fit(num_steps=3, learning_rate=0.001, **kw)
    h = res.history
    assert (h["lr_encoder"] == 0.01).all()
    assert (h["lr_transition"] == 0.002).all()
    assert (h["lr_init"] == 0.0005).all()
    assert (h["lr_emission"] == 0.001).all()
    assert res.config["trainer"]["optimizer"] == {
        "learning_rate": 0.001,
        "learning_rates": rates,
        "weight_decay": 0.01,
        "clip_norm": 10.0,
    }

    _, trainer = make_trainer(learning_rate=0.003, learning_rates={"emission": 0.02})
    lrs = {g["name"]: g["lr"] for g in trainer.optimizer.param_groups}
    assert lrs == {"encoder": 0.003, "emission": 0.02, "transition": 0.003, "init": 0.003}


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_lr_schedule_decays_every_group_from_its_base_rate_to_the_end_factor(fit_kwargs, schedule):
    res = pyrossm.fit(
        num_steps=8,
        learning_rate=0.002,
        **with_settings(fit_kwargs, learning_rates={"transition": 0.01}, lr_schedule=schedule, lr_end_factor=0.25),
    )
    h = res.history
    progress = h["step"].to_numpy() / 8
    shape = 1 - progress if schedule == "linear" else 0.5 * (1 + np.cos(np.pi * progress))
    factor = 0.25 + 0.75 * shape
    np.testing.assert_allclose(h["lr_transition"], 0.01 * factor, rtol=1e-12)
    np.testing.assert_allclose(h["lr_encoder"], 0.002 * factor, rtol=1e-12)
    assert h["lr_encoder"].iloc[0] == 0.002 and np.all(np.diff(h["lr_encoder"]) < 0)
    config = TrainerConfig.from_dict(dict(num_steps=8, lr_schedule=schedule, lr_end_factor=0.25))
    assert config.schedule.factor(0, config.num_steps) == 1.0
    assert config.schedule.factor(8, config.num_steps) == pytest.approx(0.25)
    assert res.config["trainer"]["schedule"]["lr_schedule"] == schedule


def test_lr_warmup_ramps_every_group_linearly_then_follows_the_schedule(fit_kwargs):
    res = pyrossm.fit(
        num_steps=8,
        learning_rate=0.002,
        **with_settings(
            fit_kwargs, learning_rates={"transition": 0.01}, lr_schedule="cosine", lr_end_factor=0.25, lr_warmup_steps=4
        ),
    )
    h = res.history
    step = h["step"].to_numpy()
    warmup = np.minimum(1.0, (step + 1) / 4)
    factor = warmup * (0.25 + 0.75 * 0.5 * (1 + np.cos(np.pi * step / 8)))
    np.testing.assert_allclose(h["lr_transition"], 0.01 * factor, rtol=1e-12)
    np.testing.assert_allclose(h["lr_encoder"], 0.002 * factor, rtol=1e-12)
    assert h["lr_encoder"].iloc[0] == pytest.approx(0.0005)  # a quarter of the rate at step 0
    assert res.config["trainer"]["schedule"]["lr_warmup_steps"] == 4
    constant = TrainerConfig.from_dict(dict(num_steps=10, lr_warmup_steps=5))
    assert [constant.schedule.factor(s, constant.num_steps) for s in (0, 1, 4, 5, 9)] == pytest.approx(
        [0.2, 0.4, 1.0, 1.0, 1.0]
    )


def test_lr_schedule_resumes_where_it_stopped(fit_kwargs, tmp_path, monkeypatch):
    """A run cut at step 6 and resumed follows the same decayed rates as an uncut run."""
    kwargs = dict(num_steps=10, **with_settings(fit_kwargs, lr_schedule="cosine", lr_end_factor=0.1))
    whole = pyrossm.fit(**kwargs)
    kwargs = dict(kwargs, **with_settings(kwargs, checkpoint_every=5))
    fit_until_a_crash(monkeypatch, 6, **kwargs, checkpoint_dir=tmp_path)
    assert safe_torch_load(tmp_path / CHECKPOINT_NAME)["step"] == 5
    resumed = pyrossm.fit(**kwargs, checkpoint_dir=tmp_path, resume=True)
    pd.testing.assert_frame_equal(history_without_seconds(whole.history), history_without_seconds(resumed.history))
    assert_same_state(whole.model, resumed.model)


def test_ema_decay_zero_is_the_plain_run(fit_kwargs, make_ds):
    kwargs = dict(
        num_steps=6, validation_data=make_ds(num_series=3, seed=5), **with_settings(fit_kwargs, validate_every=3)
    )
    plain, ema = pyrossm.fit(**kwargs), pyrossm.fit(**{**kwargs, **with_settings(kwargs, ema_decay=0.0)})
    assert ema.config["trainer"]["selection"]["ema_decay"] == 0.0
    pd.testing.assert_frame_equal(history_without_seconds(plain.history), history_without_seconds(ema.history))
    assert_same_state(plain.model, ema.model)


def test_ema_the_model_ends_with_the_average_of_the_iterates():
    """The returned parameters are the recursive average with the warm-up decay of the docstring."""
    x, mask, cov = tensors()
    model, trainer = make_trainer(num_steps=12, batch_size=None, ema_decay=0.6, learning_rate=0.05)
    iterates, step = [], trainer.optimizer.step

    def recording_step(*args, **kwargs):
        out = step(*args, **kwargs)
        iterates.append([p.detach().clone() for p in trainer.all_params])
        return out

    trainer.optimizer.step = recording_step
    start = [p.detach().clone() for p in trainer.all_params]
    trainer.fit(args_of((x, mask, cov)), N)
    assert len(iterates) == 12
    expected = start
    for t, params in enumerate(iterates):
        d = min(0.6, (1 + t) / (10 + t))
        expected = [d * e + (1 - d) * p for e, p in zip(expected, params)]
    for got, want in zip(trainer.all_params, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(p, q) for p, q in zip(trainer.all_params, iterates[-1]))
    before = [p.detach().clone() for p in trainer.all_params]
    values = trainer.evaluate((x, mask, cov))  # swaps the average in and out again
    assert list(values) == ["elbo"] and np.isfinite(values["elbo"])
    assert all(torch.equal(p, q) for p, q in zip(before, trainer.all_params))


def test_ema_update_records_no_autograd_graph():
    """The average is a plain tensor: updating it must not chain the steps' autograd graphs."""
    _, trainer = make_trainer(num_steps=3, batch_size=None, ema_decay=0.9)
    trainer.fit(args_of(tensors()), N)
    assert all(not e.requires_grad and e.grad_fn is None for e in trainer.ema)


def test_ema_resume_equals_an_uninterrupted_run(fit_kwargs, tmp_path):
    full = pyrossm.fit(num_steps=10, **with_settings(fit_kwargs, ema_decay=0.8, **CONSTANT_LR))
    kwargs = with_settings(fit_kwargs, ema_decay=0.8, checkpoint_every=4, **CONSTANT_LR)
    pyrossm.fit(num_steps=8, checkpoint_dir=tmp_path, **kwargs)
    resumed = pyrossm.fit(num_steps=10, checkpoint_dir=tmp_path, resume=True, **kwargs)
    assert_same_state(full.model, resumed.model)


def test_unknown_learning_rate_group_is_an_error(fit_kwargs):
    with pytest.raises(ValueError, match="decoder"):
        pyrossm.fit(num_steps=3, **with_settings(fit_kwargs, learning_rates={"decoder": 0.01}))
    with pytest.raises(ValueError, match="decoder"):
        make_trainer(learning_rates={"decoder": 0.01})


def test_validate_every_adds_a_val_elbo_column(fit_kwargs, make_ds):
    val = make_ds(num_series=3, seed=5)
    res = pyrossm.fit(num_steps=6, validation_data=val, **with_settings(fit_kwargs, validate_every=2))
    h = res.history
    assert list(h["val_elbo"].notna()) == [False, True, False, True, False, True]
    assert h["val_elbo"].dropna().map(lambda v: v == v and abs(v) < float("inf")).all()
    assert "val_elbo" not in pyrossm.fit(num_steps=2, **fit_kwargs).history.columns


def test_batch_size_larger_than_the_data_uses_every_series(fit_kwargs):
    big = pyrossm.fit(num_steps=4, **{**fit_kwargs, "batch_size": 100})
    every = pyrossm.fit(num_steps=4, **{**fit_kwargs, "batch_size": None})
    assert len(big.history) == 4 and (big.history["batch_size"] == 6).all()
    pd.testing.assert_frame_equal(history_without_seconds(big.history), history_without_seconds(every.history))
    assert_same_state(big.model, every.model)


@pytest.mark.parametrize(
    "kwargs,culprit",
    [
        (dict(num_steps=-1), "num_steps"),
        (dict(batch_size=0), "batch_size"),
        (dict(num_particles=0), "num_particles"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(learning_rates={"encoder": float("nan")}), "encoder"),
        (dict(weight_decay=-1.0), "weight_decay"),
        (dict(clip_norm=0), "clip_norm"),
        (dict(on_nonfinite="ignore"), "on_nonfinite"),
        (dict(validate_every=-2), "validate_every"),
        (dict(lr_schedule="step"), "lr_schedule"),
        (dict(lr_end_factor=0.0), "lr_end_factor"),
        (dict(lr_end_factor=1.5), "lr_end_factor"),
        (dict(lr_warmup_steps=-1), "lr_warmup_steps"),
        (dict(ema_decay=1.0), "ema_decay"),
        (dict(ema_decay=-0.1), "ema_decay"),
    ],
)
def test_invalid_trainer_config(kwargs, culprit):
    with pytest.raises(ValueError, match=culprit):
        TrainerConfig.from_dict(kwargs)


def test_numpy_ints_are_accepted_and_stored_as_ints():
    import json

    config = TrainerConfig.from_dict(
        dict(
            num_steps=np.int64(7),
            batch_size=np.int32(4),
            num_particles=np.int64(2),
            validate_every=np.int64(0),
            annealing=AnnealingSchedule(warmup_steps=np.int64(3)),
        )
    )
    assert [
        type(v)
        for v in (
            config.num_steps,
            config.batching.batch_size,
            config.objective.num_particles,
            config.objective.annealing.warmup_steps,
        )
    ] == [int] * 4
    assert json.loads(json.dumps(config.to_dict()))["num_steps"] == 7
    for bad in (True, np.bool_(True), 2.0):
        with pytest.raises(ValueError, match="num_steps"):
            TrainerConfig(num_steps=bad)


def test_checkpoint_carries_the_cuda_rng_when_cuda_is_in_use(monkeypatch):
    """The GPU generators' states are saved and restored (mocked: CI has no GPU)."""
    _, trainer = make_trainer()
    assert trainer.state_dict()["cuda_rng"] == []  # CUDA not in use: nothing saved
    saved_state = [torch.arange(4, dtype=torch.uint8), torch.arange(4, 8, dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: saved_state)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    state = trainer.state_dict()
    assert state["cuda_rng"] == saved_state
    trainer.load_state_dict(state)
    assert restored == [saved_state]
    # a checkpoint from a machine with another number of GPUs restores only the CPU generator
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    trainer.load_state_dict(state)
    assert len(restored) == 1


def test_piecewise_annealing_through_fit(fit_kwargs, tmp_path):
    points = [[0, 0.2], [2, 1.0], [4, 1.5], [6, 1.0]]
    # the knots replace the ramp
    res = pyrossm.fit(num_steps=8, **with_settings(fit_kwargs, annealing={"kind": "piecewise", "points": points}))
    assert res.history["annealing"].tolist() == pytest.approx([0.2, 0.6, 1.0, 1.25, 1.5, 1.25, 1.0, 1.0])
    res.save(tmp_path / "fit.pyrossm")
    assert pyrossm.load(tmp_path / "fit.pyrossm").config["trainer"]["objective"]["annealing"]["points"] == points
    with pytest.raises(ValueError, match="needs points"):
        pyrossm.fit(num_steps=2, **with_settings(fit_kwargs, annealing="piecewise"))


@pytest.mark.parametrize("ramp", [dict(annealing_end=1.25), dict(annealing_start=0.5), dict(warmup_steps=3)])
def test_former_ramp_arguments_of_fit_are_refused(fit_kwargs, ramp):
    """The ramp's values are the annealing dict's own now: fit takes no separate ramp argument
    (which a full schedule would silently ignore)."""
    with pytest.raises(
        TypeError, match=f"got {list(ramp)[0]}=.*the annealing ramp is a trainer setting, pass trainer="
    ):
        pyrossm.fit(num_steps=1, **ramp, **fit_kwargs)


@pytest.mark.parametrize(
    "annealing",
    [
        {"kind": "linear", "start": 0.5, "end": 1.25, "warmup_steps": 2},
        AnnealingSchedule("linear", start=0.5, end=1.25, warmup_steps=2),
    ],
)
def test_the_annealing_dict_or_schedule_carries_its_ramp(fit_kwargs, annealing):
    res = pyrossm.fit(num_steps=4, **with_settings(fit_kwargs, annealing=annealing))
    assert res.history["annealing"].tolist() == pytest.approx([0.5, 0.875, 1.25, 1.25])
    assert res.config["trainer"]["objective"]["annealing"] == {
        "kind": "linear",
        "start": 0.5,
        "end": 1.25,
        "warmup_steps": 2,
        "points": [],
    }


def test_named_annealing_defaults_ramp_from_0_01_to_1_over_a_third(fit_kwargs):
    res = pyrossm.fit(num_steps=6, **with_settings(fit_kwargs, annealing="linear"))
    assert res.history["annealing"].tolist() == pytest.approx([0.01, 0.505, 1.0, 1.0, 1.0, 1.0])
    # the default: a cosine ramp over a third of the run (warm-up resolved per stage)
    default = pyrossm.fit(num_steps=6, **{**fit_kwargs, "trainer": None})
    assert default.history["annealing"].tolist() == pytest.approx([0.01, 0.505, 1.0, 1.0, 1.0, 1.0])
    assert default.config["trainer"]["objective"]["annealing"]["warmup_steps"] is None


def test_fit_trains_a_fitted_model_in_train_mode(fit_kwargs):
    res = pyrossm.fit(num_steps=1, **fit_kwargs)
    assert not res.model.training  # FitResult leaves it in eval mode
    from pyrossm.models.registry import model_arguments

    modes = []
    for module in res.model.modules():
        module.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    kw = {k: v for k, v in fit_kwargs.items() if k not in model_arguments("dkf") | {"model"}}
    again = pyrossm.fit(model=res.model, num_steps=1, **kw)
    assert modes and all(modes)  # every network call while training
    assert not again.model.training
