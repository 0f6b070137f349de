import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pyrossm.data import DataContract, SeriesData, as_dataset


def make_dataset(num_series=3, num_time=6, seed=0, time=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(2.0, 3.0, size=(num_series, num_time))
    y = rng.normal(-1.0, 0.5, size=(num_series, num_time))
    x[1, 2] = np.nan  # a missing value inside a series
    y[0, 0] = np.nan
    if time is None:
        time = np.arange(num_time)
    coords = {"series": [f"s{i}" for i in range(num_series)], "time": time}
    return xr.Dataset({"x": (("series", "time"), x), "y": (("series", "time"), y)}, coords=coords)


def roundtrip(data, covariates=None):
    contract, sd = DataContract.fit(data, covariates=covariates)
    decoded = contract.decode(sd.values[None], sd.series, sd.time)
    return contract, sd, decoded


def assert_matches(decoded, original, sample_dim="draw", atol=1e-5):
    assert set(decoded.data_vars) == set(original.data_vars)
    assert decoded.sizes[sample_dim] == 1
    for name in original.data_vars:
        got = decoded[name].isel({sample_dim: 0})
        want = original[name].transpose(*got.dims)
        assert got.dims == want.dims
        np.testing.assert_array_equal(got["series"].values, want["series"].values)
        np.testing.assert_array_equal(got["time"].values, want["time"].values)
        np.testing.assert_allclose(got.values, want.values, rtol=1e-5, atol=atol, equal_nan=True)


# -- round trips for each input form --------------------------------------------------------


def test_roundtrip_dataset():
    ds = make_dataset()
    contract, sd, decoded = roundtrip(ds)
    assert contract.target_vars == ["x", "y"]
    assert contract.channels == [("x", None), ("y", None)]
    assert sd.values.shape == (3, 6, 2) and sd.values.dtype == torch.float32
    assert decoded["x"].dims == ("draw", "series", "time")
    assert_matches(decoded, ds)


def test_roundtrip_long_dataframe():
    ds = make_dataset()
    frame = ds.to_dataframe().reset_index().melt(id_vars=["series", "time"], var_name="variable")
    frame = frame.dropna().sample(frac=1.0, random_state=0)  # shuffled, missing rows absent
    converted = as_dataset(frame)
    assert set(converted.data_vars) == {"x", "y"}
    np.testing.assert_array_equal(converted["series"].values, ["s0", "s1", "s2"])  # sorted
    _, sd, decoded = roundtrip(frame)
    assert_matches(decoded, ds)
    assert not sd.mask[1, 2, 0] and not sd.mask[0, 0, 1]


def test_roundtrip_wide_dataframe():
    ds = make_dataset()
    frame = ds.to_dataframe().reset_index()
    frame = frame.drop(index=[4]).sample(frac=1.0, random_state=1)  # one (series, time) row missing
    expected = ds.copy(deep=True)
    row = ds.to_dataframe().reset_index().iloc[4]
    for name in ("x", "y"):
        expected[name].loc[{"series": row["series"], "time": row["time"]}] = np.nan
    _, _, decoded = roundtrip(frame)
    assert_matches(decoded, expected)


def test_dataframe_series_time_as_index():
    ds = make_dataset()
    frame = ds.to_dataframe()  # MultiIndex (series, time)
    _, _, decoded = roundtrip(frame)
    assert_matches(decoded, ds)


def test_roundtrip_dataarray():
    rng = np.random.default_rng(1)
    da = xr.DataArray(
        rng.normal(size=(2, 5, 3)),
        dims=("series", "time", "feature"),
        coords={"series": [10, 20], "time": np.arange(5), "feature": ["a", "b", 7]},
    )
    converted = as_dataset(da)
    assert list(converted.data_vars) == ["a", "b", "7"]
    contract, sd, decoded = roundtrip(da)
    assert sd.num_channels == 3
    for i, name in enumerate(["a", "b", "7"]):
        np.testing.assert_allclose(decoded[name].values[0], da.values[..., i], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(decoded["series"].values, [10, 20])


def test_dataarray_two_dims_named():
    da = xr.DataArray(np.ones((2, 3)), dims=("series", "time"), name="level")
    assert list(as_dataset(da).data_vars) == ["level"]
    assert list(as_dataset(da.rename(None)).data_vars) == ["x"]


def test_feature_dim_roundtrip():
    rng = np.random.default_rng(2)
    values = rng.normal(size=(2, 4, 3))
    values[0, 1, 2] = np.nan
    ds = xr.Dataset(
        {"obs": (("series", "time", "sensor"), values), "temp": (("series", "time"), rng.normal(size=(2, 4)))},
        coords={"sensor": ["u", "v", "w"]},
    )
    contract, sd, decoded = roundtrip(ds)
    assert contract.feature_dims == {"obs": ("sensor", ["u", "v", "w"])}
    assert contract.channels == [("obs", "u"), ("obs", "v"), ("obs", "w"), ("temp", None)]
    assert decoded["obs"].dims == ("draw", "series", "time", "sensor")
    np.testing.assert_array_equal(decoded["sensor"].values, ["u", "v", "w"])
    assert_matches(decoded, ds)
    # feature dim given in another order: aligned by coordinate
    again = contract.encode(ds.isel(sensor=[2, 0, 1]).transpose("sensor", "time", "series"))
    torch.testing.assert_close(again.values, sd.values, equal_nan=True)


def test_bool_variable_cast_to_float():
    ds = xr.Dataset({"flag": (("series", "time"), np.array([[True, False, True]]))})
    converted = as_dataset(ds)
    assert converted["flag"].dtype == np.float64
    contract, sd = DataContract.fit(ds)
    assert sd.values.dtype == torch.float32


# -- missing values, ragged lengths, scaling --------------------------------------------------


def test_missing_values_mask_and_fill():
    ds = make_dataset()
    _, sd = DataContract.fit(ds)
    assert sd.mask.dtype == torch.bool
    assert not sd.mask[1, 2, 0] and torch.isnan(sd.values[1, 2, 0])
    assert sd.filled_values[1, 2, 0] == 0.0 and sd.filled_values[0, 0, 1] == 0.0
    assert int(sd.mask.sum()) == 3 * 6 * 2 - 2
    assert not torch.isnan(sd.filled_values).any()
    torch.testing.assert_close(sd.filled_values[sd.mask], sd.values[sd.mask])


def test_ragged_lengths():
    x = np.arange(20, dtype=float).reshape(4, 5)
    x[0, 3:] = np.nan  # length 3
    x[1, 1] = np.nan  # interior gap, length 5
    x[2, 1:] = np.nan  # length 1
    x[3, 4] = np.nan  # length 4
    ds = xr.Dataset({"x": (("series", "time"), x)})
    _, sd = DataContract.fit(ds)
    assert sd.lengths.dtype == torch.int64
    assert sd.lengths.tolist() == [3, 5, 1, 4]


@settings(max_examples=40, deadline=None)
@given(
    missing=arrays(bool, (4, 7, 2), elements=st.booleans()),
    scale=st.floats(1e-3, 1e3),
    shift=st.floats(-1e3, 1e3),
)
def test_roundtrip_property(missing, scale, shift):
    rng = np.random.default_rng(0)
    values = shift + scale * rng.normal(size=(4, 7, 2))
    values[missing] = np.nan
    for d in range(2):  # keep every channel observed somewhere
        values[0, 0, d] = shift
    ds = xr.Dataset({"a": (("series", "time"), values[..., 0]), "b": (("series", "time"), values[..., 1])})
    observed = ~np.isnan(values)
    expected_lengths = [max((t + 1 for t in range(7) if observed[i, t].any()), default=0) for i in range(4)]
    contract, sd = DataContract.fit(ds, min_length=0)
    assert sd.lengths.tolist() == expected_lengths
    np.testing.assert_array_equal(sd.mask.numpy(), observed)
    decoded = contract.decode(sd.values[None], sd.series, sd.time)
    # values pass through float32 standardisation: the round-off scales with the data's magnitude
    assert_matches(decoded, ds, atol=1e-5 * (abs(shift) + scale))


def test_lengths_use_any_channel():
    x = np.full((1, 5), np.nan)
    y = np.full((1, 5), np.nan)
    x[0, :2] = 1.0
    y[0, 3] = 2.0
    _, sd = DataContract.fit(xr.Dataset({"x": (("series", "time"), x), "y": (("series", "time"), y)}))
    assert sd.lengths.tolist() == [4]


def test_scaling_fitted_on_observed_only():
    ds = make_dataset()
    contract, sd = DataContract.fit(ds)
    for d, name in enumerate(["x", "y"]):
        values = ds[name].values
        assert contract.loc[d] == pytest.approx(np.nanmean(values), rel=1e-12)
        assert contract.scale[d] == pytest.approx(np.nanstd(values), rel=1e-12)
    for d in range(2):
        observed = sd.values[..., d][sd.mask[..., d]].double()
        assert observed.mean().item() == pytest.approx(0.0, abs=1e-6)
        assert observed.std(correction=0).item() == pytest.approx(1.0, abs=1e-6)


def test_constant_channel_scale_is_one():
    ds = xr.Dataset({"c": (("series", "time"), np.full((2, 3), 5.0))})
    contract, sd = DataContract.fit(ds)
    assert contract.scale.tolist() == [1.0] and contract.loc.tolist() == [5.0]
    assert (sd.values == 0).all()


# -- covariates ----------------------------------------------------------------------------


def make_covariate_dataset():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6))
    x[1, 4:] = np.nan  # series 1 has length 4
    u = rng.normal(5.0, 2.0, size=(2, 6))
    u[1, 5] = np.nan  # beyond series 1's length: allowed
    return xr.Dataset({"x": (("series", "time"), x), "u": (("series", "time"), u)})


