"""SVI machinery: ELBO terms, annealing schedules, the trainer and safe checkpoints."""

from .checkpoint import atomic_torch_save, safe_torch_load
from .elbo import elbo_terms
from .schedules import AnnealingSchedule
from .trainer import NonFiniteLossError, SVITrainer, TrainerConfig

__all__ = ["atomic_torch_save", "safe_torch_load", "elbo_terms", "AnnealingSchedule",
           "NonFiniteLossError", "SVITrainer", "TrainerConfig"]
