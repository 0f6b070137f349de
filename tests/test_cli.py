"""The ``pyrossm`` command line: fit -> forecast on NetCDF and CSV files, help, errors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import pyrossm
from pyrossm.cli import main

TINY_ARGS = '{"channels": 4, "hidden_dim": 4, "encoder_layers": 1, "emission_layers": 1, "transition_layers": 1}'


@pytest.fixture
def files(tmp_path, make_ds):
    ds = make_ds(num_series=4, length=6)
    nc = tmp_path / "data.nc"
    ds.to_netcdf(nc)
    csv = tmp_path / "data.csv"
    ds.to_dataframe().reset_index().to_csv(csv, index=False)  # wide form: series, time, x
    return ds, nc, csv


@pytest.mark.parametrize("source", ["nc", "csv"])
def test_fit_then_forecast(files, tmp_path, source, capsys):
    ds, nc, csv = files
    model_file = tmp_path / "model.pyrossm"
    code = main(["fit", "--data", str(nc if source == "nc" else csv), "--out", str(model_file),
                 "--num-steps", "3", "--quiet", "--order", "2", "--model-args", TINY_ARGS])
    assert code == 0
    assert model_file.is_file()
    res = pyrossm.load(model_file)
    assert len(res.history) == 3 and res.model.order == 2

    out = tmp_path / "fc.nc"
    code = main(["forecast", "--model-file", str(model_file), "--context", str(nc), "--horizon", "2",
                 "--num-samples", "5", "--out", str(out)])
    assert code == 0
    fc = xr.load_dataset(out)
    assert fc["x"].dims == ("draw", "series", "time")
    assert dict(fc.sizes) == {"draw": 5, "series": 4, "time": 2}
    assert fc["time"].values.tolist() == [6, 7]
    assert np.isfinite(fc["x"].values).all()
    # the CLI's forecast is the library's forecast with the same seed
    direct = res.forecast(ds, horizon=2, num_samples=5, seed=0)
    np.testing.assert_array_equal(fc["x"].values, direct["x"].values)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".tmp") == []
    assert "wrote forecast" in capsys.readouterr().out


@pytest.mark.parametrize("command", [[], ["fit"], ["forecast"], ["demo"]])
def test_help_exits_zero(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main(command + ["--help"])
    assert exc.value.code == 0
    assert "usage: pyrossm" in capsys.readouterr().out


def exit_code(argv):
    try:
        return main(argv)
    except SystemExit as exc:  # argparse and file errors exit instead of returning
        return exc.code


def test_missing_data_file_fails(tmp_path):
    code = exit_code(["fit", "--data", str(tmp_path / "nope.nc"), "--out", str(tmp_path / "m.pyrossm"),
                      "--num-steps", "1", "--quiet"])
    assert code not in (0, None)
    assert not (tmp_path / "m.pyrossm").exists()


def test_bad_arguments_fail_with_nonzero_codes(files, tmp_path, capsys):
    _, nc, _ = files
    assert exit_code(["fit", "--data", str(nc), "--out", str(tmp_path / "m"), "--num-steps", "1",
                      "--quiet", "--model", "kalman"]) == 2
    assert "kalman" in capsys.readouterr().err
    assert exit_code(["fit", "--data", str(nc), "--out", str(tmp_path / "m")]
                     + ["--num-steps", "1", "--quiet", "--model-args", '{"foo": 1}']) == 2
    assert "foo" in capsys.readouterr().err
    assert exit_code(["fit", "--out", str(tmp_path / "m")]) not in (0, None)  # --data is required
    assert exit_code(["forecast", "--model-file", str(nc), "--context", str(nc), "--horizon", "2",
                      "--out", str(tmp_path / "fc.nc")]) == 2  # a data file is not a model file
    assert not (tmp_path / "fc.nc").exists()


def test_fit_with_validation_keeps_the_best_parameters(files, tmp_path, make_ds):
    _, nc, _ = files
    val = tmp_path / "val.nc"
    make_ds(num_series=3, length=6, seed=7).to_netcdf(val)
    model_file = tmp_path / "model.pyrossm"
    code = main(["fit", "--data", str(nc), "--out", str(model_file), "--num-steps", "6", "--quiet",
                 "--validation-data", str(val), "--validate-every", "2", "--keep-best",
                 "--model-args", TINY_ARGS])
    assert code == 0
    res = pyrossm.load(model_file)
    val_elbo = res.history["val_elbo"].dropna()
    assert list(val_elbo.index) == [1, 3, 5]
    assert res.config["kept"]["step"] == int(val_elbo.idxmax())


def test_fit_keeps_the_best_log_score(files, tmp_path, make_ds):
    _, nc, _ = files
    val = tmp_path / "val.nc"
    make_ds(num_series=3, length=6, seed=7).to_netcdf(val)
    model_file = tmp_path / "model.pyrossm"
    assert main(["fit", "--data", str(nc), "--out", str(model_file), "--num-steps", "6", "--quiet",
                 "--validation-data", str(val), "--validate-every", "3", "--keep-best",
                 "--validation-metric", "log_score", "--model-args", TINY_ARGS]) == 0
    res = pyrossm.load(model_file)
    score = res.history["val_log_score"].dropna()
    assert list(score.index) == [2, 5]
    assert res.config["kept"]["metric"] == "log_score"
    assert res.config["kept"]["step"] == int(score.idxmax())


@pytest.mark.parametrize("extra,message", [
    (["--keep-best"], "--validation-data"),
    (["--validation-metric", "log_score"], "--validation-data"),
    (["--validate-every", "2"], "--validation-data"),
    (["--validation-data", "VAL"], "--validate-every"),
])
def test_validation_options_need_each_other(files, tmp_path, make_ds, extra, message, capsys):
    _, nc, _ = files
    val = tmp_path / "val.nc"
    make_ds(num_series=3, length=6, seed=7).to_netcdf(val)
    extra = [str(val) if a == "VAL" else a for a in extra]
    code = exit_code(["fit", "--data", str(nc), "--out", str(tmp_path / "m.pyrossm"),
                      "--num-steps", "1", "--quiet", *extra])
    assert code not in (0, None)
    assert message in str(code) + capsys.readouterr().err
    assert not (tmp_path / "m.pyrossm").exists()