def test_covariates_split_from_targets():
    ds = make_covariate_dataset()
    contract, sd = DataContract.fit(ds, covariates=["u"])
    assert contract.target_vars == ["x"] and contract.covariate_names == ["u"]
    assert sd.num_channels == 1 and sd.num_covariates == 1
    assert sd.lengths.tolist() == [6, 4]
    used = np.concatenate([ds["u"].values[0], ds["u"].values[1, :4]])
    assert contract.cov_loc[0] == pytest.approx(used.mean(), rel=1e-12)
    assert contract.cov_scale[0] == pytest.approx(used.std(), rel=1e-12)
    expected = (ds["u"].values[1, :4] - used.mean()) / used.std()
    np.testing.assert_allclose(sd.covariates[1, :4, 0].numpy(), expected, rtol=1e-5)
    assert (sd.covariates[1, 4:] == 0).all()
    assert not torch.isnan(sd.covariates).any()
    decoded = contract.decode(sd.values[None], sd.series, sd.time)
    assert list(decoded.data_vars) == ["x"]


def test_covariate_with_feature_dim():
    rng = np.random.default_rng(4)
    ds = xr.Dataset(
        {"x": (("series", "time"), rng.normal(size=(2, 5))), "u": (("series", "time", "k"), rng.normal(size=(2, 5, 3)))}
    )
    contract, sd = DataContract.fit(ds, covariates=["u"])
    assert sd.num_covariates == 3 and contract.num_covariates == 3
    assert contract.covariate_channels == [("u", 0), ("u", 1), ("u", 2)]


