"""``pyrossm demo`` (what ``make demo`` runs), on a tiny budget: it fits both models, prints the
table and writes both figures and both fitted models."""

from __future__ import annotations

import math

import numpy as np

import pyrossm
from pyrossm.demo import DEMO_FITS, run_demo


def test_demo_fits_both_models_and_writes_figures_and_models(tmp_path, capsys):
    figures = run_demo(tmp_path, num_steps=3, n_train=16, n_test=4, num_samples=32, progress=False)
    printed = capsys.readouterr().out
    assert set(figures) == {"DDSSM", "DKF", "LOCF", "exact law (sampling floor)"}
    for name, row in figures.items():
        assert 0.0 <= row["jsd"] <= 1.0, name
        assert name in printed
    # LOCF carries x_31 forward: nearly all its mass is far from both modes of the exact law
    assert figures["LOCF"]["jsd"] > 0.9
    assert figures["exact law (sampling floor)"]["jsd"] < 0.5
    for name in ("DDSSM", "DKF"):
        assert math.isfinite(figures[name]["crps"]) and figures[name]["fit_seconds"] > 0
        saved = pyrossm.load(tmp_path / f"{name.lower()}.pyrossm")
        assert saved.config["model"] == DEMO_FITS[name]["model"]
        assert len(saved.history) == 3
        # the library's defaults (compact networks, the family's recipe), num_steps the budget asked for
        assert saved.config["model_config"]["architecture"] == "compact"
        trainer = saved.config["trainer"]
        assert trainer["num_steps"] == 3 and trainer["batching"]["batch_size"] == 128
        assert trainer["schedule"]["lr_schedule"] == "cosine" and trainer["schedule"]["lr_end_factor"] == 0.03
        assert trainer["objective"]["annealing"]["warmup_steps"] is None  # resolved to a third of the stage
        np.testing.assert_allclose(
            saved.history["lr_emission"], 3e-3 * np.array([1.0, 0.03 + 0.97 * 0.75, 0.03 + 0.97 * 0.25])
        )
    for figure in ("predictive_density.png", "forecast.png"):
        assert (tmp_path / figure).stat().st_size > 10_000
