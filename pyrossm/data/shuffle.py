"""The time-shuffled control: every series' time steps in a random order, its values kept."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..validation import _is_int
from .inputs import SERIES, TIME, as_dataset


def _check_seed(seed) -> int:
    if not _is_int(seed):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _observed_lengths(ds: xr.Dataset) -> np.ndarray:
    """``(N,)``: one plus the index of each series' last time step with any observed value."""
    observed = np.zeros((ds.sizes[SERIES], ds.sizes[TIME]), dtype=bool)
    for da in ds.data_vars.values():
        values = ~np.isnan(da.values)
        observed |= values.reshape(values.shape[0], values.shape[1], -1).any(axis=-1)
    last = observed.shape[1] - np.argmax(observed[:, ::-1], axis=1)
    return np.where(observed.any(axis=1), last, 0)


def shuffle_time(data, seed=0) -> xr.Dataset:
    """Puts each series' time steps in a random order: the time-shuffled control of Li & van der
    Schaar, "A Study of Posterior Stability for Time-Series Latent Diffusion" (Sec. 3.3, 5.1).

    Shuffling destroys the temporal dependence of the data but keeps every series' marginal
    distribution, so a model that fits the shuffled data as well as the original one is not
    using the time structure. The permutations are independent across series (drawn from a
    :func:`numpy.random.default_rng` seeded with ``seed``); within a series, all variables
    (and all features of a variable) are permuted together, so every time step's row of
    values stays intact. A ragged series (trailing time steps with no observed value, see
    :mod:`pyrossm.data`) is permuted within its observed span ``0 .. length - 1`` only: its
    trailing ``NaN`` stay at the end; missing values inside the span move with their row.
    The coordinates (``series``, ``time`` and the non-index coordinates of a Dataset or
    DataArray without a ``time`` dim) are kept as they are.

    :param data: anything :func:`as_dataset` accepts, dims ``(series, time[, feature])``.
    :param int seed: seed of the random permutations (a non-negative int); the same seed
        gives the same result.
    :returns: ``xr.Dataset`` with the dims, coordinates and float variables of
        ``as_dataset(data)``, shapes ``(N, T)`` or ``(N, T, D)``, each series' values along
        ``time`` permuted.
    :raises TypeError: if ``seed`` is not an int (bools are rejected).
    :raises ValueError: if ``seed`` is negative.
    """
    seed = _check_seed(seed)
    ds = as_dataset(data)
    rng = np.random.default_rng(seed)
    lengths = _observed_lengths(ds)
    perms = [rng.permutation(int(length)) for length in lengths]
    out = ds.copy()
    for name, da in ds.data_vars.items():
        values = da.values  # (N, T[, D]): as_dataset puts series and time first
        shuffled = values.copy()
        for i, perm in enumerate(perms):
            shuffled[i, : len(perm)] = values[i, perm]
        out[name] = da.copy(data=shuffled)
    if isinstance(data, (xr.Dataset, xr.DataArray)):
        # as_dataset keeps only the index coordinates: bring back the per-series ones (labels)
        same_series = SERIES in data.dims and np.array_equal(data[SERIES].values, out[SERIES].values)
        for name, coord in data.coords.items():
            if name in out.coords or TIME in coord.dims or not set(coord.dims) <= set(out.dims):
                continue
            if SERIES in coord.dims and not same_series:
                continue
            out = out.assign_coords({name: coord.variable})
    return out
