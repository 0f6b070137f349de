"""The whole public workflow on each available device: ``fit`` (validated by the 1-step log
score, keeping the best, a cosine learning-rate decay), ``forecast``, ``sample``, ``smooth``,
``log_score``, save on the device and load on the CPU.  The CUDA cases run where a GPU is present
and are skipped elsewhere (CI has none), so a session with a GPU proves the CUDA path with
``pytest tests/test_devices.py``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pyrossm
from pyrossm.datasets import bimodal_random_walk

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]
ARCH = {
    "dkf": dict(channels=4, hidden_dim=4, encoder_layers=1, emission_layers=1, transition_layers=1),
    "ddssm": dict(
        channels=4,
        hidden_dim=4,
        encoder_layers=1,
        emission_layers=1,
        diffusion_channels=4,
        diffusion_layers=1,
        num_diffusion_steps=16,
        sampler="ddim",
        num_sampling_steps=4,
        residual_transition="linear",
    ),
}
STEPS = 6


def fit_on(device, model):
    train = bimodal_random_walk(num_series=16, length=10, seed=0)
    valid = bimodal_random_walk(num_series=8, length=10, seed=1)
    trainer = dict(validate_every=3, validation_metric="log_score", keep_best=True, lr_schedule="cosine")
    return pyrossm.fit(
        model=model,
        data=train,
        validation_data=valid,
        num_steps=STEPS,
        batch_size=4,
        trainer=trainer,
        device=device,
        seed=0,
        progress=False,
        **ARCH[model],
    )


@pytest.mark.parametrize("model", ["dkf", "ddssm"])
@pytest.mark.parametrize("device", DEVICES)
def test_fit_and_every_draw_run_on_the_device(device, model):
    res = fit_on(device, model)
    assert res.device.type == device
    assert all(p.device.type == device for p in res.model.parameters())
    h = res.history
    assert len(h) == STEPS and np.isfinite(h["loss"]).all() and np.isfinite(h["grad_norm"]).all()
    assert list(h["batch_size"]) == [4] * STEPS
    assert np.isfinite(h["val_log_score"].dropna()).sum() == 2
    context = bimodal_random_walk(num_series=5, length=10, seed=2)

    fc = res.forecast(context, horizon=3, num_samples=7, seed=1)
    assert fc["x"].shape == (7, 5, 3) and np.isfinite(fc["x"].values).all()
    again = res.forecast(context, horizon=3, num_samples=7, seed=1)
    np.testing.assert_array_equal(fc["x"].values, again["x"].values)  # seeds reproduce
    gen = res.sample(num_series=4, length=6, num_samples=2, seed=0)
    assert gen["x"].shape == (2, 4, 6) and np.isfinite(gen["x"].values).all()
    z = res.smooth(context, num_samples=3, seed=0)["z"]
    assert z.shape == (3, 5, 10, {"dkf": 2, "ddssm": 4}[model])  # the default latent_dim
    assert np.isfinite(z.values).all()
    score = res.log_score(context, num_samples=6, seed=0)
    assert np.isfinite(np.asarray(score)).all()


@pytest.mark.parametrize("device", DEVICES)
def test_a_fit_saved_on_the_device_loads_on_the_cpu(device, tmp_path):
    res = fit_on(device, "ddssm")
    path = res.save(tmp_path / "fit.pyrossm")
    loaded = pyrossm.load(path, device="cpu")
    assert loaded.device.type == "cpu"
    for (name, a), (_, b) in zip(res.model.state_dict().items(), loaded.model.state_dict().items()):
        assert b.device.type == "cpu"
        torch.testing.assert_close(a.cpu(), b, rtol=0, atol=0, msg=name)
    assert loaded.config["trainer"]["selection"]["keep_best"] is True  # nested by section
    context = bimodal_random_walk(num_series=3, length=10, seed=2)
    fc = loaded.forecast(context, horizon=2, num_samples=5, seed=0)
    assert fc["x"].shape == (5, 3, 2) and np.isfinite(fc["x"].values).all()