def test_encode_uses_training_scaling():
    ds = make_covariate_dataset()
    contract, _ = DataContract.fit(ds, covariates=["u"])
    context = ds.isel(series=[0], time=slice(0, 3)) * 2.0
    sd = contract.encode(context)
    expected = (context["x"].values - contract.loc[0]) / contract.scale[0]
    np.testing.assert_allclose(sd.values[..., 0].numpy(), expected, rtol=1e-5)
    without = contract.encode(context[["x"]], require_covariates=False)
    assert without.covariates.shape == (1, 3, 1) and (without.covariates == 0).all()


def test_encode_covariates():
    ds = make_covariate_dataset()
    contract, _ = DataContract.fit(ds, covariates=["u"])
    future = xr.Dataset({"u": (("series", "time"), np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))})
    out = contract.encode_covariates(future, horizon=3)
    assert out.shape == (2, 3, 1) and out.dtype == torch.float32
    expected = (future["u"].values - contract.cov_loc[0]) / contract.cov_scale[0]
    np.testing.assert_allclose(out[..., 0].numpy(), expected, rtol=1e-6)
    # aligned to a given series order; DataFrame accepted
    frame = future.to_dataframe().reset_index()
    flipped = contract.encode_covariates(frame, 3, series=np.array([1, 0]))
    torch.testing.assert_close(flipped, out.flip(0))
    with pytest.raises(ValueError, match="horizon=4"):
        contract.encode_covariates(future, horizon=4)
    with pytest.raises(ValueError, match=r"missing variables \['u'\]"):
        contract.encode_covariates(future.rename(u="v"), horizon=3)
    bad = future.copy(deep=True)
    bad["u"][0, 1] = np.nan
    with pytest.raises(ValueError, match="'u'.*NaN"):
        contract.encode_covariates(bad, horizon=3)
    with pytest.raises(ValueError, match="no series"):
        contract.encode_covariates(future, 3, series=np.array([0, 9]))


