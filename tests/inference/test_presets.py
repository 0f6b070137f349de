"""Trainer presets: the paper's Table 3, registering others, and stretching a preset to another
step count (its lambda knots or warm-up, learning-rate warm-up and validation interval scale
with it and stay valid)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

import pyrossm
from pyrossm.inference import TRAINER_PRESETS, AnnealingSchedule, TrainerConfig, presets, register_trainer_preset

#: a recipe with every setting that names a step: a piecewise lambda (a phase at 1.75), a
#: learning-rate warm-up and a validation interval
PHASED = dict(
    num_steps=6000,
    batch_size=64,
    learning_rate=3e-3,
    learning_rates={"transition": 1e-2},
    lr_schedule="cosine",
    lr_end_factor=0.03,
    lr_warmup_steps=300,
    annealing={
        "kind": "piecewise",
        "points": [[0, 0.01], [200, 1.0], [1000, 1.0], [1200, 1.75], [4800, 1.75], [5400, 1.0]],
    },
    validate_every=300,
    keep_best=True,
    validation_metric="log_score",
)
STEPS = PHASED["num_steps"]
BASE = TrainerConfig.from_dict(PHASED)
BASE_KNOTS = [list(p) for p in BASE.objective.annealing.points]
#: a cosine ramp of lambda over 200 steps, a cosine decay of one learning rate
RAMPED = dict(
    num_steps=6000,
    batch_size=64,
    learning_rate=3e-3,
    lr_schedule="cosine",
    lr_end_factor=0.03,
    annealing={"kind": "cosine", "start": 0.01, "end": 1.0, "warmup_steps": 200},
)


@pytest.fixture
def registry(monkeypatch):
    """A copy of the presets, so that registering in a test leaves the real ones alone; with
    ``PHASED`` and ``RAMPED`` registered."""
    monkeypatch.setattr(presets, "TRAINER_PRESETS", dict(presets.TRAINER_PRESETS))
    register_trainer_preset("phased", PHASED)
    register_trainer_preset("ramped", RAMPED)
    return presets.TRAINER_PRESETS


def test_presets_are_listed():
    assert sorted(TRAINER_PRESETS) == ["ddssm-table3", "dkf-table3"]


def test_a_preset_at_its_own_step_count_is_itself(registry):
    for config in (
        TrainerConfig.from_preset("phased"),
        TrainerConfig.from_preset("phased", num_steps=STEPS),
        BASE.stretched(STEPS),
        TrainerConfig.resolve("phased"),
    ):
        assert config.objective.annealing.points == BASE.objective.annealing.points
        assert config.to_dict() == BASE.to_dict()


@pytest.mark.parametrize("steps", [STEPS // 2, 12, 5])
def test_knots_and_warmup_stretch_to_fewer_steps(registry, steps):
    config = TrainerConfig.from_preset("phased", num_steps=steps)
    assert config.num_steps == steps
    assert config.to_dict() == BASE.stretched(steps).to_dict()
    points = config.objective.annealing.points
    assert [v for _, v in points] == [v for _, v in BASE_KNOTS]
    knots = [s for s, _ in points]
    assert all(b > a for a, b in zip(knots, knots[1:]))
    if steps == STEPS // 2:
        assert knots == [s // 2 for s, _ in BASE_KNOTS]
        assert config.schedule.lr_warmup_steps == 150
    assert config.objective.annealing(knots[3]) == pytest.approx(1.75)
    # the preset's dict itself is untouched
    raw = registry["phased"]["annealing"]["points"]
    assert raw == BASE_KNOTS and raw[1][0] == 200 and registry["phased"]["num_steps"] == STEPS


def test_stretching_twice_by_a_round_ratio_is_stretching_once():
    assert BASE.stretched(STEPS // 2).stretched(STEPS // 4).to_dict() == BASE.stretched(STEPS // 4).to_dict()


@pytest.mark.parametrize("steps", [STEPS, 12, 5, 1, 0])
def test_stretched_settings_are_valid_at_any_step_count(steps):
    config = BASE.stretched(steps)
    assert config.num_steps == steps
    assert config.selection.keep_best and config.selection.validate_every >= 1
    assert config.selection.validation_metric == "log_score"
    assert config.schedule.lr_warmup_steps == round(300 * steps / STEPS)
    assert config.optimizer.learning_rates == {"transition": 1e-2} and config.optimizer.learning_rate == 3e-3
    # the stretched settings go through JSON like any others
    assert TrainerConfig.from_dict(json.loads(json.dumps(config.to_dict()))).to_dict() == config.to_dict()


@pytest.mark.parametrize("steps,every", [(None, 300), (STEPS // 2, 150), (STEPS // 3, 100), (200, 10), (12, 1), (0, 1)])
def test_validate_every_stretches_and_stays_at_least_one(registry, steps, every):
    assert TrainerConfig.from_preset("phased", num_steps=steps).selection.validate_every == every


def test_a_cosine_ramp_stretches_its_length_only(registry):
    config = TrainerConfig.from_preset("ramped")
    assert config.objective.annealing == AnnealingSchedule("cosine", start=0.01, end=1.0, warmup_steps=200)
    assert config.selection.validate_every == 0 and not config.selection.keep_best
    # stretched, only the ramp's length changes (validate_every 0 stays 0: no validation)
    short = TrainerConfig.from_preset("ramped", num_steps=3000)
    assert short.objective.annealing.warmup_steps == 100
    assert (
        short.to_dict()
        == config.updated(
            num_steps=3000, annealing=dict(config.to_dict()["objective"]["annealing"], warmup_steps=100)
        ).to_dict()
    )


# ------------------------------------------------------------------ the library's presets
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


def test_fit_stretches_a_preset_to_its_num_steps(registry, series_ds, tiny):
    res = pyrossm.fit(data=series_ds, trainer="ramped", num_steps=30, seed=0, **tiny)
    h = res.history
    assert len(h) == 30 and (h["batch_size"] == 6).all()  # 64 capped at the 6 series
    assert h["annealing"].tolist() == [0.01] + [1.0] * 29  # warm-up 200 * 30 / 6000 = 1
    factor = 0.03 + 0.97 * 0.5 * (1 + np.cos(np.pi * h["step"].to_numpy() / 30))
    np.testing.assert_allclose(h["lr_encoder"], 3e-3 * factor, rtol=1e-12)
    expected = TrainerConfig.from_preset("ramped", num_steps=30).updated(progress=False)
    assert res.config["trainer"] == expected.to_dict()


# ------------------------------------------------------------------ registering
def test_a_registered_preset_is_a_deep_copy_of_its_settings(registry):
    settings = {
        "num_steps": 40,
        "learning_rate": 2e-3,
        "lr_schedule": "linear",
        "lr_warmup_steps": 20,
        "annealing": {"kind": "piecewise", "points": [[0, 0.1], [10, 1.0]]},
    }
    register_trainer_preset("mine", settings)
    settings["annealing"]["points"][1][0] = 30
    config = TrainerConfig.from_preset("mine")
    assert config.num_steps == 40 and config.optimizer.learning_rate == 2e-3
    assert config.objective.annealing.points == ((0, 0.1), (10, 1.0))
    half = TrainerConfig.from_preset("mine", num_steps=20)
    assert half.schedule.lr_warmup_steps == 10 and half.objective.annealing.points == ((0, 0.1), (5, 1.0))
    assert "mine" in registry and "mine" not in TRAINER_PRESETS  # (the fixture's copy)


@pytest.mark.parametrize(
    "settings,error,match",
    [
        ({"keep_best": True}, ValueError, "validate_every"),
        ({"learning_rat": 1e-3}, ValueError, "did you mean 'learning_rate'"),
        ({"num_steps": 10, "lr_restarts": [5]}, ValueError, "'lr_restarts': this setting was removed"),
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
