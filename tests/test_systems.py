"""The suite of synthetic systems with exact one-step laws (pyrossm.datasets.systems) and its
benchmark script (benchmarks/defaults.py)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import signal, stats

from pyrossm import datasets
from pyrossm.datasets import GaussianMixture1D, bimodal_random_walk
from pyrossm.datasets.systems import SYSTEMS, System, get_system, systems

NAMES = [
    "bimodal_walk",
    "trimodal_walk",
    "state_dependent_modes",
    "covariate_gated",
    "two_dim_latent",
    "regime_switching_seasonal",
]
# benchmarks/defaults.py is imported by its tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

LATENT_VARS = {"regime_switching_seasonal": {"z", "regime"}}


@pytest.fixture(scope="module")
def simulated():
    """Every system simulated once at the default sizes (1024 x 32), with its latent states."""
    return {name: SYSTEMS[name].simulate(num_series=1024, length=32, seed=11, return_latent=True) for name in NAMES}


def pits(system, data, latent):
    """Probability integral transforms ``F_t(x_t)`` of every (series, t) under the exact laws:
    if the laws are right, independent Uniform(0, 1) draws (each ``x_t`` is drawn from its law
    given the past, whatever the past)."""
    x = data["x"].values
    return np.concatenate([system.one_step_law(latent, t, data).cdf(x[:, t]) for t in range(x.shape[1])])


def num_modes(law, index, grid=np.linspace(-40, 40, 16001)):
    """Local maxima of the density of batch member ``index``."""
    one = GaussianMixture1D(law.weights[index], law.means[index], law.stds[index])
    return len(signal.argrelmax(one.pdf(grid))[0])


# -- the registry ------------------------------------------------------------------------------


def test_registry_lists_the_suite_in_order():
    assert list(SYSTEMS) == NAMES
    assert [s.name for s in systems()] == NAMES
    assert [s.name for s in systems(["two_dim_latent", "bimodal_walk"])] == ["two_dim_latent", "bimodal_walk"]
    assert systems("trimodal_walk") == [SYSTEMS["trimodal_walk"]]
    assert get_system("covariate_gated").covariates == ("u",)
    assert all(s.covariates == () for s in systems() if s.name != "covariate_gated")
    assert all(isinstance(s, System) and s.summary for s in systems())
    with pytest.raises(dataclasses.FrozenInstanceError):
        SYSTEMS["bimodal_walk"].name = "other"
    with pytest.raises(ValueError, match="unknown system 'nope'.*trimodal_walk"):
        get_system("nope")
    with pytest.raises(ValueError, match="unknown system"):
        systems(["bimodal_walk", "nope"])
    # the package exposes the suite
    assert datasets.get_system is get_system and datasets.trimodal_walk is SYSTEMS["trimodal_walk"].simulate


# -- shapes, coords, seeds, errors ---------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_shapes_coords_and_attrs(name):
    system = SYSTEMS[name]
    data = system.simulate(num_series=6, length=5, seed=0)
    assert isinstance(data, xr.Dataset)
    assert sorted(data.data_vars) == sorted(["x", *system.covariates])
    for var in data.data_vars:
        assert data[var].dims == ("series", "time") and data[var].shape == (6, 5)
        assert np.isfinite(data[var].values).all()
    np.testing.assert_array_equal(data["series"].values, np.arange(6))
    np.testing.assert_array_equal(data["time"].values, np.arange(5))
    assert data.attrs["system"] == name and "x_t" in data.attrs["equations"] and data.attrs["seed"] == 0
    again, latent = system.simulate(num_series=6, length=5, seed=0, return_latent=True)
    xr.testing.assert_identical(data, again)
    assert isinstance(latent, xr.Dataset) and set(latent.data_vars) == LATENT_VARS.get(name, {"z"})
    expected = ("series", "time", "latent") if name == "two_dim_latent" else ("series", "time")
    assert latent["z"].dims == expected and latent["z"].shape[:2] == (6, 5)
    # defaults: 1024 series x 32 steps
    assert system.simulate()["x"].shape == (1024, 32)


@pytest.mark.parametrize("name", NAMES)
def test_seed_reproduces(name):
    simulate = SYSTEMS[name].simulate
    a, za = simulate(num_series=8, length=6, seed=3, return_latent=True)
    b, zb = simulate(num_series=8, length=6, seed=3, return_latent=True)
    c = simulate(num_series=8, length=6, seed=4)
    xr.testing.assert_identical(a, b)
    xr.testing.assert_identical(za, zb)
    assert not np.array_equal(a["x"].values, c["x"].values)
    assert simulate(num_series=2, length=3, seed=None).attrs["seed"] == -1


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_series=0), "num_series must be a positive int"),
        (dict(num_series=2.5), "num_series must be a positive int"),
        (dict(length=-1), "length must be a positive int"),
        (dict(length=True), "length must be a positive int"),
        (dict(seed=-1), "seed must be a non-negative int"),
        (dict(seed="a"), "seed must be a non-negative int"),
        (dict(return_latent="yes"), "return_latent must be a bool"),
    ],
)
def test_argument_errors(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        SYSTEMS[name].simulate(**{"num_series": 2, "length": 3, **kwargs})


def test_law_argument_errors():
    data, latent = SYSTEMS["covariate_gated"].simulate(num_series=4, length=5, return_latent=True)
    law = SYSTEMS["covariate_gated"].one_step_law
    with pytest.raises(ValueError, match=r"t must be a time index in \[0, 5\)"):
        law(latent, 5, data)
    with pytest.raises(ValueError, match="t must be a non-negative int"):
        law(latent, -1, data)
    with pytest.raises(TypeError, match="latent must be the xarray Dataset"):
        law(latent["z"], 1, data)
    with pytest.raises(ValueError, match="needs the covariate 'u'"):
        law(latent, 1, None)
    with pytest.raises(ValueError, match="needs the covariate 'u'"):
        law(latent, 1, data[["x"]])
    with pytest.raises(ValueError, match="latent has no variable 'regime'"):
        SYSTEMS["regime_switching_seasonal"].one_step_law(latent, 1)


def test_bimodal_walk_is_the_papers_bimodal_random_walk():
    data, latent = SYSTEMS["bimodal_walk"].simulate(num_series=8, length=6, seed=2, return_latent=True)
    reference, z = bimodal_random_walk(num_series=8, length=6, seed=2, return_latent=True)
    np.testing.assert_array_equal(data["x"].values, reference["x"].values)
    np.testing.assert_array_equal(latent["z"].values, z.values)
    law = SYSTEMS["bimodal_walk"].one_step_law(latent, 3)
    np.testing.assert_allclose(np.sort(law.means, -1), 0.9 * z.values[:, 2, None] + np.array([-4.0, 4.0]))


# -- the exact laws ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_law_is_a_mixture_per_series_with_weights_summing_to_one(name, simulated):
    data, latent = simulated[name]
    for t in (0, 1, 31):
        law = SYSTEMS[name].one_step_law(latent, t, data)
        assert isinstance(law, GaussianMixture1D) and law.batch_shape == (1024,)
        np.testing.assert_allclose(law.weights.sum(-1), 1.0, rtol=0, atol=1e-12)
        assert (law.weights >= 0).all() and (law.stds > 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_law_matches_the_simulator_pit_ks(name, simulated):
    """Every (series, t) of 1024 x 32 steps: the PITs under the exact laws are uniform (KS test);
    the standardised residuals have mean 0 and variance 1 within 5 standard errors."""
    system = SYSTEMS[name]
    data, latent = simulated[name]
    u = pits(system, data, latent)
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    x = data["x"].values
    residual = np.concatenate(
        [
            (x[:, t] - law.mean) / np.sqrt(law.var)
            for t in range(x.shape[1])
            for law in [system.one_step_law(latent, t, data)]
        ]
    )
    n = residual.size
    assert abs(residual.mean()) < 5 / np.sqrt(n)
    assert abs(residual.var() - 1.0) < 5 * np.sqrt(2.0 / n) * 2  # (mixtures have heavier tails: x2)


@pytest.mark.parametrize("name", NAMES)
def test_pit_ks_rejects_a_law_given_the_wrong_states(name, simulated):
    """The KS check has power: the same laws given another draw's latent states are rejected."""
    system = SYSTEMS[name]
    data, _ = simulated[name]
    _, other = system.simulate(num_series=1024, length=32, seed=12, return_latent=True)
    assert stats.kstest(pits(system, data, other), "uniform").pvalue < 1e-6


