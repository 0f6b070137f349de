"""Hyperparameter search (pyrossm.tuning): search spaces, trials, scores and errors."""

import importlib.util
import math

import numpy as np
import pytest

import pyrossm
from pyrossm.tuning import TABLE3_SPACE, Choice, FloatRange, IntRange, forecast_crps_score, tune

FIXED = dict(batch_size=8, channels=4, hidden_dim=4)


@pytest.fixture(scope="module")
def data():
    return (
        pyrossm.datasets.bimodal_random_walk(num_series=8, length=6, seed=0),
        pyrossm.datasets.bimodal_random_walk(num_series=4, length=6, seed=1),
    )


def test_draws_stay_in_their_ranges():
    rng = np.random.default_rng(0)
    draws = [{k: d.draw(rng) for k, d in TABLE3_SPACE.items()} for _ in range(300)]
    lr = np.array([d["lr_encoder"] for d in draws])
    assert lr.min() >= 5e-5 and lr.max() <= 1e-2
    # log-uniform: about half the draws below the geometric midpoint
    assert abs(np.mean(lr < math.sqrt(5e-5 * 1e-2)) - 0.5) < 0.1
    assert {d["batch_size"] for d in draws} == {64, 128, 256, 512}
    assert {d["num_noise_draws"] for d in draws} == set(range(1, 9))
    warm = np.array([d["warmup_steps"] for d in draws])
    assert warm.min() >= 200 and warm.max() <= 1200
    end = np.array([d["annealing_end"] for d in draws])
    assert end.min() >= 0.3 and end.max() <= 2.0


def test_random_search_runs_scores_and_sorts(data):
    train, valid = data
    space = {
        "lr_encoder": FloatRange(1e-3, 1e-2, log=True),
        "annealing": Choice(("linear", "cosine")),
        "num_particles": IntRange(1, 2),
        "num_noise_draws": IntRange(1, 3),
    }
    seen = []

    def score(result, validation):
        assert isinstance(result, pyrossm.FitResult)
        assert validation is valid
        seen.append(result.config["trainer"]["objective"]["num_particles"])
        return float(result.history["loss"].iloc[-1])

    table = tune("dkf", train, valid, space=space, num_trials=3, num_steps=2, score=score, fixed=FIXED, progress=False)
    assert len(table) == 3 and sorted(table["trial"]) == [0, 1, 2]
    assert list(table["score"]) == sorted(table["score"])
    assert table["lr_encoder"].between(1e-3, 1e-2).all()
    assert set(seen) <= {1, 2}
    # num_noise_draws is a diffusion-only parameter: drawn but not passed to a DKF
    args = table["fit_arguments"][0]
    assert "num_noise_draws" not in args and args["trainer"]["learning_rates"]["encoder"] == table["lr_encoder"][0]
    assert args["trainer"]["annealing"] == {"kind": table["annealing"][0]}
    assert args["num_steps"] == 2 and args["channels"] == 4
    assert set(args) == {"trainer", "num_steps", "seed", "batch_size", "channels", "hidden_dim"}
    # the same seed gives the same trials
    again = tune("dkf", train, valid, space=space, num_trials=3, num_steps=2, score=score, fixed=FIXED, progress=False)
    np.testing.assert_allclose(again["score"], table["score"])
    np.testing.assert_allclose(again["lr_encoder"], table["lr_encoder"])


def test_default_score_is_one_step_crps(data):
    train, valid = data
    table = tune(
        "ddssm",
        train,
        valid,
        space={"num_noise_draws": IntRange(1, 2)},
        num_trials=1,
        num_steps=1,
        fixed=dict(FIXED, num_diffusion_steps=8, diffusion_channels=4),
        progress=False,
    )
    assert np.isfinite(table["score"][0]) and table["score"][0] > 0
    assert table["fit_arguments"][0]["num_noise_draws"] == table["num_noise_draws"][0]
    # the score is the CRPS of the last step forecast from the rest, for the refit best model
    result = pyrossm.fit("ddssm", train, progress=False, **table["fit_arguments"][0])
    fc = result.forecast(valid.isel(time=slice(0, 5)), 1, num_samples=256, seed=0)
    expected = pyrossm.metrics.crps(fc["x"].values, valid["x"].values[:, 5:]).mean()
    assert table["score"][0] == pytest.approx(expected, rel=1e-6)


