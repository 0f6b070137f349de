"""Argument checks shared by the public entry points."""

from __future__ import annotations

import numpy as np


def check_positive_int(name: str, value) -> int:
    """Returns ``value`` as an int, or raises ``ValueError`` naming ``name`` (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)
