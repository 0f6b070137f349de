"""``pyrossm.fit`` and ``pyrossm.load``: glue data, model, objective and trainer -- nothing else."""

from __future__ import annotations

import hashlib
import inspect
import warnings

import numpy as np
import torch

from . import draws
from .data import DataContract
from .inference import Trainer, TrainerConfig, distributed
from .inference.config import REMOVED_SETTINGS, SECTION_OF, SECTIONS, SelectionSettings, closest
from .io import load
from .models import GenerativeModel, get_spec, spec_of
from .models.base import require
from .result import FitResult

__all__ = ["fit", "load", "FitResult", "LOG_SCORE_SAMPLES"]

#: series longer than this many time steps get a warning (and the hint to cut them into windows)
LONG_SERIES = 1024
#: draws of the 1-step predictive per series for ``validation_metric="log_score"`` unless the
#: trainer's ``log_score_samples`` says otherwise
LOG_SCORE_SAMPLES = SelectionSettings.log_score_samples


class _FromTrainer:
    """The default of ``fit``'s training arguments: take the value from ``trainer``."""

    def __repr__(self):
        return "<from trainer>"


FROM_TRAINER = _FromTrainer()


def _as_python(value):
    """numpy scalars as Python ones (model options are saved as JSON; the models check ints)."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _trainer_config(trainer, num_steps, overrides, family_defaults=None) -> TrainerConfig:
    """The run's settings: ``trainer`` (a preset stretched to ``num_steps`` when both are given)
    with ``fit``'s own arguments in place of its values; ``None`` or a dict read on top of the
    model family's ``family_defaults`` (flat settings) where it has them, those stretched to the
    run's ``num_steps`` (``fit``'s or the dict's) as a preset is."""
    if isinstance(trainer, str):
        config = TrainerConfig.from_preset(trainer, None if num_steps is FROM_TRAINER else num_steps)
    else:
        if family_defaults and (trainer is None or isinstance(trainer, dict)):
            config = TrainerConfig.from_dict(family_defaults)
            # a shorter or longer run passes through the same phases of the family's recipe
            steps = num_steps if num_steps is not FROM_TRAINER else (trainer or {}).get("num_steps")
            config = config.stretched(steps) if steps is not None else config
            config = config.updated(**trainer) if trainer else config
        else:
            config = TrainerConfig.resolve(trainer)
        if num_steps is not FROM_TRAINER:
            overrides["num_steps"] = num_steps
    given = {k: v for k, v in overrides.items() if v is not FROM_TRAINER}
    return config.updated(**given) if given else config


#: former ``fit`` arguments of the annealing ramp -> their key in the trainer's ``annealing`` dict
FORMER_ANNEALING = {"annealing_start": "start", "annealing_end": "end", "warmup_steps": "warmup_steps"}


def _check_model_options(model, spec, options, fit_names):
    """Unknown options are a ``TypeError`` naming the closest valid name (or the trainer setting);
    ``spec`` is the registered model's :class:`~pyrossm.models.ModelSpec` (``None`` for an instance)."""
    allowed = set() if spec is None else spec.options()
    for name in options:
        if name in allowed:
            continue
        if name in FORMER_ANNEALING:
            raise TypeError(
                f"fit() got {name}={options[name]!r}: the annealing ramp is a trainer setting, pass "
                f"trainer={{'annealing': {{'kind': 'cosine', {FORMER_ANNEALING[name]!r}: "
                f"{options[name]!r}}}}}"
            )
        if name in REMOVED_SETTINGS:
            raise TypeError(
                f"fit() got {name}={options[name]!r}: the trainer setting {name!r} was removed from pyrossm"
            )
        if name in SECTION_OF or name in SECTIONS:
            raise TypeError(
                f"fit() got {name}={options[name]!r}: {name!r} is a trainer setting, pass "
                f"trainer={{{name!r}: {options[name]!r}}} (or a TrainerConfig)"
            )
        if spec is None:
            raise TypeError(
                f"fit() got an unexpected keyword argument {name!r}{closest(name, fit_names)}: "
                "model options only apply to registered model names"
            )
        raise TypeError(
            f"fit() got an unexpected keyword argument {name!r}"
            f"{closest(name, [*fit_names, *allowed])}; options of model {model!r} are "
            f"{sorted(allowed)}"
        )


