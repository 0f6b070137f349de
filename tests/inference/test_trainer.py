"""SVITrainer: reproducibility, checkpoint/resume, atomic checkpoints, non-finite losses,
per-group learning rates, validation and minibatching."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyro
import pytest
import torch

import pyrossm
from pyrossm.inference import AnnealingSchedule, NonFiniteLossError, SVITrainer, TrainerConfig, safe_torch_load
from pyrossm.inference.trainer import CHECKPOINT_NAME
from pyrossm.models import DKF

N, T = 6, 8


def history_without_seconds(history):
    return history.drop(columns=["seconds"])


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def tensors(seed=0, covariate_dim=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N, T, 1, generator=gen).cumsum(1)
    x = (x - x.mean()) / x.std()
    return x, torch.ones(N, T, 1, dtype=torch.bool), torch.randn(N, T, covariate_dim, generator=gen)


def make_trainer(seed=0, **config):
    torch.manual_seed(seed)
    model = DKF(obs_dim=1, latent_dim=1, order=1, channels=4, hidden_dim=4, encoder_layers=1,
                emission_layers=1, transition_layers=1)
    config.setdefault("progress", False)
    trainer = SVITrainer(model.model, model.guide, model.parameter_groups(), TrainerConfig(**config))
    return model, trainer


def args_of(data):
    x, mask, cov = data
    return lambda idx: (x[idx], mask[idx], cov[idx])


@pytest.fixture
def fit_kwargs(series_ds, tiny):
    return dict(data=series_ds, seed=3, batch_size=4, warmup_steps=6, **tiny)


# ------------------------------------------------------------------ reproducibility
def test_same_seed_gives_identical_history_and_parameters(fit_kwargs):
    a = pyrossm.fit(num_steps=8, **fit_kwargs)
    b = pyrossm.fit(num_steps=8, **fit_kwargs)
    assert len(a.history) == 8
    pd.testing.assert_frame_equal(history_without_seconds(a.history), history_without_seconds(b.history))
    assert_same_state(a.model, b.model)
    c = pyrossm.fit(num_steps=8, **{**fit_kwargs, "seed": 4})
    assert not a.history["loss"].equals(c.history["loss"])


def test_history_columns(fit_kwargs):
    res = pyrossm.fit(num_steps=5, **fit_kwargs)
    h = res.history
    assert list(h["step"]) == [0, 1, 2, 3, 4]
    for column in ("loss", "elbo", "annealing", "grad_norm", "elbo_x", "elbo_z", "elbo_z_aux",
                   "lr_encoder", "lr_emission", "lr_transition", "lr_init", "seconds"):
        assert column in h.columns
    # elbo is the unscaled sum of the per-site terms (per series)
    lam = h["annealing"]
    assert ((h["elbo_x"] + (h["elbo_z"] + h["elbo_z_aux"]) / lam) - h["elbo"]).abs().max() < 1e-3
    # the annealed loss is minus the scaled terms
    assert ((h["elbo_x"] + h["elbo_z"] + h["elbo_z_aux"]) + h["loss"]).abs().max() < 1e-3
    assert h["annealing"].iloc[0] == 0.01 and h["annealing"].is_monotonic_increasing


# ------------------------------------------------------------------ checkpoints
def test_resume_equals_an_uninterrupted_run(fit_kwargs, tmp_path):
    kw = dict(fit_kwargs, checkpoint_every=5, validation_data=fit_kwargs["data"], validate_every=3)
    full = pyrossm.fit(num_steps=20, checkpoint_dir=tmp_path / "full", **kw)
    assert sorted(os.listdir(tmp_path / "full")) == [CHECKPOINT_NAME]

    pyrossm.fit(num_steps=10, checkpoint_dir=tmp_path / "cut", **kw)  # "interrupted" after step 10
    assert safe_torch_load(tmp_path / "cut" / CHECKPOINT_NAME)["step"] == 10
    resumed = pyrossm.fit(num_steps=20, checkpoint_dir=tmp_path / "cut", resume=True, **kw)

    assert_same_state(full.model, resumed.model)
    pd.testing.assert_frame_equal(history_without_seconds(full.history),
                                  history_without_seconds(resumed.history))
    # validation rows before the checkpoint survive the round trip through it
    assert resumed.history["val_elbo"].notna().sum() == 6  # steps 2, 5, 8, 11, 14, 17


def fit_until_a_crash(monkeypatch, step, **fit_arguments):
    """Runs ``pyrossm.fit`` until a ``KeyboardInterrupt`` at ``step`` (as if the process died)."""
    original = SVITrainer._loss

    def crash(self, args, annealing):
        if self.step == step:
            raise KeyboardInterrupt
        return original(self, args, annealing)

    monkeypatch.setattr(SVITrainer, "_loss", crash)
    with pytest.raises(KeyboardInterrupt):
        pyrossm.fit(**fit_arguments)
    monkeypatch.setattr(SVITrainer, "_loss", original)


def test_resume_after_a_crash(fit_kwargs, tmp_path, monkeypatch):
    kw = dict(fit_kwargs, checkpoint_every=5)
    full = pyrossm.fit(num_steps=15, **fit_kwargs)
    fit_until_a_crash(monkeypatch, 12, num_steps=15, checkpoint_dir=tmp_path, **kw)
    assert safe_torch_load(tmp_path / CHECKPOINT_NAME)["step"] == 10
    resumed = pyrossm.fit(num_steps=15, checkpoint_dir=tmp_path, resume=True, **kw)
    assert_same_state(full.model, resumed.model)
    pd.testing.assert_frame_equal(history_without_seconds(full.history),
                                  history_without_seconds(resumed.history))


def test_resume_without_a_checkpoint_is_a_fresh_seeded_run(fit_kwargs, tmp_path):
    plain = pyrossm.fit(num_steps=4, **fit_kwargs)
    first = pyrossm.fit(num_steps=4, checkpoint_dir=tmp_path, resume=True, **fit_kwargs)
    assert_same_state(plain.model, first.model)
    pd.testing.assert_frame_equal(history_without_seconds(plain.history), history_without_seconds(first.history))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    data = tensors()
    model, trainer = make_trainer(num_steps=3, batch_size=None, checkpoint_every=3)
    trainer.fit(args_of(data), N, checkpoint_dir=tmp_path)
    assert os.listdir(tmp_path) == [CHECKPOINT_NAME]
    before = safe_torch_load(tmp_path / CHECKPOINT_NAME)
    assert before["step"] == 3

    trainer.config.num_steps = 4
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip file")  # something reaches the disk, then the crash
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint(tmp_path)
    monkeypatch.setattr(torch, "save", real_save)

    assert os.listdir(tmp_path) == [CHECKPOINT_NAME]  # no temporary file left behind
    after = safe_torch_load(tmp_path / CHECKPOINT_NAME)
    assert after["step"] == 3
    for group, params in before["params"].items():
        for p, q in zip(params, after["params"][group]):
            assert torch.equal(p, q)


def test_checkpoint_round_trip_restores_the_trainer(tmp_path):
    data = tensors()
    _, trainer = make_trainer(num_steps=4, batch_size=3, validate_every=2)
    trainer.fit(args_of(data), N, val_args=data, val_num_series=N)
    trainer.save_checkpoint(tmp_path)
    model2, trainer2 = make_trainer(seed=9, num_steps=4, batch_size=3)
    assert trainer2.load_checkpoint(tmp_path)
    assert trainer2.step == 4
    for name in trainer.params:
        for p, q in zip(trainer.params[name], trainer2.params[name]):
            assert torch.equal(p, q)
    pd.testing.assert_frame_equal(trainer.history(), trainer2.history())
    assert not make_trainer()[1].load_checkpoint(tmp_path / "nothing-here")


def test_resume_needs_a_checkpoint_dir():
    _, trainer = make_trainer(num_steps=1)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        trainer.fit(args_of(tensors()), N, resume=True)
    _, trainer = make_trainer(num_steps=1, checkpoint_every=1)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        trainer.fit(args_of(tensors()), N)


# ------------------------------------------------------------------ non-finite losses
def test_non_finite_loss_raises_naming_the_step():
    x, mask, cov = tensors()
    calls = []

    def make_args(idx):
        calls.append(len(calls))
        # from the 4th step (step 3) on, data so large that the Gaussian log-density overflows to -inf
        bad = x * 1e30 if len(calls) > 3 else x
        return bad[idx], mask[idx], cov[idx]

    model, trainer = make_trainer(num_steps=10, batch_size=None)
    with pytest.raises(NonFiniteLossError, match="step 3"):
        trainer.fit(make_args, N)
    assert trainer.step == 3 and len(trainer.history()) == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_diverged_parameter_stops_fit_before_returning_a_model(series_ds):
    torch.manual_seed(0)
    model = DKF(obs_dim=1, channels=4, hidden_dim=4, encoder_layers=1, emission_layers=1, transition_layers=1)
    with torch.no_grad():  # an emission mean of 1e30: (x - mean)^2 overflows, log p(x | z) = -inf
        model.emission.net.head.mean[-1].bias.fill_(1e30)
    with pytest.raises(NonFiniteLossError, match="step 0"):
        pyrossm.fit(model, series_ds, num_steps=3, progress=False)


def test_non_finite_gradient_raises_and_leaves_parameters_untouched():
    """A finite loss with a NaN gradient (d sqrt(|p - 1|)/dp at p = 1) must not be applied."""
    p = torch.nn.Parameter(torch.tensor(1.0))

    def model(annealing=1.0):
        pyro.factor("f", -(p - 1.0).abs().sqrt())

    def guide(annealing=1.0):
        pass

    trainer = SVITrainer(model, guide, {"p": [p]}, TrainerConfig(num_steps=1, batch_size=None, progress=False))
    with pytest.raises(NonFiniteLossError, match="step 0"):
        trainer.fit(lambda idx: (), 1)
    assert p.item() == 1.0
    assert trainer.history().empty


def test_restore_on_non_finite_reloads_the_checkpoint_and_halves_the_learning_rates(tmp_path):
    x, mask, cov = tensors()
    calls = []

    def make_args(idx):
        calls.append(None)
        bad = x * 1e30 if len(calls) == 8 else x  # an infinite loss at step 7, only once
        return bad[idx], mask[idx], cov[idx]

    _, trainer = make_trainer(num_steps=10, batch_size=None, checkpoint_every=5, on_nonfinite="restore",
                              learning_rate=0.004)
    history = trainer.fit(make_args, N, checkpoint_dir=tmp_path)
    assert list(history["step"]) == list(range(10))
    assert len(calls) == 8 + 5  # steps 0-7, then 5-9 again from the step-5 checkpoint
    assert (history["lr_encoder"].iloc[:5] == 0.004).all()
    assert (history["lr_encoder"].iloc[5:] == 0.002).all()


# ------------------------------------------------------------------ options
def test_per_group_learning_rates_reach_the_optimizer(fit_kwargs):
    rates = {"encoder": 0.01, "transition": 0.002, "init": 0.0005}
    res = pyrossm.fit(num_steps=3, learning_rate=0.001, learning_rates=rates, **fit_kwargs)
    h = res.history
    assert (h["lr_encoder"] == 0.01).all()
    assert (h["lr_transition"] == 0.002).all()
    assert (h["lr_init"] == 0.0005).all()
    assert (h["lr_emission"] == 0.001).all()

    _, trainer = make_trainer(learning_rate=0.003, learning_rates={"emission": 0.02})
    lrs = {g["name"]: g["lr"] for g in trainer.optimizer.param_groups}
    assert lrs == {"encoder": 0.003, "emission": 0.02, "transition": 0.003, "init": 0.003}


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_lr_schedule_decays_every_group_from_its_base_rate_to_the_end_factor(fit_kwargs, schedule):
    res = pyrossm.fit(num_steps=8, learning_rate=0.002, learning_rates={"transition": 0.01},
                      lr_schedule=schedule, lr_end_factor=0.25, **fit_kwargs)
    h = res.history
    progress = h["step"].to_numpy() / 8
    shape = 1 - progress if schedule == "linear" else 0.5 * (1 + np.cos(np.pi * progress))
    factor = 0.25 + 0.75 * shape
    np.testing.assert_allclose(h["lr_transition"], 0.01 * factor, rtol=1e-12)
    np.testing.assert_allclose(h["lr_encoder"], 0.002 * factor, rtol=1e-12)
    assert h["lr_encoder"].iloc[0] == 0.002 and np.all(np.diff(h["lr_encoder"]) < 0)
    config = TrainerConfig(num_steps=8, lr_schedule=schedule, lr_end_factor=0.25)
    assert config.lr_factor(0) == 1.0 and config.lr_factor(8) == pytest.approx(0.25)
    assert res.config["trainer"]["lr_schedule"] == schedule


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_lr_restarts_start_the_decay_over_in_each_cycle(fit_kwargs, schedule):
    res = pyrossm.fit(num_steps=10, learning_rate=0.002, lr_schedule=schedule, lr_end_factor=0.25,
                      lr_restarts=[4, 7], **fit_kwargs)
    step = res.history["step"].to_numpy()
    start = np.where(step < 4, 0, np.where(step < 7, 4, 7))
    length = np.where(step < 4, 4, 3)
    progress = (step - start) / length
    shape = 1 - progress if schedule == "linear" else 0.5 * (1 + np.cos(np.pi * progress))
    np.testing.assert_allclose(res.history["lr_encoder"], 0.002 * (0.25 + 0.75 * shape), rtol=1e-12)
    assert res.history["lr_encoder"].iloc[[0, 4, 7]].tolist() == [0.002] * 3
    assert res.config["trainer"]["lr_restarts"] == [4, 7]
    config = TrainerConfig(num_steps=10, lr_schedule="cosine", lr_end_factor=0.25, lr_restarts=[4, 7])
    assert config.lr_factor(2) == pytest.approx(0.625)         # half-way through the first cycle
    assert config.lr_factor(10) == pytest.approx(0.25)
    assert TrainerConfig(num_steps=10, lr_restarts=np.array([5]), lr_schedule="linear").lr_restarts == (5,)


@pytest.mark.parametrize("kwargs,message", [
    (dict(lr_restarts=[0]), r"lr_restarts.*\(0, num_steps=10\), got 0"),
    (dict(lr_restarts=[10]), r"got 10 at lr_restarts\[0\]"),
    (dict(lr_restarts=[5, 5]), r"strictly increasing.*got 5 at lr_restarts\[1\]"),
    (dict(lr_restarts=[6, 3]), r"got 3 at lr_restarts\[1\]"),
    (dict(lr_restarts=[-1]), r"lr_restarts\[0\]"),
    (dict(lr_restarts=[2.5]), r"lr_restarts\[0\]"),
    (dict(lr_restarts="5"), "lr_restarts must be a list"),
    (dict(lr_restarts=5), "lr_restarts must be a list"),
    (dict(lr_restarts=[5], lr_schedule="constant"), "lr_schedule is 'constant'"),
])
def test_invalid_lr_restarts_name_the_argument(kwargs, message):
    kwargs = {"num_steps": 10, "lr_schedule": "cosine", **kwargs}
    with pytest.raises(ValueError, match=message):
        TrainerConfig(**kwargs)


def test_lr_warmup_ramps_every_group_linearly_then_follows_the_schedule(fit_kwargs):
    res = pyrossm.fit(num_steps=8, learning_rate=0.002, learning_rates={"transition": 0.01},
                      lr_schedule="cosine", lr_end_factor=0.25, lr_warmup_steps=4, **fit_kwargs)
    h = res.history
    step = h["step"].to_numpy()
    warmup = np.minimum(1.0, (step + 1) / 4)
    factor = warmup * (0.25 + 0.75 * 0.5 * (1 + np.cos(np.pi * step / 8)))
    np.testing.assert_allclose(h["lr_transition"], 0.01 * factor, rtol=1e-12)
    np.testing.assert_allclose(h["lr_encoder"], 0.002 * factor, rtol=1e-12)
    assert h["lr_encoder"].iloc[0] == pytest.approx(0.0005)       # a quarter of the rate at step 0
    assert res.config["trainer"]["lr_warmup_steps"] == 4
    constant = TrainerConfig(num_steps=10, lr_warmup_steps=5)
    assert [constant.lr_factor(s) for s in (0, 1, 4, 5, 9)] == pytest.approx([0.2, 0.4, 1.0, 1.0, 1.0])


def test_lr_schedule_resumes_where_it_stopped(fit_kwargs, tmp_path, monkeypatch):
    """A run cut at step 6 and resumed follows the same decayed rates as an uncut run."""
    kwargs = dict(num_steps=10, lr_schedule="cosine", lr_end_factor=0.1, **fit_kwargs)
    whole = pyrossm.fit(**kwargs)
    fit_until_a_crash(monkeypatch, 6, **kwargs, checkpoint_dir=tmp_path, checkpoint_every=5)
    resumed = pyrossm.fit(**kwargs, checkpoint_dir=tmp_path, checkpoint_every=5, resume=True)
    pd.testing.assert_frame_equal(history_without_seconds(whole.history),
                                  history_without_seconds(resumed.history))
    assert_same_state(whole.model, resumed.model)


def test_ema_decay_zero_is_the_plain_run(fit_kwargs, make_ds):
    kwargs = dict(num_steps=6, validation_data=make_ds(num_series=3, seed=5), validate_every=3, **fit_kwargs)
    plain, ema = pyrossm.fit(**kwargs), pyrossm.fit(ema_decay=0.0, **kwargs)
    pd.testing.assert_frame_equal(history_without_seconds(plain.history), history_without_seconds(ema.history))
    assert_same_state(plain.model, ema.model)


def test_ema_the_model_ends_with_the_average_of_the_iterates():
    """The returned parameters are the recursive average with the warm-up decay of the docstring."""
    x, mask, cov = tensors()
    model, trainer = make_trainer(num_steps=12, batch_size=None, ema_decay=0.6, learning_rate=0.05)
    iterates, step = [], trainer.optimizer.step

    def recording_step(*args, **kwargs):
        out = step(*args, **kwargs)
        iterates.append([p.detach().clone() for p in trainer.all_params])
        return out

    trainer.optimizer.step = recording_step
    start = [p.detach().clone() for p in trainer.all_params]
    trainer.fit(args_of((x, mask, cov)), N)
    expected = start
    for t, params in enumerate(iterates):
        d = min(0.6, (1 + t) / (10 + t))
        expected = [d * e + (1 - d) * p for e, p in zip(expected, params)]
    for got, want in zip(trainer.all_params, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(p, q) for p, q in zip(trainer.all_params, iterates[-1]))
    before = [p.detach().clone() for p in trainer.all_params]
    trainer.evaluate((x, mask, cov), N)  # swaps the average in and out again
    assert all(torch.equal(p, q) for p, q in zip(before, trainer.all_params))


def test_ema_update_records_no_autograd_graph():
    """The average is a plain tensor: updating it must not chain the steps' autograd graphs."""
    _, trainer = make_trainer(num_steps=3, batch_size=None, ema_decay=0.9)
    trainer.fit(args_of(tensors()), N)
    assert all(not e.requires_grad and e.grad_fn is None for e in trainer.ema)


