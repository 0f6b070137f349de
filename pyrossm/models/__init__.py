"""Model/guide pairs: the composable :class:`StateSpaceModel`, its parts and presets."""

from .ddssm import DDSSM
from .dkf import DKF
from .emission import Emission, GaussianEmission
from .encoder import SmoothingEncoder
from .init import StandardNormalInit, VHPInit
from .registry import MODELS, build_model, register_model
from .ssm import StateSpaceModel
from .transition import DiffusionDynamics, GaussianTransition

__all__ = ["DDSSM", "DiffusionDynamics", "DKF", "Emission", "GaussianEmission", "SmoothingEncoder", "StandardNormalInit",
           "VHPInit", "StateSpaceModel", "GaussianTransition", "MODELS", "build_model",
           "register_model"]