def test_trimodal_has_three_modes_with_unequal_weights(simulated):
    data, latent = simulated["trimodal_walk"]
    law = SYSTEMS["trimodal_walk"].one_step_law(latent, 10, data)
    np.testing.assert_allclose(law.weights, np.broadcast_to([0.2, 0.5, 0.3], (1024, 3)))
    assert all(num_modes(law, i) == 3 for i in range(5))
    # the jumps seen in the latent path have the law's frequencies
    z = latent["z"].values
    jumps = z[:, 1:] - 0.8 * z[:, :-1]
    freq = [np.isclose(jumps, a, atol=1e-9).mean() for a in (-4.0, 0.0, 5.0)]
    np.testing.assert_allclose(freq, [0.2, 0.5, 0.3], atol=5 * np.sqrt(0.25 / jumps.size))


def test_state_dependent_modes_two_near_zero_one_far(simulated):
    data, latent = simulated["state_dependent_modes"]
    z = latent["z"].values
    law = SYSTEMS["state_dependent_modes"].one_step_law(latent, 20, data)
    near = np.abs(z[:, 19]) < 1.5
    assert 0.1 < near.mean() < 0.9  # both kinds of state occur
    used = (law.weights > 0).sum(-1)
    np.testing.assert_array_equal(used, np.where(near, 2, 1))
    assert {num_modes(law, i) for i in np.flatnonzero(near)[:5]} == {2}
    assert {num_modes(law, i) for i in np.flatnonzero(~near)[:5]} == {1}
    # t = 0: the initial state z = 0 is near zero
    assert ((SYSTEMS["state_dependent_modes"].one_step_law(latent, 0).weights > 0).sum(-1) == 2).all()


