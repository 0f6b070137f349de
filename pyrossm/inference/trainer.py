"""The trainer: minimises a model's objectives over its named parameter groups, stage by stage.

The trainer does not know model internals.  It receives one
:class:`~pyrossm.inference.objectives.Objective` (or a list of
:class:`~pyrossm.models.base.Stage`\\ s, trained in order), named parameter groups (e.g.
encoder / emission / transition / init, the DDSSM paper's enc_lr, dec_lr, trans_lr, zinit_lr of
Appendix F), a :class:`~pyrossm.inference.config.TrainerConfig` and optional callbacks; ``fit``
gets a function giving the minibatch for given series indices.
"""

from __future__ import annotations

import math
import time

import pandas as pd
import pyro
import torch

from ..models.base import Stage
from ..progress import progress_bar
from . import distributed
from .checkpointing import CHECKPOINT_NAME, PREVIOUS_CHECKPOINT_NAME, CheckpointState  # noqa: F401
from .config import TrainerConfig
from .objectives import Objective
from .rng import seeded

#: ``on_nonfinite="restore"``: how many times a run goes back to its last checkpoint
MAX_RESTORES = 3


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient; the message names the step and the loss terms."""


class Callback:
    """Hooks into a :class:`Trainer` run; override what you need.  ``trainer.request_stop()``
    ends the run after the current step (the fit then ends as after its last step)."""

    def on_stage_start(self, trainer, stage):
        pass

    def on_step_end(self, trainer, row: dict):
        """After every step, with the history row (``val_*`` entries on validation steps)."""

    def on_stage_end(self, trainer, stage):
        pass


class Trainer(CheckpointState):
    """AdamW on each stage's objective, with per-group learning rates, schedules, clipping,
    minibatches, validation, model selection, checkpoints and resume.

    :param objective: an :class:`Objective` (one stage, ``"train"``) or a list of
        :class:`~pyrossm.models.base.Stage`.
    :param dict groups: ``name -> list of parameters``.
    :param TrainerConfig config: settings (a dict or preset name is resolved).
    :param callbacks: :class:`Callback` instances.
    """

    def __init__(self, objective, groups, config=None, callbacks=()):
        self.config = config = TrainerConfig.resolve(config)
        stages = [Stage("train", objective)] if isinstance(objective, Objective) else list(objective)
        if not stages or not all(isinstance(s, Stage) for s in stages):
            raise TypeError("objective must be an Objective or a non-empty list of Stage")
        unknown = set(config.optimizer.learning_rates) - set(groups)
        if unknown:
            raise ValueError(
                f"learning_rates names unknown parameter groups {sorted(unknown)}; groups are {sorted(groups)}"
            )
        self.group_names = [name for name, params in groups.items() if params]
        self.params = {name: list(groups[name]) for name in self.group_names}
        self.stages, self.budgets, self.objectives, self.stage_groups = [], [], [], []
        for stage in stages:
            missing = set(stage.groups or ()) - set(groups)
            if missing:
                raise ValueError(
                    f"stage {stage.name!r} names unknown parameter groups {sorted(missing)}; "
                    f"groups are {sorted(groups)}"
                )
            budget = config.num_steps if stage.num_steps is None else int(stage.num_steps)
            self.stages.append(stage)
            self.budgets.append(budget)
            self.objectives.append(stage.objective.for_stage(budget))
            self.stage_groups.append([g for g in (stage.groups or self.group_names) if g in self.params])
        self.starts = [sum(self.budgets[:i]) for i in range(len(self.budgets))]
        self.total_steps = sum(self.budgets)
        self.callbacks = list(callbacks)
        self.batch_generator = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.rows: list[dict] = []
        self.stage_index = None
        self.optimizer = None
        self.stage_params: list = []
        self.ema = None
        # keep_best: {"step", "values" (the validation's val_* columns), "params"} of the best so far
        self.best: dict | None = None
        self._stop = False
        #: what the run is (model, data ...), as ``fit`` describes it; recorded in checkpoints
        self.run = None
        self._enter_stage(0)

    @property
    def all_params(self):
        return [p for name in self.group_names for p in self.params[name]]

    def request_stop(self):
        """Ends the run after the current step."""
        self._stop = True

    # ------------------------------------------------------------------ stages
    def stage_of(self, step: int) -> int:
        """The index of the stage that trains global ``step`` (``len(stages)`` past the end)."""
        for i, (start, budget) in enumerate(zip(self.starts, self.budgets)):
            if step < start + budget:
                return i
        return len(self.stages)

    def _enter_stage(self, i):
        """A fresh optimiser (and average, and best) over stage ``i``'s groups."""
        cfg = self.config
        self.stage_index = i
        names = self.stage_groups[i]
        self.stage_params = [p for name in names for p in self.params[name]]
        self.optimizer = torch.optim.AdamW(
            [
                {
                    "params": self.params[name],
                    "lr": cfg.learning_rate_of(name),
                    "base_lr": cfg.learning_rate_of(name),
                    "name": name,
                }
                for name in names
            ],
            weight_decay=cfg.optimizer.weight_decay,
            fused=True,  # one kernel for all tensors (CPU and CUDA): about 3x cheaper than foreach here
        )
        self.ema = None if cfg.selection.ema_decay is None else [p.detach().clone() for p in self.stage_params]
        self.best = None
        # several processes (torchrun): the stage's gradients are averaged by DDP, which also
        # starts every rank from rank 0's parameters
        self.parallel = distributed.DataParallel(self.stage_params) if distributed.world()[1] > 1 else None

    @torch.no_grad()
    def _end_stage(self):
        """The stage's parameters become its best validated or its averaged ones."""
        if self.config.selection.keep_best and self.best is not None:
            torch._foreach_copy_(self.stage_params, self.best["params"])
        elif self.ema is not None:
            torch._foreach_copy_(self.stage_params, self.ema)
        for callback in self.callbacks:
            callback.on_stage_end(self, self.stages[self.stage_index])

    # ------------------------------------------------------------------ parameters
    @torch.no_grad()
    def _clip_gradients(self):
        """Clips the gradients by their joint norm to ``clip_norm``.

        :returns: ``(norm, group_norms)``: the joint norm (a tensor) and ``{group: norm}`` (floats,
            read from the device in one transfer), before clipping.
        """
        opt = self.config.optimizer
        names = self.stage_groups[self.stage_index]
        with_grad = {name: [p for p in self.params[name] if p.grad is not None] for name in names}
        zero = torch.zeros((), device=self.stage_params[0].device)
        norms = torch.stack(
            [
                torch.nn.utils.get_total_norm([p.grad for p in params]) if params else zero
                for params in with_grad.values()
            ]
        )  # (groups,)
        norm = norms.square().sum().sqrt()
        if opt.clip_norm is not None:
            torch.nn.utils.clip_grads_with_norm_([p for ps in with_grad.values() for p in ps], opt.clip_norm, norm)
        return norm, dict(zip(with_grad, norms.tolist()))

    @torch.no_grad()
    def _update_ema(self):
        if self.ema is not None:
            decay = min(self.config.selection.ema_decay, (1 + self.step) / (10 + self.step))
            torch._foreach_lerp_(self.ema, self.stage_params, 1.0 - decay)

    @torch.no_grad()
    def _swap_ema(self):
        """Exchanges the live and the averaged parameters (a no-op without ``ema_decay``)."""
        if self.ema is not None:
            for e, p in zip(self.ema, self.stage_params):
                buffer = p.detach().clone()
                p.copy_(e)
                e.copy_(buffer)

    def evaluate(self, batch) -> dict:
        """The stage objective's validation values on ``batch``, without gradients (with the
        averaged parameters when ``ema_decay`` is set)."""
        with torch.no_grad():
            self._swap_ema()
            try:
                return self.objectives[self.stage_index].validate(batch)
            finally:
                self._swap_ema()

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

    @torch.no_grad()
    def _remember_if_best(self, values: dict):
        """Copies the validated parameters (the averaged ones with ``ema_decay``) when their
        ``validation_metric`` in ``values`` (``val_*`` columns) beats the best so far; a
        non-finite value never does."""
        key = f"val_{self.config.selection.validation_metric}"
        value = values[key]
        if not math.isfinite(value) or (self.best is not None and value <= self.best["values"].get(key, -math.inf)):
            return
        source = self.ema if self.ema is not None else self.stage_params
        if self.best is None:
            self.best = {"params": [t.detach().clone() for t in source]}
        else:
            torch._foreach_copy_(self.best["params"], [t.detach() for t in source])
        self.best.update(step=self.step, values=dict(values))

    # ------------------------------------------------------------------ training
    def _check_validation(self, val_batch, val_scores):
        sel = self.config.selection
        if sel.keep_best and val_batch is None:
            raise ValueError("keep_best=True needs validation data")
        # the default metric ("elbo") need not exist where nothing selects by it
        if sel.keep_best or sel.validation_metric != "elbo":
            for stage, objective in zip(self.stages, self.objectives):
                names = set(getattr(objective, "validation_names", ())) | set(val_scores)
                if sel.validation_metric not in names:
                    raise ValueError(
                        f"validation_metric {sel.validation_metric!r} is not among the "
                        f"validation values of stage {stage.name!r}: {sorted(names)}"
                    )

    def fit(
        self, make_batch, num_series, *, val_batch=None, val_scores=None, checkpoint_dir=None, resume=False, run=None
    ) -> pd.DataFrame:
        """Runs every stage.

        :param make_batch: ``indices (LongTensor) -> batch`` for the objectives.
        :param int num_series: number of training series.
        :param val_batch: the validation data as a batch (optional).
        :param dict val_scores: ``name -> fn() -> float`` (higher is better), further validation
            scores recorded as ``"val_" + name``; ``validation_metric`` may name one of them.
        :param checkpoint_dir: folder for ``checkpoint.pt`` (written atomically every
            ``checkpoint_every`` steps and at the end of each stage).
        :param bool resume: continue from the checkpoint in ``checkpoint_dir`` if there is one
            (with this configuration's learning rates: a deliberate change applies from there on).
        :param dict run: JSON-able description of the run (model, data fingerprint, ...), recorded
            in the checkpoints; resuming a checkpoint whose description differs is refused.
        :returns: the history as a DataFrame (one row per step).
        """
        cfg = self.config
        self.run = run
        if resume and checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir")
        if cfg.checkpointing.checkpoint_every and checkpoint_dir is None:
            raise ValueError("checkpoint_every > 0 needs checkpoint_dir")
        val_scores = dict(val_scores or {})
        self._check_validation(val_batch, val_scores)
        if checkpoint_dir is not None:
            self.prepare_checkpoint_dir(checkpoint_dir, resume)
        if resume and self.load_checkpoint(checkpoint_dir):
            for group in self.optimizer.param_groups:  # this run's rates, changed or not
                group["base_lr"] = cfg.learning_rate_of(group["name"])
        else:
            # a fresh start, also when there is no checkpoint yet (each rank its own stream)
            pyro.set_rng_seed(cfg.seed + distributed.world()[0])
        bar = progress_bar(
            cfg.progress if distributed.is_main() else False,
            total=self.total_steps,
            initial=self.step,
            desc=self.stages[0].name if len(self.stages) == 1 else "stages",
        )
        restores, smoothed, seen = 0, 0.0, 0
        start = time.perf_counter()
        self._stop = ended = False
        while self.step < self.total_steps and not self._stop:
            index = self.stage_of(self.step)
            if index != self.stage_index:
                self._end_stage()
                if self._stop:  # asked for at the end of that stage
                    ended = True
                    break
                self._enter_stage(index)
            if self.step == self.starts[index]:
                for callback in self.callbacks:
                    callback.on_stage_start(self, self.stages[index])
            if len(self.stages) > 1:
                bar.set_description(self.stages[index].name)
            stage_step = self.step - self.starts[index]
            if self._train_step(make_batch, num_series, stage_step, val_batch, val_scores, start):
                bar.update(1)
                row = self.rows[-1]
                # an exponential average of the loss (one step's value is noise), bias-corrected
                smoothed = 0.95 * smoothed + 0.05 * row["loss"]
                seen += 1
                if self.step % 10 == 0 or self.step == self.total_steps:
                    bar.set_postfix(loss=f"{smoothed / (1 - 0.95**seen):.3f}")
                end_of_stage = self.step == self.starts[index] + self.budgets[index]
                every = cfg.checkpointing.checkpoint_every
                due = (every and self.step % every == 0) or end_of_stage
                if checkpoint_dir is not None and due and distributed.is_main():
                    self.save_checkpoint(checkpoint_dir)
                continue
            # a non-finite step
            current = {group["name"]: group["base_lr"] for group in self.optimizer.param_groups}
            if (
                cfg.checkpointing.on_nonfinite == "restore"
                and checkpoint_dir is not None
                and restores < MAX_RESTORES
                and self.load_checkpoint(checkpoint_dir)
            ):
                restores += 1
                for group in self.optimizer.param_groups:  # half the rate it diverged at
                    group["base_lr"] = 0.5 * current.get(group["name"], group["base_lr"])
                pyro.set_rng_seed(cfg.seed + 7919 * restores)  # and other draws than the ones that diverged
                bar.n = self.step
                continue
            bar.close()
            if restores:
                self._nonfinite_message += f" (gave up after {restores} restores at halved learning rates)"
            raise NonFiniteLossError(self._nonfinite_message)
        bar.close()
        # the stage ends with the best validated or the averaged parameters; the live ones
        # stay in the checkpoint
        if not ended:
            self._end_stage()
        return self.history()

    def _train_step(self, make_batch, num_series, stage_step, val_batch, val_scores, start) -> bool:
        """One optimisation step; ``False`` (nothing changed) when the loss or gradient is not finite."""
        cfg, index = self.config, self.stage_index
        factor = cfg.schedule.factor(stage_step, self.budgets[index])
        batch_size = min(cfg.batching.batch_size or num_series, num_series)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        if batch_size < num_series:
            idx = torch.randperm(num_series, generator=self.batch_generator)[:batch_size]
        else:
            idx = torch.arange(num_series)
        local = distributed.share(idx) if self.parallel is not None else idx
        try:
            if self.parallel is None:
                loss, terms = self.objectives[index].loss(make_batch(local), stage_step)
            else:
                loss, terms = self.parallel.loss(
                    self.objectives[index], make_batch(local), stage_step, len(local), len(idx)
                )
        except ValueError as exc:
            # a distribution's argument check (Pyro validates them) met NaN / inf that parameters
            # driven too far by earlier steps produced: a divergence, reported (or restored) as such
            finite = all(bool(torch.isfinite(p).all()) for p in self.stage_params)
            if finite and "found invalid values" not in str(exc):
                raise
            what = "values in the model" if finite else "parameters"
            self._nonfinite_message = (
                f"non-finite {what} at step {self.step} (stage {self.stages[index].name!r}), the run "
                f"diverged: {str(exc).splitlines()[0][:300]}"
            )
            return False
        norm, group_norms = torch.tensor(float("nan")), {}
        finite = distributed.all_true(bool(torch.isfinite(loss)))  # (on every rank of a distributed run)
        if finite:
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm, group_norms = self._clip_gradients()
        if not (finite and torch.isfinite(norm)):
            # a NaN/inf gradient must not reach the parameters (nor a checkpoint)
            detail = ", ".join(f"{k}={v:.4g}" for k, v in terms.items())
            what = "loss" if not torch.isfinite(loss) else "gradient"
            self._nonfinite_message = (
                f"non-finite {what} at step {self.step} (stage {self.stages[index].name!r}): "
                f"loss={float(loss.detach())}, grad_norm={float(norm)}; loss terms per series: {detail}"
            )
            return False
        self.optimizer.step()
        self._update_ema()
        row = {
            "step": self.step,
            "stage": self.stages[index].name,
            "loss": float(loss.detach()),
            **terms,
            "batch_size": batch_size,
            "grad_norm": float(norm),
        }
        row.update({f"grad_norm_{name}": n for name, n in group_norms.items()})
        row.update({f"lr_{g['name']}": g["lr"] for g in self.optimizer.param_groups})
        every = cfg.selection.validate_every
        if val_batch is not None and every and (stage_step + 1) % every == 0:
            # (averaged over the ranks of a distributed run, so that every rank keeps the same best)
            row.update({f"val_{k}": v for k, v in distributed.average(self.evaluate(val_batch)).items()})
            for name, fn in val_scores.items():
                row[f"val_{name}"] = distributed.average({name: self.score(fn)})[name]
            if cfg.selection.keep_best:
                self._remember_if_best({k: v for k, v in row.items() if k.startswith("val_")})
        row["seconds"] = time.perf_counter() - start
        self.rows.append(row)
        self.step += 1
        for callback in self.callbacks:
            callback.on_step_end(self, row)
        return True

    def history(self) -> pd.DataFrame:
        """One row per step: step, stage, loss, the objective's terms, minibatch size, gradient
        norms, learning rates and validation values."""
        return pd.DataFrame(self.rows)
