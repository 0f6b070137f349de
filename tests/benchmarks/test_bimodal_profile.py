"""The bimodal benchmark's profiles: lambda knots stretched to another step count stay valid."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bimodal  # noqa: E402
from pyrossm.inference.schedules import AnnealingSchedule  # noqa: E402


def test_cpu_ddssm_knots_are_the_profiles_at_its_own_step_count():
    points = bimodal.CPU["DDSSM"]["annealing"]["points"]
    assert bimodal.settings_for("cpu", "DDSSM")["annealing"]["points"] == points
    assert bimodal.settings_for("cpu", "DDSSM", bimodal.STEPS["cpu"])["annealing"]["points"] == points


@pytest.mark.parametrize("steps", [3000, 12, 5])
def test_cpu_ddssm_knots_stretch_to_fewer_steps(steps):
    base = bimodal.CPU["DDSSM"]["annealing"]["points"]
    points = bimodal.settings_for("cpu", "DDSSM", steps)["annealing"]["points"]
    assert [v for _, v in points] == [v for _, v in base]
    knots = [s for s, _ in points]
    assert all(b > a for a, b in zip(knots, knots[1:]))
    if steps == 3000:
        assert knots == [s // 2 for s, _ in base]
    schedule = AnnealingSchedule(**bimodal.settings_for("cpu", "DDSSM", steps)["annealing"])
    assert schedule(knots[3]) == pytest.approx(1.75)
    # the profile's dict itself is untouched
    assert bimodal.CPU["DDSSM"]["annealing"]["points"] is base and base[1][0] == 200


def test_models_without_a_piecewise_lambda_are_unchanged():
    assert bimodal.settings_for("cpu", "DKF+VHP", 10) == bimodal.CPU["DKF+VHP"]
    assert bimodal.settings_for("paper", "DDSSM", 10) == bimodal.PAPER["DDSSM"]
