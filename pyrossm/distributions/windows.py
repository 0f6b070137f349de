"""Sliding-window helpers that let a whole trajectory's conditionals be evaluated in one call."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def left_pad(x: torch.Tensor, amount: int) -> torch.Tensor:
    """Zero-pads ``amount`` steps at the start of the time axis.  ``(..., L, F) -> (..., L + amount, F)``."""
    if amount <= 0:
        return x
    return F.pad(x, (0, 0, amount, 0))


def sliding_windows(x: torch.Tensor, size: int) -> torch.Tensor:
    """All length-``size`` windows along the time axis.  ``(..., L, F) -> (..., L - size + 1, size, F)``."""
    return x.unfold(-2, size, 1).transpose(-1, -2)


def padding_mask(length: int, size: int, device=None) -> torch.Tensor:
    """Which positions of the windows of a left-padded length-``length`` sequence are real.

    Window ``t`` (0-based) covers original steps ``t - size + 1 .. t``; positions before step 0
    are padding.  :returns: ``(length, size)`` float tensor, 1 = real, 0 = padding.
    """
    t = torch.arange(length, device=device).unsqueeze(-1)
    offset = torch.arange(size, device=device) - (size - 1)
    return ((t + offset) >= 0).float()


def flatten_batch(*tensors, batch_shape, keep_dims):
    """Broadcasts each tensor's batch part to ``batch_shape`` and flattens it to one dim.

    ``keep_dims[i]`` is the number of trailing (non-batch) dims of ``tensors[i]``.
    :returns: list of tensors of shape ``(prod(batch_shape),) + trailing``.
    """
    out, size = [], 1
    for n in batch_shape:
        size *= n
    for tensor, keep in zip(tensors, keep_dims):
        trailing = tensor.shape[tensor.dim() - keep :] if keep else torch.Size()
        out.append(tensor.expand(tuple(batch_shape) + tuple(trailing)).reshape((size,) + tuple(trailing)))
    return out


def history_mask(length: int, order: int, device=None) -> torch.Tensor:
    """Which entries of the histories ``z_{t-j:t-1}`` (``t = 0..length-1``) are real, not padding.

    :returns: ``(length, order)`` float tensor; entry ``(t, i)`` is 1 iff ``t - order + i >= 0``.
    """
    t = torch.arange(length, device=device).unsqueeze(-1)
    return ((t - order + torch.arange(order, device=device)) >= 0).float()
