"""Rolling-origin backtesting of a forecaster along the ``time`` dim of a data set.

This module knows no model: it takes a fit callable or a fitted forecaster (duck typed), so it
imports nothing from ``pyrossm.api``, ``pyrossm.models`` or ``pyrossm.inference``.
"""

from __future__ import annotations

import inspect
import time as _time

import numpy as np
import pandas as pd

from ..data import as_dataset
from ..progress import progress_bar
from ..validation import check_nonnegative_int, check_positive_int
from .metrics import METRICS, evaluate

__all__ = ["backtest"]

_EXPECTED = (
    "a fit callable fit(train_data, seed) -> forecaster (e.g. lambda d, seed: "
    'pyrossm.fit(model="dkf", data=d, seed=seed, progress=False)) or a fitted '
    "forecaster with a forecast(context, horizon, num_samples=..., "
    "future_covariates=..., seed=...) method (e.g. a pyrossm.FitResult)"
)


def _check_forecaster(obj, what):
    """Raises a ``TypeError`` unless ``obj`` has a ``forecast`` method that takes ``(context,
    horizon, num_samples=..., future_covariates=..., seed=...)``; ``what`` names ``obj``."""
    method = getattr(obj, "forecast", None)
    if not callable(method):
        raise TypeError(f"{what} must be {_EXPECTED}, got {type(obj).__name__}")
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):  # no signature to check (a builtin, ...): trust the duck
        return
    try:
        signature.bind(None, 1, num_samples=1, future_covariates=None, seed=0)
    except TypeError:
        raise TypeError(
            f"{what} has a forecast method that does not take (context, horizon, "
            f"num_samples=..., future_covariates=..., seed=...) (an unfitted model?); "
            f"it must be {_EXPECTED}, got {type(obj).__name__}"
        ) from None


def _roles(forecaster, covariates, variables, what):
    """``(targets, covariates)`` of ``forecaster``: from its ``contract`` (``target_vars``,
    ``covariate_names``) where it has one, which ``covariates`` (if not ``None``) must agree
    with; else ``covariates`` (or none), and every other variable of ``variables`` as targets."""
    contract = getattr(forecaster, "contract", None)
    if contract is None:
        covariates = list(covariates or [])
        return [v for v in variables if v not in covariates], covariates
    known = list(getattr(contract, "covariate_names", None) or [])
    if covariates is not None and sorted(covariates) != sorted(known):
        raise ValueError(f"covariates={covariates} differ from the covariates {known} of {what}")
    targets = getattr(contract, "target_vars", None)
    if targets is None:
        targets = [v for v in variables if v not in known]
    return list(targets), known


def _first_origin(train_window, min_train_window) -> int:
    """The first forecast origin ``t1`` (the shortest training window)."""
    return min_train_window if train_window is None else max(train_window, min_train_window)


def _windows(num_time, train_window, min_train_window, test_window, stride):
    """The ``(t0, t1, t2)`` of every window: train on ``[t0, t1)``, test on ``[t1, t2)``."""
    windows = []
    for t1 in range(_first_origin(train_window, min_train_window), num_time - test_window + 1, stride):
        t0 = 0 if train_window is None else t1 - train_window
        windows.append((t0, t1, t1 + test_window))
    return windows


