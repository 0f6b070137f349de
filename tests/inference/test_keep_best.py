"""``keep_best``: the fit ends with the parameters of its best validation."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

import pyrossm
from pyrossm.inference import Trainer, TrainerConfig
from tests.inference.test_trainer import (
    CONSTANT_LR,
    RAMP,
    N,
    args_of,
    assert_same_state,
    history_without_seconds,
    make_trainer,
    tensors,
)


@pytest.fixture
def fit_kwargs(series_ds, tiny):
    return dict(data=series_ds, seed=3, batch_size=4, **tiny)


def scripted_validation(trainer, values):
    """Replaces ``trainer.evaluate`` by one that returns ``{"elbo": v}`` for the ``values`` in
    turn and records, at each call, the parameters a validation sees (the averaged ones with
    ``ema_decay``)."""
    seen, values = [], iter(values)

    def evaluate(batch):
        source = trainer.ema if trainer.ema is not None else trainer.all_params
        seen.append([p.detach().clone() for p in source])
        return {"elbo": next(values)}

    trainer.evaluate = evaluate
    return seen


@pytest.mark.parametrize("ema_decay", [None, 0.5])
def test_the_model_ends_with_the_parameters_of_the_best_validation(ema_decay):
    data = tensors()
    model, trainer = make_trainer(
        num_steps=12, batch_size=None, learning_rate=0.05, validate_every=3, keep_best=True, ema_decay=ema_decay
    )
    # validations after steps 2, 5, 8 and 11, the last
    seen = scripted_validation(trainer, [-5.0, -1.0, -3.0, -2.0])
    history = trainer.fit(args_of(data), N, val_batch=data)
    assert list(history["val_elbo"].dropna().index) == [2, 5, 8, 11]
    assert history["val_elbo"].dropna().tolist() == [-5.0, -1.0, -3.0, -2.0]
    assert trainer.best["step"] == 5 and trainer.best["values"]["val_elbo"] == -1.0
    for got, want in zip(trainer.all_params, seen[1]):
        assert torch.equal(got, want)
    assert any(not torch.equal(p, q) for p, q in zip(seen[1], seen[3]))


def test_a_non_finite_validation_is_never_the_best():
    data = tensors()
    _, trainer = make_trainer(num_steps=8, batch_size=None, learning_rate=0.05, validate_every=2, keep_best=True)
    seen = scripted_validation(trainer, [math.nan, -4.0, math.inf, -4.5])
    trainer.fit(args_of(data), N, val_batch=data)
    assert trainer.best["step"] == 3 and trainer.best["values"]["val_elbo"] == -4.0
    assert all(torch.equal(p, q) for p, q in zip(trainer.all_params, seen[1]))


def test_without_a_finite_validation_the_model_ends_with_its_last_step():
    data = tensors()
    _, trainer = make_trainer(num_steps=4, batch_size=None, learning_rate=0.05, validate_every=2, keep_best=True)
    seen = scripted_validation(trainer, [math.nan, math.nan])
    trainer.fit(args_of(data), N, val_batch=data)
    assert trainer.best is None
    assert all(torch.equal(p, q) for p, q in zip(trainer.all_params, seen[-1]))


def test_fit_records_the_kept_step_which_is_the_argmax_of_val_elbo(fit_kwargs, make_ds, tmp_path):
    kwargs = dict(fit_kwargs, learning_rate=0.05, validation_data=make_ds(num_series=4, seed=5))
    settings = dict(annealing=RAMP, validate_every=4)
    res = pyrossm.fit(num_steps=18, trainer=dict(settings, keep_best=True), **kwargs)
    val = res.history["val_elbo"].dropna()
    assert list(val.index) == [3, 7, 11, 15]  # the last step, 17, only when 4 divides 18
    assert res.config["kept"] == {"step": int(val.idxmax()), "metric": "elbo", "val_elbo": pytest.approx(val.max())}
    assert res.config["trainer"]["selection"]["keep_best"] is True
    assert f"kept step {res.config['kept']['step']}" in repr(res)
    # a plain run has the same history and ends with other parameters (those of step 17)
    plain = pyrossm.fit(num_steps=18, trainer=settings, **kwargs)
    assert "kept" not in plain.config and "kept" not in repr(plain)
    pd.testing.assert_frame_equal(history_without_seconds(plain.history), history_without_seconds(res.history))
    assert any(
        not torch.equal(p, q) for p, q in zip(plain.model.state_dict().values(), res.model.state_dict().values())
    )
    # the kept parameters and their step survive save/load
    res.save(tmp_path / "fit.pyrossm")
    loaded = pyrossm.load(tmp_path / "fit.pyrossm")
    assert loaded.config["kept"] == res.config["kept"]
    assert_same_state(loaded.model, res.model)


def test_keep_best_resume_equals_an_uninterrupted_run(fit_kwargs, make_ds, tmp_path):
    kwargs = dict(
        fit_kwargs,
        learning_rate=0.05,
        validation_data=make_ds(num_series=4, seed=5),
        # a constant rate: the run cut at step 10 must be a prefix of the full one (see CONSTANT_LR)
        trainer=dict(annealing=RAMP, validate_every=3, keep_best=True, checkpoint_every=5, **CONSTANT_LR),
    )
    full = pyrossm.fit(num_steps=20, checkpoint_dir=tmp_path / "full", **kwargs)
    pyrossm.fit(num_steps=10, checkpoint_dir=tmp_path / "cut", **kwargs)
    resumed = pyrossm.fit(num_steps=20, checkpoint_dir=tmp_path / "cut", resume=True, **kwargs)
    assert resumed.config["kept"] == full.config["kept"]
    assert_same_state(full.model, resumed.model)


def test_keep_best_needs_validation():
    with pytest.raises(ValueError, match="validate_every"):
        TrainerConfig.from_dict({"keep_best": True})
    with pytest.raises(TypeError, match="keep_best"):
        TrainerConfig.from_dict({"keep_best": "yes", "validate_every": 2})
    data = tensors()
    _, trainer = make_trainer(num_steps=2, validate_every=1, keep_best=True)
    # (the message named the former val_args argument; the trainer now takes val_batch)
    with pytest.raises(ValueError, match="keep_best=True needs validation data"):
        trainer.fit(args_of(data), N)
    assert trainer.step == 0


def test_fit_keep_best_without_validation_data_fails_before_training(fit_kwargs, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(Trainer, "fit", no_training)
    with pytest.raises(ValueError, match="validation_data"):
        pyrossm.fit(num_steps=3, trainer={"keep_best": True, "validate_every": 1}, **fit_kwargs)
    with pytest.raises(ValueError, match="validate_every"):
        pyrossm.fit(num_steps=3, trainer={"keep_best": True}, validation_data=fit_kwargs["data"], **fit_kwargs)
