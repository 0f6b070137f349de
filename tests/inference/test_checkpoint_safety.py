"""Checkpoints as a careful user expects them: another run's checkpoint is never overwritten, an
unwritable folder fails before training, a killed write leaves nothing behind for long, the last
two are kept so a corrupted latest falls back, malformed ones are named; a diverging run stops
with pyrossm's own error."""

from __future__ import annotations

import os

import pytest
import torch

import pyrossm
from pyrossm.inference import NonFiniteLossError, Trainer, safe_torch_load
from pyrossm.inference.trainer import CHECKPOINT_NAME, PREVIOUS_CHECKPOINT_NAME


@pytest.fixture
def kw(series_ds, tiny):
    return dict(data=series_ds, batch_size=4, seed=0, **tiny)


def no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a training step ran")

    monkeypatch.setattr(Trainer, "_train_step", fail)


def test_a_fresh_fit_does_not_overwrite_another_runs_checkpoint(kw, tmp_path, monkeypatch):
    first = pyrossm.fit(num_steps=3, checkpoint_dir=tmp_path, **kw)
    with monkeypatch.context() as m:
        no_training(m)
        with pytest.raises(ValueError, match="holds another run's checkpoint: pass resume=True"):
            pyrossm.fit(num_steps=3, checkpoint_dir=tmp_path, **kw)
    assert safe_torch_load(tmp_path / CHECKPOINT_NAME)["step"] == 3
    resumed = pyrossm.fit(num_steps=3, checkpoint_dir=tmp_path, resume=True, **kw)  # allowed: nothing to do
    for a, b in zip(first.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_an_unwritable_checkpoint_dir_fails_before_training(kw, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    no_training(monkeypatch)
    with pytest.raises(ValueError, match="checkpoint_dir .*a_file/run' is not writable"):
        pyrossm.fit(num_steps=3, checkpoint_dir=blocker / "run", **kw)


def test_stray_temporary_files_of_a_killed_write_are_removed_on_the_next_start(kw, tmp_path):
    pyrossm.fit(num_steps=2, checkpoint_dir=tmp_path, **kw)
    stray = tmp_path / ".checkpoint.pt.x1y2.tmp"
    stray.write_bytes(b"PK half a file")
    (tmp_path / "checkpoint.next.pt").write_bytes(b"PK")
    pyrossm.fit(num_steps=4, checkpoint_dir=tmp_path, resume=True, **kw)
    assert sorted(os.listdir(tmp_path)) == [PREVIOUS_CHECKPOINT_NAME, CHECKPOINT_NAME]


def test_a_corrupted_latest_checkpoint_falls_back_to_the_previous(kw, tmp_path):
    # (a ramp or the DKF's default cosine learning-rate decay would depend on num_steps)
    constant = {"annealing": "constant", "lr_schedule": "constant"}
    settings = {"checkpoint_every": 2, **constant}
    full = pyrossm.fit(num_steps=6, trainer=constant, **kw)
    pyrossm.fit(num_steps=4, checkpoint_dir=tmp_path, trainer=settings, **kw)
    assert safe_torch_load(tmp_path / PREVIOUS_CHECKPOINT_NAME)["step"] == 2
    (tmp_path / CHECKPOINT_NAME).write_bytes((tmp_path / CHECKPOINT_NAME).read_bytes()[:200])  # truncated
    with pytest.warns(UserWarning, match="resuming from checkpoint.prev.pt"):
        resumed = pyrossm.fit(num_steps=6, checkpoint_dir=tmp_path, resume=True, trainer=settings, **kw)
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):  # steps 2..5 again, bit for bit
        assert torch.equal(a, b)
    for name in (CHECKPOINT_NAME, PREVIOUS_CHECKPOINT_NAME):
        (tmp_path / name).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="no readable checkpoint"):
        pyrossm.fit(num_steps=8, checkpoint_dir=tmp_path, resume=True, **kw)


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda s: s.update(params={}), r"checkpoint parameter groups \[\] do not match"),
        (lambda s: s.update(history={"step": [0, 1]}), r"history \(\[2\] rows\) disagrees with its step 4"),
        (lambda s: s.update(step=-1), "step must be a non-negative int"),
        (lambda s: s.pop("optimizer"), r"lacks \['optimizer'\]"),
        (lambda s: s["params"]["encoder"].pop(), "group 'encoder' does not match"),
    ],
)
def test_malformed_checkpoints_are_named(kw, tmp_path, edit, match):
    pyrossm.fit(num_steps=4, checkpoint_dir=tmp_path, **kw)
    state = safe_torch_load(tmp_path / CHECKPOINT_NAME)
    edit(state)
    torch.save(state, tmp_path / CHECKPOINT_NAME)
    os.remove(tmp_path / PREVIOUS_CHECKPOINT_NAME) if (tmp_path / PREVIOUS_CHECKPOINT_NAME).exists() else None
    with pytest.raises(ValueError, match=match):
        pyrossm.fit(num_steps=6, checkpoint_dir=tmp_path, resume=True, **kw)


