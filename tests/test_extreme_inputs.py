"""Extreme and clashing inputs are refused at the boundary, before training, with the variable
named; a datetime coordinate on a feature dim round-trips through a saved fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import pyrossm
from pyrossm.inference import Trainer


@pytest.fixture
def no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a training step ran")

    monkeypatch.setattr(Trainer, "_train_step", fail)


def walk(scale=1.0, **extra):
    x = np.random.default_rng(0).normal(size=(4, 6)).cumsum(1) * scale
    return xr.Dataset({"x": (("series", "time"), x), **extra}, coords={"series": np.arange(4), "time": np.arange(6)})


@pytest.mark.parametrize("scale", [1e155, 1e200, 1e300])
def test_values_whose_square_overflows_are_refused_naming_the_variable(scale, tiny, no_training):
    with pytest.raises(ValueError, match=r"variable 'x' has values up to .*beyond what pyrossm can scale"):
        pyrossm.fit(data=walk(scale), num_steps=1, **tiny)


def test_a_huge_covariate_is_refused_too(tiny, no_training):
    u = np.full((4, 6), 1e160)
    with pytest.raises(ValueError, match="variable 'u' has values up to 1e\\+160"):
        pyrossm.fit(data=walk(u=(("series", "time"), u)), covariates=["u"], num_steps=1, **tiny)


def test_large_but_scalable_values_train_finely(tiny):
    res = pyrossm.fit(data=walk(1e140), num_steps=2, **tiny)
    assert np.isfinite(res.history["loss"]).all()
    fc = res.forecast(walk(1e140), horizon=1, num_samples=4, seed=0)
    assert np.isfinite(fc["x"].values).all() and np.abs(fc["x"].values).max() > 1e139


def test_new_data_far_outside_the_training_scale_is_refused_at_forecast(tiny):
    res = pyrossm.fit(data=walk(), num_steps=1, **tiny)
    with pytest.raises(ValueError, match="within 1e\\+15 standard deviations of the training data"):
        res.forecast(walk(1e20), horizon=1, num_samples=2)


@pytest.mark.parametrize("name", ["draw", "chain"])
def test_dims_or_variables_named_like_output_dims_are_refused_at_fit(name, tiny, no_training):
    x = np.random.default_rng(0).normal(size=(4, 6, 2))
    as_dim = xr.Dataset(
        {"x": (("series", "time", name), x)}, coords={"series": np.arange(4), "time": np.arange(6), name: [0, 1]}
    )
    with pytest.raises(ValueError, match=f"dim or variable named '{name}'.*rename it"):
        pyrossm.fit(data=as_dim, num_steps=1, **tiny)
    as_variable = walk(**{name: (("series", "time"), x[..., 0])})
    with pytest.raises(ValueError, match=f"dim or variable named '{name}'"):
        pyrossm.fit(data=as_variable, num_steps=1, **tiny)


def test_a_datetime_feature_coordinate_saves_loads_and_comes_back_as_datetimes(tiny, tmp_path):
    when = pd.date_range("2020-01-01", periods=2)
    x = np.random.default_rng(0).normal(size=(4, 6, 2)).cumsum(1)
    ds = xr.Dataset(
        {"x": (("series", "time", "when"), x)}, coords={"series": np.arange(4), "time": np.arange(6), "when": when}
    )
    res = pyrossm.fit(data=ds, num_steps=1, **tiny)
    back = pyrossm.load(res.save(tmp_path / "fit.pyrossm"))
    fc = back.forecast(ds, horizon=2, num_samples=3, seed=0)
    assert fc["when"].dtype.kind == "M" and (fc["when"].values == when.values).all()
    xr.testing.assert_identical(fc, res.forecast(ds, horizon=2, num_samples=3, seed=0))