def test_covariate_gated_law_reads_the_gate_at_t(simulated):
    data, latent = simulated["covariate_gated"]
    u = data["u"].values
    assert set(np.unique(u)) == {0.0, 1.0} and abs(u.mean() - 0.5) < 5 * np.sqrt(0.25 / u.size)
    law = SYSTEMS["covariate_gated"].one_step_law(latent, 7, data)
    gate = u[:, 7] == 1.0
    np.testing.assert_array_equal((law.weights > 0).sum(-1), np.where(gate, 2, 1))
    assert {num_modes(law, i) for i in np.flatnonzero(gate)[:5]} == {2}
    assert {num_modes(law, i) for i in np.flatnonzero(~gate)[:5]} == {1}
    # flipping the gates flips the laws
    flipped = data.assign(u=1.0 - data["u"])
    np.testing.assert_array_equal(
        (SYSTEMS["covariate_gated"].one_step_law(latent, 7, flipped).weights > 0).sum(-1), np.where(gate, 1, 2)
    )


def test_two_dim_latent_law_depends_on_both_coordinates(simulated):
    data, latent = simulated["two_dim_latent"]
    law = SYSTEMS["two_dim_latent"].one_step_law
    base = law(latent, 5, data).means
    for axis in (0, 1):
        shifted = latent.copy(deep=True)
        shifted["z"][:, 4, axis] += 1.0
        assert np.abs(law(shifted, 5, data).means - base).min() > 0.1
    assert law(latent, 5, data).num_components == 2