def _run_description(model_name, net, contract, train) -> dict:
    """What a checkpoint must match to be resumed: the model and the data (a fingerprint of the
    scaled values, mask and covariates, and the contract's variables)."""
    digest = hashlib.sha256()
    for tensor in (train.values, train.mask, train.covariates):
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return {
        "model": model_name or type(net).__name__,
        "model_config": net.config,
        "structure": net.structure(),
        "data": {
            "variables": contract.target_vars + contract.covariate_names,
            "shape": list(train.values.shape),
            "sha256": digest.hexdigest(),
        },
    }


def _hold_out_last_step(data, min_length):
    """``(train, validation, why_not)``: every series but its last time step to train on and the
    whole series to validate on (the 1-step log score scores that step); where that cannot be
    done, ``(data, None, reason)``."""
    if data.num_time < 2:
        return data, None, "the series have a single time step"
    if not bool(data.mask[:, -1, :].any()):
        return data, None, "no series is observed at the last time step"
    train = data.head(data.num_time - 1)
    if bool((train.lengths < min_length).any()):
        return data, None, f"some series would keep fewer than the model's {min_length} observed steps"
    return train, data, ""


def fit(
    model="dkf",
    data=None,
    *,
    covariates=None,
    validation_data=None,
    num_steps=FROM_TRAINER,
    batch_size=FROM_TRAINER,
    learning_rate=FROM_TRAINER,
    trainer=None,
    checkpoint_dir=None,
    resume=False,
    device="auto",
    seed=FROM_TRAINER,
    progress=FROM_TRAINER,
    **model_options,
) -> FitResult:
    """Fits a generative model to time series: trains each of its stages in order.

    :param model: a registered name (``"dkf"``, ``"ddssm"``, ...; any case) or a
        :class:`~pyrossm.models.GenerativeModel` instance (e.g. a
        :class:`~pyrossm.models.StateSpaceModel` built from parts).
    :param data: ``xr.Dataset`` with dims ``("series", "time")`` (or a DataFrame / DataArray, see
        :mod:`pyrossm.data`); NaN marks missing observations.
    :param list covariates: names of variables that are covariates (observed, not modelled).
    :param validation_data: data validated every ``validate_every`` steps (a trainer setting):
        the objective's validation values (e.g. ``val_elbo``) and, with
        ``validation_metric="log_score"``, the 1-step predictive log score of each series' last
        step (:meth:`FitResult.log_score` with the trainer's ``log_score_samples`` draws, 16
        by default, the same at every validation), which ``keep_best`` may maximise.  Without
        it, the trainer setting ``holdout_last_step=True`` holds out the last time step of
        ``data`` instead: the model trains on the steps before it and is validated on the whole.
    :param int num_steps: training steps (of a one-stage model).  With a preset name as
        ``trainer``, the preset is stretched to it (every setting that names a step).
    :param batch_size: series per step (``None`` = all).
    :param float learning_rate: every group's base learning rate (per-group rates are the
        trainer's ``learning_rates``).
    :param trainer: the training settings: ``None`` (the model family's defaults: for the DKF
        :data:`~pyrossm.models.registry.SSM_TRAINER_DEFAULTS`, for the DDSSM
        :data:`~pyrossm.models.registry.DDSSM_TRAINER_DEFAULTS`, else the
        :class:`~pyrossm.inference.TrainerConfig` defaults), a
        :class:`~pyrossm.inference.TrainerConfig`, a dict (flat, e.g. ``{"keep_best": True,
        "validate_every": 100, "learning_rates": {"transition": 1e-2}}``, or nested by section)
        or a preset name from :data:`~pyrossm.inference.TRAINER_PRESETS`.  ``num_steps``,
        ``batch_size``, ``learning_rate``, ``seed`` and ``progress`` given here replace its values.
    :param checkpoint_dir: folder for atomic checkpoints (every ``checkpoint_every`` steps and at
        the end of each stage); ``resume=True`` continues from the last one (bit for bit with the
        same arguments).
    :param device: ``"auto"``, ``"cpu"`` or ``"cuda"``.  :param int seed: reproducibility seed.
    :param progress: show a progress bar (``None`` = on a terminal or in a Jupyter kernel).
    :param model_options: options of the registered model (e.g. ``latent_dim=2``, ``order=2``,
        ``init="vhp"``, ``channels=16``); an unknown name raises ``TypeError`` naming the closest.
    :returns: :class:`FitResult`.
    """
    if data is None:
        raise ValueError("data is required: an xarray Dataset with dims ('series', 'time')")
    if not isinstance(model, (str, GenerativeModel)):
        raise TypeError(f"model must be a str or a GenerativeModel, got {type(model).__name__}")
    spec = get_spec(model) if isinstance(model, str) else None  # an unknown name fails before anything else
    fit_names = [name for name in inspect.signature(fit).parameters if name != "model_options"]
    _check_model_options(model, spec, model_options, fit_names)
    options = {name: _as_python(value) for name, value in model_options.items()}
    family = spec if spec is not None else spec_of(model)
    config = _trainer_config(
        trainer,
        num_steps,
        dict(batch_size=batch_size, learning_rate=learning_rate, seed=seed, progress=progress),
        family.trainer_defaults if family is not None else None,
    )
    selection = config.selection
    held_out = validation_data is None and selection.holdout_last_step
    if selection.keep_best and validation_data is None and not held_out:
        raise ValueError(
            "keep_best=True keeps the parameters with the best validation: "
            "it needs validation_data (and validate_every > 0)"
        )
    if selection.validation_metric == "log_score" and (
        (validation_data is None and not held_out) or not selection.validate_every
    ):
        raise ValueError(
            "validation_metric='log_score' is computed on validation_data (or the held-out last step, "
            "holdout_last_step=True) every validate_every steps: give both"
        )
    dev = draws.resolve_device(device)
    distributed.init_from_env(dev)  # under torchrun: join the process group (data-parallel training)

    contract, train = DataContract.fit(data, covariates=covariates)
    if isinstance(model, GenerativeModel):
        if model.obs_dim != contract.num_channels:
            raise ValueError(f"model has obs_dim={model.obs_dim} but data has {contract.num_channels} target channels")
        if model.covariate_dim != contract.num_covariates:
            raise ValueError(
                f"model has covariate_dim={model.covariate_dim} but data has "
                f"{contract.num_covariates} covariate columns"
            )
        model_name, net = None, model
    else:
        model_name = spec.name
        torch.manual_seed(config.seed)
        net = spec.build(obs_dim=contract.num_channels, covariate_dim=contract.num_covariates, **options)
    # every series needs the model's minimum length (e.g. its first j states)
    contract._check_lengths(train.lengths.numpy(), train.series, net.min_length, net.min_length_name)
    if train.values.shape[1] > LONG_SERIES:
        warnings.warn(
            f"the series have {train.values.shape[1]} time steps: every training step runs over all of them "
            f"(a state-space model's guide step by step); to train on shorter pieces, cut them with "
            f"pyrossm.data.windows(data, length, stride)",
            stacklevel=2,
        )
    val = (
        contract.encode(
            validation_data, min_length=net.min_length, min_length_name=net.min_length_name, data_name="validation_data"
        )
        if validation_data is not None
        else None
    )
    if held_out:
        train, val, why_not = _hold_out_last_step(train, net.min_length)
        if why_not:
            warnings.warn(
                f"holdout_last_step: {why_not}; training on every step without validation",
                stacklevel=2,
            )
            config = config.updated(
                holdout_last_step=False,
                keep_best=False,
                validate_every=0,
                validation_metric="elbo",
            )
            selection = config.selection
    net = net.to(dev).train()  # a fitted model (FitResult sets eval mode) trains on in train mode
    runner = Trainer(net.training_stages(config.objective), net.parameter_groups(), config)
    train = train.to(dev)
    val_scores = {}
    if val is not None:
        val = val.to(dev)
    if selection.validation_metric == "log_score":
        require(net, "forecasting", "validation_metric='log_score'")
        draws.check_longer_than(val, net.min_length, "validation_data", net.min_length_name)
        if not bool(val.mask[:, -1, :].any()):
            raise ValueError(
                "validation_metric='log_score' scores the last time step of "
                "validation_data, which has no observed value"
            )

        def log_score():
            samples = selection.log_score_samples
            return float(draws.one_step_log_score(net, contract, val, samples, dev).nanmean())

        val_scores["log_score"] = log_score
    history = runner.fit(
        lambda idx: train.select(idx.to(dev)),
        len(train),
        val_batch=val,
        val_scores=val_scores,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        # (what a checkpoint records and a resume compares: only computed where there are checkpoints)
        run=None if checkpoint_dir is None else _run_description(model_name, net, contract, train),
    )
    result_config = {
        "model": model_name,
        "model_config": net.config,
        "trainer": config.to_dict(),
        "covariates": list(contract.covariate_names),
        "structure": net.structure(),
        "world_size": distributed.world()[1],
    }
    if runner.best is not None:
        result_config["kept"] = {
            "step": runner.best["step"],
            "metric": selection.validation_metric,
            **runner.best["values"],
        }
    return FitResult(net, contract, history, result_config, dev)
