"""Data-parallel training on PyTorch's own engine (``torch.distributed`` and
:class:`~torch.nn.parallel.DistributedDataParallel`).

Run any script that calls ``pyrossm.fit`` (or ``python -m pyrossm fit ...``) under
``torchrun --nproc-per-node=N``: the process group is set up from torchrun's environment
(``gloo`` on CPU, ``nccl`` on GPU; several nodes through torchrun's rendezvous, e.g.
``--nnodes=2 --rdzv-backend=c10d --rdzv-endpoint=HOST:PORT``).  Every rank draws the same global
minibatch and trains on its share (``indices[rank::world_size]``); DDP averages the gradients,
each rank's loss weighted by its share so that the update is the one of the whole minibatch;
validation values are averaged over the ranks so that every rank keeps the same best step; rank 0
writes the checkpoints.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def world() -> tuple[int, int]:
    """``(rank, world_size)``: ``(0, 1)`` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env(device: torch.device | None = None) -> bool:
    """Joins the process group torchrun describes (``WORLD_SIZE`` > 1 in the environment) unless
    one is set up already; returns whether training is distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    cuda = device is not None and torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return dist.get_world_size() > 1


class _Parameters(nn.Module):
    """Holds a stage's parameters (the model's own objects) for DDP to synchronise."""

    def __init__(self, params):
        super().__init__()
        self.params = nn.ParameterList(params)

    def forward(self, objective, batch, step, weight):
        loss, terms = objective.loss(batch, step)
        return loss * weight, loss.detach(), terms


class DataParallel:
    """A stage's loss through DDP: gradients are all-reduced during ``backward``."""

    def __init__(self, params):
        device = params[0].device
        self.module = nn.parallel.DistributedDataParallel(
            _Parameters(params),
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
            broadcast_buffers=False,
        )

    def loss(self, objective, batch, step, local, total):
        """The loss of this rank's ``local`` of ``total`` series, weighted by ``world * local /
        total`` (DDP's mean over ranks is then the minibatch mean), and the terms of the whole
        minibatch (each rank's, ``"loss"`` included, averaged by share)."""
        _, size = world()
        weighted, loss, terms = self.module(objective, batch, step, size * local / total)
        return weighted, average({**terms, "loss": float(loss)}, local)


def share(indices: torch.Tensor) -> torch.Tensor:
    """This rank's share of a global minibatch."""
    rank, size = world()
    return indices[rank::size]


def average(values: dict, weight: float = 1.0) -> dict:
    """``values`` (floats) averaged over the ranks, each weighted by ``weight`` (e.g. its share)."""
    rank, size = world()
    if size == 1 or not values:
        return values
    keys = sorted(values)
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    tensor = torch.tensor([weight] + [float(values[k]) * weight for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    tensor = tensor.cpu()
    return {k: float(v) for k, v in zip(keys, tensor[1:] / tensor[0])}


def all_true(flag: bool) -> bool:
    """Whether ``flag`` holds on every rank."""
    return average({"flag": 1.0 if flag else 0.0})["flag"] == 1.0


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes files and shows progress."""
    return world()[0] == 0
