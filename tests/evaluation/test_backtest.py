"""pyrossm.evaluation.backtest: window layout, refitting, seeding, scoring, covariates and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import pyrossm
from pyrossm import api
from pyrossm.evaluation import backtest
from pyrossm.evaluation.metrics import evaluate
from pyrossm.models import DKF

FIT = dict(num_steps=3, batch_size=8, channels=4, hidden_dim=4)
T = 12
FIXED = ["window", "t0", "t1", "t2", "time_start", "time_end", "variable"]
TIMING = ["train_seconds", "test_seconds"]


@pytest.fixture(scope="module")
def ds():
    return pyrossm.datasets.bimodal_random_walk(n_series=8, length=T, seed=0)


@pytest.fixture(scope="module")
def cov_ds(ds):
    rng = np.random.default_rng(1)
    u = rng.normal(size=(ds.sizes["series"], ds.sizes["time"]))
    return ds.assign(u=(("series", "time"), u), x=ds["x"] + u)


@pytest.fixture(scope="module")
def fitted(ds):
    return pyrossm.fit(model="dkf", data=ds, seed=0, progress=False, **FIT)


@pytest.fixture
def fit_calls(monkeypatch):
    """Counts the calls of ``pyrossm.api.fit`` (and records their keyword arguments)."""
    calls = []
    original = api.fit

    def counting_fit(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(api, "fit", counting_fit)
    return calls


def windows(df):
    return [tuple(int(v) for v in row) for row in df[["t0", "t1", "t2"]].drop_duplicates().values]


def metric_columns(df):
    return [c for c in df.columns if c not in FIXED + TIMING]


def by_hand(data, t0, t1, t2, seed=0, num_samples=10, covariates=None):
    """One window reproduced with pyrossm.fit / forecast / evaluate directly."""
    train = data.isel(time=slice(t0, t1))
    res = pyrossm.fit(model="dkf", data=train, covariates=covariates, seed=seed, progress=False, **FIT)
    test = data.isel(time=slice(t1, t2))
    future = test[covariates] if covariates else None
    fc = res.forecast(train, t2 - t1, num_samples=num_samples, future_covariates=future, seed=seed)
    targets = [v for v in data.data_vars if v not in (covariates or [])]
    return evaluate(fc, test[targets])


# ------------------------------------------------------------------------------ window layout

def test_expanding_windows_with_stride(ds, fit_calls):
    df = backtest("dkf", ds, min_train_window=6, test_window=2, stride=2, fit_options=FIT,
                  num_samples=10)
    assert windows(df) == [(0, 6, 8), (0, 8, 10), (0, 10, 12)]
    assert df["window"].tolist() == [0, 1, 2]
    assert len(fit_calls) == 3  # refit=True: one fit per window, on [t0, t1)
    assert [c["data"].sizes["time"] for c in fit_calls] == [6, 8, 10]
    assert all(c["seed"] == 0 and c["progress"] is False for c in fit_calls)


def test_sliding_windows_with_stride(ds, fitted):
    df = backtest(fitted, ds, train_window=4, test_window=2, stride=3, num_samples=10)
    assert windows(df) == [(0, 4, 6), (3, 7, 9), (6, 10, 12)]
    # min_train_window larger than train_window delays the first origin
    df = backtest(fitted, ds, train_window=3, min_train_window=5, test_window=3, stride=2,
                  num_samples=10)
    assert windows(df) == [(2, 5, 8), (4, 7, 10), (6, 9, 12)]
    # stride 1, last window ends exactly at T
    df = backtest(fitted, ds, min_train_window=9, test_window=3, num_samples=10)
    assert windows(df) == [(0, 9, 12)]


def test_columns_times_and_finite_metrics(ds):
    times = pd.date_range("2024-01-01", periods=T, freq="D")
    data = ds.assign_coords(time=times)
    df = backtest("dkf", data, train_window=5, test_window=3, stride=2, fit_options=FIT,
                  num_samples=10, progress=False)
    metrics = metric_columns(df)
    assert metrics, "no metric columns"
    assert list(df.columns) == FIXED + metrics + TIMING
    assert list(df.columns[7:-2]) == list(evaluate(
        *_forecast_and_truth(data, 0, 5, 8)).columns)
    assert df["variable"].tolist() == ["x"] * len(df)
    assert len(df) == 3 and isinstance(df.index, pd.RangeIndex)
    for _, row in df.iterrows():
        assert row["time_start"] == times[row["t1"]]
        assert row["time_end"] == times[row["t2"] - 1]
    assert np.isfinite(df[metrics].to_numpy(dtype=float)).all()
    assert (df[TIMING] > 0).all().all()


def _forecast_and_truth(data, t0, t1, t2):
    res = pyrossm.fit(model="dkf", data=data.isel(time=slice(t0, t1)), seed=0, progress=False, **FIT)
    fc = res.forecast(data.isel(time=slice(t0, t1)), t2 - t1, num_samples=10, seed=0)
    return fc, data.isel(time=slice(t1, t2))


# ------------------------------------------------------------------------------ refitting

def test_refit_false_fits_once_on_the_first_window(ds, fit_calls):
    df = backtest("dkf", ds, min_train_window=6, test_window=2, stride=2, refit=False,
                  fit_options=FIT, num_samples=10)
    assert len(fit_calls) == 1
    assert fit_calls[0]["data"].sizes["time"] == 6
    assert windows(df) == [(0, 6, 8), (0, 8, 10), (0, 10, 12)]
    assert df["train_seconds"].iloc[0] > 0 and (df["train_seconds"].iloc[1:] == 0).all()
    # the later windows forecast from their own (grown) context with the first window's fit
    res = pyrossm.fit(model="dkf", data=ds.isel(time=slice(0, 6)), seed=0, progress=False, **FIT)
    fc = res.forecast(ds.isel(time=slice(0, 10)), 2, num_samples=10, seed=0)
    expected = evaluate(fc, ds.isel(time=slice(10, 12)))
    row = df[df["window"] == 2].set_index("variable")
    for metric in expected.columns:
        np.testing.assert_allclose(row.loc["x", metric], expected.loc["x", metric], rtol=1e-10)


def test_fit_result_is_never_refitted(ds, fitted, fit_calls):
    for refit in (True, False):
        df = backtest(fitted, ds, min_train_window=8, test_window=2, stride=2, refit=refit,
                      num_samples=10)
        assert windows(df) == [(0, 8, 10), (0, 10, 12)]
        assert (df["train_seconds"] == 0).all()
    assert fit_calls == []
    # the context holds only the fit's variables: an extra variable in data is fine
    df = backtest(fitted, ds.assign(extra=ds["x"] * 0), min_train_window=10, test_window=2,
                  num_samples=10)
    assert df["variable"].tolist() == ["x"]


def test_model_instance_is_copied_for_each_fit(ds):
    torch.manual_seed(0)
    ssm = DKF(obs_dim=1, covariate_dim=0, channels=4, hidden_dim=4)
    before = {k: v.clone() for k, v in ssm.state_dict().items()}
    options = dict(num_steps=3, batch_size=8)
    first = backtest(ssm, ds, min_train_window=8, test_window=2, stride=2, fit_options=options,
                     num_samples=10)
    assert all(torch.equal(before[k], v) for k, v in ssm.state_dict().items())
    second = backtest(ssm, ds, min_train_window=8, test_window=2, stride=2, fit_options=options,
                      num_samples=10)
    pd.testing.assert_frame_equal(first.drop(columns=TIMING), second.drop(columns=TIMING))


# ------------------------------------------------------------------------------ seeding, scoring

def test_same_seed_same_result_and_metrics_match_evaluate(ds):
    kwargs = dict(train_window=5, test_window=3, stride=3, fit_options=FIT, num_samples=10, seed=3)
    first = backtest("dkf", ds, **kwargs)
    second = backtest("dkf", ds, **kwargs)
    pd.testing.assert_frame_equal(first.drop(columns=TIMING), second.drop(columns=TIMING))
    other = backtest("dkf", ds, **{**kwargs, "seed": 4})
    assert not np.allclose(first[metric_columns(first)].to_numpy(float),
                           other[metric_columns(other)].to_numpy(float))

    assert windows(first) == [(0, 5, 8), (3, 8, 11)]
    expected = by_hand(ds, 3, 8, 11, seed=3)
    row = first[first["window"] == 1].set_index("variable")
    assert sorted(metric_columns(first)) == sorted(expected.columns)
    for metric in expected.columns:
        np.testing.assert_allclose(row.loc["x", metric], expected.loc["x", metric], rtol=1e-10)


def test_covariates_are_passed_to_fit_and_forecast(cov_ds, fit_calls):
    df = backtest("dkf", cov_ds, min_train_window=8, test_window=2, stride=2, covariates=["u"],
                  fit_options=FIT, num_samples=10)
    assert windows(df) == [(0, 8, 10), (0, 10, 12)]
    assert df["variable"].tolist() == ["x", "x"]  # the covariate is not scored
    assert all(c["covariates"] == ["u"] for c in fit_calls)
    expected = by_hand(cov_ds, 0, 10, 12, covariates=["u"])
    row = df[df["window"] == 1].set_index("variable")
    for metric in expected.columns:
        np.testing.assert_allclose(row.loc["x", metric], expected.loc["x", metric], rtol=1e-10)

    # a FitResult with covariates takes them from data on [t1, t2)
    res = pyrossm.fit(model="dkf", data=cov_ds, covariates=["u"], seed=0, progress=False, **FIT)
    df = backtest(res, cov_ds, min_train_window=10, test_window=2, num_samples=10)
    assert df["variable"].tolist() == ["x"]
    assert np.isfinite(df[metric_columns(df)].to_numpy(float)).all()


def test_metrics_are_passed_to_evaluate(ds, fitted):
    df = backtest(fitted, ds, min_train_window=8, test_window=2, stride=2, num_samples=10,
                  metrics=["mae", "coverage", "crps"])
    assert metric_columns(df) == ["mae", "coverage_90", "crps"]
    assert np.isfinite(df[metric_columns(df)].to_numpy(float)).all()


# ------------------------------------------------------------------------------ progress

def test_progress_bar(ds, fitted, capsys):
    backtest(fitted, ds, min_train_window=10, test_window=2, num_samples=10, progress=True)
    assert "backtest" in capsys.readouterr().err
    for progress in (False, None):  # None: only on a terminal (captured stderr is not one)
        backtest(fitted, ds, min_train_window=10, test_window=2, num_samples=10, progress=progress)
        assert "backtest" not in capsys.readouterr().err


# ------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(test_window=0), ValueError, "test_window"),
    (dict(test_window=-2), ValueError, "test_window"),
    (dict(test_window=1.5), ValueError, "test_window"),
    (dict(test_window=None), ValueError, "test_window"),
    (dict(test_window=2, stride=0), ValueError, "stride"),
    (dict(test_window=2, stride=True), ValueError, "stride"),
    (dict(test_window=2, min_train_window=0), ValueError, "min_train_window"),
    (dict(test_window=2, train_window=0), ValueError, "train_window"),
    (dict(test_window=2, num_samples=0), ValueError, "num_samples"),
    (dict(test_window=2, seed=-1), ValueError, "seed"),
    (dict(test_window=2, seed=None), ValueError, "seed"),
    (dict(test_window=12), ValueError, r"T=12.*test_window=12"),
    (dict(test_window=3, min_train_window=10), ValueError, r"T=12.*min_train_window=10"),
    (dict(test_window=3, train_window=10), ValueError, r"T=12.*train_window=10"),
    (dict(test_window=2, train_window=1, fit_options=dict(order=2)), ValueError, "train_window"),
    (dict(test_window=2, fit_options=dict(order=2)), ValueError, "min_train_window"),
    (dict(test_window=2, model=3), TypeError, "model"),
    (dict(test_window=2, model=None), TypeError, "model"),
    (dict(test_window=2, fit_options=dict(data=None)), ValueError, "fit_options"),
    (dict(test_window=2, fit_options=dict(seed=1)), ValueError, "fit_options"),
    (dict(test_window=2, fit_options=dict(progress=True)), ValueError, "fit_options"),
    (dict(test_window=2, fit_options=dict(covariates=["u"])), ValueError, "fit_options"),
    (dict(test_window=2, fit_options=[("num_steps", 3)]), TypeError, "fit_options"),
    (dict(test_window=2, covariates=["nope"]), ValueError, "covariates"),
    (dict(test_window=2, metrics=["crps", "nope"]), ValueError, "metrics"),
    (dict(test_window=2, covariates="u"), TypeError, "covariates"),
    (dict(test_window=2, refit="yes"), TypeError, "refit"),
    (dict(test_window=2, progress="yes"), TypeError, "progress"),
])
def test_errors_before_any_fit(ds, kwargs, error, match, monkeypatch):
    def no_fit(*args, **kwargs):
        raise AssertionError("backtest fitted before validating its arguments")

    monkeypatch.setattr(api, "fit", no_fit)
    kwargs = {"model": "dkf", **kwargs}
    with pytest.raises(error, match=match):
        backtest(kwargs.pop("model"), ds, **kwargs)


def test_fit_result_argument_errors(ds, fitted, cov_ds):
    with pytest.raises(ValueError, match="fit_options"):
        backtest(fitted, ds, test_window=2, fit_options=dict(num_steps=3))
    with pytest.raises(ValueError, match="covariates"):
        backtest(fitted, cov_ds, test_window=2, covariates=["u"])
    with pytest.raises(ValueError, match="'x'"):
        backtest(fitted, ds.rename(x="y"), test_window=2)
