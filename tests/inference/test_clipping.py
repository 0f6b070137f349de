"""Gradient clipping by the joint norm of all groups; the history records each group's norm."""

from __future__ import annotations

import math

import pytest
import torch

import pyrossm
from tests.inference.test_trainer import make_trainer


def set_gradients(trainer, scale_by_group):
    """Gives every parameter of group ``g`` the gradient ``scale_by_group[g]`` everywhere;
    returns each group's norm ``scale * sqrt(numel)``."""
    norms = {}
    for name in trainer.group_names:
        for p in trainer.params[name]:
            p.grad = torch.full_like(p, scale_by_group[name])
        numel = sum(p.numel() for p in trainer.params[name])
        norms[name] = scale_by_group[name] * math.sqrt(numel)
    return norms


def group_norm(trainer, name):
    return math.sqrt(sum(float(p.grad.square().sum()) for p in trainer.params[name]))


SCALES = {"encoder": 0.001, "emission": 0.002, "transition": 10.0, "init": 0.003}


def test_joint_clipping_scales_every_group_by_the_joint_norm():
    _, trainer = make_trainer(clip_norm=1.0)
    before = set_gradients(trainer, SCALES)
    norm, group_norms = trainer._clip_gradients()
    joint = math.sqrt(sum(n**2 for n in before.values()))
    assert float(norm) == pytest.approx(joint, rel=1e-5)
    assert {k: float(v) for k, v in group_norms.items()} == pytest.approx(before, rel=1e-5)
    # every group shrinks by the same factor 1 / joint (the transition's noise sets it)
    for name in trainer.group_names:
        assert group_norm(trainer, name) == pytest.approx(before[name] / joint, rel=1e-4)
    total_after = math.sqrt(sum(group_norm(trainer, n) ** 2 for n in trainer.group_names))
    assert total_after == pytest.approx(1.0, rel=1e-4)


def test_no_clipping_leaves_the_gradients_and_still_reports_the_norms():
    _, trainer = make_trainer(clip_norm=None)
    before = set_gradients(trainer, SCALES)
    norm, _ = trainer._clip_gradients()
    assert float(norm) == pytest.approx(math.sqrt(sum(n**2 for n in before.values())), rel=1e-5)
    for name in trainer.group_names:
        assert group_norm(trainer, name) == pytest.approx(before[name], rel=1e-6)


def test_joint_clipping_matches_torch_clip_grad_norm():
    _, trainer = make_trainer(clip_norm=0.5)
    torch.manual_seed(1)
    for p in trainer.all_params:
        p.grad = torch.randn_like(p)
    expected = [p.grad.clone() for p in trainer.all_params]
    params = [torch.nn.Parameter(p.detach().clone()) for p in trainer.all_params]
    for q, g in zip(params, expected):
        q.grad = g.clone()
    ref_norm = torch.nn.utils.clip_grad_norm_(params, 0.5)
    norm, _ = trainer._clip_gradients()
    assert float(norm) == pytest.approx(float(ref_norm), rel=1e-5)
    for p, q in zip(trainer.all_params, params):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-7)


def test_history_records_each_groups_norm(series_ds, tiny):
    res = pyrossm.fit(data=series_ds, num_steps=3, batch_size=4, seed=0, **tiny)
    h = res.history
    names = ("encoder", "emission", "transition", "init")
    for name in names:
        assert (h[f"grad_norm_{name}"] >= 0).all()
    joint = sum(h[f"grad_norm_{name}"] ** 2 for name in names) ** 0.5
    assert (joint - h["grad_norm"]).abs().max() < 1e-4 * h["grad_norm"].max()