def test_regime_switching_weights_follow_the_regime_and_the_season_moves_the_means(simulated):
    data, latent = simulated["regime_switching_seasonal"]
    law = SYSTEMS["regime_switching_seasonal"].one_step_law
    regime = latent["regime"].values
    assert set(np.unique(regime)) == {0, 1}
    stays = (regime[:, 1:] == regime[:, :-1]).mean()
    assert abs(stays - 0.9) < 5 * np.sqrt(0.09 / regime[:, 1:].size)
    at5 = law(latent, 5)
    np.testing.assert_allclose(at5.weights[:, 0], np.where(regime[:, 4] == 0, 0.9, 0.1))
    np.testing.assert_allclose(law(latent, 0).weights, 0.5)
    # the same latent state one period later: the same law; a quarter period: shifted by the season
    pinned = latent.copy(deep=True)
    pinned["z"][:] = 1.0
    pinned["regime"][:] = 0
    np.testing.assert_allclose(law(pinned, 2).means, law(pinned, 14).means)
    np.testing.assert_allclose(law(pinned, 3).means - law(pinned, 12).means, 2.0)


# -- benchmarks/defaults.py ------------------------------------------------------------------------


def test_defaults_benchmark_smoke_run_stores_resumes_and_reports(tmp_path, capsys):
    import defaults

    smoke = ["--systems", "covariate_gated", "--num-steps", "2", "--num-train", "16", "--length", "8"]
    smoke += ["--num-test", "4", "--num-samples", "16", "--out", str(tmp_path)]
    records = defaults.main(smoke)
    out = capsys.readouterr().out
    assert "| covariate_gated | ddssm |" in out and "| covariate_gated | dkf |" in out
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == [f"covariate_gated__{m}__steps-2__train16x8__test4__draws16__seed0.json" for m in ("ddssm", "dkf")]
    for model in ("ddssm", "dkf"):
        rec = json.loads((tmp_path / "runs" / runs[model == "dkf"]).read_text())
        assert "error" not in rec, rec.get("error")
        assert rec == json.loads(json.dumps(records["covariate_gated", model], default=str))
        assert 0.0 <= rec["floor_mean"] <= rec["jsd_mean"] <= 1.0 and rec["nonfinite_draws"] == 0
        assert rec["steps_trained"] == 2 and rec["fit_s"] > 0 and rec["forecast_s"] > 0
        assert rec["ratio"] == pytest.approx(rec["jsd_mean"] / rec["floor_mean"])
    # a second run trains nothing; --report prints what is stored, and what is not
    defaults.main(smoke)
    assert "..." not in capsys.readouterr().out
    defaults.main([*smoke, "--report", "--models", "dkf", "--systems", "covariate_gated", "trimodal_walk"])
    out = capsys.readouterr().out
    assert "| covariate_gated | dkf | 0." in out and "| trimodal_walk | dkf | not run |" in out
    assert not list((tmp_path / "runs").glob("*.tmp")) and not (tmp_path / "runs" / "trimodal_walk").exists()


