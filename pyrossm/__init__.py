"""pyrossm: probabilistic state-space models with diffusion-model dynamics, on Pyro.

Quick start::

    import pyrossm
    ds = pyrossm.datasets.bimodal_random_walk(num_series=1024, length=32, seed=0)
    res = pyrossm.fit(model="dkf", data=ds, latent_dim=1, order=1, num_steps=1000, seed=0)
    fc = res.forecast(ds.isel(time=slice(0, 24)), horizon=8, num_samples=200)

The names below are imported on first use (``import pyrossm`` itself does not load torch), so
that the command line answers ``--help`` at once.
"""

import importlib as _importlib

__version__ = "0.1.0"

#: public name -> (submodule, attribute); submodules are loaded on first access
_LAZY = {
    "fit": ("api", "fit"),
    "load": ("io", "load"),
    "FitResult": ("result", "FitResult"),
    "TrainerConfig": ("inference", "TrainerConfig"),
    "DataContract": ("data", "DataContract"),
    "SeriesData": ("data", "SeriesData"),
}
_SUBMODULES = ("datasets", "metrics", "evaluation", "models", "tuning", "data", "inference", "io", "api", "result")

__all__ = ["fit", "load", "FitResult", "TrainerConfig", "datasets", "metrics", "evaluation", "models",
           "DataContract", "SeriesData", "tuning", "__version__"]  # fmt: skip


def __getattr__(name):
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(_importlib.import_module(f".{module}", __name__), attribute)
    elif name in _SUBMODULES:
        value = _importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'pyrossm' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
