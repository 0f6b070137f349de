"""The ``pyrossm`` command line: fit -> forecast on NetCDF and CSV files, help, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
    code = main(
        [
            "fit",
            "--data",
            str(nc if source == "nc" else csv),
            "--out",
            str(model_file),
            "--num-steps",
            "3",
            "--quiet",
            "--order",
            "2",
            "--model-args",
            TINY_ARGS,
        ]
    )
    assert code == 0
    assert model_file.is_file()
    res = pyrossm.load(model_file)
    assert len(res.history) == 3 and res.model.order == 2

    out = tmp_path / "fc.nc"
    code = main(
        [
            "forecast",
            "--model-file",
            str(model_file),
            "--context",
            str(nc),
            "--horizon",
            "2",
            "--num-samples",
            "5",
            "--out",
            str(out),
        ]
    )
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
    code = exit_code(
        [
            "fit",
            "--data",
            str(tmp_path / "nope.nc"),
            "--out",
            str(tmp_path / "m.pyrossm"),
            "--num-steps",
            "1",
            "--quiet",
        ]
    )
    assert code not in (0, None)
    assert not (tmp_path / "m.pyrossm").exists()


def test_bad_arguments_fail_with_nonzero_codes(files, tmp_path, capsys):
    _, nc, _ = files
    assert (
        exit_code(
            ["fit", "--data", str(nc), "--out", str(tmp_path / "m"), "--num-steps", "1", "--quiet", "--model", "kalman"]
        )
        == 2
    )
    assert "kalman" in capsys.readouterr().err
    assert (
        exit_code(
            ["fit", "--data", str(nc), "--out", str(tmp_path / "m")]
            + ["--num-steps", "1", "--quiet", "--model-args", '{"foo": 1}']
        )
        == 2
    )
    assert "foo" in capsys.readouterr().err
    assert exit_code(["fit", "--out", str(tmp_path / "m")]) not in (0, None)  # --data is required
    assert (
        exit_code(
            [
                "forecast",
                "--model-file",
                str(nc),
                "--context",
                str(nc),
                "--horizon",
                "2",
                "--out",
                str(tmp_path / "fc.nc"),
            ]
        )
        == 2
    )  # a data file is not a model file
    assert not (tmp_path / "fc.nc").exists()


def test_fit_with_validation_keeps_the_best_parameters(files, tmp_path, make_ds):
    _, nc, _ = files
    val = tmp_path / "val.nc"
    make_ds(num_series=3, length=6, seed=7).to_netcdf(val)
    model_file = tmp_path / "model.pyrossm"
    code = main(
        [
            "fit",
            "--data",
            str(nc),
            "--out",
            str(model_file),
            "--num-steps",
            "6",
            "--quiet",
            "--validation-data",
            str(val),
            "--validate-every",
            "2",
            "--keep-best",
            "--model-args",
            TINY_ARGS,
        ]
    )
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
    assert (
        main(
            [
                "fit",
                "--data",
                str(nc),
                "--out",
                str(model_file),
                "--num-steps",
                "6",
                "--quiet",
                "--validation-data",
                str(val),
                "--validate-every",
                "3",
                "--keep-best",
                "--validation-metric",
                "log_score",
                "--model-args",
                TINY_ARGS,
            ]
        )
        == 0
    )
    res = pyrossm.load(model_file)
    score = res.history["val_log_score"].dropna()
    assert list(score.index) == [2, 5]
    assert res.config["kept"]["metric"] == "log_score"
    assert res.config["kept"]["step"] == int(score.idxmax())


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--keep-best"], "--validation-data"),
        (["--validation-metric", "log_score"], "--validation-data"),
        (["--validate-every", "2"], "--validation-data"),
        (["--validation-data", "VAL"], "--validate-every"),
    ],
)
def test_validation_options_need_each_other(files, tmp_path, make_ds, extra, message, capsys):
    _, nc, _ = files
    val = tmp_path / "val.nc"
    make_ds(num_series=3, length=6, seed=7).to_netcdf(val)
    extra = [str(val) if a == "VAL" else a for a in extra]
    code = exit_code(
        ["fit", "--data", str(nc), "--out", str(tmp_path / "m.pyrossm"), "--num-steps", "1", "--quiet", *extra]
    )
    assert code not in (0, None)
    assert message in str(code) + capsys.readouterr().err
    assert not (tmp_path / "m.pyrossm").exists()


# ------------------------------------------------------------------ --trainer-config
#: the rate's settings spelled out: a dict (the flat file, the nested one, fit's ``trainer``) is read
#: on top of the DKF's own defaults, a ``TrainerConfig`` (``expected``) on the library-wide ones
FLAT_SETTINGS = {
    "num_steps": 4,
    "batch_size": 2,
    "learning_rate": 1e-3,
    "lr_schedule": "cosine",
    "lr_end_factor": 0.1,
    "learning_rates": {"transition": 0.01},
    "annealing": {"kind": "linear", "start": 0.1, "end": 1.0, "warmup_steps": 2},
}


def _fit_cli(nc, out, *extra):
    return exit_code(["fit", "--data", str(nc), "--out", str(out), "--quiet", "--model-args", TINY_ARGS, *extra])


@pytest.mark.parametrize("form", ["flat", "nested"])
def test_trainer_config_from_a_json_file(files, tmp_path, form):
    import json

    from pyrossm.inference import TrainerConfig

    ds, nc, _ = files
    expected = TrainerConfig.from_dict(FLAT_SETTINGS)
    settings = tmp_path / "trainer.json"
    settings.write_text(json.dumps(FLAT_SETTINGS if form == "flat" else expected.to_dict(), indent=2))
    assert _fit_cli(nc, tmp_path / "m.pyrossm", "--trainer-config", str(settings)) == 0
    res = pyrossm.load(tmp_path / "m.pyrossm")
    assert res.config["trainer"] == expected.updated(progress=False).to_dict()
    history = res.history
    assert len(history) == 4 and (history["batch_size"] == 2).all()
    np.testing.assert_allclose(history["annealing"], [0.1, 0.55, 1.0, 1.0])
    # the same run as the library's fit with those settings
    tiny = dict(channels=4, hidden_dim=4, encoder_layers=1, emission_layers=1, transition_layers=1)
    direct = pyrossm.fit(data=ds, trainer=FLAT_SETTINGS, progress=False, **tiny)
    pd.testing.assert_frame_equal(history.drop(columns="seconds"), direct.history.drop(columns="seconds"))
    # a flag replaces the file's value
    assert (
        _fit_cli(
            nc, tmp_path / "m2.pyrossm", "--trainer-config", str(settings), "--num-steps", "2", "--batch-size", "3"
        )
        == 0
    )
    res = pyrossm.load(tmp_path / "m2.pyrossm")
    assert len(res.history) == 2 and (res.history["batch_size"] == 3).all()
    assert res.config["trainer"]["schedule"]["lr_schedule"] == "cosine"


def test_trainer_config_preset_is_stretched_to_num_steps(files, tmp_path, make_ds):
    from pyrossm.inference import TrainerConfig

    _, nc, _ = files
    assert _fit_cli(nc, tmp_path / "m.pyrossm", "--trainer-config", "dkf-table3", "--num-steps", "3") == 0
    res = pyrossm.load(tmp_path / "m.pyrossm")
    expected = TrainerConfig.from_preset("dkf-table3", num_steps=3).updated(progress=False)
    assert res.config["trainer"] == expected.to_dict()
    assert res.config["trainer"]["schedule"] == {"lr_schedule": "constant", "lr_end_factor": 0.1, "lr_warmup_steps": 0}
    # the ramp of lambda over 867 of 3000 steps, over 1 of 3
    assert res.config["trainer"]["objective"]["annealing"]["warmup_steps"] == 1
    assert len(res.history) == 3
    np.testing.assert_allclose(res.history["lr_transition"], 0.000099)  # Table 3's, constant
    # with validation flags on top, the preset is stretched all the same
    val = tmp_path / "val.nc"
    make_ds(num_series=3, length=6, seed=7).to_netcdf(val)
    assert (
        exit_code(
            [
                "fit",
                "--data",
                str(nc),
                "--out",
                str(tmp_path / "d.pyrossm"),
                "--quiet",
                "--model",
                "ddssm",
                "--model-args",
                '{"channels": 4, "hidden_dim": 4, "encoder_layers": 1, "emission_layers": 1, '
                '"diffusion_channels": 4, "diffusion_layers": 1, "num_diffusion_steps": 8}',
                "--trainer-config",
                "ddssm-table3",
                "--num-steps",
                "6",
                "--validation-data",
                str(val),
                "--validate-every",
                "2",
            ]
        )
        == 0
    )
    trainer = pyrossm.load(tmp_path / "d.pyrossm").config["trainer"]
    stretched = TrainerConfig.from_preset("ddssm-table3", num_steps=6)
    warmup = trainer["objective"]["annealing"]["warmup_steps"]
    assert warmup == stretched.objective.annealing.warmup_steps == 2  # 889 of 3000 steps
    assert trainer["selection"]["validate_every"] == 2


@pytest.mark.parametrize(
    "content,message",
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        (None, "no such file"),
    ],
)
def test_an_unreadable_trainer_config_file_is_one_line_error(files, tmp_path, content, message, capsys):
    _, nc, _ = files
    settings = tmp_path / "trainer.json"
    if content is not None:
        settings.write_text(content)
    code = _fit_cli(nc, tmp_path / "m.pyrossm", "--trainer-config", str(settings))
    text = code if isinstance(code, str) else capsys.readouterr().err
    assert code not in (0, None)
    assert text.startswith("error: ") and message in text and "\n" not in text.strip()
    assert not (tmp_path / "m.pyrossm").exists()


@pytest.mark.parametrize(
    "setting,culprit",
    [
        ('{"keep_bset": true}', "did you mean 'keep_best'"),
        ('{"lr_schedule": "sawtooth"}', "sawtooth"),
        ('{"lr_restarts": [5]}', "'lr_restarts': this setting was removed from pyrossm"),
        ("dkf-tabel3", "did you mean 'dkf-table3'"),
    ],
)
def test_bad_trainer_settings_exit_2(files, tmp_path, setting, culprit, capsys):
    _, nc, _ = files
    if setting.startswith("{"):
        path = tmp_path / "trainer.json"
        path.write_text(setting)
        setting = str(path)
    assert _fit_cli(nc, tmp_path / "m.pyrossm", "--trainer-config", setting, "--num-steps", "1") == 2
    err = capsys.readouterr().err
    assert culprit in err and err.startswith("error: ") and err.strip().count("\n") == 0


@pytest.mark.parametrize(
    "argv,message",
    [
        (["fit", "--data", "nope.nc", "--out", "m.pyrossm"], "error: no such file: 'nope.nc'"),
        (["fit", "--data", "data.txt", "--out", "m.pyrossm"], "expected a .nc or .csv file"),
        (
            ["forecast", "--model-file", "corrupt.pyrossm", "--context", "x.nc", "--horizon", "1", "--out", "f.nc"],
            "is not a valid pyrossm file",
        ),
    ],
)
def test_every_user_error_is_one_line_and_exit_code_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.txt").write_text("x")
    (tmp_path / "corrupt.pyrossm").write_bytes(b"PK not a zip")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_csv_dates_survive_fit_and_forecast_and_the_output_follows_its_extension(tmp_path, capsys):
    rng = np.random.default_rng(0)
    dates = pd.date_range("2023-12-25", periods=10, freq="D")
    rows = [
        (s, d.strftime("%Y-%m-%d"), float(v)) for s in range(4) for d, v in zip(dates, rng.normal(size=10).cumsum())
    ]
    data = tmp_path / "data.csv"
    pd.DataFrame(rows, columns=["series", "time", "x"]).to_csv(data, index=False)
    model = tmp_path / "m.pyrossm"
    assert (
        main(
            ["fit", "--data", str(data), "--out", str(model), "--num-steps", "2", "--quiet", "--model-args", TINY_ARGS]
        )
        == 0
    )
    out = tmp_path / "fc.csv"
    argv = ["forecast", "--model-file", str(model), "--context", str(data), "--horizon", "3", "--num-samples", "2"]
    assert main(argv + ["--out", str(out)]) == 0
    table = pd.read_csv(out, parse_dates=["time"])
    assert set(table.columns) == {"draw", "series", "time", "x"} and len(table) == 2 * 4 * 3
    assert sorted(table["time"].unique()) == list(pd.date_range("2024-01-04", periods=3, freq="D"))
    assert main(argv + ["--out", str(tmp_path / "fc.nc")]) == 0
    assert xr.load_dataset(tmp_path / "fc.nc")["time"].dtype.kind == "M"
    capsys.readouterr()
    assert main(argv + ["--out", str(tmp_path / "fc.txt")]) == 2
    assert "the output format follows the extension" in capsys.readouterr().err


def test_csv_with_its_own_series_and_time_column_names(tmp_path):
    rng = np.random.default_rng(1)
    rows = [
        (f"item{s}", f"2024-01-{d:02d}", float(v)) for s in range(3) for d, v in zip(range(1, 9), rng.normal(size=8))
    ]
    data = tmp_path / "sales.csv"
    pd.DataFrame(rows, columns=["item", "date", "sales"]).to_csv(data, index=False)
    model = tmp_path / "m.pyrossm"
    names = ["--series-column", "item", "--time-column", "date"]
    assert main(["fit", "--data", str(data), "--out", str(model), "--num-steps", "1", "--quiet", *names]) == 0
    out = tmp_path / "fc.nc"
    assert (
        main(
            [
                "forecast",
                "--model-file",
                str(model),
                "--context",
                str(data),
                "--horizon",
                "2",
                "--out",
                str(out),
                *names,
            ]
        )
        == 0
    )
    fc = xr.load_dataset(out)
    assert fc["series"].values.tolist() == ["item0", "item1", "item2"]
    assert list(fc["time"].values) == list(pd.date_range("2024-01-09", periods=2).values)
    assert main(["fit", "--data", str(data), "--out", str(model), "--num-steps", "1", "--quiet"]) == 2  # no 'series'


def test_the_whole_workflow_on_the_command_line(tmp_path, capsys):
    rng = np.random.default_rng(2)
    rows = [(s, t, float(v)) for s in range(4) for t, v in zip(range(12), rng.normal(size=12).cumsum())]
    data = tmp_path / "data.csv"
    pd.DataFrame(rows, columns=["series", "time", "x"]).to_csv(data, index=False)
    model = tmp_path / "m.pyrossm"
    assert (
        main(
            ["fit", "--data", str(data), "--out", str(model), "--num-steps", "2", "--quiet", "--model-args", TINY_ARGS]
        )
        == 0
    )
    assert (
        main(
            [
                "sample",
                "--model-file",
                str(model),
                "--num-series",
                "3",
                "--length",
                "5",
                "--num-samples",
                "2",
                "--out",
                str(tmp_path / "gen.nc"),
            ]
        )
        == 0
    )
    assert dict(xr.load_dataset(tmp_path / "gen.nc").sizes) == {"draw": 2, "series": 3, "time": 5}
    assert (
        main(
            [
                "smooth",
                "--model-file",
                str(model),
                "--data",
                str(data),
                "--num-samples",
                "3",
                "--out",
                str(tmp_path / "z.nc"),
            ]
        )
        == 0
    )
    assert xr.load_dataset(tmp_path / "z.nc")["z"].dims == ("draw", "series", "time", "latent")
    context = tmp_path / "context.csv"
    pd.DataFrame([r for r in rows if r[1] < 9], columns=["series", "time", "x"]).to_csv(context, index=False)
    assert (
        main(
            [
                "forecast",
                "--model-file",
                str(model),
                "--context",
                str(context),
                "--horizon",
                "3",
                "--num-samples",
                "8",
                "--out",
                str(tmp_path / "fc.csv"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--forecast",
                str(tmp_path / "fc.csv"),
                "--truth",
                str(data),
                "--out",
                str(tmp_path / "scores.csv"),
            ]
        )
        == 0
    )
    scores = pd.read_csv(tmp_path / "scores.csv", index_col=0)
    assert "crps" in scores.columns and np.isfinite(scores.loc["x", "crps"])
    assert (
        main(
            [
                "backtest",
                "--model-file",
                str(model),
                "--data",
                str(data),
                "--test-window",
                "2",
                "--min-train-window",
                "8",
                "--stride",
                "2",
                "--num-samples",
                "4",
            ]
        )
        == 0
    )
    assert "crps" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("pyrossm ")
    assert main(["fit", "--data", str(data), "--out", str(model), "--model-args", "{bad"]) == 2
    assert "--model-args: not valid JSON" in capsys.readouterr().err


def test_help_does_not_load_torch():
    """``pyrossm --help`` answers at once: the package loads its parts (and torch) on first use."""
    import subprocess
    import sys

    code = (
        "import sys, pyrossm.cli as c\ntry:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_fit_checkpoints_and_resumes_from_the_command_line(tmp_path, make_ds):
    data = tmp_path / "data.nc"
    make_ds().to_netcdf(data)
    run = ["fit", "--data", str(data), "--quiet", "--model-args", TINY_ARGS, "--checkpoint-dir", str(tmp_path / "ck")]
    assert main([*run, "--num-steps", "2", "--out", str(tmp_path / "a.pyrossm")]) == 0
    assert main([*run, "--num-steps", "4", "--out", str(tmp_path / "b.pyrossm")]) == 2  # another run's checkpoint
    assert main([*run, "--num-steps", "4", "--resume", "--out", str(tmp_path / "b.pyrossm")]) == 0
    assert pyrossm.load(tmp_path / "b.pyrossm").history["step"].tolist() == [0, 1, 2, 3]
