"""``restart_from_best``: a warm-restart cycle that did not improve is discarded."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

import pyrossm
from pyrossm.inference import TrainerConfig
from tests.inference.test_trainer import RAMP, N, args_of, history_without_seconds, make_trainer, tensors

# validations after steps 1, 3, ..., 11; restarts at 4 and 8
CYCLES = dict(
    num_steps=12,
    batch_size=None,
    learning_rate=0.05,
    validate_every=2,
    keep_best=True,
    lr_schedule="cosine",
    lr_restarts=[4, 8],
)


def scripted(trainer, by_step):
    """``trainer.evaluate`` returns ``{"elbo": by_step[step]}``; returns the parameters each
    validation saw."""
    seen = {}

    def evaluate(batch):
        seen[trainer.step] = [p.detach().clone() for p in trainer.all_params]
        return {"elbo": by_step[trainer.step]}

    trainer.evaluate = evaluate
    return seen


def recording(make_batch, trainer):
    """Wraps ``make_batch`` to record the parameters each training step starts from."""
    starts = {}

    def wrapped(idx):
        starts[trainer.step] = [p.detach().clone() for p in trainer.all_params]
        return make_batch(idx)

    return wrapped, starts


def test_a_cycle_that_did_not_improve_is_discarded():
    data = tensors()
    _, trainer = make_trainer(restart_from_best=True, **CYCLES)
    # the first cycle's end (step 3) is the best; the second cycle (steps 5, 7) does worse
    seen = scripted(trainer, {1: -5.0, 3: -1.0, 5: -3.0, 7: -4.0, 9: -2.0, 11: -6.0})
    make_batch, starts = recording(args_of(data), trainer)
    history = trainer.fit(make_batch, N, val_batch=data)
    # step 4 goes on from step 3 (the best, just before it); step 8 returns to step 3's parameters
    assert history["restart_from"].dropna().to_dict() == {8: 3}
    assert all(torch.equal(p, q) for p, q in zip(starts[4], seen[3]))
    assert all(torch.equal(p, q) for p, q in zip(starts[8], seen[3]))
    assert any(not torch.equal(p, q) for p, q in zip(starts[8], seen[7]))
    assert trainer.best["step"] == 3


def test_with_every_cycle_an_improvement_nothing_changes():
    data = tensors()
    values = {1: -6.0, 3: -5.0, 5: -4.0, 7: -3.0, 9: -2.0, 11: -1.0}
    _, plain = make_trainer(**CYCLES)
    scripted(plain, values)
    base = plain.fit(args_of(data), N, val_batch=data)
    _, trainer = make_trainer(restart_from_best=True, **CYCLES)
    scripted(trainer, values)
    history = trainer.fit(args_of(data), N, val_batch=data)
    assert "restart_from" not in history.columns
    pd.testing.assert_frame_equal(history_without_seconds(history), history_without_seconds(base))
    assert all(torch.equal(p, q) for p, q in zip(plain.all_params, trainer.all_params))


def test_with_ema_the_average_restarts_from_the_best_too():
    data = tensors()
    _, trainer = make_trainer(restart_from_best=True, ema_decay=0.5, **CYCLES)
    scripted(trainer, {1: -1.0, 3: -5.0, 5: -3.0, 7: -4.0, 9: -2.0, 11: -6.0})
    averages = {}

    def make_batch(idx):
        averages[trainer.step] = [e.clone() for e in trainer.ema]
        return args_of(data)(idx)

    history = trainer.fit(make_batch, N, val_batch=data)
    assert history["restart_from"].dropna().to_dict() == {4: 1, 8: 1}
    # the best parameters are the average validated at step 1; both restarts begin from it
    for step in (4, 8):
        assert all(torch.equal(e, b) for e, b in zip(averages[step], averages[2]))


def test_resume_across_a_discarding_restart_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    data = tensors()
    values = {1: -5.0, 3: -1.0, 5: -3.0, 7: -4.0, 9: -2.0, 11: -6.0}
    _, full = make_trainer(restart_from_best=True, **CYCLES)
    scripted(full, values)
    full_history = full.fit(args_of(data), N, val_batch=data)

    _, cut = make_trainer(restart_from_best=True, checkpoint_every=4, **CYCLES)
    scripted(cut, values)

    def crash_at_10(idx):
        if cut.step == 10:
            raise KeyboardInterrupt
        return args_of(data)(idx)

    with pytest.raises(KeyboardInterrupt):
        cut.fit(crash_at_10, N, val_batch=data, checkpoint_dir=tmp_path)
    _, resumed = make_trainer(seed=1, restart_from_best=True, checkpoint_every=4, **CYCLES)
    scripted(resumed, values)
    history = resumed.fit(args_of(data), N, val_batch=data, checkpoint_dir=tmp_path, resume=True)
    assert history["restart_from"].dropna().to_dict() == {8: 3}
    pd.testing.assert_frame_equal(history_without_seconds(history), history_without_seconds(full_history))
    assert all(torch.equal(p, q) for p, q in zip(full.all_params, resumed.all_params))


def test_restart_from_best_needs_keep_best_and_restarts():
    with pytest.raises(ValueError, match="keep_best"):
        TrainerConfig.from_dict(dict(restart_from_best=True, lr_schedule="cosine", lr_restarts=[5], num_steps=10))
    with pytest.raises(ValueError, match="lr_restarts"):
        TrainerConfig.from_dict(dict(restart_from_best=True, keep_best=True, validate_every=2, num_steps=10))
    with pytest.raises(TypeError, match="restart_from_best"):
        TrainerConfig.from_dict(dict(restart_from_best=1, keep_best=True, validate_every=2))


def test_fit_passes_restart_from_best_and_discards_by_the_validation(series_ds, make_ds, tiny):
    res = pyrossm.fit(
        data=series_ds,
        validation_data=make_ds(num_series=4, seed=5),
        seed=3,
        batch_size=4,
        num_steps=24,
        learning_rate=0.05,
        trainer=dict(
            annealing=RAMP,
            validate_every=2,
            keep_best=True,
            restart_from_best=True,
            lr_schedule="cosine",
            lr_restarts=[6, 12, 18],
        ),
        **tiny,
    )
    assert res.config["trainer"]["selection"]["restart_from_best"] is True
    val = res.history["val_elbo"].dropna()
    returned = res.history["restart_from"].dropna() if "restart_from" in res.history else pd.Series(dtype=float)
    assert not returned.empty  # (with this seed, at least one cycle is discarded)
    for restart in (6, 12, 18):
        best = int(val[val.index < restart].idxmax())  # (no step is returned to after it)
        if best == restart - 1:
            assert restart not in returned.index
        else:
            assert returned[restart] == best
    assert res.config["kept"]["step"] == int(val.idxmax())