def test_ema_resume_equals_an_uninterrupted_run(fit_kwargs, tmp_path):
    kwargs = dict(fit_kwargs, ema_decay=0.8, checkpoint_every=4)
    full = pyrossm.fit(num_steps=10, **fit_kwargs, ema_decay=0.8)
    pyrossm.fit(num_steps=8, checkpoint_dir=tmp_path, **kwargs)
    resumed = pyrossm.fit(num_steps=10, checkpoint_dir=tmp_path, resume=True, **kwargs)
    assert_same_state(full.model, resumed.model)


def test_unknown_learning_rate_group_is_an_error(fit_kwargs):
    with pytest.raises(ValueError, match="decoder"):
        pyrossm.fit(num_steps=3, learning_rates={"decoder": 0.01}, **fit_kwargs)
    with pytest.raises(ValueError, match="decoder"):
        make_trainer(learning_rates={"decoder": 0.01})


def test_validate_every_adds_a_val_elbo_column(fit_kwargs, make_ds):
    val = make_ds(num_series=3, seed=5)
    res = pyrossm.fit(num_steps=6, validation_data=val, validate_every=2, **fit_kwargs)
    h = res.history
    assert list(h["val_elbo"].notna()) == [False, True, False, True, False, True]
    assert h["val_elbo"].dropna().map(lambda v: v == v and abs(v) < float("inf")).all()
    assert "val_elbo" not in pyrossm.fit(num_steps=2, **fit_kwargs).history.columns