def test_encode_covariates_without_covariates():
    contract, _ = DataContract.fit(make_dataset())
    out = contract.encode_covariates(None, 4, series=np.array(["a", "b"]))
    assert out.shape == (2, 4, 0)


# -- time coordinate --------------------------------------------------------------------------


@pytest.mark.parametrize("freq", ["D", "h", "MS", "ME"])
def test_datetime_time_kept_and_extended(freq):
    time = pd.date_range("2021-01-01", periods=6, freq=freq).to_numpy()
    ds = make_dataset(time=time)
    contract, sd, decoded = roundtrip(ds)
    assert contract.time_kind == "datetime"
    assert sd.time.dtype.kind == "M"
    np.testing.assert_array_equal(decoded["time"].values, time)
    future = contract.extend_time(sd.time, 3)
    expected = pd.date_range(time[-1], periods=4, freq=freq)[1:].to_numpy()
    np.testing.assert_array_equal(future, expected)
    assert future.dtype == sd.time.dtype
    # a short context (one value) continues with the training step
    np.testing.assert_array_equal(contract.extend_time(sd.time[-1:], 3), expected)


def test_irregular_datetime_uses_median_step():
    time = np.array(["2021-01-01", "2021-01-02", "2021-01-03", "2021-01-05", "2021-01-06"], dtype="datetime64[ns]")
    contract, sd = DataContract.fit(make_dataset(num_time=5, time=time))
    assert contract.time_step == np.timedelta64(1, "D")
    future = contract.extend_time(sd.time, 2)
    np.testing.assert_array_equal(future, np.array(["2021-01-07", "2021-01-08"], dtype="datetime64[ns]"))


def test_integer_time_continues_with_step():
    ds = make_dataset(time=np.arange(10, 22, 2))
    contract, sd = DataContract.fit(ds)
    assert contract.time_kind == "integer" and contract.time_step == 2
    np.testing.assert_array_equal(contract.extend_time(sd.time, 3), [22, 24, 26])
    np.testing.assert_array_equal(contract.extend_time(np.array([5]), 2), [7, 9])


def test_other_time_uses_positions():
    ds = make_dataset(time=np.array(list("abcdef"), dtype=object))
    contract, sd = DataContract.fit(ds)
    assert contract.time_kind == "other" and contract.time_step is None
    np.testing.assert_array_equal(contract.extend_time(sd.time, 2), [6, 7])
    np.testing.assert_allclose(contract.extend_time(np.array([0.0, 0.5, 1.0]), 2), [1.5, 2.0])


def test_unsorted_time_is_sorted():
    ds = make_dataset().isel(time=[3, 0, 5, 1, 2, 4])
    converted = as_dataset(ds)
    np.testing.assert_array_equal(converted["time"].values, np.arange(6))


