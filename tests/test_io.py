"""Saved fits as a careful user and an attacker would try them: a file whose options ask for a
huge model fails before allocating it, a flipped bit is caught, malformed content is a
``ValueError`` naming what is wrong, and files get the user's normal permissions."""

from __future__ import annotations

import json
import os
import resource
import time

import pytest
import torch

import pyrossm
from pyrossm.inference import atomic_torch_save, safe_torch_load
from pyrossm.io import FORMAT_VERSION, checksum


@pytest.fixture(scope="module")
def saved(tmp_path_factory, make_ds, tiny):
    res = pyrossm.fit(data=make_ds(), num_steps=2, **tiny)
    path = res.save(tmp_path_factory.mktemp("io") / "fit.pyrossm")
    return res, path


def rewrite(saved, tmp_path, edit, reseal=True):
    """A copy of the saved payload changed by ``edit(payload)``, with a valid checksum unless not
    ``reseal`` (a tampered file, not a corrupted one), written to a new file."""
    payload = safe_torch_load(saved[1])
    edit(payload)
    if reseal and payload.get("version") == FORMAT_VERSION:
        try:
            payload["checksum"] = checksum(payload)
        except (KeyError, AttributeError):  # malformed beyond a checksum: read_fit must say what
            pass
    path = tmp_path / "edited.pyrossm"
    atomic_torch_save(payload, path)
    return path


def edit_json(key, change):
    def edit(payload):
        value = json.loads(payload[key])
        change(value)
        payload[key] = json.dumps(value)

    return edit


def test_a_file_asking_for_a_huge_model_fails_before_allocating_it(saved, tmp_path):
    """hidden_dim=20000 would be a DKF of about 12 GB (a GRU of 3 layers of that width); the
    shapes are checked on the meta device first."""
    path = rewrite(saved, tmp_path, edit_json("config", lambda c: c["model_config"].update(hidden_dim=20000)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(ValueError, match="the saved parameters do not match a 'dkf' model with the saved options"):
        pyrossm.load(path)
    assert time.perf_counter() - start < 30  # (not a speed target: the old code took minutes or died)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # kB


def test_one_flipped_bit_in_a_weight_is_caught(saved, tmp_path):
    def flip(payload):
        name = next(iter(payload["state_dict"]))
        tensor = payload["state_dict"][name].clone()
        tensor.reshape(-1).view(torch.int32)[0] ^= 1  # the lowest mantissa bit of one weight
        payload["state_dict"][name] = tensor

    path = rewrite(saved, tmp_path, flip, reseal=False)
    with pytest.raises(ValueError, match="corrupted: its checksum does not match"):
        pyrossm.load(path)
    # the same change with a recomputed checksum loads: the check is on the contents
    resealed = rewrite(saved, tmp_path, flip)
    assert not torch.equal(
        next(iter(pyrossm.load(resealed).model.state_dict().values())),
        next(iter(saved[0].model.state_dict().values())),
    )


def _deep(depth):
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda p: p.pop("config"), "'config' entry is missing"),
        (lambda p: p.update(config=json.dumps([1, 2])), "'config' entry must be a JSON object, got list"),
        (lambda p: p.update(config=_deep(100_000)), "'config' entry is not valid JSON"),
        (lambda p: p.update(config="{not json"), "'config' entry is not valid JSON"),
        (lambda p: p.update(history=json.dumps({"step": [0, 1], "loss": [1.0]})), "history must map each column"),
        (lambda p: p.update(state_dict={"w": [1, 2]}), "'state_dict' entry must map names to tensors"),
        (lambda p: p.update(state_dict={}), r"the saved parameters do not match .*missing"),
        (lambda p: p.update(version=True), "format version True"),
        (lambda p: p.update(version=FORMAT_VERSION + 1), "reads versions 1 to"),
        (edit_json("config", lambda c: c["model_config"].update(latent_dim=-1)), "model options are not valid"),
        (edit_json("config", lambda c: c["model_config"].update(hidden_dim="x")), "model options are not valid"),
        (edit_json("config", lambda c: c["model_config"].update(nonsense=1)), "model options are not valid"),
        (edit_json("config", lambda c: c.update(model_config=[1])), "'model_config' must be a JSON object"),
        (edit_json("config", lambda c: c.update(model="nope")), "model must be one of"),
        (edit_json("contract", lambda c: c.update(scale=[-1.0])), "'scale' must be positive"),
        (edit_json("contract", lambda c: c.update(loc=["a"])), "'loc' must be a list of finite numbers"),
        (edit_json("contract", lambda c: c.pop("target_vars")), "data contract is malformed"),
        (edit_json("contract", lambda c: c.update(scale=[1.0, 2.0])), "data contract is malformed"),
    ],
)
def test_malformed_content_is_a_value_error_naming_it(saved, tmp_path, edit, match):
    path = rewrite(saved, tmp_path, edit)
    with pytest.raises(ValueError, match=match):
        pyrossm.load(path)


def test_files_get_the_users_normal_permissions(saved, tmp_path):
    old = os.umask(0o022)
    try:
        path = saved[0].save(tmp_path / "perm.pyrossm")
        assert os.stat(path).st_mode & 0o777 == 0o644
        os.umask(0o077)
        private = saved[0].save(tmp_path / "private.pyrossm")
        assert os.stat(private).st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
