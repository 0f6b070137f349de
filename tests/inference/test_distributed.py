"""Data-parallel training under torchrun (two CPU processes, gloo): the ranks end with the same
parameters, equal to a single process on the same global minibatches, and the fit records its
world size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


def run(out, nproc):
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    command = [sys.executable, str(WORKER), str(out)]
    if nproc > 1:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={nproc}",
            str(WORKER),
            str(out),
        ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "record.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    single, double = tmp_path_factory.mktemp("single"), tmp_path_factory.mktemp("double")
    return (single, run(single, 1)), (double, run(double, 2))


def test_two_processes_train_as_one_on_the_same_global_minibatches(runs):
    (single, one), (double, two) = runs
    assert one["world_size"] == [1, 1] and two["world_size"] == [2, 2]
    alone = torch.load(single / "rank0.pt", weights_only=True)["toy"]
    rank0, rank1 = (torch.load(double / f"rank{r}.pt", weights_only=True)["toy"] for r in (0, 1))
    for key in alone:
        assert torch.equal(rank0[key], rank1[key]), key  # DDP keeps the ranks identical
        torch.testing.assert_close(rank0[key], alone[key], rtol=1e-5, atol=1e-6)  # the same updates
    # the history's loss is the whole minibatch's on every step
    assert two["toy_loss"] == pytest.approx(one["toy_loss"], rel=1e-5)


def test_a_stochastic_elbo_fit_runs_distributed_with_the_ranks_in_step(runs):
    _, (double, two) = runs
    rank0, rank1 = (torch.load(double / f"rank{r}.pt", weights_only=True)["dkf"] for r in (0, 1))
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    assert len(two["dkf_loss"]) == 3 and all(abs(v) < 1e6 for v in two["dkf_loss"])