def test_defaults_benchmark_keeps_draws_and_rescores_runs_stored_before_the_predictive_target(tmp_path, capsys):
    import defaults

    smoke = ["--systems", "two_dim_latent", "--models", "dkf", "--num-steps", "1", "--num-train", "8"]
    smoke += ["--length", "6", "--num-test", "4", "--num-samples", "16", "--out", str(tmp_path)]
    first = defaults.main([*smoke, "--keep-draws"])["two_dim_latent", "dkf"]
    assert first["target"] == "predictive" and 0.0 <= first["floor_mean"] <= 1.0
    # perfect draws score their own floor against the predictive law, and more against the latent law
    assert first["perfect_latent_jsd"] > 0.0 and 0.0 <= first["latent_jsd_mean"] <= 1.0
    (key,) = [p.stem for p in (tmp_path / "runs").iterdir()]
    draws = np.load(tmp_path / "draws" / f"{key}.npz")["draws"]
    assert draws.shape == (16, 4) and draws.dtype == np.float32
    # a record of the old kind (no target) is scored again from its draws and stored so
    path = tmp_path / "runs" / f"{key}.json"
    old = {k: v for k, v in json.loads(path.read_text()).items() if k not in ("target", "latent_jsd_mean")}
    path.write_text(json.dumps({**old, "jsd_mean": 0.5}))
    again = defaults.main([*smoke, "--report"])["two_dim_latent", "dkf"]
    assert again["target"] == "predictive" and again["jsd_mean"] == pytest.approx(first["jsd_mean"])
    assert json.loads(path.read_text())["target"] == "predictive"
    # without draws it stays as stored and the table says it is not scored
    path.write_text(json.dumps({**old, "jsd_mean": 0.5}))
    (tmp_path / "draws" / f"{key}.npz").unlink()
    capsys.readouterr()
    defaults.main([*smoke, "--report"])
    assert "| two_dim_latent | dkf | not scored | | | 0.5000 (old run) |" in capsys.readouterr().out


def test_defaults_benchmark_refits_a_run_stored_under_other_defaults(tmp_path, capsys):
    """A record whose model options or trainer settings differ from what today's defaults and
    ``--set`` give (e.g. stored before a default changed, under the same key) is named on
    ``--report`` and fitted again otherwise; a current one is reused."""
    import defaults

    smoke = ["--systems", "bimodal_walk", "--models", "ddssm", "--num-steps", "1", "--num-train", "8"]
    smoke += ["--length", "4", "--num-test", "4", "--num-samples", "8", "--out", str(tmp_path)]
    smoke += ["--set", "latent_dim=1", "diffusion_channels=4", "num_diffusion_steps=4"]
    first = defaults.main(smoke)["bimodal_walk", "ddssm"]
    system = defaults.get_system("bimodal_walk")
    args = argparse.Namespace(set=smoke[smoke.index("--set") + 1 :], seed=0, num_steps=1)
    assert defaults.stale_settings(first, system, "ddssm", args) == []
    (path,) = (tmp_path / "runs").iterdir()
    old = json.loads(path.read_text())
    old["model_config"]["residual_transition"] = False  # as if stored before "linear" was the default
    old["trainer"]["optimizer"]["learning_rate"] = 1e-2
    old["trainer"]["a_setting_added_since"] = 1  # entries the defaults do not have are not compared
    path.write_text(json.dumps({**old, "jsd_mean": 0.75}))
    stale = defaults.stale_settings(json.loads(path.read_text()), system, "ddssm", args)
    assert stale == ["residual_transition", "trainer.optimizer.learning_rate"]
    capsys.readouterr()
    reported = defaults.main([*smoke, "--report"])["bimodal_walk", "ddssm"]
    captured = capsys.readouterr()
    assert reported["jsd_mean"] == 0.75 and "stored with other settings than today's" in captured.err
    again = defaults.main(smoke)["bimodal_walk", "ddssm"]
    assert "fitting again" in capsys.readouterr().out
    assert again["jsd_mean"] != 0.75 and again["model_config"]["residual_transition"] == "linear"
    assert json.loads(path.read_text())["model_config"]["residual_transition"] == "linear"
    assert defaults.stale_settings({"error": "x"}, system, "ddssm", args) == []  # failed runs: as before


def test_defaults_benchmark_bounds_cover_every_mode():
    import defaults

    law = GaussianMixture1D([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], [[3.0, -3.0, 100.0], [0.0, 0.0, 1.0]], 0.5)
    bounds = defaults.jsd_bounds(law)
    np.testing.assert_allclose(bounds["low"], [-8.0, -7.0])  # the unused component at 100 is ignored
    np.testing.assert_allclose(bounds["high"], [8.0, 9.0])
    wide = GaussianMixture1D([0.5, 0.5], [-10.0, 10.0], 1.0)
    assert defaults.jsd_bounds(wide)["low"] == -16.0 and defaults.jsd_bounds(wide)["high"] == 16.0


