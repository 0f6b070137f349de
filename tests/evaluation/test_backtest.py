"""pyrossm.evaluation.backtest: windows, fit callables, seeding, scoring, covariates, errors."""

from __future__ import annotations

import ast
import inspect
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

import pyrossm
from pyrossm.evaluation import backtest
from pyrossm.evaluation.metrics import evaluate
from pyrossm.models import DKF

FIT = dict(num_steps=3, batch_size=8, channels=4, hidden_dim=4)
T = 12
FIXED = ["window", "t0", "t1", "t2", "time_start", "time_end", "variable"]
TIMING = ["train_seconds", "test_seconds"]


def dkf(d, seed):
    """The fit callable of most tests."""
    return pyrossm.fit(model="dkf", data=d, seed=seed, progress=False, **FIT)


def dkf_with(**options):
    def fit(d, seed):
        return pyrossm.fit(model="dkf", data=d, seed=seed, progress=False, **{**FIT, **options})

    return fit


class Recorder:
    """A fit callable that records its arguments ``(train_data, seed)``, then calls ``fit``."""

    def __init__(self, fit=dkf):
        self.fit, self.calls = fit, []

    def __call__(self, d, seed):
        self.calls.append((d, seed))
        return self.fit(d, seed)


class Persistence:
    """A forecaster without ``contract``: repeats the context's last value (no model at all)."""

    def __init__(self):
        self.calls = []

    def forecast(self, context, horizon, num_samples=100, future_covariates=None, seed=None):
        self.calls.append(
            dict(
                context=context,
                horizon=horizon,
                num_samples=num_samples,
                future_covariates=future_covariates,
                seed=seed,
            )
        )
        last = context.isel(time=-1)
        rng = np.random.default_rng(seed)
        out = {}
        for name, var in last.data_vars.items():
            noise = rng.normal(size=(num_samples, var.sizes["series"], horizon))
            out[name] = (("draw", "series", "time"), var.values[None, :, None] + noise)
        return xr.Dataset(out, coords={"series": context["series"].values, "time": np.arange(horizon)})


class OrderTwo(Persistence):
    """A fitted forecaster whose model has Markov order 2."""

    model = SimpleNamespace(order=2)


@pytest.fixture(scope="module")
def ds():
    return pyrossm.datasets.bimodal_random_walk(num_series=8, length=T, seed=0)


@pytest.fixture(scope="module")
def cov_ds(ds):
    rng = np.random.default_rng(1)
    u = rng.normal(size=(ds.sizes["series"], ds.sizes["time"]))
    return ds.assign(u=(("series", "time"), u), x=ds["x"] + u)


@pytest.fixture(scope="module")
def fitted(ds):
    return dkf(ds, 0)


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


def assert_row_matches(df, window, expected):
    row = df[df["window"] == window].set_index("variable")
    assert sorted(metric_columns(df)) == sorted(expected.columns)
    for metric in expected.columns:
        np.testing.assert_allclose(row.loc["x", metric], expected.loc["x", metric], rtol=1e-10)


# ------------------------------------------------------------------------------ window layout


def test_expanding_windows_with_stride(ds):
    fit = Recorder()
    df = backtest(fit, ds, min_train_window=6, test_window=2, stride=2, num_samples=10)
    assert windows(df) == [(0, 6, 8), (0, 8, 10), (0, 10, 12)]
    assert df["window"].tolist() == [0, 1, 2]
    assert len(fit.calls) == 3  # one fit per window, on [t0, t1)
    assert [d.sizes["time"] for d, _ in fit.calls] == [6, 8, 10]
    assert all(seed == 0 for _, seed in fit.calls)


def test_sliding_windows_with_stride(ds, fitted):
    df = backtest(fitted, ds, train_window=4, test_window=2, stride=3, num_samples=10)
    assert windows(df) == [(0, 4, 6), (3, 7, 9), (6, 10, 12)]
    # min_train_window larger than train_window delays the first origin
    df = backtest(fitted, ds, train_window=3, min_train_window=5, test_window=3, stride=2, num_samples=10)
    assert windows(df) == [(2, 5, 8), (4, 7, 10), (6, 9, 12)]
    # stride 1, last window ends exactly at T
    df = backtest(fitted, ds, min_train_window=9, test_window=3, num_samples=10)
    assert windows(df) == [(0, 9, 12)]


def test_columns_times_and_finite_metrics(ds):
    times = pd.date_range("2024-01-01", periods=T, freq="D")
    data = ds.assign_coords(time=times)
    df = backtest(dkf, data, train_window=5, test_window=3, stride=2, num_samples=10, progress=False)
    metrics = metric_columns(df)
    assert metrics, "no metric columns"
    assert list(df.columns) == FIXED + metrics + TIMING
    assert list(df.columns[7:-2]) == list(evaluate(*_forecast_and_truth(data, 0, 5, 8)).columns)
    assert df["variable"].tolist() == ["x"] * len(df)
    assert len(df) == 3 and isinstance(df.index, pd.RangeIndex)
    for _, row in df.iterrows():
        assert row["time_start"] == times[row["t1"]]
        assert row["time_end"] == times[row["t2"] - 1]
    assert np.isfinite(df[metrics].to_numpy(dtype=float)).all()
    assert (df[TIMING] > 0).all().all()


