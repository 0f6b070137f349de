"""One diffusion core for every pyrossm model: schedules, preconditioning and losses, samplers."""

from .preconditioning import denoise, denoising_loss, diffusion_bound, karras_coefficients, regression_target
from .samplers import ddim_sample, ddpm_sample, heun_sample
from .schedules import NoiseSchedule

__all__ = [
    "NoiseSchedule",
    "karras_coefficients",
    "denoise",
    "regression_target",
    "diffusion_bound",
    "denoising_loss",
    "ddpm_sample",
    "ddim_sample",
    "heun_sample",
]