def test_defaults_benchmark_table_shows_failures_and_missing_runs():
    import defaults

    records = {
        ("trimodal_walk", "dkf"): {"floor_mean": 0.1, "floor_se": 0.01, "error": "RuntimeError: non-finite loss"},
        ("trimodal_walk", "ddssm"): None,
    }
    text = defaults.table(records)
    assert "| trimodal_walk | dkf | failed | 0.1000 +- 0.0100 |" in text
    assert "| trimodal_walk | ddssm | not run |" in text
    assert "failed: trimodal_walk / dkf: RuntimeError: non-finite loss" in text


def test_defaults_benchmark_settings_are_parsed_as_json_and_named_in_the_key():
    import defaults

    assert defaults.parse_settings(["architecture=compact", "num_steps=5", "lr=1e-3"]) == {
        "architecture": "compact",
        "num_steps": 5,
        "lr": 1e-3,
    }
    with pytest.raises(ValueError, match="key=value"):
        defaults.parse_settings(["compact"])
    args = defaults.argparse.Namespace(
        num_steps=None, num_train=8, length=4, num_test=2, num_samples=3, seed=0, set=["architecture=compact"]
    )
    assert defaults.run_key("bimodal_walk", "dkf", args).endswith("__architecture-compact")


def test_defaults_benchmark_deepar_run_is_scored_like_the_others_and_gets_the_covariate(tmp_path, capsys, monkeypatch):
    pytest.importorskip("gluonts")
    import defaults

    built = []

    class Recorded(defaults.OneStepDeepAR):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(defaults, "OneStepDeepAR", Recorded)
    smoke = ["--systems", "covariate_gated", "--models", "deepar", "--deepar-batches", "3", "--num-train", "16"]
    smoke += [
        "--length",
        "8",
        "--num-test",
        "4",
        "--num-samples",
        "16",
        "--keep-draws",
        "--set",
        "architecture=compact",
    ]
    rec = defaults.main([*smoke, "--out", str(tmp_path)])["covariate_gated", "deepar"]
    assert "error" not in rec, rec.get("error")
    key = "covariate_gated__deepar__steps-3__train16x8__test4__draws16__seed0"  # --set is pyrossm's, not DeepAR's
    assert json.loads((tmp_path / "runs" / f"{key}.json").read_text()) == json.loads(json.dumps(rec, default=str))
    assert np.load(tmp_path / "draws" / f"{key}.npz")["draws"].shape == (16, 4)
    assert rec["target"] == "predictive" and rec["settings"] == {} and rec["nonfinite_draws"] == 0
    assert 0.0 <= rec["floor_mean"] <= 1.0 and 0.0 <= rec["jsd_mean"] <= 1.0 and np.isfinite(rec["jsd_se"])
    assert 0.0 <= rec["latent_jsd_mean"] <= 1.0 and rec["ratio"] == pytest.approx(rec["jsd_mean"] / rec["floor_mean"])
    assert rec["steps_trained"] == 3 and rec["fit_s"] > 0 and rec["forecast_s"] > 0
    config, trainer = rec["model_config"], rec["trainer"]
    assert (config["freq"], config["prediction_length"], config["context_length"]) == ("D", 1, 7)
    assert config["num_feat_dynamic_real"] == 1 and config["distr_output"] == "StudentTOutput"
    assert config["lags_seq"][:8] == list(range(1, 9)) and trainer["batch_size"] == 128 and trainer["max_steps"] == 3
    assert f"| covariate_gated | deepar | {rec['jsd_mean']:.4f} +- " in capsys.readouterr().out
    # the covariate reaches DeepAR: u over all T steps, for training and for the forecast input (x over T - 1)
    (deepar,) = built
    train, inputs = list(deepar.train_data), list(deepar.forecast_data)
    assert len(train) == 16 and len(inputs) == 4
    assert all(e["target"].shape == (8,) and e["feat_dynamic_real"].shape == (1, 8) for e in train)
    assert all(e["target"].shape == (7,) and e["feat_dynamic_real"].shape == (1, 8) for e in inputs)
    test = get_system("covariate_gated").simulate(num_series=4, length=8, seed=1)
    np.testing.assert_allclose(np.stack([e["feat_dynamic_real"][0] for e in inputs]), test["u"].values, rtol=1e-6)
    np.testing.assert_allclose(np.stack([e["target"] for e in inputs]), test["x"].values[:, :7], rtol=1e-6)
    # seeded: the same run elsewhere scores the same
    again = defaults.main([*smoke, "--out", str(tmp_path / "again")])["covariate_gated", "deepar"]
    assert again["jsd_mean"] == rec["jsd_mean"] and again["final_loss"] == rec["final_loss"]


