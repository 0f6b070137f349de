"""One diffusion core for every pyrossm model: schedules, preconditioning and losses, samplers."""

from .levels import LEVEL_SAMPLINGS, LossAwareLevels, check_level_sampling
from .preconditioning import (
    denoise,
    denoising_loss,
    diffusion_bound,
    karras_coefficients,
    level_denoiser,
    regression_target,
)
from .samplers import ddim_sample, ddpm_sample, heun_sample
from .schedules import NoiseSchedule

__all__ = [
    "NoiseSchedule",
    "LossAwareLevels",
    "LEVEL_SAMPLINGS",
    "check_level_sampling",
    "karras_coefficients",
    "denoise",
    "level_denoiser",
    "regression_target",
    "diffusion_bound",
    "denoising_loss",
    "ddpm_sample",
    "ddim_sample",
    "heun_sample",
]
