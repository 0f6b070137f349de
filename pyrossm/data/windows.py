"""Fixed-length windows of long series: many short training series from a few long ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..validation import check_positive_int
from .inputs import SERIES, TIME, as_dataset


def windows(data, length, stride=None) -> xr.Dataset:
    """Cuts every series into windows of ``length`` time steps, starting every ``stride`` steps.

    :param data: anything :func:`as_dataset` accepts, dims ``(series, time)``.
    :param int length: time steps per window.
    :param int stride: steps between window starts (default ``length``: adjacent windows).
    :returns: ``xr.Dataset`` with dims ``(series, time)``: one series per window, ``time`` the
        positions ``0 .. length - 1``; the non-index coordinates ``source_series`` and
        ``start_time`` (``(series,)``) say where each window comes from; the data's other
        coordinates along ``series`` alone (a class label, a split) are repeated onto its
        windows.  A window past the end of the data is not made; windows are in order of source
        series, then start.
    :raises ValueError: if ``length`` exceeds the data's time steps.
    """
    ds = as_dataset(data)
    length = check_positive_int("length", length)
    stride = length if stride is None else check_positive_int("stride", stride)
    num_time = ds.sizes[TIME]
    if length > num_time:
        raise ValueError(f"length={length} exceeds the data's {num_time} time steps")
    starts = np.arange(0, num_time - length + 1, stride)
    pieces = [ds.isel({TIME: slice(int(s), int(s) + length)}).drop_vars(TIME) for s in starts]
    stacked = xr.concat(pieces, dim="window").transpose(SERIES, "window", ...)
    flat = stacked.stack(piece=(SERIES, "window")).transpose("piece", ...)
    out = flat.drop_vars(["piece", SERIES, "window"]).rename({"piece": SERIES})
    source = np.repeat(ds[SERIES].values, len(starts))
    start_time = np.tile(ds[TIME].values[starts], ds.sizes[SERIES])
    # per-series coordinates (a class label, a split) follow their series into every window
    carried = {}
    if isinstance(data, (xr.Dataset, xr.DataArray)) and SERIES in data.dims:
        order = pd.Index(data[SERIES].values).get_indexer(ds[SERIES].values)
        position = np.repeat(order, len(starts))
        carried = {
            name: (SERIES, coord.values[position])
            for name, coord in data.coords.items()
            if coord.dims == (SERIES,) and name not in (SERIES, "source_series", "start_time")
        }
    out = out.drop_vars([name for name in carried if name in out.coords])
    return out.assign_coords(
        {
            SERIES: np.arange(out.sizes[SERIES]),
            TIME: np.arange(length),
            "source_series": (SERIES, source),
            "start_time": (SERIES, start_time),
            **carried,
        }
    ).transpose(SERIES, TIME, ...)
