"""Rolling-origin backtesting of a forecasting model along the ``time`` dim of a data set."""

from __future__ import annotations

import copy
import time as _time

import numpy as np
import pandas as pd

from ..data import as_dataset
from ..progress import progress_bar
from ..validation import check_nonnegative_int, check_positive_int

__all__ = ["backtest"]

#: arguments of :func:`pyrossm.fit` that :func:`backtest` sets itself (not allowed in ``fit_options``)
_RESERVED_FIT_OPTIONS = ("model", "data", "covariates", "seed", "progress")


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


def backtest(model, data, *, train_window=None, min_train_window=1, test_window, stride=1,
             metrics=None, num_samples=100, refit=True, covariates=None, fit_options=None,
             seed=0, progress=None) -> pd.DataFrame:
    """
    Backtests a forecasting model on rolling forecast origins along the ``time`` dim of ``data``
    (in the spirit of :func:`pyro.contrib.forecast.backtest`).

    For every forecast origin ``t1`` (integer positions along ``time``) a model is trained on
    ``[t0, t1)``, forecasts ``test_window`` steps from that training slice as context, and the
    forecast is scored against ``data`` on ``[t1, t2)``, ``t2 = t1 + test_window``::

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

    Seeding: every fit gets ``seed`` and every forecast gets ``seed`` (as in Pyro's backtest,
    each window starts from the same RNG state), so a window can be reproduced by hand with
    ``pyrossm.fit(model, data=data.isel(time=slice(t0, t1)), seed=seed, progress=False,
    **fit_options).forecast(context, test_window, num_samples, future_covariates, seed=seed)``.

    :param model: a registered model name (``"dkf"``, ...), a
        :class:`~pyrossm.models.StateSpaceModel` (deep-copied for each fit, so every window starts
        from the same initial parameters and the instance passed in is left untouched), or a
        fitted :class:`~pyrossm.api.FitResult` (used as is for every window, never refitted;
        ``refit`` is then ignored).
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
    :param bool refit: fit a new model for every window (default); ``False`` fits once on the
        first window and forecasts every later window from its (growing or sliding) training
        slice as context with that one fit.
    :param list covariates: names of covariate variables of ``data`` (passed to
        :func:`pyrossm.fit`); the forecast of a window gets their values on ``[t1, t2)`` as
        future covariates. With a ``FitResult`` they are the fit's covariates (``covariates``
        must then be ``None`` or name the same variables).
    :param dict fit_options: further keyword arguments of :func:`pyrossm.fit` (``num_steps``,
        ``latent_dim``, architecture arguments, ...); not ``model``, ``data``, ``covariates``,
        ``seed`` or ``progress``, which backtest sets itself.
    :param int seed: seed of every fit and every forecast.
    :param progress: show a tqdm bar over windows (``None`` = only when stderr is a terminal);
        the fits themselves never show a bar.
    :returns: a tidy :class:`pandas.DataFrame`, one row per (window, target variable), with
        columns ``window`` (0, 1, ...), ``t0``, ``t1``, ``t2`` (integer positions),
        ``time_start`` / ``time_end`` (``time`` coordinate of the first and of the last test
        step, both inclusive), ``variable``, one column per metric, ``train_seconds`` (wall time
        of that window's fit, 0.0 where the window reused a fit) and ``test_seconds`` (wall time
        of forecasting and scoring).
    :raises TypeError: if ``model`` is not a str, StateSpaceModel or FitResult, ``fit_options``
        is not a dict, ``covariates`` not a list of str, or ``refit``/``progress`` not bools.
    :raises ValueError: on a bad window size, stride, seed or ``num_samples``, when no window
        fits in ``data`` or a training window is shorter than the model's order, on unknown
        covariates, or on reserved keys in ``fit_options`` — all before any fitting.
    """
    # imported here: evaluation is imported by pyrossm/__init__ before api; calling api.fit
    # through the module also keeps it patchable
    from .. import api
    from ..models import StateSpaceModel
    from .metrics import METRICS, evaluate

    # ---------------------------------------------------------------- validation (no fitting yet)
    if not isinstance(model, (str, StateSpaceModel, api.FitResult)):
        raise TypeError(f"model must be a registered model name (str), a StateSpaceModel or a "
                        f"FitResult, got {type(model).__name__}")
    test_window = check_positive_int("test_window", test_window)
    stride = check_positive_int("stride", stride)
    min_train_window = check_positive_int("min_train_window", min_train_window)
    if train_window is not None:
        train_window = check_positive_int("train_window", train_window)
    num_samples = check_positive_int("num_samples", num_samples)
    seed = check_nonnegative_int("seed", seed)
    if not isinstance(refit, (bool, np.bool_)):
        raise TypeError(f"refit must be a bool, got {type(refit).__name__}")
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress must be None or a bool, got {type(progress).__name__}")
    if metrics is not None:  # evaluate() checks the rest; a typo should not wait for a fit
        names = [metrics] if isinstance(metrics, str) else metrics
        unknown = [m for m in names if m not in METRICS]
        if unknown:
            raise ValueError(f"metrics has unknown names {unknown}; valid names are {list(METRICS)}")
    if fit_options is None:
        fit_options = {}
    if not isinstance(fit_options, dict):
        raise TypeError(f"fit_options must be a dict of pyrossm.fit keyword arguments, "
                        f"got {type(fit_options).__name__}")
    reserved = sorted(set(fit_options) & set(_RESERVED_FIT_OPTIONS))
    if reserved:
        raise ValueError(f"fit_options must not contain {reserved}: backtest sets "
                         f"{list(_RESERVED_FIT_OPTIONS)} itself (pass model, covariates and seed "
                         "to backtest)")
    reuse_given = isinstance(model, api.FitResult)
    fitted = model if reuse_given else None
    if fitted is not None and fit_options:
        raise ValueError(f"fit_options {sorted(fit_options)} given with a fitted FitResult, which "
                         "is never refitted")

    ds = as_dataset(data)
    if covariates is not None and (isinstance(covariates, str)
                                   or not all(isinstance(c, str) for c in covariates)):
        raise TypeError(f"covariates must be a list of variable names, got {covariates!r}")
    covariates = None if covariates is None else list(covariates)
    if fitted is not None:
        known = list(fitted.contract.covariate_names)
        if covariates is not None and sorted(covariates) != sorted(known):
            raise ValueError(f"covariates={covariates} differ from the FitResult's covariates "
                             f"{known}")
        covariates = known
        needed = list(fitted.contract.target_vars) + known
        absent = [v for v in needed if v not in ds.data_vars]
        if absent:
            raise ValueError(f"data has no variables {absent} that the FitResult was fitted on "
                             f"(targets {fitted.contract.target_vars}, covariates {known})")
        ds = ds[needed]
    elif covariates:
        absent = [c for c in covariates if c not in ds.data_vars]
        if absent:
            raise ValueError(f"covariates {absent} are not variables of data "
                             f"(variables: {list(ds.data_vars)})")

    num_time = ds.sizes["time"]
    windows = _windows(num_time, train_window, min_train_window, test_window, stride)
    if not windows:
        layout = (f"min_train_window={min_train_window}" if train_window is None else
                  f"train_window={train_window}, min_train_window={min_train_window}")
        raise ValueError(f"no backtest window fits: data has T={num_time} time steps, but "
                         f"{layout} plus test_window={test_window} need at least "
                         f"{_first_origin(train_window, min_train_window) + test_window}")

    if isinstance(model, str):
        order = fit_options.get("order", 1)
    else:
        order = (model.model if reuse_given else model).order
    shortest = min(t1 - t0 for t0, t1, _ in windows)
    if isinstance(order, (int, np.integer)) and shortest < order:
        which = "min_train_window" if train_window is None else "train_window"
        raise ValueError(f"{which} gives a training window of {shortest} steps, shorter than the "
                         f"model's Markov order {order}")

    # ---------------------------------------------------------------- the windows
    def fit_window(t0, t1):
        ssm = copy.deepcopy(model) if isinstance(model, StateSpaceModel) else model
        return api.fit(model=ssm, data=ds.isel(time=slice(t0, t1)), covariates=covariates,
                       seed=seed, progress=False, **fit_options)

    rows = []
    for index, (t0, t1, t2) in enumerate(progress_bar(progress, iterable=windows, desc="backtest")):
        train_seconds = 0.0
        if fitted is None or (refit and not reuse_given):
            start = _time.perf_counter()
            fitted = fit_window(t0, t1)
            train_seconds = _time.perf_counter() - start
        targets = list(fitted.contract.target_vars)
        names = targets + list(fitted.contract.covariate_names)

        start = _time.perf_counter()
        test = ds.isel(time=slice(t1, t2))
        future = test[list(fitted.contract.covariate_names)] if fitted.contract.covariate_names else None
        forecast = fitted.forecast(ds[names].isel(time=slice(t0, t1)), test_window,
                                   num_samples=num_samples, future_covariates=future, seed=seed)
        # step k of the forecast is position t1 + k of data (also for an irregular time grid)
        forecast = forecast.assign_coords(time=test["time"].values)
        scores = evaluate(forecast, test[targets], metrics=metrics)
        test_seconds = _time.perf_counter() - start

        scores = scores.reset_index()
        if "variable" not in scores.columns:  # an unnamed index
            scores = scores.rename(columns={scores.columns[0]: "variable"})
        metric_columns = [c for c in scores.columns if c != "variable"]
        times = test["time"].values
        frame = pd.DataFrame({"window": index, "t0": t0, "t1": t1, "t2": t2,
                              "time_start": [times[0]] * len(scores),
                              "time_end": [times[-1]] * len(scores),
                              "variable": scores["variable"].values})
        for column in metric_columns:
            frame[column] = scores[column].values
        frame["train_seconds"] = train_seconds
        frame["test_seconds"] = test_seconds
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)

