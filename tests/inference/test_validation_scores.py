"""Validation scores besides the ELBO (``val_scores``) and ``keep_best`` by one of them."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from pyrossm.inference import TrainerConfig
from tests.inference.test_trainer import N, args_of, history_without_seconds, make_trainer, tensors


def test_scores_are_recorded_without_touching_the_training_stream():
    data = tensors()
    _, plain = make_trainer(num_steps=9, batch_size=3, learning_rate=0.05, validate_every=3)
    base = plain.fit(args_of(data), N, val_batch=data)
    _, scored = make_trainer(num_steps=9, batch_size=3, learning_rate=0.05, validate_every=3)
    calls = []

    def noisy():  # draws random numbers: with common random numbers the same at every call
        calls.append(torch.randn(3))
        return float(calls[-1].sum())

    history = scored.fit(args_of(data), N, val_batch=data, val_scores={"noisy": noisy})
    assert len(calls) == 3 and all(torch.equal(c, calls[0]) for c in calls)
    assert list(history["val_noisy"].dropna().index) == [2, 5, 8]
    assert history["val_noisy"].dropna().tolist() == [float(calls[0].sum())] * 3
    # the training steps and the validation ELBOs are bit-identical to a run without the score
    pd.testing.assert_frame_equal(
        history_without_seconds(history).drop(columns=["val_noisy"]), history_without_seconds(base)
    )
    for p, q in zip(plain.all_params, scored.all_params):
        assert torch.equal(p, q)


@pytest.mark.parametrize("ema_decay", [None, 0.5])
def test_keep_best_maximises_the_named_score(ema_decay):
    data = tensors()
    _, trainer = make_trainer(
        num_steps=12,
        batch_size=None,
        learning_rate=0.05,
        validate_every=3,
        keep_best=True,
        validation_metric="custom",
        ema_decay=ema_decay,
    )
    values, seen = iter([1.0, 4.0, math.nan, 2.0]), []

    def custom():  # the model's parameters are the averaged ones with ema_decay, as for the ELBO
        seen.append([p.detach().clone() for p in trainer.all_params])
        return next(values)

    history = trainer.fit(args_of(data), N, val_batch=data, val_scores={"custom": custom})
    # the ELBO is still computed; the best is by the custom score (step 5), whatever the ELBO says
    assert history["val_elbo"].notna().sum() == 4
    assert trainer.best["step"] == 5
    assert trainer.best["values"]["val_custom"] == 4.0
    assert trainer.best["values"]["val_elbo"] == history["val_elbo"][5]
    for got, want in zip(trainer.all_params, seen[1]):
        assert torch.equal(got, want)
    if ema_decay:  # each score swapped the average back: it is what the last score saw
        assert all(torch.equal(p, e) for p, e in zip(trainer.ema, seen[-1]))


def test_an_unknown_validation_metric_is_refused_before_training():
    data = tensors()
    _, trainer = make_trainer(num_steps=3, validate_every=1, keep_best=True, validation_metric="crps")
    # the names are the stage objective's validation values ("elbo") and the scores given
    with pytest.raises(
        ValueError,
        match=r"'crps' is not among the validation values of stage 'svi': "
        r"\['elbo', 'other'\]",
    ):
        trainer.fit(args_of(data), N, val_batch=data, val_scores={"other": lambda: 0.0})
    assert trainer.step == 0
    with pytest.raises(TypeError, match="validation_metric"):
        TrainerConfig.from_dict({"validation_metric": 3})
    with pytest.raises(TypeError, match="validation_metric"):
        TrainerConfig.from_dict({"validation_metric": ""})


def test_a_checkpoint_from_before_scores_loads_its_best_elbo(tmp_path):
    data = tensors()
    _, trainer = make_trainer(num_steps=4, batch_size=None, validate_every=2, keep_best=True, checkpoint_every=4)
    trainer.fit(args_of(data), N, val_batch=data, checkpoint_dir=tmp_path)
    state = trainer.state_dict()
    best = state["best"]
    state["best"] = {"step": best["step"], "val_elbo": best["values"]["val_elbo"], "params": best["params"]}
    _, other = make_trainer(num_steps=4, batch_size=None, validate_every=2, keep_best=True)
    other.load_state_dict(state)
    assert other.best["step"] == trainer.best["step"]
    assert other.best["values"] == trainer.best["values"]
