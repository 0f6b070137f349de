"""Trainer presets: the bimodal benchmark's CPU recipes and the paper's Table 3, and stretching
a preset to another step count (its lambda knots, learning-rate restarts, batch schedule and
validation interval scale with it and stay valid)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

import pyrossm
from pyrossm.inference import TRAINER_PRESETS, AnnealingSchedule, TrainerConfig, presets, register_trainer_preset

DDSSM = "ddssm-bimodal-cpu"
DDSSM_STEPS = 18600  # 6000 + 7 cycles of 1800
BASE = TrainerConfig.from_preset(DDSSM)
BASE_KNOTS = [list(p) for p in BASE.objective.annealing.points]
BASE_RESTARTS = list(BASE.schedule.lr_restarts)


def test_presets_are_listed():
    assert sorted(TRAINER_PRESETS) == ["ddssm-bimodal-cpu", "ddssm-table3", "dkf-bimodal-cpu", "dkf-table3"]


def test_cpu_ddssm_settings_are_the_presets_at_its_own_step_count():
    assert BASE.num_steps == DDSSM_STEPS
    assert BASE.to_dict() == TrainerConfig.from_dict(TRAINER_PRESETS[DDSSM]).to_dict()
    for config in (
        TrainerConfig.from_preset(DDSSM, num_steps=DDSSM_STEPS),
        BASE.stretched(DDSSM_STEPS),
        TrainerConfig.resolve(DDSSM),
    ):
        assert config.objective.annealing.points == BASE.objective.annealing.points
        assert config.schedule.lr_restarts == BASE.schedule.lr_restarts
        assert config.to_dict() == BASE.to_dict()


def test_cpu_ddssm_cycles_restart_the_decay_with_a_lambda_phase():
    """Each cycle restarts the learning rate at lambda 1 and holds lambda at 1.75 from 200 steps
    in to 1200; the run ends at lambda 1 after the last cycle."""
    schedule = BASE.objective.annealing.for_stage(BASE.num_steps)
    assert schedule.kind == "piecewise"
    restarts = BASE.schedule.lr_restarts
    assert restarts == tuple(6000 + 1800 * i for i in range(7))
    assert DDSSM_STEPS - restarts[-1] == 1800
    for start in restarts:
        assert schedule(start) == 1.0
        assert schedule(start + 200) == schedule(start + 1200) == 1.75
        assert schedule(start + 1500) == 1.0
    assert schedule(DDSSM_STEPS) == 1.0
    # the warm-up: 0.01 -> 1 by step 200, 1.75 over steps 1200-4800, back to 1 by 5400
    assert [schedule(s) for s in (0, 100, 200, 1200, 3000, 4800, 5400)] == pytest.approx(
        [0.01, 0.505, 1.0, 1.75, 1.75, 1.75, 1.0]
    )
    factor = BASE.schedule.factor
    assert [factor(s, DDSSM_STEPS) for s in restarts] == [1.0] * len(restarts)
    assert factor(restarts[0] - 1, DDSSM_STEPS) == pytest.approx(0.03, abs=1e-3)
    assert factor(DDSSM_STEPS - 1, DDSSM_STEPS) == pytest.approx(0.03, abs=1e-3)
    assert factor(restarts[0] + 900, DDSSM_STEPS) == pytest.approx(0.03 + 0.97 * 0.5)  # mid-cycle


@pytest.mark.parametrize("steps", [DDSSM_STEPS // 2, 12, 5])
def test_cpu_ddssm_knots_and_restarts_stretch_to_fewer_steps(steps):
    config = TrainerConfig.from_preset(DDSSM, num_steps=steps)
    assert config.num_steps == steps
    assert config.to_dict() == BASE.stretched(steps).to_dict()
    points = config.objective.annealing.points
    assert [v for _, v in points] == [v for _, v in BASE_KNOTS]
    knots = [s for s, _ in points]
    assert all(b > a for a, b in zip(knots, knots[1:]))
    if steps == DDSSM_STEPS // 2:
        assert knots == [s // 2 for s, _ in BASE_KNOTS]
        assert list(config.schedule.lr_restarts) == [s // 2 for s in BASE_RESTARTS]
    assert config.objective.annealing(knots[3]) == pytest.approx(1.75)
    # the stretched restarts are valid for a run of `steps` steps
    assert config.schedule.lr_restarts and all(0 < s < steps for s in config.schedule.lr_restarts)
    # the preset's dict itself is untouched
    raw = TRAINER_PRESETS[DDSSM]["annealing"]["points"]
    assert raw == BASE_KNOTS and raw[1][0] == 200 and TRAINER_PRESETS[DDSSM]["num_steps"] == DDSSM_STEPS


def test_stretching_twice_by_a_round_ratio_is_stretching_once():
    assert (
        BASE.stretched(DDSSM_STEPS // 2).stretched(DDSSM_STEPS // 4).to_dict()
        == BASE.stretched(DDSSM_STEPS // 4).to_dict()
    )


@pytest.mark.parametrize("steps", [DDSSM_STEPS, 12, 5, 1, 0])
def test_cpu_ddssm_trainer_settings_are_valid_at_any_step_count(steps):
    """The preset restarts each cycle from the best validation; a run too short for a restart
    has nothing to restart from, and its settings drop the option rather than fail (and without
    a batch change left, the optimiser reset at it)."""
    config = TrainerConfig.from_preset(DDSSM, num_steps=steps)
    assert config.num_steps == steps
    assert config.selection.restart_from_best == bool(config.schedule.lr_restarts)
    assert config.batching.reset_moments_on_batch_change == bool(config.batching.batch_schedule)
    assert all(0 < s < steps for s in config.schedule.lr_restarts)
    assert all(0 < s < steps for s, _ in config.batching.batch_schedule)
    if steps == DDSSM_STEPS:
        assert config.selection.restart_from_best and config.selection.keep_best
        assert config.selection.validation_metric == "log_score"
    if steps <= 1:
        assert config.schedule.lr_restarts == () and not config.selection.restart_from_best
        assert config.batching.batch_schedule == () and not config.batching.reset_moments_on_batch_change
    assert config.selection.keep_best and config.selection.validate_every >= 1
    assert config.optimizer.clip_per_group and config.optimizer.clip_norm == 10.0
    assert config.optimizer.learning_rates == {"transition": 1e-2} and config.optimizer.learning_rate == 3e-3
    # the stretched settings go through JSON like any others
    assert TrainerConfig.from_dict(json.loads(json.dumps(config.to_dict()))).to_dict() == config.to_dict()


@pytest.mark.parametrize("steps", [None, DDSSM_STEPS // 2, 12, 1])
def test_cpu_ddssm_last_cycle_draws_larger_minibatches(steps):
    """Minibatches of 64 series until the last learning-rate restart, of 256 in the last cycle
    (stretched with the restarts to a shorter run)."""
    n = DDSSM_STEPS if steps is None else steps
    config = TrainerConfig.from_preset(DDSSM, num_steps=steps)
    batching = config.batching
    if not config.schedule.lr_restarts:  # too short a run for cycles: one batch size throughout
        assert batching.batch_schedule == () and batching.size_at(n - 1) == 64
        assert not batching.reset_moments_on_batch_change
        return
    last = config.schedule.lr_restarts[-1]
    assert batching.batch_schedule == ((last, 256),) and batching.reset_moments_on_batch_change
    assert batching.size_at(0) == batching.size_at(last - 1) == 64
    assert batching.size_at(last) == batching.size_at(n - 1) == 256


@pytest.mark.parametrize(
    "steps,every", [(None, 300), (DDSSM_STEPS // 2, 150), (DDSSM_STEPS // 3, 100), (620, 10), (12, 1), (0, 1)]
)
def test_validate_every_stretches_and_stays_at_least_one(steps, every):
    assert TrainerConfig.from_preset(DDSSM, num_steps=steps).selection.validate_every == every


# ------------------------------------------------------------------ the other presets
def test_cpu_dkf_preset():
    config = TrainerConfig.from_preset("dkf-bimodal-cpu")
    assert config.num_steps == 6000 and config.batching.batch_size == 64
    assert config.optimizer.learning_rate == 3e-3 and config.optimizer.learning_rates == {}
    assert config.schedule.lr_schedule == "cosine" and config.schedule.lr_end_factor == 0.03
    assert config.schedule.lr_restarts == () and config.batching.batch_schedule == ()
    assert config.objective.annealing == AnnealingSchedule("cosine", start=0.01, end=1.0, warmup_steps=200)
    assert config.selection.validate_every == 0 and not config.selection.keep_best
    # stretched, only the ramp's length changes (validate_every 0 stays 0: no validation)
    short = TrainerConfig.from_preset("dkf-bimodal-cpu", num_steps=3000)
    assert short.objective.annealing.warmup_steps == 100
    assert (
        short.to_dict()
        == config.updated(
            num_steps=3000, annealing=dict(config.to_dict()["objective"]["annealing"], warmup_steps=100)
        ).to_dict()
    )


@pytest.mark.parametrize(
    "name,batch_size,end,warmup,rates",
    [
        ("ddssm-table3", 128, 1.243, 889, dict(encoder=0.000864, emission=0.000300, transition=0.00941, init=0.000801)),
        ("dkf-table3", 512, 1.245, 867, dict(encoder=0.00887, emission=0.00777, transition=0.000099, init=0.005)),
    ],
)
def test_table3_presets(name, batch_size, end, warmup, rates):
    config = TrainerConfig.from_preset(name)
    assert config.num_steps == 3000 and config.batching.batch_size == batch_size
    assert config.objective.num_particles == 2
    assert config.objective.annealing == AnnealingSchedule("cosine", start=0.01, end=end, warmup_steps=warmup)
    assert config.optimizer.learning_rates == rates
    assert config.schedule.lr_schedule == "constant"
    # a 10-step smoke run ramps lambda over the same share of the run
    assert TrainerConfig.from_preset(name, num_steps=10).objective.annealing.warmup_steps == round(warmup / 300)


@pytest.mark.parametrize("name", sorted(TRAINER_PRESETS))
def test_every_preset_builds_and_round_trips(name):
    config = TrainerConfig.from_preset(name)
    assert TrainerConfig.from_dict(json.loads(json.dumps(config.to_dict()))).to_dict() == config.to_dict()
    assert TrainerConfig.resolve(name).to_dict() == config.to_dict()
    assert TrainerConfig.from_preset(name, num_steps=7).num_steps == 7


def test_fit_stretches_a_preset_to_its_num_steps(series_ds, tiny):
    res = pyrossm.fit(data=series_ds, trainer="dkf-bimodal-cpu", num_steps=30, seed=0, **tiny)
    h = res.history
    assert len(h) == 30 and (h["batch_size"] == 6).all()  # 64 capped at the 6 series
    assert h["annealing"].tolist() == [0.01] + [1.0] * 29  # warm-up 200 * 30 / 6000 = 1
    factor = 0.03 + 0.97 * 0.5 * (1 + np.cos(np.pi * h["step"].to_numpy() / 30))
    np.testing.assert_allclose(h["lr_encoder"], 3e-3 * factor, rtol=1e-12)
    expected = TrainerConfig.from_preset("dkf-bimodal-cpu", num_steps=30).updated(progress=False)
    assert res.config["trainer"] == expected.to_dict()


# ------------------------------------------------------------------ registering
@pytest.fixture
def registry(monkeypatch):
    """A copy of the presets, so that registering in a test leaves the real ones alone."""
    monkeypatch.setattr(presets, "TRAINER_PRESETS", dict(presets.TRAINER_PRESETS))
    return presets.TRAINER_PRESETS


def test_a_registered_preset_is_a_deep_copy_of_its_settings(registry):
    settings = {
        "num_steps": 40,
        "learning_rate": 2e-3,
        "lr_schedule": "linear",
        "lr_restarts": [20],
        "annealing": {"kind": "piecewise", "points": [[0, 0.1], [10, 1.0]]},
    }
    register_trainer_preset("mine", settings)
    settings["annealing"]["points"][1][0] = 30
    config = TrainerConfig.from_preset("mine")
    assert config.num_steps == 40 and config.optimizer.learning_rate == 2e-3
    assert config.objective.annealing.points == ((0, 0.1), (10, 1.0))
    half = TrainerConfig.from_preset("mine", num_steps=20)
    assert half.schedule.lr_restarts == (10,) and half.objective.annealing.points == ((0, 0.1), (5, 1.0))
    assert "mine" in registry and "mine" not in TRAINER_PRESETS  # (the fixture's copy)


@pytest.mark.parametrize(
    "settings,error,match",
    [
        ({"keep_best": True}, ValueError, "validate_every"),
        ({"learning_rat": 1e-3}, ValueError, "did you mean 'learning_rate'"),
        ({"num_steps": 10, "lr_schedule": "cosine", "lr_restarts": [10]}, ValueError, "lr_restarts"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"annealing": {"kind": "piecewise"}}, ValueError, "needs points"),
        ([("num_steps", 10)], TypeError, "must be a dict"),
    ],
)
def test_register_trainer_preset_checks_its_settings(registry, settings, error, match):
    before = copy.deepcopy(registry)
    with pytest.raises(error, match=match):
        register_trainer_preset("bad", settings)
    assert "bad" not in registry and registry == before


def test_register_trainer_preset_needs_a_name(registry):
    for name in ("", None, 3):
        with pytest.raises(TypeError, match="preset name"):
            register_trainer_preset(name, {"num_steps": 10})
