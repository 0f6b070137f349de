"""The time coordinate: its kind, its step and frequency, and its continuation for forecasts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..validation import check_nonnegative_int


def _plain(value):
    """numpy scalar -> python scalar (for JSON and hashing)."""
    return value.item() if isinstance(value, np.generic) else value


def _time_kind(time: np.ndarray) -> str:
    kind = np.asarray(time).dtype.kind
    if kind == "M":
        return "datetime"
    if kind in "iu":
        return "integer"
    return "other"


def _median_step(time: np.ndarray):
    """Median difference of a datetime or integer coordinate (None if fewer than 2 values)."""
    if len(time) < 2:
        return None
    if time.dtype.kind == "M":
        diffs = np.diff(time)
        step = np.int64(np.round(np.median(diffs.astype(np.int64))))
        return np.timedelta64(int(step), np.datetime_data(diffs.dtype)[0])
    return int(np.round(np.median(np.diff(time.astype(np.int64)))))


def _infer_freq(time: np.ndarray):
    if time.dtype.kind != "M" or len(time) < 3:
        return None
    try:
        return pd.infer_freq(pd.DatetimeIndex(time))
    except (TypeError, ValueError):
        return None


def extend_time(time: np.ndarray, horizon: int, known_kind=None, known_step=None, known_freq=None) -> np.ndarray:
    """
    The ``horizon`` time coordinate values following ``time[-1]``.

    Datetimes continue with the inferred frequency (``pandas.infer_freq``) or else the
    median step (falling back to the training step for very short ``time``); integers
    continue with their median step (or the training step, or 1); regularly spaced floats
    continue with their step; anything else gets integer positions continuing
    ``len(time)``.

    :param numpy.ndarray time: ``(T,)`` the time coordinate to continue.
    :param int horizon: the number of values to produce.
    :param known_kind: the training coordinate's kind (``"datetime"``, ``"integer"`` or
        ``"other"``); ``known_step`` and ``known_freq`` its step and frequency.  They are the
        fallbacks for a ``time`` too short to show its own.
    :returns: ``(horizon,)`` array, of ``time``'s dtype for datetimes and integers.
    """
    horizon = check_nonnegative_int("horizon", horizon)
    time = np.asarray(time)
    ahead = np.arange(1, horizon + 1)
    if time.size == 0:
        return np.arange(horizon)
    kind = time.dtype.kind
    if kind == "M":
        freq = _infer_freq(time) or (known_freq if len(time) < 3 else None)
        if freq is not None:
            index = pd.date_range(start=time[-1], periods=horizon + 1, freq=freq)
            # date_range rolls an off-anchor start forward: then every value is new
            index = index[1:] if index[0] == time[-1] else index[:horizon]
            return index.to_numpy().astype(time.dtype)
        step = _median_step(time)
        if step is None and known_kind == "datetime":
            step = known_step
        if step is None:
            raise ValueError(
                "cannot extend a datetime time coordinate with a single value: the contract knows no time step"
            )
        return (time[-1] + ahead * step).astype(time.dtype)
    if kind in "iu":
        step = _median_step(time)
        if step is None:
            step = known_step if known_kind == "integer" and known_step else 1
        return (time[-1] + ahead * step).astype(time.dtype)
    if kind == "f" and len(time) >= 2:
        diffs = np.diff(time)
        if np.all(diffs > 0) and np.allclose(diffs, diffs[0]):
            return time[-1] + ahead * diffs[0]
    return np.arange(len(time), len(time) + horizon)
