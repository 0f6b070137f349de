"""Training: objectives, the trainer and its settings, presets, annealing schedules, safe checkpoints."""

from .checkpoint import atomic_torch_save, safe_torch_load
from .config import (
    BatchingSettings,
    CheckpointSettings,
    ObjectiveSettings,
    OptimizerSettings,
    ScheduleSettings,
    SelectionSettings,
    TrainerConfig,
)
from .elbo import elbo_terms
from .objectives import AnnealedELBO, Objective, ObservedSites
from .presets import TRAINER_PRESETS, register_trainer_preset
from .schedules import AnnealingSchedule
from .trainer import Callback, NonFiniteLossError, Trainer

__all__ = [
    "atomic_torch_save",
    "safe_torch_load",
    "elbo_terms",
    "AnnealingSchedule",
    "AnnealedELBO",
    "Objective",
    "ObservedSites",
    "Callback",
    "NonFiniteLossError",
    "Trainer",
    "TrainerConfig",
    "OptimizerSettings",
    "ScheduleSettings",
    "BatchingSettings",
    "ObjectiveSettings",
    "SelectionSettings",
    "CheckpointSettings",
    "TRAINER_PRESETS",
    "register_trainer_preset",
]
