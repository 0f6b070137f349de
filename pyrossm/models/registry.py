"""Registered model names for ``pyrossm.fit(model="...")``."""

from __future__ import annotations

import inspect

from .ddssm import DDSSM
from .dkf import DKF

MODELS = {"dkf": DKF, "ddssm": DDSSM}

#: arguments filled from the data, not by the user
DATA_ARGUMENTS = ("obs_dim", "covariate_dim")


def model_arguments(name: str) -> set:
    """Names of the keyword arguments the registered model ``name`` accepts from users."""
    params = inspect.signature(MODELS[name]).parameters
    return {p for p in params if p not in DATA_ARGUMENTS}


def build_model(name: str, **kwargs):
    """Instantiates the registered model ``name``; unknown names raise ``ValueError``."""
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)} or a StateSpaceModel instance, got {name!r}")
    return MODELS[name](**kwargs)


def register_model(name: str, factory) -> None:
    """Registers a model class (constructor with ``obs_dim`` and ``covariate_dim`` keywords)."""
    MODELS[name] = factory
