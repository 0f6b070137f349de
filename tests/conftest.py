"""Shared fixtures: tiny data sets built directly with numpy/xarray, tiny model settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

# The test models are tiny: intra-op threads only add synchronisation cost (and make timings
# erratic on a busy 2-core machine).  One thread also keeps every run bit-for-bit reproducible.
torch.set_num_threads(1)

NUM_SERIES = 6
LENGTH = 8

#: architecture arguments of a tiny DKF, for pyrossm.fit(..., **TINY)
TINY = dict(channels=4, hidden_dim=4, encoder_layers=1, emission_layers=1, transition_layers=1)


def make_dataset(num_series=NUM_SERIES, length=LENGTH, seed=0, covariate=False, time=None):
    """A random-walk ``x`` with dims ``(series, time)``; with ``covariate=True`` also ``u``."""
    rng = np.random.default_rng(seed)
    walk = rng.normal(size=(num_series, length)).cumsum(axis=1)
    variables = {}
    if covariate:
        u = rng.normal(size=(num_series, length))
        walk = walk + 0.5 * u
        variables["u"] = (("series", "time"), u)
    variables["x"] = (("series", "time"), walk)
    coords = {"series": np.arange(num_series), "time": np.arange(length) if time is None else time}
    return xr.Dataset(variables, coords=coords)


@pytest.fixture
def series_ds():
    """6 series x 8 steps, variable ``x``, integer ``time`` 0..7."""
    return make_dataset()


@pytest.fixture
def covariate_ds():
    """Like ``series_ds`` plus a covariate ``u``."""
    return make_dataset(covariate=True)


def future_covariates(num_series=NUM_SERIES, horizon=3, start=LENGTH, seed=1):
    """Covariate ``u`` for the ``horizon`` steps after the fixtures' data."""
    rng = np.random.default_rng(seed)
    return xr.Dataset(
        {"u": (("series", "time"), rng.normal(size=(num_series, horizon)))},
        coords={"series": np.arange(num_series), "time": np.arange(start, start + horizon)},
    )


@pytest.fixture(scope="session")
def make_ds():
    """The data factory :func:`make_dataset`, for tests that need other sizes or seeds."""
    return make_dataset


@pytest.fixture(scope="session")
def make_future():
    """The future-covariate factory :func:`future_covariates`."""
    return future_covariates


@pytest.fixture(scope="session")
def tiny():
    """Architecture arguments of a tiny DKF, plus a silent progress bar."""
    return dict(TINY, progress=False)