def backtest(
    fit,
    data,
    *,
    train_window=None,
    min_train_window=1,
    test_window,
    stride=1,
    metrics=None,
    num_samples=100,
    covariates=None,
    seed=0,
    progress=None,
) -> pd.DataFrame:
    """
    Backtests a forecaster on rolling forecast origins along the ``time`` dim of ``data``
    (in the spirit of :func:`pyro.contrib.forecast.backtest`, whose ``model_fn`` is our ``fit``).

    For every forecast origin ``t1`` (integer positions along ``time``) a forecaster is trained on
    ``[t0, t1)`` (``fit(data.isel(time=slice(t0, t1)), seed)``), forecasts ``test_window`` steps
    from that training slice as context, and the forecast is scored against ``data`` on
    ``[t1, t2)``, ``t2 = t1 + test_window``::

        expanding window (train_window=None): t0 = 0, t1 = min_train_window, ... step stride

            time  0 1 2 3 4 5 6 7 8 9
            w=0   T T T T t t .          t0=0 t1=4 t2=6
            w=1   T T T T T T t t .      t0=0 t1=6 t2=8
            w=2   T T T T T T T T t t    t0=0 t1=8 t2=10

        sliding window (train_window=3): t0 = t1 - train_window

            w=0   T T T t t . . . . .    t0=0 t1=3 t2=5
            w=1   . . T T T t t . . .    t0=2 t1=5 t2=7
            w=2   . . . . T T T t t .    t0=4 t1=7 t2=9

        (T = training / forecast context, t = test; here T=10, test_window=2, stride=2,
        min_train_window=4 for the expanding layout)

    The first origin is ``min_train_window`` (expanding) or ``max(train_window,
    min_train_window)`` (sliding); origins step by ``stride`` while ``t2 <= T``.

    This module imports no model: options of the fit (model, ``num_steps``, covariates, ...) go
    into the fit callable, e.g. ``backtest(lambda d, seed: pyrossm.fit(model="dkf", data=d,
    seed=seed, progress=False, num_steps=300), data, test_window=2)``.

    Seeding: every fit gets ``seed`` and every forecast gets ``seed`` (as in Pyro's backtest,
    each window starts from the same RNG state), so a window can be reproduced by hand with
    ``fit(data.isel(time=slice(t0, t1)), seed).forecast(data.isel(time=slice(t0, t1)),
    test_window, num_samples=num_samples, future_covariates=data[covariates].isel(time=slice(t1,
    t2)), seed=seed)`` (``future_covariates=None`` without covariates; with a fitted forecaster
    in place of ``fit``, drop the ``fit(...)`` call).

    :param fit: either a fit callable ``fit(train_data, seed) -> forecaster``, called once per
        window with the training slice ``data.isel(time=slice(t0, t1))`` (an ``xr.Dataset``, all
        variables of ``data``) and ``seed`` (positionally); or an already fitted forecaster,
        e.g. a :class:`pyrossm.FitResult`, used as is for every window (never refitted; only the
        context moves). A forecaster is any object with a method ``forecast(context, horizon,
        num_samples=..., future_covariates=..., seed=...)`` returning an ``xr.Dataset`` with dims
        ``(draw, series, time)`` (``horizon`` steps, at least the target variables; others are
        not scored); an object with a ``forecast`` attribute is
        taken for a forecaster, any other callable for a fit callable. A fit should show no
        progress bar of its own (``progress=False`` for :func:`pyrossm.fit`).
    :param data: ``xr.Dataset`` with dims ``("series", "time")`` (or anything
        :func:`pyrossm.data.as_dataset` accepts): the targets and the covariates.
    :param int train_window: length of a sliding training window; ``None`` (default) trains on
        an expanding window from the start of ``data``.
    :param int min_train_window: the first forecast origin (the shortest training window).
    :param int test_window: forecast horizon, steps per test window.
    :param int stride: steps between consecutive forecast origins.
    :param metrics: metric names, passed to :func:`pyrossm.evaluation.metrics.evaluate`
        (``None`` = all of its metrics).
    :param int num_samples: forecast draws per window.
    :param list covariates: names of covariate variables of ``data``: the forecast of a window
        gets their values on ``[t1, t2)`` as ``future_covariates`` and they are not scored. A
        forecaster with a ``contract`` (a ``FitResult``) names its targets and covariates itself
        (``contract.target_vars``, ``contract.covariate_names``; ``covariates`` must then be
        ``None`` or name the same variables); for other forecasters every variable of ``data``
        not in ``covariates`` is a target. ``covariates`` are not passed to ``fit``: a fit
        callable fits with covariates of its own (e.g. ``pyrossm.fit(..., covariates=["u"])``).
    :param int seed: seed of every fit and every forecast.
    :param progress: show a tqdm bar over windows (``None`` = on a terminal or in a Jupyter kernel).
    :returns: a tidy :class:`pandas.DataFrame`, one row per (window, target variable), with
        columns ``window`` (0, 1, ...), ``t0``, ``t1``, ``t2`` (integer positions),
        ``time_start`` / ``time_end`` (``time`` coordinate of the first and of the last test
        step, both inclusive), ``variable``, one column per metric, ``train_seconds`` (wall time
        of that window's call of ``fit``, 0.0 with a fitted forecaster) and ``test_seconds``
        (wall time of forecasting and scoring).
    :raises TypeError: if ``fit`` is neither a forecaster nor callable (or a fit callable returns
        no forecaster), ``covariates`` is not a list of str, or ``progress`` not a bool.
    :raises ValueError: on a bad window size, stride, seed or ``num_samples``, when no window
        fits in ``data`` or a training window is shorter than a fitted forecaster's order
        (``forecaster.model.order``), on unknown covariates or covariates that differ from a
        fitted forecaster's — all before any fitting (a fit callable's forecaster is checked
        after its fit).
    """
    # ---------------------------------------------------------------- validation (no fitting yet)
    if hasattr(fit, "forecast"):
        _check_forecaster(fit, "fit")
        fitted = fit
    elif callable(fit):
        fitted = None
    else:
        raise TypeError(f"fit must be {_EXPECTED}, got {type(fit).__name__}")
    test_window = check_positive_int("test_window", test_window)
    stride = check_positive_int("stride", stride)
    min_train_window = check_positive_int("min_train_window", min_train_window)
    if train_window is not None:
        train_window = check_positive_int("train_window", train_window)
    num_samples = check_positive_int("num_samples", num_samples)
    seed = check_nonnegative_int("seed", seed)
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be None or a bool, got {type(progress).__name__}")
    if metrics is not None:  # evaluate() checks the rest; a typo should not wait for a fit
        names = [metrics] if isinstance(metrics, str) else metrics
        unknown = [m for m in names if m not in METRICS]
        if unknown:
            raise ValueError(f"metrics has unknown names {unknown}; valid names are {list(METRICS)}")

    ds = as_dataset(data)
    if covariates is not None and (isinstance(covariates, str) or not all(isinstance(c, str) for c in covariates)):
        raise TypeError(f"covariates must be a list of variable names, got {covariates!r}")
    covariates = None if covariates is None else list(covariates)
    if covariates:
        absent = [c for c in covariates if c not in ds.data_vars]
        if absent:
            raise ValueError(f"covariates {absent} are not variables of data (variables: {list(ds.data_vars)})")
    if fitted is not None:
        targets, known = _roles(fitted, covariates, list(ds.data_vars), "the fitted forecaster")
        needed = targets + known
        absent = [v for v in needed if v not in ds.data_vars]
        if absent:
            raise ValueError(
                f"data has no variables {absent} that the fitted forecaster uses "
                f"(targets {targets}, covariates {known})"
            )
        ds = ds[needed]

    num_time = ds.sizes["time"]
    windows = _windows(num_time, train_window, min_train_window, test_window, stride)
    if not windows:
        layout = (
            f"min_train_window={min_train_window}"
            if train_window is None
            else f"train_window={train_window}, min_train_window={min_train_window}"
        )
        raise ValueError(
            f"no backtest window fits: data has T={num_time} time steps, but "
            f"{layout} plus test_window={test_window} need at least "
            f"{_first_origin(train_window, min_train_window) + test_window}"
        )

    # a fit callable's order is unknown before it fits (the fit itself checks its data)
    order = getattr(getattr(fitted, "model", None), "order", None)
    shortest = min(t1 - t0 for t0, t1, _ in windows)
    if isinstance(order, (int, np.integer)) and shortest < order:
        which = "min_train_window" if train_window is None else "train_window"
        raise ValueError(
            f"{which} gives a training window of {shortest} steps, shorter than the forecaster's Markov order {order}"
        )

    # ---------------------------------------------------------------- the windows
    rows = []
    for index, (t0, t1, t2) in enumerate(progress_bar(progress, iterable=windows, desc="backtest")):
        train_seconds = 0.0
        forecaster = fitted
        if forecaster is None:
            start = _time.perf_counter()
            forecaster = fit(ds.isel(time=slice(t0, t1)), seed)
            train_seconds = _time.perf_counter() - start
            _check_forecaster(forecaster, f"the result of fit on window {index}")
        targets, known = _roles(forecaster, covariates, list(ds.data_vars), f"the forecaster fitted on window {index}")

        start = _time.perf_counter()
        test = ds.isel(time=slice(t1, t2))
        future = test[known] if known else None
        forecast = forecaster.forecast(
            ds[targets + known].isel(time=slice(t0, t1)),
            test_window,
            num_samples=num_samples,
            future_covariates=future,
            seed=seed,
        )
        missing = [v for v in targets if v not in forecast.data_vars]
        if missing:
            raise ValueError(
                f"the forecast of window {index} has no variables {missing} (targets "
                f"{targets}, covariates {known}); it has {list(forecast.data_vars)}"
            )
        # only the targets are scored; step k of the forecast is position t1 + k of data (also
        # for an irregular time grid)
        forecast = forecast[targets].assign_coords(time=test["time"].values)
        scores = evaluate(forecast, test[targets], metrics=metrics)
        test_seconds = _time.perf_counter() - start

        scores = scores.reset_index()
        if "variable" not in scores.columns:  # an unnamed index
            scores = scores.rename(columns={scores.columns[0]: "variable"})
        metric_columns = [c for c in scores.columns if c != "variable"]
        times = test["time"].values
        frame = pd.DataFrame(
            {
                "window": index,
                "t0": t0,
                "t1": t1,
                "t2": t2,
                "time_start": [times[0]] * len(scores),
                "time_end": [times[-1]] * len(scores),
                "variable": scores["variable"].values,
            }
        )
        for column in metric_columns:
            frame[column] = scores[column].values
        frame["train_seconds"] = train_seconds
        frame["test_seconds"] = test_seconds
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)
