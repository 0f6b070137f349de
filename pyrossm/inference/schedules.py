"""Annealing schedules for the rate weight lambda (DDSSM paper, Appendix I.2)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..validation import check_nonnegative_int


@dataclass(frozen=True)
class AnnealingSchedule:
    """``lambda(step)``: from ``start`` to ``end`` over ``warmup_steps`` steps, then constant.

    :param str kind: ``"cosine"`` (half-cosine ramp), ``"linear"`` or ``"constant"`` (always ``end``).
    :param float start: value at step 0 (> 0: Pyro's ``poutine.scale`` needs a positive weight).
    :param float end: value from ``warmup_steps`` on.
    :param int warmup_steps: length of the ramp (0 = no ramp).
    """

    kind: str = "cosine"
    start: float = 0.01
    end: float = 1.0
    warmup_steps: int = 0

    def __post_init__(self):
        if self.kind not in ("cosine", "linear", "constant"):
            raise ValueError(f"annealing kind must be 'cosine', 'linear' or 'constant', got {self.kind!r}")
        # a numpy int is kept as an int (the schedule is saved as JSON); the dataclass is frozen
        object.__setattr__(self, "warmup_steps",
                           check_nonnegative_int("annealing warmup_steps", self.warmup_steps))
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"annealing {name} must be a finite number > 0 (it scales Pyro "
                                 f"sites, which needs a positive weight), got {value!r}")

    def __call__(self, step: int) -> float:
        if self.kind == "constant" or self.warmup_steps == 0 or step >= self.warmup_steps:
            return float(self.end)
        frac = step / self.warmup_steps
        if self.kind == "cosine":
            frac = 0.5 * (1.0 - math.cos(math.pi * frac))
        return float(self.start + (self.end - self.start) * frac)

    def to_dict(self) -> dict:
        return asdict(self)
