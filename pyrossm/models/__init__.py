"""Model families: the :class:`GenerativeModel` protocol, the composable :class:`StateSpaceModel`,
its parts and presets, and the registry."""

from .base import Forecasting, GenerativeModel, Smoothing, Stage, capabilities
from .ddssm import DDSSM
from .dkf import DKF
from .emission import Emission, GaussianEmission
from .encoder import SmoothingEncoder
from .init import StandardNormalInit, VHPInit
from .l2d import L2DDiff
from .latent_diffusion import CollapseSimulation, LatentDiffusion, SequenceLatentModel
from .registry import MODELS, ModelSpec, build_model, get_spec, register_model, spec_of
from .ssm import StateSpaceModel
from .transition import DiffusionDynamics, GaussianTransition

__all__ = [
    "GenerativeModel",
    "Stage",
    "Forecasting",
    "Smoothing",
    "capabilities",
    "ModelSpec",
    "get_spec",
    "spec_of",
    "DDSSM",
    "LatentDiffusion",
    "CollapseSimulation",
    "L2DDiff",
    "SequenceLatentModel",
    "DiffusionDynamics",
    "DKF",
    "Emission",
    "GaussianEmission",
    "SmoothingEncoder",
    "StandardNormalInit",
    "VHPInit",
    "StateSpaceModel",
    "GaussianTransition",
    "MODELS",
    "build_model",
    "register_model",
]
