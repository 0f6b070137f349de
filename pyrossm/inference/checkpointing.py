"""A trainer's state: checkpoints (the last two kept, atomic, checked before use), resume, and
what a checkpoint must match (the run that wrote it)."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import torch

from .checkpoint import atomic_torch_save, safe_torch_load

CHECKPOINT_NAME = "checkpoint.pt"
#: the checkpoint before the latest, kept so that a corrupted latest one falls back to it
PREVIOUS_CHECKPOINT_NAME = "checkpoint.prev.pt"
#: a complete new checkpoint before it replaces the latest (left only by a kill between two renames)
NEXT_CHECKPOINT_NAME = "checkpoint.next.pt"


class CheckpointState:
    """The state methods of :class:`~pyrossm.inference.Trainer` (which provides ``params``,
    ``stages``, ``optimizer``, ``batch_generator``, ``ema``, ``best``, ``rows``, ``run`` and
    ``_enter_stage``)."""

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "stage": self.stage_index,
            "run": self.run,
            "params": {name: [p.detach().cpu().clone() for p in ps] for name, ps in self.params.items()},
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            # one state per visible GPU when CUDA is in use, so a resumed GPU run is bit-identical
            "cuda_rng": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_initialized() else [],
            "batch_rng": self.batch_generator.get_state(),
            "ema": None if self.ema is None else [t.cpu().clone() for t in self.ema],
            "best": None
            if self.best is None
            else {
                "step": self.best["step"],
                "values": dict(self.best["values"]),
                "params": [t.cpu().clone() for t in self.best["params"]],
            },
            # every column of any row (e.g. val_elbo appears only every validate_every steps)
            "history": {
                key: [row.get(key, float("nan")) for row in self.rows]
                for key in dict.fromkeys(k for row in self.rows for k in row)
            },
        }

    def _check_state(self, state) -> None:
        """A ``ValueError`` naming what a checkpoint lacks or gets wrong, before anything is changed."""
        if not isinstance(state, dict):
            raise ValueError(f"a checkpoint must be a dict, got {type(state).__name__}")
        missing = [
            key for key in ("step", "params", "optimizer", "history", "batch_rng", "torch_rng") if key not in state
        ]
        if missing:
            raise ValueError(f"the checkpoint lacks {missing}")
        params, step, history = state["params"], state["step"], state["history"]
        if not isinstance(params, dict) or set(params) != set(self.params):
            groups = sorted(params) if isinstance(params, dict) else params
            raise ValueError(f"checkpoint parameter groups {groups} do not match this model's {sorted(self.params)}")
        for name, tensors in params.items():
            if not isinstance(tensors, list) or len(tensors) != len(self.params[name]):
                raise ValueError(f"checkpoint parameter group {name!r} does not match this model")
            for p, t in zip(self.params[name], tensors):
                if not isinstance(t, torch.Tensor) or p.shape != t.shape:
                    shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                    raise ValueError(
                        f"checkpoint parameter in group {name!r} has shape {shape}, the model has {tuple(p.shape)}"
                    )
        stage = state.get("stage") or 0
        if isinstance(stage, bool) or not isinstance(stage, int) or not 0 <= stage < len(self.stages):
            raise ValueError(f"checkpoint is in stage {stage!r}, this model has {len(self.stages)} stages")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"the checkpoint's step must be a non-negative int, got {step!r}")
        if not isinstance(history, dict) or any(not isinstance(v, list) or len(v) != step for v in history.values()):
            rows = (
                sorted({len(v) for v in history.values() if isinstance(v, list)}) if isinstance(history, dict) else []
            )
            raise ValueError(f"the checkpoint's history ({rows} rows) disagrees with its step {step}")

    def _check_run(self, saved) -> None:
        """A checkpoint of another run (other data, another model) is refused, naming the difference."""
        if not (isinstance(saved, dict) and isinstance(self.run, dict)):
            return
        differ = [key for key in self.run if key in saved and saved[key] != self.run[key]]
        if differ:
            detail = "; ".join(
                f"{key}: the checkpoint has {saved[key]!r}, this run {self.run[key]!r}"[:300] for key in differ
            )
            raise ValueError(f"the checkpoint was written by another run ({', '.join(differ)} differ): {detail}")

    def load_state_dict(self, state: dict) -> None:
        """Restores a :meth:`state_dict` after checking it (nothing changes when a check fails)."""
        self._check_run(state.get("run") if isinstance(state, dict) else None)
        self._check_state(state)
        self._apply_state(state)

    def _apply_state(self, state: dict) -> None:
        """Restores a checked state."""
        with torch.no_grad():
            for name, tensors in state["params"].items():
                for p, t in zip(self.params[name], tensors):
                    p.copy_(t.to(p.device))
        self._enter_stage(int(state.get("stage") or 0))
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
                for e, p, t in zip(self.ema, self.stage_params, saved or [None] * len(self.ema)):
                    e.copy_(p if t is None else t.to(p.device))
        best = state.get("best")
        self.best = (
            None
            if best is None
            else {
                "step": int(best["step"]),
                # checkpoints written before validation scores existed hold only the ELBO
                "values": {k: float(v) for k, v in best.get("values", {"val_elbo": best.get("val_elbo")}).items()},
                "params": [t.to(p.device) for t, p in zip(best["params"], self.stage_params)],
            }
        )
        self.step = int(state["step"])
        history = state["history"]
        keys = list(history)
        self.rows = [dict(zip(keys, values)) for values in zip(*history.values())] if keys else []

    def save_checkpoint(self, directory) -> Path:
        """Writes ``checkpoint.pt`` atomically; the one it replaces becomes ``checkpoint.prev.pt``."""
        directory = Path(directory)
        path, following = directory / CHECKPOINT_NAME, directory / NEXT_CHECKPOINT_NAME
        atomic_torch_save(self.state_dict(), following)  # whole, or not there at all
        if path.is_file():
            os.replace(path, directory / PREVIOUS_CHECKPOINT_NAME)
        os.replace(following, path)
        return path

    def load_checkpoint(self, directory) -> bool:
        """Loads the latest checkpoint in ``directory``, or the previous one where the latest is
        missing or unreadable (a warning says so); ``False`` where there is none.

        :raises ValueError: where neither can be read, or they do not match this run.
        """
        errors = []
        for name in (CHECKPOINT_NAME, PREVIOUS_CHECKPOINT_NAME):
            path = Path(directory) / name
            if not path.is_file():
                continue
            try:
                state = safe_torch_load(path)
            except ValueError as exc:
                errors.append(f"{name}: {exc}")
                continue
            self._check_run(state.get("run") if isinstance(state, dict) else None)  # another run: refused
            try:
                self._check_state(state)
            except ValueError as exc:
                errors.append(f"{name}: {exc}")
                continue
            if errors:
                warnings.warn(
                    f"the latest checkpoint could not be read ({errors[0]}); resuming from {name}", stacklevel=2
                )
            self._apply_state(state)  # (checked above)
            return True
        if errors:
            raise ValueError(f"no readable checkpoint in {str(directory)!r}: " + "; ".join(errors))
        return False

    @staticmethod
    def prepare_checkpoint_dir(directory, resume) -> None:
        """Before training: the folder exists and is writable, stray temporary files of a killed
        write are removed, and a fresh run does not overwrite another run's checkpoint."""
        directory = Path(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
                pass
        except OSError as exc:
            raise ValueError(f"checkpoint_dir {str(directory)!r} is not writable: {exc}") from None
        for stray in [*directory.glob(".checkpoint*.pt.*.tmp"), directory / NEXT_CHECKPOINT_NAME]:
            stray.unlink(missing_ok=True)
        if not resume and any((directory / name).is_file() for name in (CHECKPOINT_NAME, PREVIOUS_CHECKPOINT_NAME)):
            raise ValueError(
                f"checkpoint_dir {str(directory)!r} holds another run's checkpoint: pass resume=True to "
                "continue it, or give an empty folder"
            )