# -- SeriesData ------------------------------------------------------------------------------


def test_series_data_select_and_to():
    contract, sd = DataContract.fit(make_covariate_dataset(), covariates=["u"])
    assert len(sd) == 2 and isinstance(sd, SeriesData)
    for index in (slice(1, 2), np.array([1]), torch.tensor([1]), 1, np.array([False, True])):
        sub = sd.select(index)
        assert sub.num_series == 1 and sub.lengths.tolist() == [4]
        assert sub.series.tolist() == [1]
        torch.testing.assert_close(sub.values, sd.values[1:2], equal_nan=True)
    moved = sd.to("cpu")
    assert moved.values.device.type == "cpu" and moved.num_time == 6
    text = repr(sd)
    assert "num_series=2" in text and "num_covariates=1" in text
    assert "DataContract" in repr(contract)


# -- serialisation ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["integer", "datetime"])
def test_to_dict_from_dict_json_roundtrip(kind):
    rng = np.random.default_rng(5)
    time = np.arange(4) if kind == "integer" else pd.date_range("2020-01-01", periods=4, freq="h").to_numpy()
    ds = xr.Dataset(
        {
            "obs": (("series", "time", "sensor"), rng.normal(size=(2, 4, 2))),
            "u": (("series", "time"), rng.normal(size=(2, 4))),
        },
        coords={"sensor": ["a", "b"], "time": time},
    )
    contract, sd = DataContract.fit(ds, covariates=["u"])
    text = json.dumps(contract.to_dict())
    restored = DataContract.from_dict(json.loads(text))
    assert restored.to_dict() == contract.to_dict()
    assert restored.time_step == contract.time_step
    assert restored.channels == contract.channels
    again = restored.encode(ds)
    torch.testing.assert_close(again.values, sd.values)
    torch.testing.assert_close(again.covariates, sd.covariates)
    # a one-value context continues with the restored training step
    np.testing.assert_array_equal(restored.extend_time(sd.time[:1], 2), sd.time[1:3])


def test_decode_shape_errors():
    contract, sd = DataContract.fit(make_dataset())
    with pytest.raises(ValueError, match="channels"):
        contract.decode(torch.zeros(1, 3, 6, 5), sd.series, sd.time)
    with pytest.raises(ValueError, match=r"\(S, N, T, D\)"):
        contract.decode(torch.zeros(3, 6, 2), sd.series, sd.time)
    with pytest.raises(ValueError, match="len\\(time\\)"):
        contract.decode(torch.zeros(1, 3, 5, 2), sd.series, sd.time)
    out = contract.decode(np.zeros((3, 6, 2)), sd.series, sd.time, sample_dim=None)
    assert out["x"].dims == ("series", "time")
    np.testing.assert_allclose(out["x"].values, contract.loc[0])


# -- validation errors -----------------------------------------------------------------------


def test_error_not_accepted_type():
    with pytest.raises(TypeError, match="data must be .*Dataset.*DataFrame.*got list"):
        as_dataset([[1.0, 2.0]])


def test_error_variable_without_series_or_time():
    ds = make_dataset()
    ds["static"] = ("series", np.ones(3))
    with pytest.raises(ValueError, match=r"'static'.*\('series', 'time'\)"):
        DataContract.fit(ds)
    ds2 = make_dataset()
    ds2["clock"] = ("time", np.ones(6))
    with pytest.raises(ValueError, match=r"'clock'.*expected \('series', 'time'\)"):
        as_dataset(ds2)


def test_error_two_extra_dims():
    ds = make_dataset()
    ds["cube"] = (("series", "time", "a", "b"), np.ones((3, 6, 2, 2)))
    with pytest.raises(ValueError, match=r"'cube'.*extra dims \('a', 'b'\).*at most one"):
        DataContract.fit(ds)


def test_error_dataarray_dims():
    with pytest.raises(ValueError, match="expected \\('series', 'time', feature\\)"):
        as_dataset(xr.DataArray(np.ones((2, 3, 4)), dims=("a", "time", "feature")))


