"""``pyrossm.fit`` / ``pyrossm.load`` and :class:`FitResult`: the one place that glues data, model and trainer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from .data import DataContract
from .inference import AnnealingSchedule, SVITrainer, TrainerConfig, atomic_torch_save, safe_torch_load
from .inference.rng import seeded
from .models import MODELS, StateSpaceModel, build_model
from .models.registry import model_arguments
from .validation import check_positive_int

FORMAT = "pyrossm-fit"
FORMAT_VERSION = 1


def _resolve_device(device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):  # e.g. FitResult.device
        device = str(device)
    if device not in ("cpu", "cuda") and not (isinstance(device, str) and device.startswith("cuda:")):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:  # e.g. 'cuda:x'
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got {device!r}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available")
    return resolved


def _annealing(annealing, start, end, warmup_steps, num_steps) -> AnnealingSchedule:
    if not isinstance(annealing, (str, dict, AnnealingSchedule)):
        raise TypeError(f"annealing must be a str, dict or AnnealingSchedule, got {type(annealing).__name__}")
    if not isinstance(annealing, str):
        # a full schedule carries its own values: a ramp argument next to it would be ignored
        given = {name: value for name, value in (("annealing_start", start), ("annealing_end", end),
                                                 ("warmup_steps", warmup_steps)) if value is not None}
        if given:
            raise ValueError(f"{', '.join(f'{k}={v!r}' for k, v in given.items())} only apply to a named "
                             "annealing ('cosine', 'linear', 'constant'); annealing given as a "
                             f"{type(annealing).__name__} carries its own values (put them in it)")
        return annealing if isinstance(annealing, AnnealingSchedule) else AnnealingSchedule(**annealing)
    # unset ramp ends take AnnealingSchedule's own defaults (0.01 and 1.0)
    start = AnnealingSchedule.start if start is None else start
    end = AnnealingSchedule.end if end is None else end
    if warmup_steps is None:
        # an invalid num_steps is reported by TrainerConfig, not as a bad warmup_steps
        warmup_steps = num_steps // 3 if isinstance(num_steps, int) and num_steps > 0 else 0
    return AnnealingSchedule(annealing, start, end, warmup_steps)


#: rows (draws x series) per vectorised pass of the guide and the transition when drawing many
#: samples on a CPU: bounds the memory of the networks' activations (a few kB per row) and keeps
#: them cache-sized.  Measured on the bimodal benchmark's DDSSM (256 series x 1024 draws, one
#: core): 8192 rows per pass 100 s, 16384 110 s, 65536 230-240 s.  The draws are the same for a
#: given seed, device, number of draws and series.
ROWS_PER_PASS = 8192
#: the same on a GPU, where larger passes fill the device (not measured here: no GPU was lent)
CUDA_ROWS_PER_PASS = 65536


#: draws of the 1-step predictive per series for ``validation_metric="log_score"``
LOG_SCORE_SAMPLES = 16
VALIDATION_METRICS = ("elbo", "log_score")


def _check_longer_than_order(data, order, name):
    """The 1-step log score scores each series' last step given the steps before it: a
    :class:`SeriesData` ``data`` (called ``name`` in the error) needs more than ``order`` steps."""
    if data.values.shape[1] <= order:
        raise ValueError(f"the 1-step log score scores the last step of each series given the steps "
                         f"before it: {name} needs more than order={order} time steps, "
                         f"got {data.values.shape[1]}")


def _one_step_log_score(model, contract, data, num_samples, device):
    """``model.one_step_log_score`` of :class:`SeriesData` ``data`` over passes of
    :func:`_draw_chunks` draws, combined exactly, in the units of the data (the model scores
    scaled targets: each observed channel's density is divided by its scale).

    :returns: ``(N,)``; NaN for a series whose last time step has no observed target.
    """
    _check_longer_than_order(data, model.order, "the data")
    parts, counts = [], []
    for chunk in _draw_chunks(num_samples, len(data), device):
        parts.append(model.one_step_log_score(data.filled_values, data.mask, data.covariates, chunk))
        counts.append(chunk)
    weights = torch.tensor(counts, dtype=parts[0].dtype, device=parts[0].device).log()
    score = torch.logsumexp(torch.stack(parts) + weights[:, None], dim=0) - math.log(num_samples)
    last = data.mask[:, -1, :]                                                          # (N, D)
    log_scale = torch.as_tensor(np.log(contract.scale), dtype=score.dtype, device=score.device)
    score = score - (last * log_scale).sum(-1)
    return torch.where(last.any(-1), score, torch.full_like(score, math.nan))


def _draw_chunks(num_samples, num_series, device=None):
    """Splits ``num_samples`` draws into passes of at most ``ROWS_PER_PASS // num_series`` draws
    (``CUDA_ROWS_PER_PASS`` on a CUDA ``device``)."""
    rows = CUDA_ROWS_PER_PASS if device is not None and torch.device(device).type == "cuda" else ROWS_PER_PASS
    per_pass = max(1, rows // max(num_series, 1))
    return [min(per_pass, num_samples - start) for start in range(0, num_samples, per_pass)]


def _seeded(seed, device):
    """Runs the block with torch's RNG seeded (and restores the global RNG state afterwards)."""
    return seeded(seed, [device] if device.type == "cuda" else [])


def fit(model="dkf", data=None, *, covariates=None, latent_dim=1, order=1, num_steps=1000,
        batch_size=128, batch_schedule=(), reset_moments_on_batch_change=False, num_particles=1,
        learning_rate=1e-3, learning_rates=None,
        weight_decay=0.01, clip_norm=10.0, clip_per_group=False,
        lr_schedule="constant", lr_end_factor=0.1,
        lr_restarts=(), lr_warmup_steps=0, ema_decay=None, annealing="cosine", annealing_start=None,
        annealing_end=None, warmup_steps=None, validation_data=None, validate_every=0,
        validation_metric="elbo", keep_best=False, restart_from_best=False, checkpoint_dir=None,
        checkpoint_every=0, resume=False, device="auto", seed=0,
        progress=None, on_nonfinite="raise", **model_kwargs) -> "FitResult":
    """Fits a state-space model to time series by stochastic variational inference.

    :param model: a registered name (``"dkf"``, ...) or a :class:`~pyrossm.models.StateSpaceModel`.
    :param data: ``xr.Dataset`` with dims ``("series", "time")`` (or a DataFrame / DataArray, see
        :mod:`pyrossm.data`); NaN marks missing observations.
    :param list covariates: names of variables that are covariates (observed, not modelled).
    :param int latent_dim: ``M``.  :param int order: Markov order ``j``.
    :param int num_steps: SVI steps.  :param batch_size: series per step (None = all).
    :param batch_schedule: ``[[step, batch_size], ...]``: larger (or smaller) minibatches from
        those steps on, e.g. ``[[12000, 256]]`` (see :class:`~pyrossm.inference.TrainerConfig`).
    :param bool reset_moments_on_batch_change: clear the optimiser's moment estimates at each
        ``batch_schedule`` step (see :class:`~pyrossm.inference.TrainerConfig`).
    :param int num_particles: vectorised ELBO particles ``S``.
    :param float learning_rate: default learning rate; ``learning_rates`` overrides per group
        (``encoder``, ``emission``, ``transition``, ``init``).
    :param float weight_decay: AdamW's.  :param clip_norm: gradient-norm clipping (``None`` = off).
    :param bool clip_per_group: clip each group's gradient by its own norm rather than all of them
        by their joint norm (see :class:`~pyrossm.inference.TrainerConfig`).
    :param str lr_schedule: ``"constant"``, ``"cosine"`` or ``"linear"`` decay of every learning
        rate to ``lr_end_factor`` times its base value at ``num_steps`` (see
        :class:`~pyrossm.inference.TrainerConfig`).
    :param lr_restarts: steps at which that decay starts over from the base rates (warm
        restarts; each cycle decays to ``lr_end_factor``), e.g. ``[6000, 7800]``; ``()`` = none.
    :param int lr_warmup_steps: linear warm-up of every learning rate over this many first steps
        (0 = none).
    :param ema_decay: ``None`` or a decay in ``[0, 1)`` for an exponential moving average of the
        parameters, which the fitted model ends with (usual for diffusion models, e.g. 0.999).
    :param annealing: ``"cosine"``, ``"linear"``, ``"constant"``, a dict or an
        :class:`~pyrossm.inference.AnnealingSchedule` for the rate weight lambda; with a name,
        the ramp from ``annealing_start`` (default 0.01) to ``annealing_end`` (default 1.0) over
        ``warmup_steps`` (default ``num_steps // 3``) applies, and with a dict or a schedule
        those three must be left unset (a ``ValueError`` otherwise); any other shape as knots,
        e.g. ``{"kind": "piecewise", "points": [[0, 0.01], [200, 1.0], [300, 1.5], [2000, 1.5],
        [2500, 1.0]]}``.
    :param validation_data: data for the validation ELBO every ``validate_every`` steps.
    :param str validation_metric: what ``keep_best`` maximises: ``"elbo"`` (default, the
        validation ELBO per series) or ``"log_score"``, the 1-step predictive log-density of each
        validation series' last step given the steps before it (:meth:`FitResult.log_score`, with
        :data:`LOG_SCORE_SAMPLES` draws, the same draws at every validation), recorded next to
        the ELBO as the history column ``val_log_score`` (needs series longer than ``order``).
        The ELBO also pays for the smoothing posterior of every step; the log score measures
        only the forecast.
    :param bool keep_best: end with the parameters of the validation with the highest
        ``validation_metric`` rather than the last step's (needs ``validation_data`` and
        ``validate_every``); the kept step and its validation values are in
        ``result.config["kept"]``.
    :param bool restart_from_best: with ``keep_best`` and ``lr_restarts``: each cycle that did
        not end with the best validation so far is discarded, the next one starting from the best
        parameters (the history's ``restart_from`` column names the step).
    :param checkpoint_dir: folder for atomic checkpoints every ``checkpoint_every`` steps;
        ``resume=True`` continues from the last one (bit for bit with the same arguments; a larger
        ``num_steps`` stretches the schedules that depend on it: the default ``warmup_steps`` of
        ``num_steps // 3`` and the ``lr_schedule`` decay, or its last cycle with ``lr_restarts``).
    :param device: ``"auto"``, ``"cpu"`` or ``"cuda"``.  :param int seed: reproducibility seed.
    :param model_kwargs: architecture arguments of the registered model (e.g. ``init="vhp"``,
        ``channels=16``); unknown names raise ``TypeError``.
    :returns: :class:`FitResult`.
    """
    if data is None:
        raise ValueError("data is required: an xarray Dataset with dims ('series', 'time')")
    if keep_best is True and validation_data is None:
        raise ValueError("keep_best=True keeps the parameters with the best validation: "
                         "it needs validation_data (and validate_every > 0)")
    if not isinstance(validation_metric, str):
        raise TypeError(f"validation_metric must be a str, got {type(validation_metric).__name__}")
    if validation_metric not in VALIDATION_METRICS:
        raise ValueError(f"validation_metric must be one of {VALIDATION_METRICS}, got {validation_metric!r}")
    if validation_metric != "elbo" and (validation_data is None or not validate_every):
        raise ValueError(f"validation_metric={validation_metric!r} is computed on validation_data "
                         "every validate_every steps: give both")
    dev = _resolve_device(device)
    check_positive_int("order", order)
    check_positive_int("latent_dim", latent_dim)
    order, latent_dim = int(order), int(latent_dim)  # numpy ints too (the models take int)
    if isinstance(model, StateSpaceModel):
        if model_kwargs:
            raise TypeError(f"unexpected keyword arguments {sorted(model_kwargs)}: architecture "
                            "arguments only apply to registered model names")
        order = model.order
    elif isinstance(model, str):
        if model not in MODELS:
            raise ValueError(f"model must be one of {sorted(MODELS)} or a StateSpaceModel instance, "
                             f"got {model!r}")
        allowed = model_arguments(model) - {"latent_dim", "order"}
        unknown = set(model_kwargs) - allowed
        if unknown:
            raise TypeError(f"fit() got unexpected keyword arguments {sorted(unknown)} for model "
                            f"{model!r}; model arguments are {sorted(allowed)}")
    else:
        raise TypeError(f"model must be a str or a StateSpaceModel, got {type(model).__name__}")

    # every series needs at least its first j states
    contract, train = DataContract.fit(data, covariates=covariates, min_length=order,
                                       min_length_name="order")
    val = (contract.encode(validation_data, min_length=order, min_length_name="order",
                           data_name="validation_data") if validation_data is not None else None)
    if isinstance(model, StateSpaceModel):
        if model.obs_dim != contract.num_channels:
            raise ValueError(f"model has obs_dim={model.obs_dim} but data has "
                             f"{contract.num_channels} target channels")
        if model.covariate_dim != contract.num_covariates:
            raise ValueError(f"model has covariate_dim={model.covariate_dim} but data has "
                             f"{contract.num_covariates} covariate columns")
        model_name, ssm = None, model
    trainer_config = TrainerConfig(
        num_steps=num_steps, batch_size=batch_size, batch_schedule=batch_schedule,
        reset_moments_on_batch_change=reset_moments_on_batch_change, num_particles=num_particles,
        learning_rate=learning_rate, learning_rates=dict(learning_rates or {}),
        weight_decay=weight_decay, clip_norm=clip_norm, clip_per_group=clip_per_group,
        lr_schedule=lr_schedule,
        lr_end_factor=lr_end_factor, lr_restarts=lr_restarts, lr_warmup_steps=lr_warmup_steps, ema_decay=ema_decay,
        annealing=_annealing(annealing, annealing_start, annealing_end, warmup_steps, num_steps),
        validate_every=validate_every, validation_metric=validation_metric, keep_best=keep_best,
        restart_from_best=restart_from_best, checkpoint_every=checkpoint_every,
        progress=progress, seed=seed, on_nonfinite=on_nonfinite)
    if isinstance(model, str):
        model_name = model
        torch.manual_seed(seed)
        ssm = build_model(model, obs_dim=contract.num_channels, covariate_dim=contract.num_covariates,
                          latent_dim=latent_dim, order=order, **model_kwargs)
    ssm = ssm.to(dev).train()  # a fitted model (FitResult sets eval mode) trains on in train mode
    trainer = SVITrainer(ssm.model, ssm.guide, ssm.parameter_groups(), trainer_config)
    train = train.to(dev)

    def make_args(idx):
        batch = train.select(idx.to(dev))
        return batch.filled_values, batch.mask, batch.covariates

    val_args, val_scores = None, {}
    if val is not None:
        val = val.to(dev)
        val_args = (val.filled_values, val.mask, val.covariates)
    if validation_metric == "log_score":
        _check_longer_than_order(val, order, "validation_data")  # before training, not after
        if not bool(val.mask[:, -1, :].any()):
            raise ValueError("validation_metric='log_score' scores the last time step of "
                             "validation_data, which has no observed value")

        def log_score():
            return float(_one_step_log_score(ssm, contract, val, LOG_SCORE_SAMPLES, dev).nanmean())

        val_scores["log_score"] = log_score
    history = trainer.fit(make_args, len(train), val_args=val_args, val_scores=val_scores,
                          val_num_series=len(val) if val is not None else None,
                          checkpoint_dir=checkpoint_dir, resume=resume)
    config = {"model": model_name, "model_config": ssm.config, "trainer": trainer_config.to_dict(),
              "covariates": list(contract.covariate_names), "structure": _structure(ssm)}
    if trainer.best is not None:
        config["kept"] = {"step": trainer.best["step"], "metric": validation_metric, **trainer.best["values"]}
    return FitResult(ssm, contract, history, config, dev)

class FitResult:
    """A fitted model with its data contract: forecast, sample, smooth, check, save.

    :ivar model: the fitted :class:`~pyrossm.models.StateSpaceModel`.
    :ivar contract: the :class:`~pyrossm.data.DataContract` (variables, scaling, time).
    :ivar history: pandas DataFrame, one row per SVI step (loss, elbo, per-site terms, lambda, lrs).
    """

    def __init__(self, model, contract, history, config, device):
        self.model, self.contract, self.history, self.config = model, contract, history, config
        self.device = device
        self.model.eval()

    def __repr__(self):
        name = self.config.get("model") or type(self.model).__name__
        steps = len(self.history)
        last = f", final elbo/series={self.history['elbo'].iloc[-1]:.4g}" if steps else ""
        if "kept" in self.config:
            kept = self.config["kept"]
            metric = kept.get("metric", "elbo")  # (files saved before validation_metric: the ELBO)
            last += f", kept step {kept['step']} (val {metric}={kept['val_' + metric]:.4g})"
        return (f"FitResult(model={name!r}, latent_dim={self.model.latent_dim}, order={self.model.order}, "
                f"targets={self.contract.target_vars}, covariates={self.contract.covariate_names}, "
                f"steps={steps}{last}, device={str(self.device)!r})")

    # ------------------------------------------------------------------ helpers
    def _encode(self, data):
        return self.contract.encode(data, min_length=self.model.order,
                                    min_length_name="order").to(self.device)

    def _future_covariates(self, future_covariates, num_series, horizon, series=None):
        if self.contract.num_covariates == 0:
            if future_covariates is not None:
                raise ValueError("future_covariates given but the model was fitted without covariates")
            return torch.zeros(num_series, horizon, 0, device=self.device)
        if future_covariates is None:
            raise ValueError(f"this model uses covariates {self.contract.covariate_names}: "
                             f"future_covariates with {horizon} time steps are required")
        # aligned to the context's series by coordinate, not by position
        fut = self.contract.encode_covariates(future_covariates, horizon, series=series).to(self.device)
        if fut.shape[0] != num_series:
            raise ValueError(f"future_covariates has {fut.shape[0]} series, the context has {num_series}")
        return fut

    # ------------------------------------------------------------------ prediction
    def forecast(self, context, horizon, num_samples=100, future_covariates=None, seed=None):
        """Samples the predictive of the ``horizon`` steps after the end of ``context``.

        The latent state at the end of the context comes from the guide (smoothing posterior);
        transition and emission are then rolled forward, vectorised over samples and series (in
        passes of at most :data:`ROWS_PER_PASS` draws x series, to bound memory and stay in cache).

        :param context: data with the training variables, dims ``(series, time)``.
        :param int horizon: steps to forecast.  :param int num_samples: draws ``S``.
        :param future_covariates: covariate data with ``horizon`` time steps (required iff the
            model has covariates).
        :param seed: seed for reproducible draws.
        :returns: ``xr.Dataset`` with dims ``(draw, series, time)``; ``time`` continues the context's.
        """
        check_positive_int("horizon", horizon)
        check_positive_int("num_samples", num_samples)
        ctx = self._encode(context)
        fut = self._future_covariates(future_covariates, len(ctx), horizon, series=ctx.series)
        draws = []
        with _seeded(seed, self.device):
            for chunk in _draw_chunks(num_samples, len(ctx), self.device):
                z = self.model.sample_posterior(ctx.filled_values, ctx.mask, ctx.covariates, chunk)
                draws.append(self.model.forecast(z, ctx.covariates, fut, horizon)[1])
        x = torch.cat(draws)
        time = self.contract.extend_time(ctx.time, horizon)
        return self.contract.decode(x, ctx.series, time)

    def log_score(self, data, num_samples=100, seed=None):
        r"""The 1-step predictive log-density of each series' last time step given the steps
        before it, ``log p(x_T | x_{1:T-1})``, estimated by ``log (1/S) sum_s p(x_T | z^s)``
        with ``S = num_samples`` latent draws from the guide and one transition step (see
        :meth:`~pyrossm.models.StateSpaceModel.one_step_log_score`): the logarithmic scoring rule
        of the forecast :meth:`forecast` ``(data up to T-1, horizon=1)`` would sample, higher is
        better, biased low by ``O(1/S)``.  Only the observed targets of step ``T`` count.

        :param data: data with the training variables, dims ``(series, time)``, more than
            ``order`` time steps (covariates at ``T`` included).
        :param int num_samples: draws ``S``.  :param seed: seed for reproducible draws.
        :returns: ``xr.DataArray`` ``"log_score"`` with dim ``series``, in nats per the data's
            units; NaN for a series whose last time step has no observed target.
        """
        check_positive_int("num_samples", num_samples)
        enc = self._encode(data)
        with _seeded(seed, self.device):
            score = _one_step_log_score(self.model, self.contract, enc, num_samples, self.device)
        return xr.DataArray(score.cpu().numpy().astype(np.float64), dims=("series",),
                            coords={"series": enc.series}, name="log_score")

    def sample(self, num_series, length, num_samples=1, covariates=None, seed=None):
        """Unconditional generation from the prior: ``xr.Dataset`` ``(draw, series, time)``.

        :param covariates: covariate data with ``length`` steps (required iff the model has covariates).
        """
        check_positive_int("num_series", num_series)
        check_positive_int("length", length)
        check_positive_int("num_samples", num_samples)
        if length < self.model.order:
            raise ValueError(f"length must be >= the Markov order {self.model.order}, got {length}")
        cov = self._future_covariates(covariates, num_series, length)
        with _seeded(seed, self.device):
            cov = cov.expand((num_samples,) + cov.shape)
            _, x = self.model.generate(num_series, length, cov)
        return self.contract.decode(x, np.arange(num_series), np.arange(length))

    def _draw_posterior(self, data, num_samples, seed, replicate):
        """``z ~ q(z | data)`` (and with ``replicate``, ``x_rep ~ p(x | z)``) in one seeded block.

        :returns: ``(latents, groups)``: the ``z`` Dataset ``(draw, series, time, latent)`` and,
            with ``replicate``, the arviz groups ``posterior_predictive`` ``(chain, draw, series,
            time)`` and ``observed_data`` ``(series, time)`` (else ``None``).
        """
        check_positive_int("num_samples", num_samples)
        enc = self._encode(data)
        zs, xs = [], []
        with _seeded(seed, self.device):
            for chunk in _draw_chunks(num_samples, len(enc), self.device):
                zs.append(self.model.sample_posterior(enc.filled_values, enc.mask, enc.covariates, chunk))
                if replicate:
                    xs.append(self.model.emission_dist(zs[-1], enc.covariates).sample())
        z, x = torch.cat(zs), (torch.cat(xs) if replicate else None)
        latents = xr.Dataset(
            {"z": (("draw", "series", "time", "latent"), z.cpu().numpy())},
            coords={"draw": np.arange(num_samples), "series": enc.series, "time": enc.time,
                    "latent": np.arange(self.model.latent_dim)})
        if not replicate:
            return latents, None
        groups = {
            "posterior_predictive": self.contract.decode(x, enc.series, enc.time).expand_dims(chain=[0]),
            "observed_data": self.contract.decode(torch.where(enc.mask, enc.values, torch.nan)[None],
                                                  enc.series, enc.time).isel(draw=0, drop=True)}
        return latents, groups

    def smooth(self, data, num_samples=100, seed=None):
        """Latent trajectories from the guide: ``xr.Dataset`` with ``z`` ``(draw, series, time, latent)``."""
        return self._draw_posterior(data, num_samples, seed, replicate=False)[0]

    def posterior_predictive(self, data, num_samples=100, seed=None):
        """Replicated data ``x_rep ~ p(x | z)``, ``z ~ q(z | data)``, as an arviz-style ``xr.DataTree``.

        :returns: ``DataTree`` with groups ``posterior_predictive`` (dims ``chain, draw, series,
            time``) and ``observed_data`` (the data as given, scaled back).
        """
        return xr.DataTree.from_dict(self._draw_posterior(data, num_samples, seed, replicate=True)[1])

    def to_datatree(self, data=None, num_samples=100, seed=None):
        """The fit as an arviz-style ``xr.DataTree``: posterior, predictive, data, training history.

        Groups (arviz names where arviz has one):

        - ``posterior``: latent trajectories ``z ~ q(z | data)``, dims
          ``(chain, draw, series, time, latent)`` (one chain), as :meth:`smooth`;
        - ``posterior_predictive``: ``x_rep ~ p(x | z)`` from those same ``z``, dims
          ``(chain, draw, series, time)`` (+ a feature dim where the data has one);
        - ``observed_data``: the data as given (NaN where missing), ``(series, time)`` (+ feature dim);
        - ``training_history``: :attr:`history` as a Dataset over dim ``step`` (one variable per
          column; ``val_elbo`` is NaN on steps without validation).  arviz has no group for
          this; its plots ignore it.

        With ``data=None`` only ``training_history`` is returned (nothing is sampled).  With the
        same ``seed``, ``posterior`` equals ``smooth(data, num_samples, seed)`` and the
        ``posterior_predictive`` / ``observed_data`` groups equal those of
        ``posterior_predictive(data, num_samples, seed)``.  Coordinates (series, time) are the
        data's.  The root's attrs name the inference library and the model.

        :param data: data with the training variables, dims ``(series, time)``, or None.
        :param int num_samples: draws ``S``.  :param seed: seed for reproducible draws.
        :returns: ``xr.DataTree``.
        """
        check_positive_int("num_samples", num_samples)
        history = self.history
        steps = history["step"].to_numpy() if "step" in history.columns else np.arange(len(history))
        if len(np.unique(steps)) != len(steps):
            steps = np.arange(len(history))
        training = xr.Dataset({str(col): ("step", history[col].to_numpy())
                               for col in history.columns if col != "step"},
                              coords={"step": steps})
        groups = {}
        if data is not None:  # the same draws as smooth() / posterior_predictive()
            latents, replicated = self._draw_posterior(data, num_samples, seed, replicate=True)
            groups = {"posterior": latents.expand_dims(chain=[0]), **replicated}
        groups["training_history"] = training
        from . import __version__
        tree = xr.DataTree.from_dict(groups)
        tree.attrs = {"inference_library": "pyrossm", "inference_library_version": __version__,
                      "model": self.config.get("model") or type(self.model).__name__}
        return tree

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """Writes config (JSON), state dict, data contract and history to ``path``, atomically."""
        history = {col: self.history[col].tolist() for col in self.history.columns}  # keeps int "step"
        payload = {
            "format": FORMAT, "version": FORMAT_VERSION,
            "config": json.dumps(self.config),
            "contract": json.dumps(self.contract.to_dict()),
            "history": json.dumps(history),
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
        }
        path = Path(path)
        atomic_torch_save(payload, path)
        return path

def _structure(model) -> dict:
    """The dimensions a saved fit and the model it is loaded into must share."""
    return {name: int(getattr(model, name)) for name in ("latent_dim", "order", "obs_dim", "covariate_dim")}


def load(path, model=None, device="cpu") -> FitResult:
    """Loads a :meth:`FitResult.save` file (plain data only; nothing is unpickled).

    :param model: for fits of a user-built model, an instance with the same architecture.
    :raises ValueError: if the file is not a pyrossm fit or does not match ``model``.
    """
    payload = safe_torch_load(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a pyrossm fit file")
    if payload.get("version") != FORMAT_VERSION:
        raise ValueError(f"{str(path)!r} has format version {payload.get('version')}, "
                         f"this pyrossm reads version {FORMAT_VERSION}")
    config = json.loads(payload["config"])
    contract = DataContract.from_dict(json.loads(payload["contract"]))
    history = pd.DataFrame(json.loads(payload["history"]))
    if model is None:
        if config.get("model") is None:
            raise ValueError("this file holds a user-built model: pass an instance with the same "
                             "architecture as load(path, model=...)")
        model_config = dict(config["model_config"])
        if config["model"] in ("dkf", "ddssm"):  # files from before the option used ReLU
            model_config.setdefault("activation", "relu")
        model = build_model(config["model"], **model_config)
    elif not isinstance(model, StateSpaceModel):
        raise TypeError(f"model must be a StateSpaceModel, got {type(model).__name__}")
    # matching parameter shapes need not mean a matching structure: compare the dimensions with
    # the saved structure (older files lack it) and with the data contract
    saved = dict(config.get("structure") or {})
    saved.setdefault("obs_dim", contract.num_channels)
    saved.setdefault("covariate_dim", contract.num_covariates)
    mismatch = {name: (getattr(model, name), value) for name, value in saved.items()
                if getattr(model, name) != value}
    if mismatch:
        detail = ", ".join(f"{name}={got} (the fit has {want})" for name, (got, want) in mismatch.items())
        raise ValueError(f"model does not match the saved fit: {detail}")
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"the saved parameters do not match the model: {exc}") from exc
    dev = _resolve_device(device)
    return FitResult(model.to(dev), contract, history, config, dev)
