"""The bimodal benchmark's profiles: lambda knots and learning-rate restarts stretched to another
step count stay valid."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bimodal  # noqa: E402
from pyrossm.inference import TrainerConfig  # noqa: E402
from pyrossm.inference.schedules import AnnealingSchedule  # noqa: E402

DDSSM_STEPS = bimodal.STEPS["cpu"]["DDSSM"]


def test_cpu_ddssm_settings_are_the_profiles_at_its_own_step_count():
    profile = bimodal.CPU["DDSSM"]
    for steps in (None, DDSSM_STEPS):
        settings = bimodal.settings_for("cpu", "DDSSM", steps)
        assert settings["annealing"]["points"] == profile["annealing"]["points"]
        assert settings["lr_restarts"] == profile["lr_restarts"]


def test_cpu_ddssm_cycles_restart_the_decay_with_a_lambda_phase():
    """Each cycle restarts the learning rate at lambda 1 and holds lambda at 1.75 from 200 steps
    in to 1200; the run ends at lambda 1 after the last cycle."""
    settings = bimodal.settings_for("cpu", "DDSSM")
    schedule = AnnealingSchedule(**settings["annealing"])
    restarts = settings["lr_restarts"]
    assert restarts and DDSSM_STEPS - restarts[-1] == 1800
    for start in restarts:
        assert schedule(start) == 1.0
        assert schedule(start + 200) == schedule(start + 1200) == 1.75
        assert schedule(start + 1500) == 1.0
    assert schedule(DDSSM_STEPS) == 1.0
    config = TrainerConfig(num_steps=DDSSM_STEPS, lr_schedule="cosine", lr_end_factor=0.03,
                           lr_restarts=restarts)
    assert [config.lr_factor(s) for s in restarts] == [1.0] * len(restarts)
    assert config.lr_factor(restarts[0] - 1) == pytest.approx(0.03, abs=1e-3)


@pytest.mark.parametrize("steps", [DDSSM_STEPS // 2, 12, 5])
def test_cpu_ddssm_knots_and_restarts_stretch_to_fewer_steps(steps):
    base = bimodal.CPU["DDSSM"]["annealing"]["points"]
    settings = bimodal.settings_for("cpu", "DDSSM", steps)
    points = settings["annealing"]["points"]
    assert [v for _, v in points] == [v for _, v in base]
    knots = [s for s, _ in points]
    assert all(b > a for a, b in zip(knots, knots[1:]))
    if steps == DDSSM_STEPS // 2:
        assert knots == [s // 2 for s, _ in base]
        assert settings["lr_restarts"] == [s // 2 for s in bimodal.CPU["DDSSM"]["lr_restarts"]]
    schedule = AnnealingSchedule(**settings["annealing"])
    assert schedule(knots[3]) == pytest.approx(1.75)
    # the stretched restarts are valid for a run of `steps` steps
    config = TrainerConfig(num_steps=steps, lr_schedule="cosine", lr_restarts=settings["lr_restarts"])
    assert all(0 < s < steps for s in config.lr_restarts)
    # the profile's dict itself is untouched
    assert bimodal.CPU["DDSSM"]["annealing"]["points"] is base and base[1][0] == 200


def test_models_without_a_piecewise_lambda_are_unchanged():
    assert bimodal.settings_for("cpu", "DKF+VHP", 10) == bimodal.CPU["DKF+VHP"]
    assert bimodal.settings_for("paper", "DDSSM", 10) == bimodal.PAPER["DDSSM"]



@pytest.mark.parametrize("steps", [DDSSM_STEPS, 12, 5, 1, 0])
def test_cpu_ddssm_trainer_settings_are_valid_at_any_step_count(steps):
    """The profile restarts each cycle from the best validation; a run too short for a restart
    has nothing to restart from, and its settings drop the option rather than fail."""
    settings = bimodal.settings_for("cpu", "DDSSM", steps)
    trainer_fields = {k: v for k, v in settings.items() if k in TrainerConfig.__dataclass_fields__}
    config = TrainerConfig(num_steps=steps, **trainer_fields)
    assert config.restart_from_best == bool(config.lr_restarts)
    if steps == DDSSM_STEPS:
        assert config.restart_from_best and config.keep_best and config.validation_metric == "log_score"
    assert config.clip_per_group and config.clip_norm == 10.0


@pytest.mark.parametrize("steps", [None, DDSSM_STEPS // 2, 12, 1])
def test_cpu_ddssm_last_cycle_draws_larger_minibatches(steps):
    """Minibatches of 64 series until the last learning-rate restart, of 256 in the last cycle
    (stretched with the restarts to a shorter run)."""
    n = DDSSM_STEPS if steps is None else steps
    settings = bimodal.settings_for("cpu", "DDSSM", steps)
    trainer_fields = {k: v for k, v in settings.items() if k in TrainerConfig.__dataclass_fields__}
    config = TrainerConfig(num_steps=n, **trainer_fields)
    if not config.lr_restarts:          # too short a run for cycles: one batch size throughout
        assert config.batch_schedule == () and config.batch_size_at(n - 1) == 64
        assert not config.reset_moments_on_batch_change
        return
    last = config.lr_restarts[-1]
    assert config.batch_schedule == ((last, 256),) and config.reset_moments_on_batch_change
    assert config.batch_size_at(0) == config.batch_size_at(last - 1) == 64
    assert config.batch_size_at(last) == config.batch_size_at(n - 1) == 256
