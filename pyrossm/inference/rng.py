"""Seeded blocks of random draws that leave the global random stream as it was."""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed, devices=()):
    """Runs the block with torch's RNG seeded by ``seed`` and restores the global RNG state
    afterwards (on the CPU and on each CUDA device in ``devices``), so that the block's draws are
    reproducible and the caller's random stream continues as if the block had not run.

    :param seed: an int, or ``None`` for a plain block (the global stream, advanced as usual).
    :param devices: the CUDA devices (``torch.device`` or indices) whose RNG the block uses.
    """
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=list(devices)):
        torch.manual_seed(seed)
        yield
