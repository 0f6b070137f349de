"""The trainer's settings: :class:`TrainerConfig`, a few nested sections that go through JSON.

A configuration is written in one of three ways, all equivalent:

- ``TrainerConfig(num_steps=..., optimizer=OptimizerSettings(...), ...)``;
- a nested dict, ``{"num_steps": 3000, "optimizer": {"learning_rate": 3e-3}, ...}``, as
  :meth:`TrainerConfig.to_dict` writes it;
- a flat dict, ``{"num_steps": 3000, "learning_rate": 3e-3, "keep_best": True}``: every setting
  has a name unique across the sections, so each key finds its section.

``pyrossm.fit(..., trainer=...)`` takes any of them or the name of a preset
(:data:`~pyrossm.inference.presets.TRAINER_PRESETS`).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, field, fields

from ..validation import check_nonnegative_int, check_positive_int
from .schedules import AnnealingSchedule

LR_SCHEDULES = ("constant", "cosine", "linear")
#: settings earlier versions had and this one does not (warm restarts of the learning-rate decay,
#: restarting from the best parameters, a minibatch-size schedule with an optimiser reset, clipping
#: per group): only the bimodal benchmark's former CPU recipe used them, and none helped the
#: library's defaults on the six systems of ``benchmarks/defaults.py``.
#: :meth:`TrainerConfig.from_dict` refuses them, saying so; :func:`pyrossm.io.read_fit` drops them
#: from the settings of saved fits (:func:`pyrossm.io.without_removed_settings`).
REMOVED_SETTINGS = (
    "lr_restarts",
    "restart_from_best",
    "batch_schedule",
    "reset_moments_on_batch_change",
    "clip_per_group",
)


def _check_bools(settings, names):
    for name in names:
        if not isinstance(getattr(settings, name), bool):
            raise TypeError(f"{name} must be a bool, got {type(getattr(settings, name)).__name__}")


def _check_learning_rate(name, lr):
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"learning rate {name!r} must be a finite number > 0, got {lr!r}")


@dataclass
class OptimizerSettings:
    """AdamW and gradient clipping (section ``"optimizer"``).

    :param float learning_rate: the learning rate of every parameter group.
    :param dict learning_rates: per-group overrides, e.g. ``{"transition": 1e-2}`` (the DDSSM
        paper's enc_lr / dec_lr / trans_lr / zinit_lr of Appendix F are the groups ``encoder``,
        ``emission``, ``transition``, ``init``).
    :param float weight_decay: AdamW's (Table 4: 0.01).
    :param clip_norm: threshold on the joint norm of all groups' gradients (``None`` disables).
        The history records the joint norm (``grad_norm``) and each group's
        (``grad_norm_<group>``), before clipping.
    """

    learning_rate: float = 1e-3
    learning_rates: dict = field(default_factory=dict)
    weight_decay: float = 0.01
    clip_norm: float | None = 10.0

    def __post_init__(self):
        if not isinstance(self.learning_rates, dict):
            raise TypeError(f"learning_rates must be a dict of group -> rate, got {type(self.learning_rates).__name__}")
        self.learning_rates = dict(self.learning_rates)
        for name, lr in [("learning_rate", self.learning_rate), *self.learning_rates.items()]:
            _check_learning_rate(name, lr)
        if (
            isinstance(self.weight_decay, bool)
            or not isinstance(self.weight_decay, (int, float))
            or self.weight_decay < 0
        ):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.clip_norm is not None and (
            isinstance(self.clip_norm, bool) or not isinstance(self.clip_norm, (int, float)) or self.clip_norm <= 0
        ):
            raise ValueError(f"clip_norm must be > 0 or None, got {self.clip_norm!r}")


@dataclass
class ScheduleSettings:
    """The learning-rate schedule (section ``"schedule"``).

    Every group's rate is its base rate times a factor going from 1 at a stage's first step to
    ``lr_end_factor`` at its last (Loshchilov & Hutter, 2017), times a linear warm-up
    ``min(1, (step + 1) / lr_warmup_steps)``.

    :param str lr_schedule: ``"constant"`` (default), ``"cosine"`` or ``"linear"``.
    :param float lr_end_factor: the final factor, in ``(0, 1]``.
    :param int lr_warmup_steps: linear warm-up over this many first steps (0 = none), usual for
        diffusion networks, whose first Adam steps at full rate can push the denoiser into a
        state it does not leave.
    """

    lr_schedule: str = "constant"
    lr_end_factor: float = 0.1
    lr_warmup_steps: int = 0

    def __post_init__(self):
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if (
            isinstance(self.lr_end_factor, bool)
            or not isinstance(self.lr_end_factor, (int, float))
            or not 0 < self.lr_end_factor <= 1
        ):
            raise ValueError(f"lr_end_factor must be a number in (0, 1], got {self.lr_end_factor!r}")
        self.lr_warmup_steps = check_nonnegative_int("lr_warmup_steps", self.lr_warmup_steps)

    def factor(self, step: int, num_steps: int) -> float:
        """The factor on every base learning rate at ``step`` of a stage of ``num_steps``."""
        warmup = min(1.0, (step + 1) / self.lr_warmup_steps) if self.lr_warmup_steps else 1.0
        if self.lr_schedule == "constant" or num_steps == 0:
            return warmup
        progress = min(step / num_steps, 1.0)
        if self.lr_schedule == "linear":
            shape = 1.0 - progress
        else:
            shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        return warmup * (self.lr_end_factor + (1.0 - self.lr_end_factor) * shape)


@dataclass
class BatchingSettings:
    """Minibatches (section ``"batching"``).

    :param batch_size: series per minibatch (``None`` = all series every step).
    """

    batch_size: int | None = 128

    def __post_init__(self):
        if self.batch_size is not None:
            self.batch_size = check_positive_int("batch_size", self.batch_size)


@dataclass
class ObjectiveSettings:
    """What the models' objectives read (section ``"objective"``).

    :param annealing: the rate weight lambda of an annealed ELBO (DDSSM paper, Appendix I.2): an
        :class:`AnnealingSchedule`, its dict, or a kind name (``"cosine"``, ``"linear"``,
        ``"constant"``).  By default a cosine ramp from 0.01 to 1 over the first third of a
        stage (``warmup_steps=None``).
    :param int num_particles: vectorised ELBO particles ``S``.
    """

    annealing: AnnealingSchedule = field(default_factory=lambda: AnnealingSchedule(warmup_steps=None))
    num_particles: int = 1

    def __post_init__(self):
        if isinstance(self.annealing, str):
            self.annealing = AnnealingSchedule(kind=self.annealing, warmup_steps=None)
        elif isinstance(self.annealing, dict):
            self.annealing = AnnealingSchedule(**{"warmup_steps": None, **self.annealing})
        elif not isinstance(self.annealing, AnnealingSchedule):
            raise TypeError(f"annealing must be a str, dict or AnnealingSchedule, got {type(self.annealing).__name__}")
        self.num_particles = check_positive_int("num_particles", self.num_particles)


@dataclass
class SelectionSettings:
    """Validation and which parameters the fit ends with (section ``"selection"``).

    :param int validate_every: validate every N steps (0 disables): the objective's validation
        values (``val_elbo`` for an ELBO) and any further scores, e.g. ``val_log_score``.
    :param str validation_metric: what ``keep_best`` maximises, ``"elbo"`` by default (the
        history column ``"val_" + name``).
    :param bool keep_best: end with the parameters of the validation with the highest
        ``validation_metric`` rather than the last step's (restoring early stopping).
    :param ema_decay: ``None`` or a decay in ``[0, 1)``: an exponential moving average of the
        parameters, ``d = min(ema_decay, (1 + step) / (10 + step))``, as diffusion models are
        usually trained (Ho et al., 2020); validation uses it and the fit ends with it.
    :param int log_score_samples: draws of the 1-step predictive per series for
        ``val_log_score`` (the same draws at every validation).  The estimate
        ``log (1/S) sum_s p(x_T | z^s)`` is biased low by about ``Var / (2 S)`` of the relative
        likelihood, most for a sharp emission: with few draws it favours wide emissions.
    :param bool holdout_last_step: when ``fit`` gets no ``validation_data``, hold out the last
        time step: train on every series but that step and validate on the whole series (the
        1-step log score of the held-out step given the rest, as a forecast is scored).  Where
        the data are too short for it, ``fit`` warns and trains on everything without validation.
    """

    validate_every: int = 0
    validation_metric: str = "elbo"
    keep_best: bool = False
    ema_decay: float | None = None
    log_score_samples: int = 16
    holdout_last_step: bool = False

    def __post_init__(self):
        self.validate_every = check_nonnegative_int("validate_every", self.validate_every)
        self.log_score_samples = check_positive_int("log_score_samples", self.log_score_samples)
        if not isinstance(self.validation_metric, str) or not self.validation_metric:
            raise TypeError(f"validation_metric must be a non-empty str, got {self.validation_metric!r}")
        _check_bools(self, ("keep_best", "holdout_last_step"))
        if self.ema_decay is not None and (
            isinstance(self.ema_decay, bool)
            or not isinstance(self.ema_decay, (int, float))
            or not 0 <= self.ema_decay < 1
        ):
            raise ValueError(f"ema_decay must be None or a number in [0, 1), got {self.ema_decay!r}")
        if self.keep_best and not self.validate_every:
            raise ValueError(
                "keep_best=True keeps the parameters with the best validation: "
                "it needs validate_every > 0 (and validation data)"
            )
        if self.holdout_last_step and not self.validate_every:
            raise ValueError(
                "holdout_last_step=True holds out the last time step to validate on: it needs validate_every > 0"
            )


@dataclass
class CheckpointSettings:
    """Checkpoints and divergence (section ``"checkpointing"``).

    :param int checkpoint_every: checkpoint every N steps (0: only at the end of each stage;
        either way only with a ``checkpoint_dir``).
    :param str on_nonfinite: ``"raise"`` (default) or ``"restore"`` (reload the last checkpoint,
        halve the learning rates and go on; at most 3 times).
    """

    checkpoint_every: int = 0
    on_nonfinite: str = "raise"

    def __post_init__(self):
        self.checkpoint_every = check_nonnegative_int("checkpoint_every", self.checkpoint_every)
        if self.on_nonfinite not in ("raise", "restore"):
            raise ValueError(f"on_nonfinite must be 'raise' or 'restore', got {self.on_nonfinite!r}")


SECTIONS = {
    "optimizer": OptimizerSettings,
    "schedule": ScheduleSettings,
    "batching": BatchingSettings,
    "objective": ObjectiveSettings,
    "selection": SelectionSettings,
    "checkpointing": CheckpointSettings,
}
TOP_LEVEL = ("num_steps", "seed", "progress")
#: flat setting name -> its section
SECTION_OF = {f.name: section for section, cls in SECTIONS.items() for f in fields(cls)}


def closest(name, candidates) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``candidates`` to ``name``, or ``""``."""
    match = difflib.get_close_matches(str(name), list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


@dataclass
class TrainerConfig:
    """Settings of :class:`~pyrossm.inference.Trainer`: the run and six sections.

    :param int num_steps: optimisation steps of a one-stage model (a stage of a several-stage
        model may set its own budget).
    :param int seed: seeds Pyro / torch and the minibatch sampler.
    :param progress: show a tqdm bar (``None`` = on a terminal or in a Jupyter kernel).
    :param OptimizerSettings optimizer: rates, weight decay, clipping.
    :param ScheduleSettings schedule: learning-rate decay and warm-up.
    :param BatchingSettings batching: minibatch size.
    :param ObjectiveSettings objective: annealing and particles, read by the objectives.
    :param SelectionSettings selection: validation, keep-best, EMA.
    :param CheckpointSettings checkpointing: checkpoint interval, what a divergence does.

    Any section may be given as a dict.  See :meth:`from_dict` for flat dicts.
    """

    num_steps: int = 1000
    seed: int = 0
    progress: bool | None = None
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    batching: BatchingSettings = field(default_factory=BatchingSettings)
    objective: ObjectiveSettings = field(default_factory=ObjectiveSettings)
    selection: SelectionSettings = field(default_factory=SelectionSettings)
    checkpointing: CheckpointSettings = field(default_factory=CheckpointSettings)

    def __post_init__(self):
        self.num_steps = check_nonnegative_int("num_steps", self.num_steps)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            self.seed = check_nonnegative_int("seed", self.seed)
        if self.progress is not None and not isinstance(self.progress, bool):
            raise TypeError(f"progress must be a bool or None, got {type(self.progress).__name__}")
        for name, cls in SECTIONS.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, _section_from_dict(name, cls, value))
            elif not isinstance(value, cls):
                raise TypeError(
                    f"trainer section {name!r} must be a {cls.__name__} or a dict, got {type(value).__name__}"
                )

    # ------------------------------------------------------------------ conversions
    def to_dict(self) -> dict:
        """The nested, JSON-able form (:meth:`from_dict` reads it back)."""
        d = asdict(self)
        d["objective"]["annealing"] = self.objective.annealing.to_dict()
        return d

    @classmethod
    def from_dict(cls, settings: dict) -> TrainerConfig:
        """A configuration from a nested dict (:meth:`to_dict`'s form), a flat one (each setting
        by its own name, e.g. ``{"keep_best": True}``) or a mix.

        :raises ValueError: for an unknown name, with the closest valid one (or, for one of
            :data:`REMOVED_SETTINGS`, saying that it was removed).
        """
        if not isinstance(settings, dict):
            raise TypeError(f"trainer settings must be a dict, got {type(settings).__name__}")
        top, sections = {}, {name: {} for name in SECTIONS}
        for key, value in settings.items():
            if key in TOP_LEVEL:
                top[key] = value
            elif key in SECTIONS:
                if not isinstance(value, dict):
                    raise TypeError(f"trainer section {key!r} must be a dict, got {type(value).__name__}")
                for inner in value:
                    if SECTION_OF.get(inner) != key:
                        where = f" (it belongs to section {SECTION_OF[inner]!r})" if inner in SECTION_OF else ""
                        raise ValueError(
                            f"unknown setting {inner!r} in trainer section {key!r}"
                            f"{where or _hint(inner, [f.name for f in fields(SECTIONS[key])])}"
                        )
                sections[key].update(value)
            elif key in SECTION_OF:
                sections[SECTION_OF[key]][key] = value
            else:
                raise ValueError(f"unknown trainer setting {key!r}{_hint(key, [*TOP_LEVEL, *SECTIONS, *SECTION_OF])}")
        return cls(**top, **{name: SECTIONS[name](**values) for name, values in sections.items()})

    def flat(self) -> dict:
        """Every setting by its own name (``{"learning_rate": ..., "keep_best": ...}``)."""
        nested = self.to_dict()
        out = {key: nested[key] for key in TOP_LEVEL}
        for name in SECTIONS:
            out.update(nested[name])
        return out

    def updated(self, **settings) -> TrainerConfig:
        """A copy with the given flat settings replaced (a section given as a dict replaces
        only the settings it names)."""
        merged = self.to_dict()
        for key, value in settings.items():
            if key in SECTION_OF:
                merged[SECTION_OF[key]][key] = value
            elif key in SECTIONS and isinstance(value, dict):
                merged[key].update(value)
            elif key in TOP_LEVEL or key in SECTIONS:
                merged[key] = value
            else:
                raise ValueError(f"unknown trainer setting {key!r}{_hint(key, [*TOP_LEVEL, *SECTIONS, *SECTION_OF])}")
        return TrainerConfig.from_dict(merged)

    @classmethod
    def from_preset(cls, name: str, num_steps: int | None = None) -> TrainerConfig:
        """A registered preset (:data:`~pyrossm.inference.presets.TRAINER_PRESETS`), stretched
        to ``num_steps`` when given (see :meth:`stretched`)."""
        from .presets import TRAINER_PRESETS

        if name not in TRAINER_PRESETS:
            raise ValueError(
                f"unknown trainer preset {name!r}{closest(name, TRAINER_PRESETS)}; "
                f"presets are {sorted(TRAINER_PRESETS)}"
            )
        config = cls.from_dict(TRAINER_PRESETS[name])
        return config if num_steps is None else config.stretched(num_steps)

    @classmethod
    def resolve(cls, trainer) -> TrainerConfig:
        """``None`` (defaults), a :class:`TrainerConfig`, a dict or a preset name."""
        if trainer is None:
            return cls()
        if isinstance(trainer, cls):
            return cls.from_dict(trainer.to_dict())  # a copy that shares no section with it
        if isinstance(trainer, str):
            return cls.from_preset(trainer)
        if isinstance(trainer, dict):
            return cls.from_dict(trainer)
        raise TypeError(f"trainer must be None, a TrainerConfig, a dict or a preset name, got {type(trainer).__name__}")

    def stretched(self, num_steps: int) -> TrainerConfig:
        """The same recipe for a run of ``num_steps``: every setting that names a step (the
        annealing knots or warm-up, ``lr_warmup_steps``) or an interval of steps
        (``validate_every``, at least 1, so that as many validations take part in the model
        selection) is scaled by ``num_steps / self.num_steps`` and rounded, the annealing knots
        kept strictly increasing."""
        num_steps = check_nonnegative_int("num_steps", num_steps)
        if self.num_steps == 0:
            return self.updated(num_steps=num_steps)
        ratio = num_steps / self.num_steps
        d = self.to_dict()
        d["num_steps"] = num_steps
        annealing = d["objective"]["annealing"]
        if annealing["kind"] == "piecewise":
            knots = _stretch([step for step, _ in annealing["points"]], ratio)
            annealing["points"] = [[s, v] for s, (_, v) in zip(knots, annealing["points"])]
        elif annealing["warmup_steps"] is not None:
            annealing["warmup_steps"] = round(annealing["warmup_steps"] * ratio)
        d["schedule"]["lr_warmup_steps"] = round(d["schedule"]["lr_warmup_steps"] * ratio)
        selection = d["selection"]
        if selection["validate_every"]:
            selection["validate_every"] = max(1, round(selection["validate_every"] * ratio))
        return TrainerConfig.from_dict(d)

    def learning_rate_of(self, group: str) -> float:
        """The base learning rate of parameter group ``group``."""
        return self.optimizer.learning_rates.get(group, self.optimizer.learning_rate)


def _section_from_dict(name, cls, values):
    known = {f.name for f in fields(cls)}
    for key in values:
        if key in SECTION_OF and key not in known:
            raise ValueError(
                f"unknown setting {key!r} in trainer section {name!r} (it belongs to section {SECTION_OF[key]!r})"
            )
        if key not in known:
            raise ValueError(f"unknown setting {key!r} in trainer section {name!r}{_hint(key, known)}")
    return cls(**values)


def _hint(name, candidates) -> str:
    """What follows an unknown setting's name in its error: that it was removed (one of
    :data:`REMOVED_SETTINGS`), or the closest of ``candidates``."""
    if name in REMOVED_SETTINGS:
        return ": this setting was removed from pyrossm (fits saved with it still load)"
    return closest(name, candidates)


def _stretch(steps, ratio):
    """Steps scaled by ``ratio``, rounded and kept strictly increasing."""
    out, last = [], -1
    for step in steps:
        last = max(last + 1, round(step * ratio))
        out.append(last)
    return out
