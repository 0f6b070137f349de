"""pyrossm: probabilistic state-space models with diffusion-model dynamics, on Pyro.

Quick start::

    import pyrossm
    ds = pyrossm.datasets.bimodal_random_walk(num_series=1024, length=32, seed=0)
    res = pyrossm.fit(model="dkf", data=ds, latent_dim=1, order=1, num_steps=1000, seed=0)
    fc = res.forecast(ds.isel(time=slice(0, 24)), horizon=8, num_samples=200)
"""

import sys as _sys

from . import datasets, evaluation, models, tuning
from . import evaluation as metrics
from .api import fit
from .data import DataContract, SeriesData
from .inference import TrainerConfig
from .io import load
from .result import FitResult

_sys.modules[__name__ + ".metrics"] = metrics  # so that `from pyrossm.metrics import crps` works

__version__ = "0.1.0"

__all__ = [
    "fit",
    "load",
    "FitResult",
    "TrainerConfig",
    "datasets",
    "metrics",
    "evaluation",
    "models",
    "DataContract",
    "SeriesData",
    "tuning",
    "__version__",
]
