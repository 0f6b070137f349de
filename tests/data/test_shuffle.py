"""shuffle_time: the time-shuffled control (each series' time steps in a random order)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pyrossm.data import shuffle_time


def _dataset(num_series=3, length=100, seed=0):
    rng = np.random.default_rng(seed)
    shape = (num_series, length)
    return xr.Dataset(
        {
            "a": (("series", "time"), rng.normal(size=shape)),
            "b": (("series", "time"), rng.normal(size=shape)),
            "c": (("series", "time", "feature"), rng.normal(size=shape + (2,))),
        },
        coords={"series": ["s0", "s1", "s2"][:num_series], "time": np.arange(length)},
    )


def _rows(ds, i):
    """``(T, 4)``: series ``i``'s rows (a, b, c[0], c[1]) in time order."""
    return np.column_stack([ds["a"].values[i], ds["b"].values[i], ds["c"].values[i]])


def _sorted_rows(rows):
    return rows[np.lexsort(rows.T[::-1])]


def test_values_and_rows_kept_order_changed():
    ds = _dataset()
    out = shuffle_time(ds, seed=1)
    assert isinstance(out, xr.Dataset) and list(out.data_vars) == ["a", "b", "c"]
    assert out["a"].dims == ("series", "time") and out["c"].dims == ("series", "time", "feature")
    xr.testing.assert_identical(out["time"], ds["time"])
    xr.testing.assert_identical(out["series"], ds["series"])
    for i in range(3):
        for name in ("a", "b"):  # each series' multiset of values is unchanged
            np.testing.assert_array_equal(np.sort(out[name].values[i]), np.sort(ds[name].values[i]))
        # every time step's tuple of values stays together (one permutation for all variables)
        np.testing.assert_array_equal(_sorted_rows(_rows(out, i)), _sorted_rows(_rows(ds, i)))
        assert not np.array_equal(out["a"].values[i], ds["a"].values[i])  # 100 steps: order changed
    # independent permutations per series: out[i] = ds[i][perm_i]
    perms = []
    for i in range(3):
        original = ds["a"].values[i]
        order = np.argsort(original)
        perms.append(order[np.searchsorted(original[order], out["a"].values[i])])
        np.testing.assert_array_equal(original[perms[-1]], out["a"].values[i])
    assert not np.array_equal(perms[0], perms[1]) and not np.array_equal(perms[1], perms[2])


def test_seed_reproducible_and_input_untouched():
    ds = _dataset()
    before = ds.copy(deep=True)
    xr.testing.assert_identical(shuffle_time(ds, seed=5), shuffle_time(ds, seed=5))
    assert not np.array_equal(shuffle_time(ds, seed=5)["a"].values, shuffle_time(ds, seed=6)["a"].values)
    xr.testing.assert_identical(shuffle_time(ds), shuffle_time(ds, seed=0))
    xr.testing.assert_identical(ds, before)


def test_ragged_series_keep_trailing_nan_at_the_end():
    ds = _dataset(length=20)
    ds["a"][1, 12:] = np.nan
    ds["b"][1, 12:] = np.nan
    ds["c"][1, 12:] = np.nan
    ds["a"][2, 15:] = np.nan  # a step is observed while any variable is observed there
    ds["a"][0, 3] = np.nan  # a missing value inside the span moves with its row
    out = shuffle_time(ds, seed=3)
    for name in ("a", "b", "c"):
        assert np.isnan(out[name].values[1, 12:]).all()
        assert not np.isnan(out[name].values[1, :12]).any()
    assert not np.isnan(out["b"].values[2]).any() and np.isnan(out["a"].values[2]).sum() == 5
    for i in range(3):
        rows, orig = _rows(out, i), _rows(ds, i)
        np.testing.assert_array_equal(_sorted_rows(rows), _sorted_rows(orig))  # NaN sort last
    np.testing.assert_array_equal(_sorted_rows(_rows(out, 1)[:12]), _sorted_rows(_rows(ds, 1)[:12]))
    j = int(np.flatnonzero(np.isnan(out["a"].values[0]))[0])
    assert out["b"].values[0, j] == ds["b"].values[0, 3]


def test_all_missing_series_and_short_series():
    x = np.array([[np.nan, np.nan, np.nan], [1.0, np.nan, np.nan], [1.0, 2.0, 3.0]])
    out = shuffle_time(x, seed=0)
    np.testing.assert_array_equal(out["x"].values[:2], x[:2])
    np.testing.assert_array_equal(np.sort(out["x"].values[2]), [1.0, 2.0, 3.0])


def test_lag1_autocorrelation_of_a_random_walk_vanishes():
    rng = np.random.default_rng(0)
    walks = np.cumsum(rng.normal(size=(200, 100)), axis=1)

    def lag1(x):
        x = x - x.mean(axis=1, keepdims=True)
        return (x[:, 1:] * x[:, :-1]).sum(axis=1) / (x * x).sum(axis=1)

    out = shuffle_time(walks, seed=0)["x"].values
    assert lag1(walks).mean() > 0.85
    # shuffled: E ~ -1/T, sd of one series ~ 1/sqrt(T) = 0.1, of the mean of 200 ~ 0.007
    assert abs(lag1(out).mean()) < 0.04
    assert np.abs(lag1(out)).max() < 0.5


def test_other_input_forms_and_coords_kept():
    times = pd.date_range("2024-01-01", periods=50, freq="D")
    frame = pd.DataFrame({"series": np.repeat(["u", "v"], 50), "time": np.tile(times, 2)})
    frame["y"] = np.arange(100.0)
    frame["z"] = -np.arange(100.0)
    out = shuffle_time(frame, seed=2)
    np.testing.assert_array_equal(out["time"].values, times.values)
    assert out["series"].values.tolist() == ["u", "v"]
    np.testing.assert_array_equal(out["y"].values, -out["z"].values)  # rows intact
    np.testing.assert_array_equal(np.sort(out["y"].values[1]), np.arange(50.0, 100.0))

    cube = np.random.default_rng(1).normal(size=(4, 30, 3))
    out = shuffle_time(cube, seed=0)
    assert list(out.data_vars) == ["x0", "x1", "x2"]
    for i in range(4):
        rows = np.column_stack([out[f"x{d}"].values[i] for d in range(3)])
        np.testing.assert_array_equal(_sorted_rows(rows), _sorted_rows(cube[i]))

    # per-series labels of a Dataset survive (e.g. pyrossm.datasets.basic_motions())
    ds = _dataset().assign_coords(label=("series", ["x", "y", "z"]))
    ds.attrs["title"] = "t"
    out = shuffle_time(ds, seed=0)
    assert out["label"].values.tolist() == ["x", "y", "z"] and out.attrs["title"] == "t"


@pytest.mark.parametrize("seed", [1.5, "0", None, True, np.float64(2.0)])
def test_seed_type_errors(seed):
    with pytest.raises(TypeError, match="seed must be an int"):
        shuffle_time(_dataset(), seed=seed)


def test_seed_value_error():
    with pytest.raises(ValueError, match="non-negative"):
        shuffle_time(_dataset(), seed=-1)
    assert shuffle_time(_dataset(), seed=np.int64(3))["a"].shape == (3, 100)
