"""Conversion of a fit's draws and history to arviz-style ``xr.DataTree``\\ s."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr


def history_dataset(history: pd.DataFrame) -> xr.Dataset:
    """A training history as a Dataset over dim ``step``, one variable per column (a ``step``
    column that repeats, e.g. after a resume from an earlier step, is replaced by positions)."""
    steps = history["step"].to_numpy() if "step" in history.columns else np.arange(len(history))
    if len(np.unique(steps)) != len(steps):
        steps = np.arange(len(history))
    return xr.Dataset(
        {str(col): ("step", history[col].to_numpy()) for col in history.columns if col != "step"},
        coords={"step": steps},
    )


def fit_datatree(groups: dict, model_name: str) -> xr.DataTree:
    """``groups`` (name -> Dataset) as a DataTree whose root attrs name pyrossm and the model."""
    from . import __version__

    tree = xr.DataTree.from_dict(groups)
    tree.attrs = {"inference_library": "pyrossm", "inference_library_version": __version__, "model": model_name}
    return tree