def test_nonfinite_score_is_inf(data):
    train, valid = data
    table = tune(
        "dkf",
        train,
        valid,
        space={"lr_encoder": FloatRange(1e-3, 2e-3, log=True)},
        num_trials=2,
        num_steps=1,
        score=lambda r, v: float("nan"),
        fixed=FIXED,
        progress=False,
    )
    assert np.isinf(table["score"]).all()


def test_fits_own_lr_arguments_are_searched_as_fit_arguments(data):
    import inspect

    from pyrossm.inference.config import SECTION_OF
    from pyrossm.tuning import FIT_LR_ARGUMENTS, _fit_arguments

    # the trainer's own lr_* settings (not learning-rate groups) go into trainer= as they are
    assert all(SECTION_OF[name] == "schedule" for name in FIT_LR_ARGUMENTS)
    assert not set(FIT_LR_ARGUMENTS) & set(inspect.signature(pyrossm.fit).parameters)
    args = _fit_arguments({"lr_encoder": 0.01, "lr_end_factor": 0.1, "lr_schedule": "cosine"}, "dkf")
    assert args == {"trainer": {"lr_end_factor": 0.1, "lr_schedule": "cosine", "learning_rates": {"encoder": 0.01}}}
    # the annealing ramp's names make one annealing dict; fixed trainer settings are kept
    args = _fit_arguments(
        {
            "annealing": "linear",
            "warmup_steps": 300,
            "annealing_end": 1.5,
            "num_particles": 2,
            "lr_transition": 0.002,
            "channels": 4,
        },
        "dkf",
        {"learning_rates": {"init": 0.001}, "keep_best": True},
    )
    assert args == {
        "channels": 4,
        "trainer": {
            "keep_best": True,
            "num_particles": 2,
            "learning_rates": {"init": 0.001, "transition": 0.002},
            "annealing": {"kind": "linear", "warmup_steps": 300, "end": 1.5},
        },
    }
    train, valid = data
    table = tune(
        "dkf",
        train,
        valid,
        space={"lr_end_factor": FloatRange(0.1, 0.5), "lr_schedule": Choice(("cosine", "linear"))},
        num_trials=2,
        num_steps=2,
        fixed=FIXED,
        progress=False,
    )
    assert table["lr_end_factor"].between(0.1, 0.5).all()
    assert set(table["lr_schedule"]) <= {"cosine", "linear"} and np.isfinite(table["score"]).all()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(model=3), TypeError, "model"),
        (dict(space={"lr_encoder": (1e-3, 1e-2)}), TypeError, "space"),
        (dict(space={"lr_decoder": FloatRange(1e-3, 1e-2, log=True)}), ValueError, "lr_decoder"),
        (dict(num_trials=0), ValueError, "num_trials"),
        (dict(num_steps=-1), ValueError, "num_steps"),
        (dict(sampler="grid"), ValueError, "sampler"),
        (dict(fixed={"seed": 1}), ValueError, "fixed"),
        (dict(fixed={"trainer": {"learning_rates": {}}}), ValueError, "fixed"),
        (dict(fixed={"trainer": {"annealing": "linear"}}), ValueError, "fixed"),
        (dict(fixed={"trainer": "dkf-table3"}), TypeError, "fixed"),
        (dict(fixed={"learning_rates": {}}), TypeError, r"trainer=\{'learning_rates'"),
    ],
)
def test_bad_arguments(data, kwargs, error, match):
    train, valid = data
    args = dict(model="dkf", data=train, validation_data=valid, num_steps=1, progress=False)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        tune(**args)


def test_score_needs_more_steps_than_horizon(data):
    train, valid = data
    with pytest.raises(ValueError, match="horizon"):
        forecast_crps_score(horizon=0)
    with pytest.raises(ValueError, match="horizon=6"):
        tune(
            "dkf",
            train,
            valid,
            space={"lr_encoder": FloatRange(1e-3, 2e-3, log=True)},
            num_trials=1,
            num_steps=1,
            score=forecast_crps_score(horizon=6),
            fixed=FIXED,
            progress=False,
        )


@pytest.mark.skipif(importlib.util.find_spec("optuna") is not None, reason="optuna is installed")
def test_optuna_sampler_needs_optuna(data):
    train, valid = data
    with pytest.raises(ValueError, match="optuna"):
        tune("dkf", train, valid, num_trials=1, num_steps=1, sampler="optuna", progress=False)
