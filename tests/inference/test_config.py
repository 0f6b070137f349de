"""TrainerConfig: nested sections, flat / nested / mixed dicts, JSON round trips, ``updated``,
``resolve``, presets by name, and the checks that span sections."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest
import torch

from pyrossm.inference import (
    AnnealedELBO,
    AnnealingSchedule,
    BatchingSettings,
    CheckpointSettings,
    ObjectiveSettings,
    OptimizerSettings,
    ScheduleSettings,
    SelectionSettings,
    Trainer,
    TrainerConfig,
)
from pyrossm.inference.config import REMOVED_SETTINGS, SECTION_OF, SECTIONS, TOP_LEVEL

#: every setting away from its default, by its flat name
FLAT = dict(
    num_steps=40,
    seed=7,
    progress=False,
    learning_rate=2e-3,
    learning_rates={"transition": 1e-2},
    weight_decay=0.0,
    clip_norm=None,
    lr_schedule="cosine",
    lr_end_factor=0.05,
    lr_warmup_steps=3,
    batch_size=None,
    annealing={"kind": "piecewise", "points": [[0, 0.01], [5, 1.0], [12, 1.5], [20, 1.0]]},
    num_particles=2,
    validate_every=5,
    validation_metric="log_score",
    keep_best=True,
    ema_decay=0.9,
    log_score_samples=32,
    holdout_last_step=True,
    checkpoint_every=10,
    on_nonfinite="restore",
)
NESTED = {
    "num_steps": 40,
    "seed": 7,
    "progress": False,
    "optimizer": {
        "learning_rate": 2e-3,
        "learning_rates": {"transition": 1e-2},
        "weight_decay": 0.0,
        "clip_norm": None,
    },
    "schedule": {"lr_schedule": "cosine", "lr_end_factor": 0.05, "lr_warmup_steps": 3},
    "batching": {"batch_size": None},
    "objective": {
        "annealing": {
            "kind": "piecewise",
            "start": 0.01,
            "end": 1.0,
            "warmup_steps": None,
            "points": [[0, 0.01], [5, 1.0], [12, 1.5], [20, 1.0]],
        },
        "num_particles": 2,
    },
    "selection": {
        "validate_every": 5,
        "validation_metric": "log_score",
        "keep_best": True,
        "ema_decay": 0.9,
        "log_score_samples": 32,
        "holdout_last_step": True,
    },
    "checkpointing": {"checkpoint_every": 10, "on_nonfinite": "restore"},
}


def round_trip(config):
    return TrainerConfig.from_dict(json.loads(json.dumps(config.to_dict())))


def test_every_setting_has_one_section():
    names = [f.name for cls in SECTIONS.values() for f in fields(cls)]
    assert len(names) == len(set(names)) == len(SECTION_OF)
    assert not set(names) & (set(TOP_LEVEL) | set(SECTIONS))
    assert set(FLAT) == set(names) | set(TOP_LEVEL)  # (FLAT names every setting)


@pytest.mark.parametrize(
    "config",
    [
        TrainerConfig(),
        TrainerConfig.from_dict(FLAT),
        TrainerConfig(
            num_steps=9,
            optimizer=OptimizerSettings(learning_rate=0.5),
            objective=ObjectiveSettings(annealing=AnnealingSchedule("linear", 0.2, 1.3, 4)),
        ),
        TrainerConfig.from_preset("ddssm-table3", num_steps=100),
    ],
    ids=["defaults", "everything", "objects", "preset"],
)
def test_round_trip_through_json(config):
    again = round_trip(config)
    assert again.to_dict() == config.to_dict()
    assert again == config
    assert TrainerConfig.from_dict(config.flat()).to_dict() == config.to_dict()


def test_nested_dict_is_what_to_dict_writes():
    config = TrainerConfig.from_dict(FLAT)
    assert config.to_dict() == NESTED
    assert config.flat() == {**FLAT, "annealing": NESTED["objective"]["annealing"]}
    assert config.batching.batch_size is None and config.optimizer.clip_norm is None
    assert config.objective.annealing(16) == pytest.approx(1.25)


def test_flat_and_nested_dicts_give_the_same_config():
    flat, nested = TrainerConfig.from_dict(FLAT), TrainerConfig.from_dict(NESTED)
    assert flat == nested and flat.to_dict() == nested.to_dict()
    # sections given as objects or dicts to the constructor give it too
    objects = TrainerConfig(
        num_steps=40, seed=7, progress=False, **{name: cls(**NESTED[name]) for name, cls in SECTIONS.items()}
    )
    dicts = TrainerConfig(num_steps=40, seed=7, progress=False, **{name: NESTED[name] for name in SECTIONS})
    assert objects == dicts == flat
    assert isinstance(dicts.optimizer, OptimizerSettings) and isinstance(dicts.selection, SelectionSettings)


def test_a_mix_of_flat_and_nested_settings():
    mixed = TrainerConfig.from_dict(
        {
            "num_steps": 40,
            "seed": 7,
            "progress": False,
            "optimizer": NESTED["optimizer"],
            "schedule": NESTED["schedule"],
            "batch_size": None,
            "objective": {"num_particles": 2},
            "annealing": FLAT["annealing"],
            "selection": {"validate_every": 5, "keep_best": True},
            "validation_metric": "log_score",
            "ema_decay": 0.9,
            "log_score_samples": 32,
            "holdout_last_step": True,
            "checkpointing": NESTED["checkpointing"],
        }
    )
    assert mixed.to_dict() == NESTED
    # a partial section keeps the other settings' defaults
    partial = TrainerConfig.from_dict({"optimizer": {"clip_norm": 1.0}, "keep_best": True, "validate_every": 2})
    assert partial.optimizer == OptimizerSettings(clip_norm=1.0)
    assert partial.selection == SelectionSettings(keep_best=True, validate_every=2)
    assert partial.schedule == ScheduleSettings() and partial.batching == BatchingSettings()
    assert partial.checkpointing == CheckpointSettings() and partial.num_steps == 1000


def test_the_default_annealing_is_a_cosine_over_a_third_of_each_stage():
    annealing = TrainerConfig().objective.annealing
    assert annealing == AnnealingSchedule("cosine", start=0.01, end=1.0, warmup_steps=None)
    assert annealing.for_stage(300).warmup_steps == 100
    # a kind name alone keeps the third-of-the-stage warm-up; a dict's missing warm-up too
    assert TrainerConfig.from_dict({"annealing": "linear"}).objective.annealing.warmup_steps is None
    assert TrainerConfig.from_dict(
        {"annealing": {"kind": "linear", "end": 1.5}}
    ).objective.annealing == AnnealingSchedule("linear", end=1.5, warmup_steps=None)


@pytest.mark.parametrize(
    "settings,match",
    [
        ({"learning_rat": 1e-3}, r"unknown trainer setting 'learning_rat' \(did you mean 'learning_rate'\?\)"),
        ({"keep_bets": True}, r"did you mean 'keep_best'\?"),
        ({"optimiser": {}}, r"did you mean 'optimizer'\?"),
        (
            {"optimizer": {"learning_rat": 1e-3}},
            r"unknown setting 'learning_rat' in trainer section 'optimizer' \(did you mean 'learning_rate'\?\)",
        ),
    ],
)
def test_an_unknown_key_names_the_closest(settings, match):
    with pytest.raises(ValueError, match=match):
        TrainerConfig.from_dict(settings)


@pytest.mark.parametrize(
    "section,key,right",
    [
        ("optimizer", "keep_best", "selection"),
        ("selection", "learning_rate", "optimizer"),
        ("batching", "lr_warmup_steps", "schedule"),
        ("objective", "batch_size", "batching"),
        ("schedule", "checkpoint_every", "checkpointing"),
        ("checkpointing", "annealing", "objective"),
    ],
)
def test_a_key_in_the_wrong_section_names_the_right_one(section, key, right):
    with pytest.raises(
        ValueError,
        match=f"unknown setting '{key}' in trainer section '{section}' "
        rf"\(it belongs to section '{right}'\)",
    ):
        TrainerConfig.from_dict({section: {key: 1}})


def test_sections_must_be_dicts_or_their_settings():
    with pytest.raises(TypeError, match="trainer section 'optimizer' must be a dict"):
        TrainerConfig.from_dict({"optimizer": 0.1})
    with pytest.raises(TypeError, match="trainer section 'selection' must be a SelectionSettings or a dict"):
        TrainerConfig(selection=OptimizerSettings())
    with pytest.raises(TypeError, match="trainer settings must be a dict"):
        TrainerConfig.from_dict([("num_steps", 3)])


def test_updated_replaces_values_and_keeps_the_rest():
    config = TrainerConfig.from_dict(FLAT)
    new = config.updated(learning_rate=0.01, ema_decay=None, num_steps=60, batch_size=8)
    assert new.optimizer.learning_rate == 0.01 and new.selection.ema_decay is None
    assert new.num_steps == 60 and new.batching.batch_size == 8
    assert new.to_dict() == {
        **NESTED,
        "num_steps": 60,
        "optimizer": {**NESTED["optimizer"], "learning_rate": 0.01},
        "selection": {**NESTED["selection"], "ema_decay": None},
        "batching": {"batch_size": 8},
    }
    assert config.to_dict() == NESTED  # the original is unchanged
    assert config.updated().to_dict() == NESTED and config.updated() is not config
    # a section dict replaces only the settings it names (the rest of the section is kept)
    section = config.updated(checkpointing={"checkpoint_every": 3}).checkpointing
    assert section == CheckpointSettings(3, config.checkpointing.on_nonfinite)
    # a copy is checked like any config
    with pytest.raises(ValueError, match="keep_best=True .* needs validate_every > 0"):
        config.updated(validate_every=0)  # keep_best is on
    with pytest.raises(ValueError, match=r"did you mean 'learning_rate'\?"):
        config.updated(learning_rat=0.1)


def test_from_preset_suggests_the_closest_name():
    with pytest.raises(
        ValueError,
        match=r"unknown trainer preset 'ddssm-tabel3' "
        r"\(did you mean 'ddssm-table3'\?\); presets are \[",
    ):
        TrainerConfig.from_preset("ddssm-tabel3")
    with pytest.raises(ValueError, match="unknown trainer preset 'nothing-like-it'; presets are"):
        TrainerConfig.from_preset("nothing-like-it")


def test_resolve_accepts_none_a_config_a_dict_or_a_preset_name():
    assert TrainerConfig.resolve(None) == TrainerConfig()
    config = TrainerConfig.from_dict(FLAT)
    copy = TrainerConfig.resolve(config)
    assert copy == config and copy is not config
    assert TrainerConfig.resolve(FLAT) == config and TrainerConfig.resolve(NESTED) == config
    assert TrainerConfig.resolve("dkf-table3") == TrainerConfig.from_preset("dkf-table3")
    for bad in (["num_steps", 3], 3, ("dkf-table3",), OptimizerSettings()):
        with pytest.raises(TypeError, match="trainer must be None, a TrainerConfig, a dict or a preset name"):
            TrainerConfig.resolve(bad)
    with pytest.raises(ValueError, match="did you mean 'dkf-table3'"):
        TrainerConfig.resolve("dkf-tabel3")


def test_the_trainer_resolves_its_config():
    p = torch.nn.Parameter(torch.zeros(()))
    objective = AnnealedELBO(lambda x, annealing=1.0: None, lambda x, annealing=1.0: None)
    for given in ({"num_steps": 3, "learning_rate": 0.5}, TrainerConfig(num_steps=3, optimizer={"learning_rate": 0.5})):
        trainer = Trainer(objective, {"p": [p]}, given)
        assert trainer.config.num_steps == trainer.total_steps == 3
        assert trainer.optimizer.param_groups[0]["lr"] == 0.5
    groups = {name: [torch.nn.Parameter(torch.zeros(()))] for name in ("encoder", "emission", "transition", "init")}
    assert Trainer(objective, groups, "dkf-table3").config == TrainerConfig.from_preset("dkf-table3")
    assert Trainer(objective, {"p": [p]}).config == TrainerConfig()


@pytest.mark.parametrize(
    "settings,match",
    [
        (dict(keep_best=True), "keep_best=True keeps the parameters with the best validation: it needs validate_every"),
        (dict(log_score_samples=0), "log_score_samples must be a positive int"),
    ],
)
def test_checks_across_sections(settings, match):
    with pytest.raises(ValueError, match=match):
        TrainerConfig.from_dict(settings)


def test_checks_across_sections_also_guard_the_constructor():
    with pytest.raises(ValueError, match="keep_best=True"):
        TrainerConfig(num_steps=10, selection={"keep_best": True})


@pytest.mark.parametrize("name", REMOVED_SETTINGS)
def test_a_removed_setting_is_refused_saying_it_was_removed(name):
    """Settings of earlier versions (saved fits that used them still load: tests/test_api.py)."""
    removed = f"unknown trainer setting '{name}': this setting was removed from pyrossm"
    with pytest.raises(ValueError, match=removed):
        TrainerConfig.from_dict({name: 1})
    with pytest.raises(ValueError, match=removed):
        TrainerConfig().updated(**{name: 1})
    with pytest.raises(
        ValueError, match=f"unknown setting '{name}' in trainer section 'schedule': this setting was removed"
    ):
        TrainerConfig.from_dict({"schedule": {name: 1}})
    with pytest.raises(
        ValueError, match=f"unknown setting '{name}' in trainer section 'selection': this setting was removed"
    ):
        TrainerConfig(selection={name: 1})
    assert name not in SECTION_OF
