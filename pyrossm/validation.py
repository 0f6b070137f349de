"""Argument checks shared by the public entry points."""

from __future__ import annotations

import numpy as np


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_positive_int(name: str, value) -> int:
    """Returns ``value`` (a Python or numpy int) as an int, or raises ``ValueError`` naming
    ``name`` (bools are rejected)."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def check_nonnegative_int(name: str, value) -> int:
    """As :func:`check_positive_int`, with 0 allowed."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def check_pairs(name: str, value, what: str) -> list:
    """``value`` (a list of 2-item sequences) as a list of tuples, or a ``ValueError`` naming
    ``name`` (and the item's index) and the expected ``what``, e.g. ``"(step, value)"``."""
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be a list of {what} pairs, got {value!r}")
    pairs = []
    for i, pair in enumerate(value):
        if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
            raise ValueError(f"{name}[{i}] must be a {what} pair, got {pair!r}")
        pairs.append(tuple(pair))
    return pairs
