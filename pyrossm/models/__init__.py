"""Model/guide pairs: the composable :class:`StateSpaceModel`, its parts and presets."""

from .dkf import DKF
from .emission import Emission, GaussianEmission
from .encoder import SmoothingEncoder
from .init import StandardNormalInit, VHPInit
from .registry import MODELS, build_model, register_model
from .ssm import StateSpaceModel
from .transition import GaussianTransition

__all__ = ["DKF", "Emission", "GaussianEmission", "SmoothingEncoder", "StandardNormalInit",
           "VHPInit", "StateSpaceModel", "GaussianTransition", "MODELS", "build_model",
           "register_model"]