def test_batch_size_larger_than_the_data_uses_every_series(fit_kwargs):
    big = pyrossm.fit(num_steps=4, **{**fit_kwargs, "batch_size": 100})
    every = pyrossm.fit(num_steps=4, **{**fit_kwargs, "batch_size": None})
    assert len(big.history) == 4
    pd.testing.assert_frame_equal(history_without_seconds(big.history), history_without_seconds(every.history))
    assert_same_state(big.model, every.model)


@pytest.mark.parametrize("kwargs,culprit", [
    (dict(num_steps=-1), "num_steps"),
    (dict(batch_size=0), "batch_size"),
    (dict(num_particles=0), "num_particles"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(learning_rates={"encoder": float("nan")}), "encoder"),
    (dict(weight_decay=-1.0), "weight_decay"),
    (dict(clip_norm=0), "clip_norm"),
    (dict(on_nonfinite="ignore"), "on_nonfinite"),
    (dict(validate_every=-2), "validate_every"),
    (dict(lr_schedule="step"), "lr_schedule"),
    (dict(lr_end_factor=0.0), "lr_end_factor"),
    (dict(lr_end_factor=1.5), "lr_end_factor"),
    (dict(lr_warmup_steps=-1), "lr_warmup_steps"),
    (dict(ema_decay=1.0), "ema_decay"),
    (dict(ema_decay=-0.1), "ema_decay"),
])
def test_invalid_trainer_config(kwargs, culprit):
    with pytest.raises(ValueError, match=culprit):
        TrainerConfig(**kwargs)