def test_error_non_numeric_variable():
    ds = make_dataset()
    ds["label"] = (("series", "time"), np.full((3, 6), "a", dtype=object))
    with pytest.raises(TypeError, match="'label'.*non-numeric"):
        DataContract.fit(ds)
    frame = pd.DataFrame({"series": [0, 0], "time": [0, 1], "x": [1.0, 2.0], "word": ["a", "b"]})
    with pytest.raises(TypeError, match="'word'.*non-numeric"):
        as_dataset(frame)
    long = pd.DataFrame({"series": [0], "time": [0], "variable": ["x"], "value": ["high"]})
    with pytest.raises(TypeError, match="'value'.*non-numeric"):
        as_dataset(long)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_error_infinite(value):
    ds = make_dataset()
    ds["y"][1, 1] = value
    with pytest.raises(ValueError, match="'y'.*inf"):
        DataContract.fit(ds)


def test_error_unknown_covariate():
    with pytest.raises(ValueError, match=r"\['u9'\].*available variables: \['x', 'y'\]"):
        DataContract.fit(make_dataset(), covariates=["u9"])


@pytest.mark.parametrize("covariates", ["y", [1], ("y", None), {"y": 1}])
def test_error_covariates_not_list_of_str(covariates):
    with pytest.raises(TypeError, match="covariates"):
        DataContract.fit(make_dataset(), covariates=covariates)


def test_error_empty_data():
    ds = make_dataset()
    with pytest.raises(ValueError, match="'series' has size 0"):
        DataContract.fit(ds.isel(series=slice(0, 0)))
    with pytest.raises(ValueError, match="'time' has size 0"):
        DataContract.fit(ds.isel(time=slice(0, 0)))
    with pytest.raises(ValueError, match="no target variables"):
        DataContract.fit(ds, covariates=["x", "y"])
    with pytest.raises(ValueError, match="no target variables"):
        DataContract.fit(xr.Dataset())


def test_error_all_missing_variable():
    ds = make_dataset()
    ds["y"][:] = np.nan
    with pytest.raises(ValueError, match="'y'.*no observed values"):
        DataContract.fit(ds)


def test_error_all_missing_channel():
    values = np.ones((2, 3, 2))
    values[..., 1] = np.nan
    ds = xr.Dataset({"obs": (("series", "time", "sensor"), values)}, coords={"sensor": ["a", "b"]})
    with pytest.raises(ValueError, match=r"'obs' \(sensor='b'\).*no observed values"):
        DataContract.fit(ds)


def test_error_series_shorter_than_min_length():
    x = np.ones((3, 5))
    x[1, 2:] = np.nan  # length 2
    ds = xr.Dataset({"x": (("series", "time"), x)}, coords={"series": ["a", "b", "c"]})
    with pytest.raises(ValueError, match=r"\['b'\].*min_length=3"):
        DataContract.fit(ds, min_length=3)
    contract, sd = DataContract.fit(ds, min_length=2)
    assert sd.lengths.tolist() == [5, 2, 5]
    with pytest.raises(ValueError, match=r"\['b'\].*min_length=4"):
        contract.encode(ds, min_length=4)


def test_error_empty_series_is_length_zero():
    x = np.ones((2, 4))
    x[0] = np.nan
    ds = xr.Dataset({"x": (("series", "time"), x)}, coords={"series": [7, 8]})
    with pytest.raises(ValueError, match=r"\[7\].*min_length=1.*lengths \[0\]"):
        DataContract.fit(ds)


def test_error_covariate_nan_inside_series():
    ds = make_covariate_dataset()
    ds["u"][1, 2] = np.nan  # inside series 1 (length 4)
    with pytest.raises(ValueError, match=r"covariate 'u' is NaN.*series \[1\]"):
        DataContract.fit(ds, covariates=["u"])


def test_error_long_dataframe_duplicates():
    frame = pd.DataFrame(
        {"series": [0, 0, 0], "time": [0, 1, 1], "variable": ["x", "x", "x"], "value": [1.0, 2.0, 3.0]}
    )
    with pytest.raises(ValueError, match="duplicate"):
        as_dataset(frame)
    wide = pd.DataFrame({"series": [0, 0], "time": [1, 1], "x": [1.0, 2.0]})
    with pytest.raises(ValueError, match="duplicate"):
        as_dataset(wide)


