"""Minibatch sizes that change during training (``batch_schedule``)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

import pyrossm
from pyrossm.inference import TrainerConfig
from tests.inference.test_trainer import (
    CONSTANT_LR,
    RAMP,
    args_of,
    assert_same_state,
    history_without_seconds,
    make_trainer,
)


def test_batch_size_at_follows_the_schedule():
    cfg = TrainerConfig.from_dict(dict(num_steps=10, batch_size=4, batch_schedule=[[3, 5], [6, 2]]))
    assert [cfg.batching.size_at(s) for s in range(10)] == [4, 4, 4, 5, 5, 5, 2, 2, 2, 2]
    assert (
        TrainerConfig.from_dict(dict(num_steps=10, batch_size=None, batch_schedule=[[5, 3]])).batching.size_at(4)
        is None
    )
    assert TrainerConfig.from_dict(dict(num_steps=10, batch_size=7)).batching.size_at(9) == 7


def test_batch_schedule_survives_json():
    cfg = TrainerConfig.from_dict(dict(num_steps=10, batch_schedule=((3, 5), (6, 2))))
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["batching"]["batch_schedule"] == [[3, 5], [6, 2]]
    assert TrainerConfig.from_dict(d).batching.batch_schedule == cfg.batching.batch_schedule == ((3, 5), (6, 2))


@pytest.mark.parametrize(
    "schedule, match",
    [
        ("[[3, 5]]", "batch_schedule must be a list"),
        ({3: 5}, "batch_schedule must be a list"),
        (5, "batch_schedule must be a list"),
        ([[3, 5, 1]], r"batch_schedule\[0\] must be a \[step, batch_size\] pair"),
        ([3], r"batch_schedule\[0\] must be a \[step, batch_size\] pair"),
        ([[0, 5]], "strictly increasing in \\(0, num_steps=10\\)"),
        ([[10, 5]], "strictly increasing in \\(0, num_steps=10\\)"),
        ([[5, 4], [5, 8]], r"got 5 at batch_schedule\[1\]"),
        ([[6, 4], [3, 8]], r"got 3 at batch_schedule\[1\]"),
        ([[3, 0]], r"batch_schedule\[0\]\[1\] \(batch_size\) must be a positive int"),
        ([[3, 2.5]], r"batch_schedule\[0\]\[1\] \(batch_size\) must be a positive int"),
        ([[1.5, 2]], r"batch_schedule\[0\]\[0\] \(step\) must be a non-negative int"),
    ],
)
def test_bad_batch_schedules_are_rejected(schedule, match):
    with pytest.raises(ValueError, match=match):
        TrainerConfig.from_dict(dict(num_steps=10, batch_schedule=schedule))


def test_the_trainer_draws_minibatches_of_the_scheduled_sizes(series_ds):
    x = torch.tensor(series_ds["x"].values, dtype=torch.float32)[..., None]  # (6, 8, 1)
    data = (x, torch.ones_like(x, dtype=torch.bool), torch.zeros(6, 8, 0))
    sizes = []
    make_batch = args_of(data)

    def recording(idx):
        sizes.append(len(idx))
        assert len(set(idx.tolist())) == len(idx)  # series drawn without replacement
        return make_batch(idx)

    _, trainer = make_trainer(num_steps=7, batch_size=2, batch_schedule=[[2, 4], [4, 50]])
    history = trainer.fit(recording, 6)
    assert sizes == [2, 2, 4, 4, 6, 6, 6]  # 50 is capped at the 6 series there are
    assert list(history["batch_size"]) == sizes


def test_fit_with_a_batch_schedule_resumes_bit_for_bit(series_ds, tiny, tmp_path):
    # a constant rate: the run cut at step 10 must be a prefix of the full one (see CONSTANT_LR)
    settings = dict(annealing=RAMP, batch_schedule=[[4, 3], [8, 5]], checkpoint_every=5, **CONSTANT_LR)
    kw = dict(data=series_ds, seed=3, batch_size=2, trainer=settings, **tiny)
    full = pyrossm.fit(num_steps=14, checkpoint_dir=tmp_path / "full", **kw)
    assert list(full.history["batch_size"]) == [2] * 4 + [3] * 4 + [5] * 6
    assert full.config["trainer"]["batching"]["batch_schedule"] == [[4, 3], [8, 5]]
    pyrossm.fit(num_steps=10, checkpoint_dir=tmp_path / "cut", **kw)  # interrupted at step 10
    resumed = pyrossm.fit(num_steps=14, checkpoint_dir=tmp_path / "cut", resume=True, **kw)
    assert_same_state(full.model, resumed.model)
    pd.testing.assert_frame_equal(history_without_seconds(full.history), history_without_seconds(resumed.history))
    # a schedule changes the training: the same run with batch_size 2 throughout differs
    plain = pyrossm.fit(num_steps=14, **{**kw, "trainer": {"annealing": RAMP, **CONSTANT_LR}})
    assert (plain.history["batch_size"] == 2).all()
    assert not plain.history["loss"].equals(full.history["loss"])


def test_saved_fit_keeps_its_batch_schedule(series_ds, tiny, tmp_path):
    res = pyrossm.fit(data=series_ds, num_steps=4, batch_size=2, trainer={"batch_schedule": [[2, 4]]}, seed=0, **tiny)
    path = res.save(tmp_path / "fit.pyrossm")
    loaded = pyrossm.load(path)
    assert loaded.config["trainer"]["batching"]["batch_schedule"] == [[2, 4]]
    assert TrainerConfig.from_dict(loaded.config["trainer"]).batching.size_at(3) == 4


# ------------------------------------------------------------------ reset_moments_on_batch_change
def _fitted_trainer(series_ds, **settings):
    x = torch.tensor(series_ds["x"].values, dtype=torch.float32)[..., None]  # (6, 8, 1)
    data = (x, torch.ones_like(x, dtype=torch.bool), torch.zeros(6, 8, 0))
    _, trainer = make_trainer(num_steps=7, batch_size=2, batch_schedule=[[4, 4]], **settings)
    return trainer, trainer.fit(args_of(data), 6)


def test_reset_moments_restarts_the_optimiser_at_the_batch_change(series_ds):
    kept, kept_history = _fitted_trainer(series_ds)
    reset, reset_history = _fitted_trainer(series_ds, reset_moments_on_batch_change=True)
    for trainer, steps in [(kept, 7), (reset, 3)]:  # AdamW's own count: 7, or 4, 5, 6
        counts = {float(state["step"]) for state in trainer.optimizer.state.values()}
        assert counts == {steps}
    # the same first four steps, then different updates: the moments started from zero at step 4
    pd.testing.assert_series_equal(kept_history["loss"][:5], reset_history["loss"][:5])
    assert not kept_history["loss"][5:].equals(reset_history["loss"][5:])


def test_reset_moments_resumes_bit_for_bit_and_survives_json(series_ds, tiny, tmp_path):
    # a constant rate: the run cut at step 10 must be a prefix of the full one (see CONSTANT_LR)
    settings = dict(
        annealing=RAMP, batch_schedule=[[7, 4]], reset_moments_on_batch_change=True, checkpoint_every=5, **CONSTANT_LR
    )
    kw = dict(data=series_ds, seed=3, batch_size=2, trainer=settings, **tiny)
    full = pyrossm.fit(num_steps=14, checkpoint_dir=tmp_path / "full", **kw)
    assert full.config["trainer"]["batching"]["reset_moments_on_batch_change"] is True
    pyrossm.fit(num_steps=10, checkpoint_dir=tmp_path / "cut", **kw)  # reset at 7, stopped at 10
    resumed = pyrossm.fit(num_steps=14, checkpoint_dir=tmp_path / "cut", resume=True, **kw)
    assert_same_state(full.model, resumed.model)
    pd.testing.assert_frame_equal(history_without_seconds(full.history), history_without_seconds(resumed.history))


def test_reset_moments_needs_a_bool_and_a_schedule():
    with pytest.raises(ValueError, match="reset_moments_on_batch_change=True .* needs a non-empty batch_schedule"):
        TrainerConfig.from_dict(dict(num_steps=10, reset_moments_on_batch_change=True))
    with pytest.raises(TypeError, match="reset_moments_on_batch_change must be a bool, got int"):
        TrainerConfig.from_dict(dict(num_steps=10, batch_schedule=[[3, 4]], reset_moments_on_batch_change=1))
