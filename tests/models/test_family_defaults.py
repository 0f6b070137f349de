"""A model family's own trainer defaults (``ModelSpec.trainer_defaults``) and ``spec_of``."""

from __future__ import annotations

import pytest

import pyrossm
from pyrossm.api import _trainer_config
from pyrossm.inference import TrainerConfig
from pyrossm.models import DKF, MODELS, register_model, spec_of
from pyrossm.models.registry import DDSSM_TRAINER_DEFAULTS, SSM_TRAINER_DEFAULTS


@pytest.fixture
def family():
    """A throwaway family: the DKF with a recipe of its own (2 steps at 0.02, cosine to 0.5)."""
    register_model("dkf_test_family", DKF, "test", trainer_defaults={"num_steps": 2, "learning_rate": 0.02})
    yield "dkf_test_family"
    del MODELS["dkf_test_family"]


def lrs(res):
    return res.history["lr_emission"].tolist()


def test_a_family_recipe_is_the_default_and_dicts_read_on_top_of_it(family, series_ds, tiny):
    res = pyrossm.fit(model=family, data=series_ds, **tiny)
    assert len(res.history) == 2 and lrs(res) == [0.02, 0.02]
    assert res.config["trainer"]["optimizer"]["learning_rate"] == 0.02
    # a dict changes what it names and keeps the rest of the family's recipe
    res = pyrossm.fit(model=family, data=series_ds, trainer={"num_steps": 3}, **tiny)
    assert len(res.history) == 3 and lrs(res) == [0.02] * 3
    res = pyrossm.fit(model=family, data=series_ds, trainer={"optimizer": {"weight_decay": 0.0}}, **tiny)
    assert len(res.history) == 2 and res.config["trainer"]["optimizer"]["weight_decay"] == 0.0
    # fit's own arguments win
    res = pyrossm.fit(model=family, data=series_ds, learning_rate=0.05, num_steps=1, **tiny)
    assert lrs(res) == [0.05]


def test_a_trainer_config_or_a_preset_is_taken_as_it_is(family, series_ds, tiny):
    res = pyrossm.fit(model=family, data=series_ds, trainer=TrainerConfig(num_steps=1), **tiny)
    assert lrs(res) == [TrainerConfig().optimizer.learning_rate]
    res = pyrossm.fit(model=family, data=series_ds, trainer="dkf-table3", num_steps=1, **tiny)
    assert res.config["trainer"]["optimizer"]["learning_rate"] == TrainerConfig().optimizer.learning_rate
    assert res.config["trainer"]["optimizer"]["learning_rates"]["transition"] == 0.000099
    assert res.config["trainer"]["batching"]["batch_size"] == 512


def test_an_instance_of_a_family_trains_with_the_family_recipe(family, series_ds, tiny):
    base = pyrossm.fit(model="dkf", data=series_ds, num_steps=1, **tiny)
    assert spec_of(base.model).name == "dkf"  # the first family registered with the class
    again = pyrossm.fit(model=base.model, data=series_ds, num_steps=2, progress=False)
    assert again.config["trainer"]["optimizer"]["learning_rate"] == SSM_TRAINER_DEFAULTS["learning_rate"]
    assert again.config["trainer"]["schedule"]["lr_schedule"] == SSM_TRAINER_DEFAULTS["lr_schedule"]


def test_spec_of_a_model_no_family_builds_is_none(series_ds, tiny):
    res = pyrossm.fit(model="dkf", data=series_ds, num_steps=1, **tiny)
    assert spec_of(res.model).name == "dkf"
    assert spec_of(object()) is None