@pytest.mark.parametrize("column", ["series", "time"])
def test_error_dataframe_without_column(column):
    frame = pd.DataFrame({"series": [0, 0], "time": [0, 1], "x": [1.0, 2.0]}).drop(columns=column)
    with pytest.raises(ValueError, match=f"no '{column}' column"):
        as_dataset(frame)


def test_error_encode_unknown_or_missing_variables():
    contract, _ = DataContract.fit(make_dataset())
    ds = make_dataset()
    ds["z"] = ds["x"]
    with pytest.raises(ValueError, match=r"unknown variables \['z'\]"):
        contract.encode(ds)
    with pytest.raises(ValueError, match=r"missing target variables \['y'\]"):
        contract.encode(make_dataset()[["x"]])
    contract_u, _ = DataContract.fit(make_covariate_dataset(), covariates=["u"])
    with pytest.raises(ValueError, match=r"missing covariate variables \['u'\]"):
        contract_u.encode(make_covariate_dataset()[["x"]])


def test_error_encode_feature_coords_mismatch():
    ds = xr.Dataset({"obs": (("series", "time", "sensor"), np.ones((1, 3, 2)))}, coords={"sensor": ["a", "b"]})
    contract, _ = DataContract.fit(ds)
    other = ds.assign_coords(sensor=["a", "c"])
    with pytest.raises(ValueError, match=r"'obs'.*\['a', 'c'\].*expected \['a', 'b'\]"):
        contract.encode(other)


def test_error_duplicate_coordinates():
    ds = make_dataset().assign_coords(series=["a", "a", "b"])
    with pytest.raises(ValueError, match="'series' has duplicate"):
        as_dataset(ds)


@pytest.mark.parametrize(
    "times,time_format",
    [
        (["12/30/2023", "12/31/2023", "01/01/2024", "01/02/2024"], None),
        (["2023-12-30", "2023-12-31", "2024-01-01", "2024-01-02"], None),
        (["30.12.2023", "31.12.2023", "01.01.2024", "02.01.2024"], "%d.%m.%Y"),
    ],
)
def test_string_dates_are_parsed_as_dates_never_sorted_as_text(times, time_format):
    rng = np.random.default_rng(0)
    order = rng.permutation(4)
    df = pd.DataFrame({"series": 0, "time": [times[i] for i in order], "x": [float(i) for i in order]})
    ds = as_dataset(df, time_format=time_format)
    assert ds["time"].dtype.kind == "M"
    assert list(pd.DatetimeIndex(ds["time"].values).strftime("%Y-%m-%d")) == [
        "2023-12-30",
        "2023-12-31",
        "2024-01-01",
        "2024-01-02",
    ]
    np.testing.assert_array_equal(ds["x"].values[0], [0.0, 1.0, 2.0, 3.0])  # values moved with their dates


def test_string_times_that_are_not_dates_keep_their_order():
    df = pd.DataFrame({"series": 0, "time": ["t10", "t2", "t1"], "x": [1.0, 2.0, 3.0]})
    ds = as_dataset(df)
    assert ds["time"].values.tolist() == ["t10", "t2", "t1"] and ds["x"].values[0].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="does not match time_format"):
        as_dataset(df, time_format="%Y-%m-%d")


def test_a_datetime_fitted_contract_refuses_integer_times_and_vice_versa():
    dates = make_dataset(time=pd.date_range("2024-01-01", periods=6))
    contract, _ = DataContract.fit(dates)
    with pytest.raises(ValueError, match="data has a integer time coordinate; the model was fitted on datetime"):
        contract.encode(make_dataset())
    integers, _ = DataContract.fit(make_dataset())
    with pytest.raises(ValueError, match="fitted on integer times"):
        integers.encode(dates)