def _forecast_and_truth(data, t0, t1, t2):
    res = dkf(data.isel(time=slice(t0, t1)), 0)
    fc = res.forecast(data.isel(time=slice(t0, t1)), t2 - t1, num_samples=10, seed=0)
    return fc, data.isel(time=slice(t1, t2))


# ------------------------------------------------------------------------------ fit or forecaster


@pytest.mark.parametrize(
    "layout, expected",
    [
        (dict(min_train_window=5, stride=3), [(0, 5, 7), (0, 8, 10)]),
        (dict(train_window=4, stride=3), [(0, 4, 6), (3, 7, 9), (6, 10, 12)]),
    ],
)
def test_fit_callable_is_called_once_per_window_with_its_training_slice(ds, layout, expected):
    forecaster = Persistence()
    calls = []

    def fit(train, seed):
        calls.append((train, seed))
        return forecaster

    df = backtest(fit, ds, test_window=2, num_samples=10, seed=7, **layout)
    assert windows(df) == expected
    assert len(calls) == len(expected)
    for (train, seed), (t0, t1, _) in zip(calls, expected):
        assert seed == 7
        assert isinstance(train, xr.Dataset)
        xr.testing.assert_identical(train, ds.isel(time=slice(t0, t1)))
    # every forecast: the training slice as context, the test window as horizon, the seed
    assert len(forecaster.calls) == len(expected)
    for call, (t0, t1, _) in zip(forecaster.calls, expected):
        xr.testing.assert_identical(call["context"], ds.isel(time=slice(t0, t1)))
        assert call["horizon"] == 2 and call["num_samples"] == 10 and call["seed"] == 7
        assert call["future_covariates"] is None
    assert (df["train_seconds"] > 0).all()


def test_fit_result_is_never_refitted(ds):
    fit = Recorder()
    first = fit(ds.isel(time=slice(0, 6)), 0)
    df = backtest(first, ds, min_train_window=6, test_window=2, stride=2, num_samples=10)
    assert len(fit.calls) == 1  # only the call above
    assert windows(df) == [(0, 6, 8), (0, 8, 10), (0, 10, 12)]
    assert (df["train_seconds"] == 0).all()
    # the later windows forecast from their own (grown) context with the one fit
    fc = first.forecast(ds.isel(time=slice(0, 10)), 2, num_samples=10, seed=0)
    assert_row_matches(df, 2, evaluate(fc, ds.isel(time=slice(10, 12))))
    # the context holds only the fit's variables: an extra variable in data is fine
    df = backtest(first, ds.assign(extra=ds["x"] * 0), min_train_window=10, test_window=2, num_samples=10)
    assert df["variable"].tolist() == ["x"]


def test_forecaster_without_contract_and_covariates(cov_ds):
    forecaster = Persistence()
    df = backtest(
        forecaster, cov_ds, min_train_window=8, test_window=2, stride=2, covariates=["u"], num_samples=10, seed=5
    )
    assert windows(df) == [(0, 8, 10), (0, 10, 12)]
    assert df["variable"].tolist() == ["x", "x"]  # the covariate is not scored
    for call, t1 in zip(forecaster.calls, (8, 10)):
        assert call["seed"] == 5
        assert sorted(call["context"].data_vars) == ["u", "x"]
        future = cov_ds[["u"]].isel(time=slice(t1, t1 + 2))
        xr.testing.assert_identical(call["future_covariates"], future)
    # without covariates every variable is a target
    df = backtest(Persistence(), cov_ds, min_train_window=10, test_window=2, num_samples=10)
    assert sorted(df["variable"]) == ["u", "x"]


# ------------------------------------------------------------------------------ seeding, scoring


def test_same_seed_same_result_and_metrics_match_evaluate(ds):
    kwargs = dict(train_window=5, test_window=3, stride=3, num_samples=10, seed=3)
    first = backtest(dkf, ds, **kwargs)
    second = backtest(dkf, ds, **kwargs)
    pd.testing.assert_frame_equal(first.drop(columns=TIMING), second.drop(columns=TIMING))
    other = backtest(dkf, ds, **{**kwargs, "seed": 4})
    assert not np.allclose(first[metric_columns(first)].to_numpy(float), other[metric_columns(other)].to_numpy(float))

    assert windows(first) == [(0, 5, 8), (3, 8, 11)]
    assert_row_matches(first, 1, by_hand(ds, 3, 8, 11, seed=3))