def test_numpy_ints_are_accepted_and_stored_as_ints():
    import json

    from pyrossm.inference import AnnealingSchedule

    config = TrainerConfig(num_steps=np.int64(7), batch_size=np.int32(4), num_particles=np.int64(2),
                           validate_every=np.int64(0), annealing=AnnealingSchedule(warmup_steps=np.int64(3)))
    assert [type(v) for v in (config.num_steps, config.batch_size, config.num_particles,
                              config.annealing.warmup_steps)] == [int] * 4
    assert json.loads(json.dumps(config.to_dict()))["num_steps"] == 7
    for bad in (True, np.bool_(True), 2.0):
        with pytest.raises(ValueError, match="num_steps"):
            TrainerConfig(num_steps=bad)


def test_checkpoint_carries_the_cuda_rng_when_cuda_is_in_use(monkeypatch):
    """The GPU generators' states are saved and restored (mocked: CI has no GPU)."""
    _, trainer = make_trainer()
    assert trainer.state_dict()["cuda_rng"] == []  # CUDA not in use: nothing saved
    saved_state = [torch.arange(4, dtype=torch.uint8), torch.arange(4, 8, dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: saved_state)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    state = trainer.state_dict()
    assert state["cuda_rng"] == saved_state
    trainer.load_state_dict(state)
    assert restored == [saved_state]
    # a checkpoint from a machine with another number of GPUs restores only the CPU generator
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    trainer.load_state_dict(state)
    assert len(restored) == 1


def test_piecewise_annealing_through_fit(fit_kwargs, tmp_path):
    points = [[0, 0.2], [2, 1.0], [4, 1.5], [6, 1.0]]
    fit_kwargs.pop("warmup_steps")                     # the knots replace the ramp
    res = pyrossm.fit(num_steps=8, annealing={"kind": "piecewise", "points": points}, **fit_kwargs)
    assert res.history["annealing"].tolist() == pytest.approx([0.2, 0.6, 1.0, 1.25, 1.5, 1.25, 1.0, 1.0])
    res.save(tmp_path / "fit.pyrossm")
    assert pyrossm.load(tmp_path / "fit.pyrossm").config["trainer"]["annealing"]["points"] == points
    with pytest.raises(ValueError, match="needs points"):
        pyrossm.fit(num_steps=2, annealing="piecewise", **fit_kwargs)


@pytest.mark.parametrize("ramp", [dict(annealing_end=1.25), dict(annealing_start=0.5),
                                  dict(warmup_steps=3), dict(annealing_end=1.0, warmup_steps=0)])
@pytest.mark.parametrize("schedule", [{"kind": "piecewise", "points": [[0, 1.0]]},
                                      AnnealingSchedule("constant", end=1.0)])
def test_ramp_arguments_next_to_a_full_schedule_are_an_error(fit_kwargs, ramp, schedule):
    """A dict or a schedule carries its own values: annealing_end etc. would be silently ignored."""
    fit_kwargs.pop("warmup_steps")
    with pytest.raises(ValueError, match=list(ramp)[0] + r"=.*only apply to a named annealing"):
        pyrossm.fit(num_steps=1, annealing=schedule, **ramp, **fit_kwargs)


def test_named_annealing_defaults_ramp_from_0_01_to_1_over_a_third(fit_kwargs):
    fit_kwargs.pop("warmup_steps")
    res = pyrossm.fit(num_steps=6, annealing="linear", **fit_kwargs)
    assert res.history["annealing"].tolist() == pytest.approx([0.01, 0.505, 1.0, 1.0, 1.0, 1.0])


def test_fit_trains_a_fitted_model_in_train_mode(fit_kwargs):
    res = pyrossm.fit(num_steps=1, **fit_kwargs)
    assert not res.model.training                      # FitResult leaves it in eval mode
    from pyrossm.models.registry import model_arguments

    modes = []
    for module in res.model.modules():
        module.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    kw = {k: v for k, v in fit_kwargs.items() if k not in model_arguments("dkf") | {"model"}}
    again = pyrossm.fit(model=res.model, num_steps=1, **kw)
    assert modes and all(modes)                        # every network call while training
    assert not again.model.training