def test_long_dataframes_with_their_own_column_names():
    df = pd.DataFrame(
        {"item": ["b", "b", "a", "a"], "date": ["2024-01-02", "2024-01-01"] * 2, "sales": [2.0, 1.0, 4.0, 3.0]}
    )
    ds = as_dataset(df, series="item", time="date")
    assert ds["series"].values.tolist() == ["a", "b"] and ds["time"].dtype.kind == "M"
    np.testing.assert_array_equal(ds["sales"].values, [[3.0, 4.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match="no column 'day' \\(given as time=\\)"):
        as_dataset(df, series="item", time="day")
    with pytest.raises(TypeError, match="apply to a DataFrame"):
        as_dataset(ds, series="item")


def test_a_pivoted_dataframe_has_one_column_per_series():
    piv = pd.DataFrame({"a": [1.0, 2.0, np.nan], "b": [3.0, 4.0, 5.0]}, index=pd.date_range("2024-01-01", periods=3))
    ds = as_dataset(piv, series_columns=True)
    assert ds["series"].values.tolist() == ["a", "b"] and list(ds.data_vars) == ["x"]
    np.testing.assert_array_equal(ds["x"].values, [[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]])
    assert (ds["time"].values == piv.index.values).all()


def test_series_arrays_and_default_named_dataarrays():
    one = as_dataset(pd.Series([1.0, 2.0, 3.0], index=pd.date_range("2024-01-01", periods=3), name="y"))
    assert list(one.data_vars) == ["y"] and one.sizes == {"series": 1, "time": 3}
    index = pd.MultiIndex.from_product([[0, 1], [10, 11]], names=["series", "time"])
    two = as_dataset(pd.Series([1.0, 2.0, 3.0, 4.0], index=index))
    np.testing.assert_array_equal(two["x"].values, [[1.0, 2.0], [3.0, 4.0]])
    arr = np.arange(12.0).reshape(2, 3, 2)
    ds = as_dataset(arr)
    assert list(ds.data_vars) == ["x0", "x1"] and np.array_equal(ds["x1"].values, arr[..., 1])
    assert list(as_dataset(arr[..., 0]).data_vars) == ["x"]
    assert as_dataset(xr.DataArray(arr)).sizes == {"series": 2, "time": 3}
    with pytest.raises(ValueError, match="must be \\(N, T\\) or \\(N, T, D\\)"):
        as_dataset(np.zeros(3))


def test_windows_cut_long_series_and_say_where_each_came_from():
    from pyrossm.data import windows

    ds = xr.Dataset(
        {"x": (("series", "time"), np.arange(20.0).reshape(2, 10))},
        coords={"series": ["a", "b"], "time": np.arange(10)},
    )
    w = windows(ds, 4, stride=3)
    assert w.sizes == {"series": 6, "time": 4}
    assert w["source_series"].values.tolist() == ["a"] * 3 + ["b"] * 3
    assert w["start_time"].values.tolist() == [0, 3, 6] * 2
    np.testing.assert_array_equal(w["x"].values[4], [13.0, 14.0, 15.0, 16.0])
    assert windows(ds, 5).sizes["series"] == 4  # adjacent by default
    with pytest.raises(ValueError, match="exceeds the data's 10 time steps"):
        windows(ds, 11)


def test_windows_carry_per_series_coordinates():
    import xarray as xr

    from pyrossm.data import windows

    ds = xr.Dataset(
        {"x": (("series", "time"), np.arange(30.0).reshape(3, 10))},
        coords={"series": [7, 3, 5], "label": ("series", ["a", "b", "c"]), "time": np.arange(10)},
    )
    w = windows(ds, 4, stride=3)  # 3 windows per series
    assert w.sizes["series"] == 9
    assert w["source_series"].values.tolist() == [7, 7, 7, 3, 3, 3, 5, 5, 5]
    assert w["label"].values.tolist() == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    assert w["x"].values[3].tolist() == [10.0, 11.0, 12.0, 13.0]  # series 3 is the second row
    sub = windows(ds.isel(series=[2, 0]), 4, stride=3)
    assert sub["label"].values.tolist() == ["c"] * 3 + ["a"] * 3