def test_covariates_are_passed_to_forecast(cov_ds):
    fit = Recorder(dkf_with(covariates=["u"]))
    df = backtest(fit, cov_ds, min_train_window=8, test_window=2, stride=2, num_samples=10)
    assert windows(df) == [(0, 8, 10), (0, 10, 12)]
    # the covariate (from the fit's contract) is not scored
    assert df["variable"].tolist() == ["x", "x"]
    assert all(sorted(d.data_vars) == ["u", "x"] for d, _ in fit.calls)  # the fit sees all of data
    assert_row_matches(df, 1, by_hand(cov_ds, 0, 10, 12, covariates=["u"]))
    # covariates= naming the fit's covariates is fine (same result)
    again = backtest(
        dkf_with(covariates=["u"]),
        cov_ds,
        min_train_window=8,
        test_window=2,
        stride=2,
        num_samples=10,
        covariates=["u"],
    )
    pd.testing.assert_frame_equal(df.drop(columns=TIMING), again.drop(columns=TIMING))

    # a FitResult with covariates takes them from data on [t1, t2)
    res = dkf_with(covariates=["u"])(cov_ds, 0)
    df = backtest(res, cov_ds, min_train_window=10, test_window=2, num_samples=10)
    assert df["variable"].tolist() == ["x"]
    assert np.isfinite(df[metric_columns(df)].to_numpy(float)).all()


def test_metrics_are_passed_to_evaluate(ds, fitted):
    df = backtest(
        fitted, ds, min_train_window=8, test_window=2, stride=2, num_samples=10, metrics=["mae", "coverage", "crps"]
    )
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


def no_fit(*args, **kwargs):
    raise AssertionError("backtest fitted before validating its arguments")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
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
        (dict(test_window=2, train_window=1, fit=OrderTwo()), ValueError, "train_window.*order 2"),
        (dict(test_window=2, fit=OrderTwo()), ValueError, "min_train_window.*order 2"),
        (dict(test_window=2, fit=3), TypeError, "fit must be"),
        (dict(test_window=2, fit=None), TypeError, "fit must be"),
        (dict(test_window=2, fit="dkf"), TypeError, "fit must be"),
        (dict(test_window=2, fit=SimpleNamespace(forecast=3)), TypeError, "fit must be"),
        (dict(test_window=2, covariates=["nope"]), ValueError, "covariates"),
        (dict(test_window=2, metrics=["crps", "nope"]), ValueError, "metrics"),
        (dict(test_window=2, covariates="u"), TypeError, "covariates"),
        (dict(test_window=2, progress="yes"), TypeError, "progress"),
    ],
)
def test_errors_before_any_fit(ds, kwargs, error, match):
    kwargs = {"fit": no_fit, **kwargs}
    with pytest.raises(error, match=match):
        backtest(kwargs.pop("fit"), ds, **kwargs)


def test_a_model_is_neither_a_fit_callable_nor_a_forecaster(ds):
    torch.manual_seed(0)
    # an unfitted model is callable and has a forecast method, but not the forecaster's one
    ssm = DKF(obs_dim=1, covariate_dim=0, channels=4, hidden_dim=4)
    with pytest.raises(TypeError, match="fit has a forecast method that does not take"):
        backtest(ssm, ds, test_window=2)
    with pytest.raises(TypeError, match="fit has a forecast method"):  # the class, not an instance
        backtest(pyrossm.FitResult, ds, test_window=2)


def test_non_callable_without_forecast_raises_type_error(ds):
    for bad in (object(), 42, "dkf", {"model": "dkf"}):
        with pytest.raises(TypeError, match=r"^fit must be a fit callable .*forecaster"):
            backtest(bad, ds, test_window=2)


def test_fit_callable_result_errors(ds, cov_ds):
    with pytest.raises(TypeError, match="the result of fit on window 0 must be"):
        backtest(lambda d, seed: "not a forecaster", ds, test_window=2)
    with pytest.raises(ValueError, match=r"covariates=\['u'\] differ.*fitted on window 0"):
        backtest(dkf, cov_ds, min_train_window=10, test_window=2, covariates=["u"])


def test_fit_result_argument_errors(ds, fitted, cov_ds):
    with pytest.raises(ValueError, match="covariates"):
        backtest(fitted, cov_ds, test_window=2, covariates=["u"])
    with pytest.raises(ValueError, match="'x'"):
        backtest(fitted, ds.rename(x="y"), test_window=2)
    with pytest.raises(TypeError, match="fit_options"):  # dropped: close over them in fit
        backtest(fitted, ds, test_window=2, fit_options=dict(num_steps=3))
    with pytest.raises(TypeError, match="refit"):
        backtest(fitted, ds, test_window=2, refit=False)


# ------------------------------------------------------------------------------ no model imports


def test_backtest_module_imports_no_model_api_or_inference():
    module = sys.modules["pyrossm.evaluation.backtest"]
    tree = ast.parse(inspect.getsource(module))
    package = module.__name__.rsplit(".", 1)[0].split(".")  # ["pyrossm", "evaluation"]
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join(base + ([node.module] if node.module else []))
            imported.append(base)
            imported += [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call):  # no importlib.import_module / __import__ detours
            name = getattr(node.func, "attr", getattr(node.func, "id", None))
            assert name not in ("import_module", "__import__"), ast.unparse(node)
    assert "pyrossm.data.as_dataset" in imported  # the resolution of relative imports works
    for forbidden in ("pyrossm.api", "pyrossm.models", "pyrossm.inference"):
        hits = [m for m in imported if m == forbidden or m.startswith(forbidden + ".")]
        assert not hits, f"pyrossm.evaluation.backtest imports {hits}"
