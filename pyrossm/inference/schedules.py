"""Annealing schedules for the rate weight lambda (DDSSM paper, Appendix I.2)."""

from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass, replace

from ..validation import check_nonnegative_int, check_pairs


def _check_weight(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"annealing {name} must be a finite number > 0 (it scales Pyro "
            f"sites, which needs a positive weight), got {value!r}"
        )
    return float(value)


def _check_points(points):
    """``[(step, value), ...]`` -> a tuple of ``(int, float)`` pairs with increasing steps."""
    checked = []
    for i, pair in enumerate(check_pairs("annealing points", points, "(step, value)")):
        step = check_nonnegative_int(f"annealing points[{i}] step", pair[0])
        if checked and step <= checked[-1][0]:
            raise ValueError(
                f"annealing points must have strictly increasing steps, got step {step} "
                f"after {checked[-1][0]} at points[{i}]"
            )
        checked.append((step, _check_weight(f"points[{i}] value", pair[1])))
    if not checked:
        raise ValueError(
            "annealing kind 'piecewise' needs points=[(step, value), ...] (at least one); "
            "fit() takes them as annealing={'kind': 'piecewise', 'points': [...]}"
        )
    return tuple(checked)


@dataclass(frozen=True)
class AnnealingSchedule:
    """``lambda(step)``: from ``start`` to ``end`` over ``warmup_steps`` steps, then constant; or,
    with ``kind="piecewise"``, linear between the knots ``points``.

    The piecewise form expresses schedules that are not one ramp, e.g. the usual warm-up to 1,
    a phase above 1 and a return to 1 (``[(0, 0.01), (200, 1), (300, 1.5), (1800, 1.5),
    (2300, 1)]``; see ``docs/experiments/2026-11-30-lambda-phase.md`` for why a phase above 1 helps the DDSSM leave a
    latent that copies the noisy observations), or cyclical annealing.

    :param str kind: ``"cosine"`` (half-cosine ramp), ``"linear"``, ``"constant"`` (always
        ``end``) or ``"piecewise"``.
    :param float start: value at step 0 (> 0: Pyro's ``poutine.scale`` needs a positive weight).
    :param float end: value from ``warmup_steps`` on.
    :param warmup_steps: length of the ramp (0 = no ramp; ``None`` = a third of the stage it
        is used in, see :meth:`for_stage`).
    :param points: ``kind="piecewise"`` only: ``(step, value)`` knots with strictly increasing
        steps and values > 0; ``lambda`` is the first value before the first knot, linear between
        knots and the last value after the last one (``start``, ``end`` and ``warmup_steps`` are
        not used).
    """

    kind: str = "cosine"
    start: float = 0.01
    end: float = 1.0
    warmup_steps: int | None = 0
    points: tuple = ()

    def __post_init__(self):
        if self.kind not in ("cosine", "linear", "constant", "piecewise"):
            raise ValueError(f"annealing kind must be 'cosine', 'linear', 'constant' or 'piecewise', got {self.kind!r}")
        # a numpy int is kept as an int (the schedule is saved as JSON); the dataclass is frozen
        if self.warmup_steps is not None:
            object.__setattr__(self, "warmup_steps", check_nonnegative_int("annealing warmup_steps", self.warmup_steps))
        for name in ("start", "end"):
            _check_weight(name, getattr(self, name))
        if self.kind == "piecewise":
            object.__setattr__(self, "points", _check_points(self.points))
        elif self.points:
            raise ValueError(f"annealing points only apply to kind='piecewise', got kind={self.kind!r}")
        else:
            object.__setattr__(self, "points", ())

    def for_stage(self, num_steps: int) -> AnnealingSchedule:
        """This schedule with an unset ``warmup_steps`` (``None``) resolved to ``num_steps // 3``."""
        if self.warmup_steps is not None:
            return self
        return replace(self, warmup_steps=num_steps // 3)

    def __call__(self, step: int) -> float:
        if self.warmup_steps is None and self.kind not in ("piecewise", "constant"):
            raise ValueError(
                "this annealing schedule's warmup_steps is unset: resolve it with for_stage(num_steps) first"
            )
        if self.kind == "piecewise":
            return self._piecewise(step)
        if self.kind == "constant" or self.warmup_steps == 0 or step >= self.warmup_steps:
            return float(self.end)
        frac = step / self.warmup_steps
        if self.kind == "cosine":
            frac = 0.5 * (1.0 - math.cos(math.pi * frac))
        return float(self.start + (self.end - self.start) * frac)

    def _piecewise(self, step):
        steps = [s for s, _ in self.points]
        i = bisect.bisect_right(steps, step)  # points[i - 1] <= step < points[i]
        if i == 0:
            return self.points[0][1]
        if i == len(steps):
            return self.points[-1][1]
        (s0, v0), (s1, v1) = self.points[i - 1], self.points[i]
        return float(v0 + (v1 - v0) * (step - s0) / (s1 - s0))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["points"] = [list(p) for p in self.points]
        return d