def test_defaults_benchmark_deepar_only_when_named_and_without_gluonts_stops_at_the_start(
    tmp_path, capsys, monkeypatch
):
    import defaults

    report = ["--systems", "bimodal_walk", "--out", str(tmp_path), "--report"]
    assert list(defaults.main(report)) == [("bimodal_walk", "ddssm"), ("bimodal_walk", "dkf")]

    def missing():
        raise ImportError("GluonTS is not importable (ModuleNotFoundError: No module named 'gluonts')")

    monkeypatch.setattr(defaults, "load_gluonts", missing)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        defaults.main(["--systems", "bimodal_walk", "--models", "dkf", "deepar", "--out", str(tmp_path)])
    assert "--models deepar needs GluonTS" in capsys.readouterr().err and not (tmp_path / "runs").exists()
    # what is stored is still reported without it
    assert list(defaults.main([*report, "--models", "deepar"])) == [("bimodal_walk", "deepar")]


def test_defaults_benchmark_scores_the_fast_samplers_on_the_same_fit(tmp_path, capsys):
    import defaults

    smoke = ["--systems", "bimodal_walk", "--models", "ddssm", "dkf", "--num-steps", "1", "--num-train", "8"]
    smoke += ["--length", "6", "--num-test", "3", "--num-samples", "8", "--out", str(tmp_path)]
    with pytest.raises(SystemExit):  # checked before any fit
        defaults.main([*smoke, "--fast-samplers", "ddim16"])
    with pytest.raises(SystemExit):
        defaults.main([*smoke, "--fast-samplers", "euler:16"])
    assert "--fast-samplers" in capsys.readouterr().err and not (tmp_path / "runs").exists()
    records = defaults.main([*smoke, "--fast-samplers", "ddim:2", "heun:3", "ddpm:2"])
    fast = records["bimodal_walk", "ddssm"]["fast_samplers"]
    assert [(f["sampler"], f["steps"]) for f in fast] == [("ddim", 2), ("heun", 3), ("ddpm", 2)]
    assert all(0.0 <= f["jsd_mean"] <= 1.0 and f["forecast_s"] > 0 for f in fast)
    assert "fast_samplers" not in records["bimodal_walk", "dkf"]  # a Gaussian transition has one sampler
    rows = capsys.readouterr().out.split("sampler, steps")[1]
    assert "| bimodal_walk | ddssm |" in rows and "| heun 3 |" in rows
    # a run stored before --fast-samplers (one DDIM row under "fast_sampler") is still reported
    path = next((tmp_path / "runs").glob("bimodal_walk__ddssm__*.json"))
    rec = json.loads(path.read_text())
    rec["fast_sampler"] = rec.pop("fast_samplers")[0]
    path.write_text(json.dumps(rec))
    defaults.main([*smoke, "--report"])
    assert "| ddim 2 |" in capsys.readouterr().out
