"""Stochastic variational inference for model/guide pairs with named parameter groups.

The trainer does not know model internals: it receives a model, a guide, named parameter
groups (e.g. encoder / emission / transition / init, the paper's enc_lr, dec_lr, trans_lr,
zinit_lr of Appendix F) and a function giving the program arguments for a minibatch.
"""

from __future__ import annotations

import bisect
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import pyro
import torch

from ..progress import progress_bar
from ..validation import check_nonnegative_int, check_pairs, check_positive_int
from .checkpoint import atomic_torch_save, safe_torch_load
from .elbo import elbo_terms
from .rng import seeded
from .schedules import AnnealingSchedule

CHECKPOINT_NAME = "checkpoint.pt"
LR_SCHEDULES = ("constant", "cosine", "linear")


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient; the message names the step and the loss terms."""


@dataclass
class TrainerConfig:
    """Settings of :class:`SVITrainer`.

    :param int num_steps: optimisation steps.
    :param batch_size: series per minibatch (``None`` = all series every step).
    :param batch_schedule: ``[[step, batch_size], ...]``: from each ``step`` on, minibatches
        have that many series (``batch_size`` before the first); steps strictly increasing in
        ``(0, num_steps)``.  ``()`` (default): ``batch_size`` throughout.  Growing the batch late
        in a run lowers the gradient noise as a decaying learning rate does, without slowing the
        early steps (Smith et al., 2018, "Don't decay the learning rate, increase the batch size").
    :param bool reset_moments_on_batch_change: at each ``batch_schedule`` step, clear AdamW's
        state (both moment estimates and its step count, so that the bias correction starts over),
        as if the optimiser were created afresh there.  The second-moment estimate otherwise
        carries the gradient noise of the earlier minibatch size for about ``1 / (1 - beta2) =
        1000`` steps.  Needs a ``batch_schedule``.
    :param int num_particles: vectorised ELBO particles ``S``.
    :param float learning_rate: default learning rate of every group.
    :param dict learning_rates: per-group overrides, e.g. ``{"encoder": 1e-3}``.
    :param float weight_decay: AdamW weight decay (Table 4: 0.01).
    :param clip_norm: gradient-norm clipping threshold (``None`` disables).
    :param bool clip_per_group: clip each parameter group's gradient by its own norm instead of
        all groups' by their joint norm.  With one joint norm, a group with large, noisy
        gradients (a diffusion transition's) sets the scale of every other group's update at
        every step; per group, each is clipped only by its own.  The history records the joint
        norm (``grad_norm``) and each group's (``grad_norm_<group>``), before clipping.
    :param str lr_schedule: ``"constant"`` (default), ``"cosine"`` or ``"linear"``: every group's
        learning rate is its base rate times a factor going from 1 at step 0 to ``lr_end_factor``
        at ``num_steps`` (decaying the rate sharpens the final parameters; Loshchilov & Hutter,
        2017), or, with ``lr_restarts``, at the end of each cycle.
    :param float lr_end_factor: the final factor, in ``(0, 1]``.
    :param lr_restarts: steps at which the decay starts over from 1 (warm restarts, Loshchilov &
        Hutter, 2017): strictly increasing, each in ``(0, num_steps)``; the steps from one restart
        to the next (or to ``num_steps``) are a cycle that decays from 1 to ``lr_end_factor``.
        ``()`` (default): one decay over the whole run.  Needs a decaying ``lr_schedule``.  The
        optimiser's moment estimates carry on across a restart.
    :param int lr_warmup_steps: the factor is further multiplied by ``min(1, (step + 1) /
        lr_warmup_steps)``: a linear warm-up of every learning rate over the first steps (0, the
        default, disables it), usual for diffusion networks, whose first Adam steps at full rate can
        push the denoiser into a state it does not leave.
    :param ema_decay: ``None`` (default) or a decay in ``[0, 1)``: keep an exponential moving
        average of the parameters, ``theta_ema <- d theta_ema + (1 - d) theta`` after every step
        with ``d = min(ema_decay, (1 + step) / (10 + step))`` (a short warm-up), as diffusion models
        are usually trained (Ho et al., 2020; Karras et al., 2022).  The validation ELBO is computed
        with the averaged parameters, and they are the ones the fitted model ends with.
    :param AnnealingSchedule annealing: schedule of the rate weight lambda.
    :param int validate_every: validation ELBO every N steps (0 disables), plus the scores
        passed to :meth:`SVITrainer.fit` as ``val_scores``.
    :param str validation_metric: what ``keep_best`` maximises: ``"elbo"`` (default) or the
        name of one of the ``val_scores`` (history column ``"val_" + name``).
    :param bool keep_best: end with the parameters of the validation with the highest
        ``validation_metric`` instead of the last step's (the averaged ones with ``ema_decay``):
        the restoring kind of early stopping, for runs whose quality swings, e.g. across
        ``lr_restarts``.  Needs ``validate_every > 0`` and validation data; the last step is a
        candidate when ``validate_every`` divides ``num_steps``.
    :param bool restart_from_best: at each of ``lr_restarts``, when the best validation so far
        (by ``validation_metric``) is not the one just before the restart, go on from its
        parameters: a cycle that did not improve on an earlier one is discarded instead of built
        on (the optimiser's moment estimates carry on).  The history's ``restart_from`` column
        names the step returned to.  Needs ``keep_best`` and ``lr_restarts``; with every cycle an
        improvement it changes nothing.
    :param int checkpoint_every: checkpoint every N steps (0 disables; needs a directory).
    :param progress: show a tqdm bar (``None`` = only when stderr is a terminal).
    :param int seed: seeds Pyro/torch and the minibatch sampler.
    :param str on_nonfinite: ``"raise"`` (default) or ``"restore"`` (reload the last
        checkpoint, halve the learning rates and go on; at most 3 times).
    """

    num_steps: int = 1000
    batch_size: int | None = 128
    batch_schedule: tuple = ()
    reset_moments_on_batch_change: bool = False
    num_particles: int = 1
    learning_rate: float = 1e-3
    learning_rates: dict = field(default_factory=dict)
    weight_decay: float = 0.01
    clip_norm: float | None = 10.0
    clip_per_group: bool = False
    lr_schedule: str = "constant"
    lr_end_factor: float = 0.1
    lr_restarts: tuple = ()
    lr_warmup_steps: int = 0
    ema_decay: float | None = None
    annealing: AnnealingSchedule = field(default_factory=AnnealingSchedule)
    validate_every: int = 0
    validation_metric: str = "elbo"
    keep_best: bool = False
    restart_from_best: bool = False
    checkpoint_every: int = 0
    progress: bool | None = None
    seed: int = 0
    on_nonfinite: str = "raise"

    def __post_init__(self):
        # numpy ints are accepted and stored as ints (the configuration is saved as JSON)
        for name in ("num_steps", "validate_every", "checkpoint_every", "lr_warmup_steps"):
            setattr(self, name, check_nonnegative_int(name, getattr(self, name)))
        self.num_particles = check_positive_int("num_particles", self.num_particles)
        if self.batch_size is not None:
            self.batch_size = check_positive_int("batch_size", self.batch_size)
        self.batch_schedule = self._checked_batch_schedule(self.batch_schedule)
        for name, lr in [("learning_rate", self.learning_rate), *self.learning_rates.items()]:
            if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
                raise ValueError(f"learning rate {name!r} must be a finite number > 0, got {lr!r}")
        if not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.clip_norm is not None and (not isinstance(self.clip_norm, (int, float)) or self.clip_norm <= 0):
            raise ValueError(f"clip_norm must be > 0 or None, got {self.clip_norm!r}")
        for name in ("clip_per_group", "reset_moments_on_batch_change", "keep_best", "restart_from_best"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {type(getattr(self, name)).__name__}")
        if self.reset_moments_on_batch_change and not self.batch_schedule:
            raise ValueError("reset_moments_on_batch_change=True resets the optimiser where the "
                             "minibatch size changes: it needs a non-empty batch_schedule")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if isinstance(self.lr_end_factor, bool) or not isinstance(self.lr_end_factor, (int, float)) \
                or not 0 < self.lr_end_factor <= 1:
            raise ValueError(f"lr_end_factor must be a number in (0, 1], got {self.lr_end_factor!r}")
        self.lr_restarts = self._checked_restarts(self.lr_restarts)
        if self.ema_decay is not None and (isinstance(self.ema_decay, bool)
                                           or not isinstance(self.ema_decay, (int, float))
                                           or not 0 <= self.ema_decay < 1):
            raise ValueError(f"ema_decay must be None or a number in [0, 1), got {self.ema_decay!r}")
        if isinstance(self.annealing, dict):
            self.annealing = AnnealingSchedule(**self.annealing)
        if not isinstance(self.validation_metric, str) or not self.validation_metric:
            raise TypeError(f"validation_metric must be a non-empty str, got {self.validation_metric!r}")
        if self.keep_best and not self.validate_every:
            raise ValueError("keep_best=True keeps the parameters with the best validation: "
                             "it needs validate_every > 0 (and validation data)")
        if self.restart_from_best and not (self.keep_best and self.lr_restarts):
            raise ValueError("restart_from_best=True returns to the best validated parameters at each "
                             "of lr_restarts: it needs keep_best=True and non-empty lr_restarts")
        if self.on_nonfinite not in ("raise", "restore"):
            raise ValueError(f"on_nonfinite must be 'raise' or 'restore', got {self.on_nonfinite!r}")

    def _checked_restarts(self, restarts):
        if isinstance(restarts, (str, bytes)) or not hasattr(restarts, "__iter__"):
            raise ValueError(f"lr_restarts must be a list of steps, got {restarts!r}")
        checked = []
        for i, step in enumerate(restarts):
            step = check_nonnegative_int(f"lr_restarts[{i}]", step)
            low = checked[-1] if checked else 0
            if not low < step < self.num_steps:
                raise ValueError(f"lr_restarts must be strictly increasing steps in (0, num_steps="
                                 f"{self.num_steps}), got {step} at lr_restarts[{i}]")
            checked.append(step)
        if checked and self.lr_schedule == "constant":
            raise ValueError("lr_restarts restart a decay, but lr_schedule is 'constant': pick "
                             "'cosine' or 'linear', or leave lr_restarts empty")
        return tuple(checked)

    def _checked_batch_schedule(self, schedule):
        checked = []
        for i, pair in enumerate(check_pairs("batch_schedule", schedule, "[step, batch_size]")):
            step = check_nonnegative_int(f"batch_schedule[{i}][0] (step)", pair[0])
            size = check_positive_int(f"batch_schedule[{i}][1] (batch_size)", pair[1])
            low = checked[-1][0] if checked else 0
            if not low < step < self.num_steps:
                raise ValueError(f"batch_schedule steps must be strictly increasing in (0, num_steps="
                                 f"{self.num_steps}), got {step} at batch_schedule[{i}]")
            checked.append((step, size))
        return tuple(checked)

    def batch_size_at(self, step: int) -> int | None:
        """The minibatch size at ``step`` (``None`` = all series): the last ``batch_schedule``
        entry at or before ``step``, else ``batch_size``."""
        i = bisect.bisect_right([s for s, _ in self.batch_schedule], step)
        return self.batch_schedule[i - 1][1] if i else self.batch_size

    def lr_factor(self, step: int) -> float:
        """The factor on every base learning rate at ``step`` (1 at step 0 and at every restart,
        ``lr_end_factor`` at the end of each cycle), times the warm-up's
        ``min(1, (step + 1) / lr_warmup_steps)``."""
        warmup = min(1.0, (step + 1) / self.lr_warmup_steps) if self.lr_warmup_steps else 1.0
        if self.lr_schedule == "constant" or self.num_steps == 0:
            return warmup
        i = bisect.bisect_right(self.lr_restarts, step)         # cycle i: [bounds[i], bounds[i + 1])
        bounds = (0, *self.lr_restarts, self.num_steps)
        progress = min((step - bounds[i]) / (bounds[i + 1] - bounds[i]), 1.0)
        if self.lr_schedule == "linear":
            shape = 1.0 - progress
        else:
            shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        return warmup * (self.lr_end_factor + (1.0 - self.lr_end_factor) * shape)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["annealing"] = self.annealing.to_dict()
        d["lr_restarts"] = list(self.lr_restarts)
        d["batch_schedule"] = [list(pair) for pair in self.batch_schedule]
        return d


class SVITrainer:
    """Minimises the (annealed) negative ELBO per series with AdamW.

    :param model: Pyro model ``model(*args, annealing=lambda)``.
    :param guide: Pyro guide with the same signature.
    :param dict param_groups: ``name -> list of parameters``.
    :param TrainerConfig config: settings.
    """

    def __init__(self, model, guide, param_groups, config: TrainerConfig):
        self.model, self.guide, self.config = model, guide, config
        unknown = set(config.learning_rates) - set(param_groups)
        if unknown:
            raise ValueError(f"learning_rates names unknown parameter groups {sorted(unknown)}; "
                             f"groups are {sorted(param_groups)}")
        self.group_names = [name for name, params in param_groups.items() if params]
        self.params = {name: list(param_groups[name]) for name in self.group_names}
        self.all_params = [p for name in self.group_names for p in self.params[name]]
        self.optimizer = torch.optim.AdamW(
            [{"params": self.params[name], "lr": config.learning_rates.get(name, config.learning_rate),
              "base_lr": config.learning_rates.get(name, config.learning_rate), "name": name}
             for name in self.group_names],
            weight_decay=config.weight_decay, foreach=True)
        self.batch_generator = torch.Generator().manual_seed(config.seed)
        self.ema = None if config.ema_decay is None else [p.detach().clone() for p in self.all_params]
        self.step = 0
        self.rows: list[dict] = []
        # keep_best: {"step", "values" (the validation's val_* columns), "params"} of the best so far
        self.best: dict | None = None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "params": {name: [p.detach().cpu().clone() for p in ps] for name, ps in self.params.items()},
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            # one state per visible GPU when CUDA is in use, so a resumed GPU run is bit-identical
            "cuda_rng": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_initialized() else [],
            "batch_rng": self.batch_generator.get_state(),
            "ema": None if self.ema is None else [t.cpu().clone() for t in self.ema],
            "best": None if self.best is None else {
                "step": self.best["step"], "values": dict(self.best["values"]),
                "params": [t.cpu().clone() for t in self.best["params"]]},
            # every column of any row (e.g. val_elbo appears only every validate_every steps)
            "history": {key: [row.get(key, float("nan")) for row in self.rows]
                        for key in dict.fromkeys(k for row in self.rows for k in row)},
        }

    def load_state_dict(self, state: dict) -> None:
        for name, tensors in state["params"].items():
            if name not in self.params or len(tensors) != len(self.params[name]):
                raise ValueError(f"checkpoint parameter group {name!r} does not match this model")
            with torch.no_grad():
                for p, t in zip(self.params[name], tensors):
                    if p.shape != t.shape:
                        raise ValueError(f"checkpoint parameter in group {name!r} has shape "
                                         f"{tuple(t.shape)}, the model has {tuple(p.shape)}")
                    p.copy_(t.to(p.device))
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # checkpoints written before lr schedules existed
            group.setdefault("base_lr", group["lr"])
        torch.set_rng_state(state["torch_rng"])
        cuda_rng = state.get("cuda_rng", [])
        if cuda_rng and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda_rng):
            torch.cuda.set_rng_state_all(cuda_rng)  # (a GPU checkpoint resumed on a CPU: nothing to restore)
        self.batch_generator.set_state(state["batch_rng"])
        if self.ema is not None:
            saved = state.get("ema")
            with torch.no_grad():  # a checkpoint without an average starts one from its parameters
                for e, p, t in zip(self.ema, self.all_params, saved or [None] * len(self.ema)):
                    e.copy_(p if t is None else t.to(p.device))
        best = state.get("best")
        self.best = None if best is None else {
            # checkpoints written before validation_metric existed hold only the ELBO
            "step": int(best["step"]),
            "values": {k: float(v) for k, v in best.get("values", {"val_elbo": best.get("val_elbo")}).items()},
            "params": [t.to(p.device) for t, p in zip(best["params"], self.all_params)]}
        self.step = int(state["step"])
        history = state["history"]
        keys = list(history)
        self.rows = [dict(zip(keys, values)) for values in zip(*history.values())] if keys else []

    def save_checkpoint(self, directory) -> Path:
        path = Path(directory) / CHECKPOINT_NAME
        atomic_torch_save(self.state_dict(), path)
        return path

    def load_checkpoint(self, directory) -> bool:
        path = Path(directory) / CHECKPOINT_NAME
        if not path.is_file():
            return False
        self.load_state_dict(safe_torch_load(path))
        return True

    # ------------------------------------------------------------------ training
    def _loss(self, args, annealing):
        loss, terms = elbo_terms(self.model, self.guide, *args, annealing=annealing,
                                 num_particles=self.config.num_particles)
        return loss, terms

    def evaluate(self, args, num_series) -> float:
        """ELBO per series (lambda = 1) on the given program arguments, without gradients (with the
        averaged parameters when ``ema_decay`` is set)."""
        with torch.no_grad():
            self._swap_ema()
            try:
                _, terms = self._loss(args, 1.0)
            finally:
                self._swap_ema()
        return terms["elbo_unscaled"] / num_series

    @torch.no_grad()
    def _clip_gradients(self):
        """Clips the gradients by ``clip_norm`` (jointly, or per group with ``clip_per_group``).

        :returns: ``(norm, group_norms)``: the joint norm (a tensor) and ``{group: norm}`` (floats,
            read from the device in one transfer), before clipping.
        """
        with_grad = {name: [p for p in self.params[name] if p.grad is not None] for name in self.group_names}
        zero = torch.zeros((), device=self.all_params[0].device)
        norms = torch.stack([torch.nn.utils.get_total_norm([p.grad for p in params]) if params else zero
                             for params in with_grad.values()])                        # (groups,)
        norm = norms.square().sum().sqrt()
        limit = self.config.clip_norm
        if limit is not None:
            if self.config.clip_per_group:
                for params, group_norm in zip(with_grad.values(), norms):
                    if params:
                        torch.nn.utils.clip_grads_with_norm_(params, limit, group_norm)
            else:
                torch.nn.utils.clip_grads_with_norm_([p for ps in with_grad.values() for p in ps], limit, norm)
        return norm, dict(zip(with_grad, norms.tolist()))

    @torch.no_grad()
    def _update_ema(self):
        if self.ema is not None:
            decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
            torch._foreach_lerp_(self.ema, self.all_params, 1.0 - decay)

    @torch.no_grad()
    def _swap_ema(self):
        """Exchanges the live and the averaged parameters (a no-op without ``ema_decay``)."""
        if self.ema is not None:
            for e, p in zip(self.ema, self.all_params):
                buffer = p.detach().clone()
                p.copy_(e)
                e.copy_(buffer)

    def score(self, fn) -> float:
        """``fn()`` (a validation score) with the averaged parameters when ``ema_decay`` is set,
        without gradients, its random draws from a generator seeded by ``config.seed`` so that
        every validation of a run uses the same draws (common random numbers: differences between
        steps are then the parameters', not the draws') and training's random stream is untouched."""
        devices = sorted({p.device.index or 0 for p in self.all_params if p.is_cuda})
        with torch.no_grad(), seeded(self.config.seed, devices):
            self._swap_ema()
            try:
                return float(fn())
            finally:
                self._swap_ema()

    def fit(self, make_args, num_series, *, val_args=None, val_num_series=None, val_scores=None,
            checkpoint_dir=None, resume=False) -> pd.DataFrame:
        """Runs the optimisation.

        :param make_args: ``indices (LongTensor) -> tuple`` of model/guide arguments for a minibatch.
        :param int num_series: number of training series.
        :param val_args: program arguments of the validation data (optional).
        :param dict val_scores: ``name -> fn() -> float`` (higher is better), further validation
            scores computed with the validation ELBO (see :meth:`score`) and recorded in the
            history as ``"val_" + name``; ``config.validation_metric`` may name one of them.
        :param checkpoint_dir: folder for ``checkpoint.pt`` (written atomically).
        :param bool resume: continue from the checkpoint in ``checkpoint_dir`` if there is one.
        :returns: the history as a DataFrame (one row per step).
        """
        cfg = self.config
        if resume and checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir")
        if not (resume and self.load_checkpoint(checkpoint_dir)):
            pyro.set_rng_seed(cfg.seed)  # a fresh start, also when there is no checkpoint yet
        if cfg.checkpoint_every and checkpoint_dir is None:
            raise ValueError("checkpoint_every > 0 needs checkpoint_dir")
        if cfg.keep_best and val_args is None:
            raise ValueError("keep_best=True needs validation data (val_args)")
        val_scores = dict(val_scores or {})
        if cfg.validation_metric != "elbo" and cfg.validation_metric not in val_scores:
            raise ValueError(f"validation_metric {cfg.validation_metric!r} is neither 'elbo' nor one "
                             f"of the validation scores given {sorted(val_scores)}")
        bar = progress_bar(cfg.progress, total=cfg.num_steps, initial=self.step, desc="SVI")
        restores = 0
        start = time.perf_counter()
        while self.step < cfg.num_steps:
            lam = cfg.annealing(self.step)
            factor = cfg.lr_factor(self.step)
            batch_size = min(cfg.batch_size_at(self.step) or num_series, num_series)
            if cfg.reset_moments_on_batch_change and any(self.step == s for s, _ in cfg.batch_schedule):
                self.optimizer.state.clear()
            for group in self.optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor
            if batch_size < num_series:
                idx = torch.randperm(num_series, generator=self.batch_generator)[:batch_size]
            else:
                idx = torch.arange(num_series)
            restart_from = self._restart_from_best()
            loss, terms = self._loss(make_args(idx), lam)
            loss = loss / batch_size
            norm, group_norms = torch.tensor(float("nan")), {}
            if torch.isfinite(loss):
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                norm, group_norms = self._clip_gradients()
            if not (torch.isfinite(loss) and torch.isfinite(norm)):
                # a NaN/inf gradient must not reach the parameters (nor a checkpoint)
                detail = ", ".join(f"{k}={v / batch_size:.4g}" for k, v in terms.items())
                if cfg.on_nonfinite == "restore" and checkpoint_dir is not None and restores < 3 \
                        and self.load_checkpoint(checkpoint_dir):
                    restores += 1
                    for group in self.optimizer.param_groups:
                        group["base_lr"] *= 0.5
                    bar.n = self.step
                    continue
                bar.close()
                what = "loss" if not torch.isfinite(loss) else "gradient"
                raise NonFiniteLossError(f"non-finite {what} at step {self.step} (lambda={lam:.4g}): "
                                         f"loss={float(loss.detach())}, grad_norm={float(norm)}; "
                                         f"per-series ELBO terms: {detail}")
            self.optimizer.step()
            self._update_ema()
            row = {"step": self.step, "loss": float(loss.detach()), "elbo": terms.pop("elbo_unscaled") / batch_size,
                   "annealing": lam, "batch_size": batch_size, "grad_norm": float(norm)}
            row.update({f"grad_norm_{name}": n for name, n in group_norms.items()})
            row.update({f"elbo_{site}": value / batch_size for site, value in terms.items()})
            row.update({f"lr_{g['name']}": g["lr"] for g in self.optimizer.param_groups})
            if restart_from is not None:
                row["restart_from"] = restart_from
            if val_args is not None and cfg.validate_every and (self.step + 1) % cfg.validate_every == 0:
                row["val_elbo"] = self.evaluate(val_args, val_num_series)
                for name, fn in val_scores.items():
                    row[f"val_{name}"] = self.score(fn)
                if cfg.keep_best:
                    self._remember_if_best({k: v for k, v in row.items() if k.startswith("val_")})
            row["seconds"] = time.perf_counter() - start
            self.rows.append(row)
            self.step += 1
            bar.update(1)
            if self.step % 10 == 0 or self.step == cfg.num_steps:
                bar.set_postfix(loss=f"{row['loss']:.3f}", lam=f"{lam:.2f}")
            if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                self.save_checkpoint(checkpoint_dir)
        bar.close()
        with torch.no_grad():
            # the model ends with the best validated or the averaged parameters; the live ones
            # stay in the checkpoint
            if cfg.keep_best and self.best is not None:
                torch._foreach_copy_(self.all_params, self.best["params"])
            elif self.ema is not None:
                torch._foreach_copy_(self.all_params, self.ema)
        return self.history()

    @torch.no_grad()
    def _restart_from_best(self):
        """With ``restart_from_best``, at a restart step whose best validation is older than the
        previous step, copies the best parameters into the live ones (and the average) and
        returns the best step; ``None`` otherwise."""
        cfg = self.config
        if not (cfg.restart_from_best and self.step in cfg.lr_restarts and self.best is not None
                and self.best["step"] != self.step - 1):
            return None
        torch._foreach_copy_(self.all_params, self.best["params"])
        if self.ema is not None:
            torch._foreach_copy_(self.ema, self.best["params"])
        return self.best["step"]

    @torch.no_grad()
    def _remember_if_best(self, values: dict):
        """Copies the validated parameters (the averaged ones with ``ema_decay``) when their
        ``validation_metric`` in ``values`` (``val_*`` columns) beats the best so far; a
        non-finite value never does."""
        key = f"val_{self.config.validation_metric}"
        value = values[key]
        if not math.isfinite(value) or (self.best is not None and value <= self.best["values"].get(key, -math.inf)):
            return
        source = self.ema if self.ema is not None else self.all_params
        if self.best is None:
            self.best = {"params": [t.detach().clone() for t in source]}
        else:
            torch._foreach_copy_(self.best["params"], [t.detach() for t in source])
        self.best.update(step=self.step, values=dict(values))

    def history(self) -> pd.DataFrame:
        """One row per step: loss (annealed -ELBO per series), elbo, per-site terms, lambda,
        minibatch size, gradient norms, learning rates."""
        return pd.DataFrame(self.rows)