def test_a_diverging_run_raises_nonfinite_loss_error_naming_the_step(kw):
    """At a learning rate of 1e6 the parameters leave the finite numbers within a few steps; the
    next forward pass then meets Pyro's argument checks, which used to raise first."""
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite (loss|gradient|parameters|values in the model) at step \d+"
    ):
        pyrossm.fit(num_steps=30, trainer={"learning_rate": 1e6, "clip_norm": None}, **kw)


def test_resume_on_other_data_or_another_model_is_refused_naming_the_difference(kw, tmp_path, make_ds, monkeypatch):
    pyrossm.fit(num_steps=2, checkpoint_dir=tmp_path, **kw)
    no_training(monkeypatch)
    with pytest.raises(ValueError, match=r"written by another run \(data differ\)"):
        pyrossm.fit(num_steps=4, checkpoint_dir=tmp_path, resume=True, **{**kw, "data": make_ds(seed=5)})
    with pytest.raises(ValueError, match=r"written by another run \(model_config differ\)"):
        pyrossm.fit(num_steps=4, checkpoint_dir=tmp_path, resume=True, init="normal", **kw)


def test_a_deliberate_learning_rate_change_on_resume_is_applied_and_recorded(kw, tmp_path):
    constant = {"annealing": "constant", "lr_schedule": "constant"}  # no decay: the rates are the ones given
    pyrossm.fit(num_steps=3, checkpoint_dir=tmp_path, learning_rate=1e-3, trainer=constant, **kw)
    resumed = pyrossm.fit(num_steps=5, checkpoint_dir=tmp_path, resume=True, learning_rate=5e-4, trainer=constant, **kw)
    assert resumed.history["lr_encoder"].tolist() == [1e-3] * 3 + [5e-4] * 2
    assert resumed.config["trainer"]["optimizer"]["learning_rate"] == 5e-4


def test_restore_halves_the_rate_it_diverged_at_draws_anew_and_gives_up_saying_so(kw, tmp_path, monkeypatch):
    """A step that is non-finite from step 2 on, every time: three restores from the step-2
    checkpoint at 1/2, 1/4, 1/8 of the rate, then the error says it gave up."""
    rates = []
    original = Trainer._train_step

    def diverging(self, *args, **kwargs):
        if self.step >= 2:
            rates.append(self.optimizer.param_groups[0]["base_lr"])
            self._nonfinite_message = f"non-finite loss at step {self.step}"
            return False
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_train_step", diverging)
    settings = {"checkpoint_every": 2, "on_nonfinite": "restore", "learning_rate": 0.01}
    with pytest.raises(NonFiniteLossError, match=r"at step 2 \(gave up after 3 restores at halved learning rates\)"):
        pyrossm.fit(num_steps=6, checkpoint_dir=tmp_path, trainer=settings, **kw)
    assert rates == pytest.approx([0.01, 0.005, 0.0025, 0.00125])
