"""Hyperparameter search over the DDSSM paper's Table 3 ranges: random search, or Optuna when installed.

The paper tunes DKF and DDSSM with Optuna (50 trials of 1500 steps, 10 random start-up trials,
the validation 1-step JSD or CRPS-sum as the objective; App. F.1.1, Tables 3-4).  :func:`tune`
runs the same search on any data: each trial draws a configuration from a search space, fits it
with :func:`pyrossm.fit` and scores it on validation data (lower is better).  With
``sampler="random"`` it needs nothing beyond pyrossm; ``sampler="optuna"`` uses Optuna's TPE
sampler (``pip install optuna``) with the same search space.

A search space maps a name to a :class:`Choice`, :class:`IntRange` or :class:`FloatRange`; the
names are trainer settings (:class:`~pyrossm.inference.TrainerConfig`'s flat names:
``batch_size``, ``num_particles``, ``lr_schedule``, ...), ``"lr_<group>"`` for the per-group
learning rates (``encoder``, ``emission``, ``transition``, ``init``), the annealing ramp's
``annealing`` (kind), ``annealing_start``, ``annealing_end`` and ``warmup_steps``, and model
options such as ``num_noise_draws``.  :data:`TABLE3_SPACE` is the paper's (``dec_lr`` -> ``lr_emission``,
``trans_lr`` -> ``lr_transition``, ``zinit_lr`` -> ``lr_init``, ``S`` -> ``num_particles``,
``S_k`` -> ``num_noise_draws``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .inference.config import SECTION_OF
from .progress import progress_bar
from .validation import check_positive_int

__all__ = ["Choice", "IntRange", "FloatRange", "TABLE3_SPACE", "tune", "forecast_crps_score"]

LR_GROUPS = ("encoder", "emission", "transition", "init")
#: the trainer's own ``lr_*`` settings, passed through as they are (not learning-rate groups)
FIT_LR_ARGUMENTS = ("lr_schedule", "lr_end_factor", "lr_warmup_steps")
#: search names of the annealing ramp -> the keys of the trainer's ``annealing`` dict
ANNEALING_NAMES = {
    "annealing": "kind",
    "annealing_start": "start",
    "annealing_end": "end",
    "warmup_steps": "warmup_steps",
}


@dataclass(frozen=True)
class Choice:
    """One of ``values``, uniformly."""

    values: tuple

    def draw(self, rng):
        return self.values[int(rng.integers(len(self.values)))]

    def suggest(self, trial, name):
        return trial.suggest_categorical(name, list(self.values))


@dataclass(frozen=True)
class IntRange:
    """An integer in ``[low, high]`` (inclusive), uniformly."""

    low: int
    high: int

    def draw(self, rng):
        return int(rng.integers(self.low, self.high + 1))

    def suggest(self, trial, name):
        return trial.suggest_int(name, self.low, self.high)


@dataclass(frozen=True)
class FloatRange:
    """A float in ``[low, high]``: uniform, or uniform in ``log`` with ``log=True``."""

    low: float
    high: float
    log: bool = False

    def draw(self, rng):
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def suggest(self, trial, name):
        return trial.suggest_float(name, self.low, self.high, log=self.log)


#: Table 3 of the DDSSM paper (``num_noise_draws`` only applies to diffusion transitions).
TABLE3_SPACE = {
    "annealing": Choice(("linear", "cosine")),
    "warmup_steps": IntRange(200, 1200),
    "annealing_end": FloatRange(0.3, 2.0),
    "lr_encoder": FloatRange(5e-5, 1e-2, log=True),
    "lr_emission": FloatRange(5e-5, 1e-2, log=True),
    "lr_transition": FloatRange(5e-5, 1e-2, log=True),
    "lr_init": FloatRange(1e-4, 1e-3, log=True),
    "num_particles": IntRange(1, 4),
    "batch_size": Choice((64, 128, 256, 512)),
    "num_noise_draws": IntRange(1, 8),
}


def forecast_crps_score(horizon=1, num_samples=256):
    """A trial score: mean CRPS of the last ``horizon`` steps of each validation series, forecast
    from the steps before them (lower is better).

    :returns: ``score(result, validation_data) -> float``.
    """
    from .evaluation import crps

    check_positive_int("horizon", horizon)
    check_positive_int("num_samples", num_samples)

    def score(result, data):
        length = data.sizes["time"]
        if length <= horizon:
            raise ValueError(f"validation_data has {length} time steps; the score needs more than horizon={horizon}")
        context = data.isel(time=slice(0, length - horizon))
        future = data.isel(time=slice(length - horizon, None))
        forecast = result.forecast(context, horizon, num_samples=num_samples, seed=0)
        values = [crps(forecast[v].values, future[v].values).mean() for v in result.contract.target_vars]
        return float(np.mean(values))

    return score


def _check_space(space):
    if not isinstance(space, dict) or not space:
        raise TypeError("space must be a non-empty dict of name -> Choice / IntRange / FloatRange")
    for name, dist in space.items():
        if not isinstance(dist, (Choice, IntRange, FloatRange)):
            raise TypeError(f"space[{name!r}] must be a Choice, IntRange or FloatRange, got {type(dist).__name__}")
        if name.startswith("lr_") and name not in FIT_LR_ARGUMENTS and name[3:] not in LR_GROUPS:
            raise ValueError(
                f"space[{name!r}]: learning-rate groups are {list(LR_GROUPS)} (and "
                f"fit's own {list(FIT_LR_ARGUMENTS)} are searchable as they are)"
            )


def _fit_arguments(params, model, fixed_trainer=None):
    """Splits a drawn configuration into :func:`pyrossm.fit` arguments: trainer settings (``lr_*``
    -> ``learning_rates``, the ramp's names -> ``annealing``) into ``trainer``, on top of the
    ``fixed_trainer`` dict; the rest are model options."""
    out, lrs, annealing = {}, {}, {}
    trainer = dict(fixed_trainer or {})
    for name, value in params.items():
        if name in ANNEALING_NAMES:
            annealing[ANNEALING_NAMES[name]] = value
        elif name.startswith("lr_") and name not in FIT_LR_ARGUMENTS:
            lrs[name[3:]] = value
        elif name in SECTION_OF:
            trainer[name] = value
        else:
            out[name] = value
    if model != "ddssm":
        out.pop("num_noise_draws", None)  # Table 3: diffusion transitions only
    if annealing:
        trainer["annealing"] = {"kind": "cosine", **annealing}
    if lrs:
        trainer["learning_rates"] = {**trainer.get("learning_rates", {}), **lrs}
    if trainer:
        out["trainer"] = trainer
    return out


def tune(
    model,
    data,
    validation_data,
    *,
    space=None,
    num_trials=20,
    num_steps=1500,
    score=None,
    sampler="random",
    seed=0,
    fixed=None,
    progress=None,
):
    """Searches hyperparameters: ``num_trials`` fits, each scored on ``validation_data``.

    :param str model: a registered model name (``"dkf"``, ``"ddssm"``).
    :param data: training data (see :func:`pyrossm.fit`).  :param validation_data: scoring data.
    :param dict space: name -> :class:`Choice` / :class:`IntRange` / :class:`FloatRange`
        (default :data:`TABLE3_SPACE`).
    :param int num_trials: trials.  :param int num_steps: SVI steps per trial (paper: 1500).
    :param score: ``score(result, validation_data) -> float``, lower is better (default
        :func:`forecast_crps_score` ``(horizon=1)``).
    :param str sampler: ``"random"`` or ``"optuna"`` (TPE, 10 random start-up trials as in Table 4).
    :param dict fixed: :func:`pyrossm.fit` arguments shared by every trial (model options,
        ``batch_size``, a ``trainer`` dict of settings that are not searched).
    :returns: ``pandas.DataFrame``, one row per trial sorted by ``score`` (best first), columns
        ``trial``, ``score``, ``seconds``, one per searched parameter, ``fit_arguments`` (the
        trial's :func:`pyrossm.fit` keyword arguments: ``fit(model, data,
        **table.fit_arguments[0])`` refits the best) and ``error``; a trial whose fit stops on a
        non-finite loss gets ``score = inf`` and the message in ``error``.
    :param progress: tqdm bar over trials (``None`` = on a terminal or in a Jupyter kernel).
    """
    from .api import fit
    from .inference import NonFiniteLossError

    if not isinstance(model, str):
        raise TypeError(f"model must be a registered model name, got {type(model).__name__}")
    space = dict(TABLE3_SPACE if space is None else space)
    _check_space(space)
    check_positive_int("num_trials", num_trials)
    check_positive_int("num_steps", num_steps)
    if sampler not in ("random", "optuna"):
        raise ValueError(f"sampler must be 'random' or 'optuna', got {sampler!r}")
    fixed = dict(fixed or {})
    fixed_trainer = fixed.pop("trainer", None) or {}
    if not isinstance(fixed_trainer, dict):
        raise TypeError(f"fixed['trainer'] must be a dict of trainer settings, got {type(fixed_trainer).__name__}")
    searched = _fit_arguments(space, model)
    clash = ({"data", "num_steps", "seed", "progress", "validation_data"} | (set(searched) - {"trainer"})) & set(fixed)
    clash |= set(searched.get("trainer", {})) & set(fixed_trainer)
    if clash:
        raise ValueError(f"fixed must not set {sorted(clash)}: they are searched or set by tune()")
    score = score or forecast_crps_score()

    def run_trial(number, params):
        start = time.perf_counter()
        arguments = dict(fixed, **_fit_arguments(params, model, fixed_trainer), num_steps=num_steps, seed=seed + number)
        try:
            result = fit(model, data, progress=False, **arguments)
            value, error = float(score(result, validation_data)), ""
        except NonFiniteLossError as exc:
            value, error = math.inf, str(exc).splitlines()[0]
        if not math.isfinite(value):
            value = math.inf
        return {
            "trial": number,
            "score": value,
            "seconds": time.perf_counter() - start,
            **params,
            "fit_arguments": arguments,
            "error": error,
        }

    rows = []
    bar = progress_bar(progress, total=num_trials, desc="tuning", unit="trial")
    if sampler == "random":
        rng = np.random.default_rng(seed)
        for number in range(num_trials):
            rows.append(run_trial(number, {name: d.draw(rng) for name, d in space.items()}))
            bar.update(1)
    else:
        try:
            import optuna
        except ImportError as exc:
            raise ValueError("sampler='optuna' needs Optuna: pip install optuna") from exc

        def objective(trial):
            row = run_trial(trial.number, {name: d.suggest(trial, name) for name, d in space.items()})
            rows.append(row)
            bar.update(1)
            return row["score"]

        study = optuna.create_study(
            direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, num_trials))
        )
        study.optimize(objective, n_trials=num_trials)
    bar.close()
    return pd.DataFrame(rows).sort_values(["score", "trial"]).reset_index(drop=True)
