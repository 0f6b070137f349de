"""The bimodal benchmark scripts' documented smoke runs work end to end (a few steps, a few
series): the full runs take an hour, so a broken code path would otherwise show only then."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bimodal  # noqa: E402
import ddssm_ablation  # noqa: E402

from pyrossm.inference import TrainerConfig  # noqa: E402
from pyrossm.models.registry import DDSSM_TRAINER_DEFAULTS  # noqa: E402


def test_bimodal_cpu_smoke_run_writes_table_figures_and_summary(tmp_path, capsys):
    smoke = ["--profile", "cpu", "--steps", "6", "--num-test", "8", "--num-samples", "32", "--study-series", "4"]
    bimodal.main([*smoke, "--out", str(tmp_path)])
    out = capsys.readouterr().out
    for name in ("ddssm.pyrossm", "dkf_vhp.pyrossm", "predictive_density.png", "forecasts.png", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    summary = json.loads((tmp_path / "summary.json").read_text())
    for model in ("DKF+VHP", "DDSSM", "LOCF", "sampling floor"):
        assert 0.0 <= summary[model]["jsd_mean"] <= 1.0 and np.isfinite(summary[model]["jsd_se"])
    # the cpu profile is the library's defaults: the family's recipe stretched to the 6 steps,
    # validated at the last of them (the script's 500, at most the run)
    fit = bimodal.pyrossm.load(tmp_path / "ddssm.pyrossm")
    defaults = TrainerConfig.from_dict(DDSSM_TRAINER_DEFAULTS).stretched(6).updated(validate_every=6)
    assert summary["settings"]["models"]["DDSSM"] == {"model": "ddssm", "trainer": defaults.to_dict()}
    assert fit.config["trainer"] == defaults.updated(progress=True).to_dict()
    assert fit.config["model_config"]["order"] == 2 and fit.config["model_config"]["sampler"] == "heun"
    assert list(fit.history["batch_size"]) == [128] * 6
    assert fit.history["val_elbo"].notna().sum() == 1
    assert summary["DDSSM"]["width"]["emission_sd"] > 0  # the width decomposition of an order-2 model
    samplers = {(row["sampler"], row["denoiser_calls"]) for row in summary["DDSSM samplers"]}
    assert len(samplers) == 8 and ("heun", 22) in samplers and ("ddpm", 128) in samplers
    assert "DDSSM" in out and "LOCF" in out

    # --reuse scores the saved fits without training them again
    bimodal.main([*smoke, "--out", str(tmp_path), "--reuse"])
    assert "DDSSM: loaded" in capsys.readouterr().out


def test_ddssm_ablation_smoke_run_reports_the_jsd(capsys):
    ddssm_ablation.main(["--steps", "6", "--num-test", "4", "--num-samples", "32"])
    out = capsys.readouterr().out
    jsd = float(re.search(r"JSD (\d\.\d+) \+-", out).group(1))
    assert 0.0 <= jsd <= 1.0
    assert re.search(r"val ELBO \[-?\d+(\.\d+)?\]", out)  # the defaults validate, here at the last of 6 steps
    assert "width: filter sd" in out


def test_scaling_smoke_run_reports_steps_per_second(capsys):
    import scaling

    scaling.main(["--steps", "4", "--warmup", "1", "--models", "dkf", "--world-sizes", "1", "2"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("dkf")]
    assert [row[1] for row in rows] == ["1", "2"]
    assert all(float(row[2]) > 0 for row in rows) and rows[0][4] == "1.00x"


def test_posterior_stability_smoke_run_writes_tables_and_dependency_figures(tmp_path, capsys):
    import posterior_stability

    smoke = ["--steps", "2", "--seeds", "0", "1", "--num-eval", "8", "--num-dependency", "3"]
    smoke += ["--datasets", "basic_motions", "--backbones", "lstm", "--variants", "LD", "CS"]
    posterior_stability.main([*smoke, "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "Table 1 analogue" in out and "Table 2 analogue" in out and "| lstm | CS |" in out
    assert (tmp_path / "dependency_basic_motions_lstm.png").stat().st_size > 0
    runs = sorted(p.name for p in (tmp_path / "runs").glob("*.json"))
    assert len(runs) == 4 + 4 + 7 * 2 and not list((tmp_path / "runs").glob("*.lock"))
    record = json.loads((tmp_path / "runs" / "dependency__basic_motions__lstm__CS__shuffled.json").read_text())
    assert len(record["global"]) == 24 and record["global"][0] == record["global"][0]  # t = 1 is z alone
    # a second run trains nothing: every run is stored
    posterior_stability.main([*smoke, "--out", str(tmp_path)])
    assert "table1__" not in capsys.readouterr().out


def test_generation_smoke_run_writes_score_tables_and_pca_figure(tmp_path, capsys):
    import generation

    smoke = ["--profile", "smoke", "--steps", "2", "--seeds", "0", "--num-eval", "8", "--metric-steps", "2"]
    smoke += ["--datasets", "basic_motions", "--generators", "L2D", "LD", "DKF"]
    generation.main([*smoke, "--out", str(tmp_path)])
    out = capsys.readouterr().out
    for table in ("**C-FID**", "**DS**", "**PS**", "**Time**"):
        assert table in out, table
    assert "| model | basic_motions |" in out and "| L2D |" in out and "| DKF |" in out
    assert (tmp_path / "pca_basic_motions.png").stat().st_size > 0
    runs = sorted(p.stem for p in (tmp_path / "runs").glob("*.json"))
    assert runs == [f"basic_motions__{g}__0" for g in ("DKF", "L2D", "LD")]
    assert not list((tmp_path / "runs").glob("*.lock"))
    for name in runs:
        record = json.loads((tmp_path / "runs" / f"{name}.json").read_text())
        assert record["num_eval"] == 8 and "error" not in record
        assert all(np.isfinite(record[k]) for k in ("C-FID", "DS", "PS", "fit_s", "sample_s")), record
        assert 0.0 <= record["DS"] <= 0.5
    # the real windows of the figure keep their instance's class label
    labels = np.load(tmp_path / "runs" / "real__basic_motions__0.npz")["labels"]
    assert len(labels) == 8 and set(labels) <= {"Standing", "Running", "Walking", "Badminton"}
    # a second run trains nothing: every run is stored
    generation.main([*smoke, "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "basic_motions__" not in out and "| LD |" in out


def test_speed_smoke_run_prints_training_and_forecasting_rows(capsys):
    import speed

    tiny = ["--num-series", "8", "--num-draws", "2", "--batch-size", "4", "--steps", "1", "--warmup", "0"]
    with pytest.raises(SystemExit):  # checked before anything trains
        speed.main([*tiny, "--skip-deepar", "--fast-samplers", "euler:4"])
    assert "--fast-samplers" in capsys.readouterr().err
    speed.main([*tiny, "--num-diffusion-steps", "4", "--skip-deepar"])
    training, forecasting = capsys.readouterr().out.split("2. Forecasting")
    rows = [line.split() for line in training.splitlines() if line.startswith(("  DKF ", "  DDSSM "))]
    assert [row[:2] for row in rows] == [
        ["DKF", "paper"],
        ["DKF", "compact"],
        ["DKF", "gru-summary"],
        ["DDSSM", "paper"],
        ["DDSSM", "compact"],
    ]
    assert all(float(row[4]) > 0 for row in rows)  # steps/s
    table = forecasting.split("  model ")[1].splitlines()
    names = ("DKF paper", "DKF compact", "DKF gru-summary", "DDSSM paper (HEUN, 4 steps, default)")
    names += ("DDSSM compact (DDIM, 4 steps)",)
    for name in (*names, "DDSSM compact (DDPM, 4 steps)"):
        assert any(line.startswith(f"  {name}  ") and line.endswith("measured") for line in table), name
    assert not any(line.startswith("  DeepAR") for line in training.splitlines() + table)
