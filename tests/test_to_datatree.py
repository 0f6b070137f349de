"""FitResult.to_datatree: arviz-style groups, dims, coordinates and the training history."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import pyrossm


@pytest.fixture(scope="module")
def fitted():
    """A 5-step DKF on 16 bimodal random walks, with a validation ELBO every 2 steps."""
    ds = pyrossm.datasets.bimodal_random_walk(num_series=16, length=10, seed=0)
    res = pyrossm.fit(
        model="dkf",
        data=ds,
        num_steps=5,
        batch_size=8,
        channels=4,
        hidden_dim=4,
        progress=False,
        seed=0,
        validation_data=ds.isel(series=slice(0, 4)),
        trainer={"validate_every": 2},
    )
    return res, ds


def test_groups_dims_and_coordinates(fitted):
    res, ds = fitted
    data = ds.isel(series=[3, 5, 11])  # coordinates are the data's, not positions
    dt = res.to_datatree(data, num_samples=7, seed=0)
    assert isinstance(dt, xr.DataTree)
    assert list(dt.children) == ["posterior", "posterior_predictive", "observed_data", "training_history"]
    z = dt["posterior"]["z"]
    assert z.dims == ("chain", "draw", "series", "time", "latent")
    assert z.shape == (1, 7, 3, 10, 2)  # the default latent_dim
    np.testing.assert_array_equal(dt["posterior"]["chain"], [0])
    np.testing.assert_array_equal(dt["posterior"]["draw"], np.arange(7))
    np.testing.assert_array_equal(dt["posterior"]["series"], [3, 5, 11])
    np.testing.assert_array_equal(dt["posterior"]["time"], data.time.values)
    np.testing.assert_array_equal(dt["posterior"]["latent"], [0, 1])
    x = dt["posterior_predictive"]["x"]
    assert x.dims == ("chain", "draw", "series", "time") and x.shape == (1, 7, 3, 10)
    np.testing.assert_array_equal(x["series"], [3, 5, 11])
    obs = dt["observed_data"]["x"]
    assert obs.dims == ("series", "time")
    np.testing.assert_allclose(obs.values, data.x.values, rtol=1e-6)  # float32 round trip
    np.testing.assert_array_equal(obs["time"], data.time.values)
    assert np.isfinite(z.values).all() and np.isfinite(x.values).all()
    assert dt.attrs["inference_library"] == "pyrossm" and dt.attrs["model"] == "dkf"


def test_same_draws_as_smooth_and_posterior_predictive(fitted):
    res, ds = fitted
    dt = res.to_datatree(ds, num_samples=5, seed=3)
    np.testing.assert_array_equal(dt["posterior"]["z"].values[0], res.smooth(ds, num_samples=5, seed=3).z.values)
    pp = res.posterior_predictive(ds, num_samples=5, seed=3)
    xr.testing.assert_identical(dt["posterior_predictive"].to_dataset(), pp["posterior_predictive"].to_dataset())
    xr.testing.assert_identical(dt["observed_data"].to_dataset(), pp["observed_data"].to_dataset())


def test_missing_observations_stay_missing(fitted):
    res, ds = fitted
    gappy = ds.copy(deep=True)
    gappy["x"][2, 4] = np.nan
    dt = res.to_datatree(gappy, num_samples=3, seed=0)
    obs = dt["observed_data"]["x"]
    assert np.isnan(obs.sel(series=2, time=4).item())
    assert int(np.isnan(obs.values).sum()) == 1
    assert np.isfinite(dt["posterior_predictive"]["x"].values).all()


def test_training_history_group(fitted):
    res, ds = fitted
    hist = res.history
    th = res.to_datatree(ds, num_samples=2, seed=0)["training_history"]
    assert set(th.dims) == {"step"}
    np.testing.assert_array_equal(th["step"].values, hist["step"].to_numpy())
    assert set(th.data_vars) == set(hist.columns) - {"step"}
    for col in hist.columns.drop("step"):
        assert th[col].dims == ("step",)
        np.testing.assert_array_equal(th[col].values, hist[col].to_numpy())  # NaNs in place too
    assert th["val_elbo"].isnull().sum() == 3  # validation on 2 of 5 steps


def test_without_data_only_history(fitted):
    res, _ = fitted
    dt = res.to_datatree()
    assert list(dt.children) == ["training_history"]
    assert dt["training_history"].sizes["step"] == len(res.history)


def test_arviz_conventions(fitted, tmp_path):
    import arviz_base

    res, ds = fitted
    dt = res.to_datatree(ds, num_samples=4, seed=0)
    assert arviz_base.convert_to_datatree(dt) is dt
    post = arviz_base.extract(dt, group="posterior", combined=True, keep_dataset=True)
    assert post["z"].sizes["sample"] == 4
    pp = arviz_base.extract(dt, group="posterior_predictive", combined=False, keep_dataset=True)
    assert pp["x"].sizes == {"chain": 1, "draw": 4, "series": 16, "time": 10}
    path = tmp_path / "fit.nc"  # arviz stores DataTrees as netCDF
    dt.to_netcdf(path)
    back = xr.open_datatree(path)
    xr.testing.assert_allclose(back["training_history"].to_dataset(), dt["training_history"].to_dataset())
    back.close()


def test_bad_arguments(fitted):
    res, ds = fitted
    with pytest.raises(ValueError, match="num_samples"):
        res.to_datatree(ds, num_samples=0)
    with pytest.raises(ValueError):
        res.to_datatree(ds.rename(x="y"))