def test_the_ssm_families_default_recipe(series_ds, tiny):
    assert MODELS["dkf"].trainer_defaults == SSM_TRAINER_DEFAULTS
    # the DDSSM: the same recipe over four times the steps, with lambda held at 1.25 over steps
    # 1200-6000
    phase = {
        "kind": "piecewise",
        "points": [[0, 0.01], [600, 1.0], [1000, 1.0], [1200, 1.25], [6000, 1.25], [6600, 1.0]],
    }
    expected = dict(SSM_TRAINER_DEFAULTS, num_steps=12000, annealing=phase)
    assert MODELS["ddssm"].trainer_defaults == expected == DDSSM_TRAINER_DEFAULTS
    options = {k: v for k, v in tiny.items() if k != "transition_layers"}
    res = pyrossm.fit(model="ddssm", data=series_ds, num_steps=4, num_diffusion_steps=8, **options)
    trainer = res.config["trainer"]
    assert trainer["num_steps"] == 4
    assert trainer["optimizer"]["learning_rate"] == SSM_TRAINER_DEFAULTS["learning_rate"]
    assert trainer["schedule"]["lr_end_factor"] == SSM_TRAINER_DEFAULTS["lr_end_factor"]
    # the lambda phase stretched to the run's 4 steps, in order
    knots = [[0, 0.01], [1, 1.0], [2, 1.0], [3, 1.25], [4, 1.25], [5, 1.0]]
    assert trainer["objective"]["annealing"]["points"] == knots
    # a 1000-step run: every knot at 1000 / 12000 of its step, rounded
    thousand = _trainer_config(None, 1000, {}, DDSSM_TRAINER_DEFAULTS).to_dict()["objective"]["annealing"]
    assert thousand["points"] == [[0, 0.01], [50, 1.0], [83, 1.0], [100, 1.25], [500, 1.25], [550, 1.0]]
    # the rate decays by a cosine from 3e-3 towards 3 % of it
    emission = lrs(res)
    assert emission[0] == pytest.approx(3e-3) and emission[-1] < emission[0]
    assert TrainerConfig.from_dict(SSM_TRAINER_DEFAULTS).num_steps == 3000
    assert TrainerConfig.from_dict(DDSSM_TRAINER_DEFAULTS).num_steps == 12000


def test_num_steps_stretches_the_family_recipe_and_a_trainer_dict_reads_on_top(series_ds, tiny):
    """A family recipe with step-named settings (lambda knots) is stretched to ``fit``'s or the
    trainer dict's ``num_steps``, as a preset is; a user's own knots are taken as given."""
    phased = {"num_steps": 100, "annealing": {"kind": "piecewise", "points": [[0, 0.5], [50, 1.0], [100, 1.0]]}}
    register_model("dkf_phased_family", DKF, "test", trainer_defaults=phased)
    try:
        res = pyrossm.fit(model="dkf_phased_family", data=series_ds, num_steps=4, **tiny)
        assert res.config["trainer"]["objective"]["annealing"]["points"] == [[0, 0.5], [2, 1.0], [4, 1.0]]
        res = pyrossm.fit(model="dkf_phased_family", data=series_ds, trainer={"num_steps": 2}, **tiny)
        assert res.config["trainer"]["objective"]["annealing"]["points"] == [[0, 0.5], [1, 1.0], [2, 1.0]]
        own = {"kind": "piecewise", "points": [[0, 0.2], [3, 1.0]]}
        res = pyrossm.fit(model="dkf_phased_family", data=series_ds, num_steps=4, trainer={"annealing": own}, **tiny)
        assert res.config["trainer"]["objective"]["annealing"]["points"] == [[0, 0.2], [3, 1.0]]
        res = pyrossm.fit(model="dkf_phased_family", data=series_ds, **tiny)  # no num_steps: as registered
        assert res.config["trainer"]["objective"]["annealing"]["points"] == phased["annealing"]["points"]
        assert len(res.history) == 100
    finally:
        del MODELS["dkf_phased_family"]


def test_invalid_family_defaults_fail_when_registered():
    with pytest.raises(ValueError, match="unknown trainer setting 'learning_rat'"):
        register_model("bad_family", DKF, trainer_defaults={"learning_rat": 1e-3})
    assert "bad_family" not in MODELS
