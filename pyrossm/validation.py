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
