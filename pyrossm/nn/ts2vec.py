"""A small TS2Vec-style encoder and its hierarchical contrastive loss (Yue et al., AAAI 2022).

The encoder maps windows ``(B, T, D)`` to per-step representations ``(B, T, R)``: a linear input
projection, timestamp masking (training only: each projected step is zeroed with probability
``mask_prob``), and a stack of residual blocks of two dilated 1-D convolutions (GELU before each,
dilation ``2**i`` in block ``i``, "same" padding), the last block projecting to ``R`` channels.
The instance representation of a window is the max over its time steps (:meth:`instance`).

Training contrasts two overlapping random crops of each window (:func:`overlapping_crops`): the
representations of the shared steps are pulled together by :func:`hierarchical_contrastive_loss`,
which adds an instance-wise term (the same step of the other windows in the batch are the
negatives) and a temporal term (the other steps of the same window are the negatives) at every
scale of a max-pooling pyramid along time.

Every random draw here takes an explicit :class:`torch.Generator`; :func:`seeded_init_` gives a
module built on the ``meta`` device its initial values from one, so nothing touches torch's
global random state.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TS2VecEncoder", "hierarchical_contrastive_loss", "overlapping_crops", "seeded_init_"]


def seeded_init_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Gives every parameter of ``module`` PyTorch's default initial values, drawn from ``generator``.

    A module built under ``torch.device("meta")`` (no draws from the global generator) is
    materialised on the CPU and initialised: recurrent layers uniform on ``+-1/sqrt(hidden)``,
    linear and convolution layers (weights and biases) uniform on ``+-1/sqrt(fan_in)``.
    """
    if any(p.is_meta for p in module.parameters()):
        module.to_empty(device="cpu")
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, nn.RNNBase):
                bound = 1.0 / math.sqrt(sub.hidden_size)
                for p in sub.parameters(recurse=False):
                    p.uniform_(-bound, bound, generator=generator)
            elif isinstance(sub, (nn.Linear, nn.Conv1d)):
                fan_in = sub.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                sub.weight.uniform_(-bound, bound, generator=generator)
                if sub.bias is not None:
                    sub.bias.uniform_(-bound, bound, generator=generator)
            elif any(True for _ in sub.parameters(recurse=False)):
                raise TypeError(f"seeded_init_ does not know how to initialise a {type(sub).__name__}")
    return module


class DilatedBlock(nn.Module):
    """GELU -> dilated conv -> GELU -> dilated conv, plus the (projected) input."""

    def __init__(self, in_channels, out_channels, dilation, kernel_size):
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, padding=padding)
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel_size, dilation=dilation, padding=padding)
        self.skip = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, h):  # (B, C, T)
        y = self.conv2(F.gelu(self.conv1(F.gelu(h))))
        return y + (h if self.skip is None else self.skip(h))


class TS2VecEncoder(nn.Module):
    """Per-step representations of windows: ``(B, T, D) -> (B, T, repr_dim)``.

    :param int input_dim: channels ``D``.
    :param int hidden_size: width of the projection and of the hidden blocks.
    :param int repr_dim: representation width ``R``.
    :param int depth: hidden dilated blocks (dilations ``1, 2, ..., 2**(depth-1)``), then one to ``R``.
    :param int kernel_size: odd convolution kernel size.
    :param float mask_prob: probability that a step is masked in training.
    """

    def __init__(self, input_dim, hidden_size=32, repr_dim=32, depth=3, kernel_size=3, mask_prob=0.5):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.mask_prob = float(mask_prob)
        self.input_proj = nn.Linear(input_dim, hidden_size)
        widths = [hidden_size] * depth + [repr_dim]
        blocks, prev = [], hidden_size
        for i, width in enumerate(widths):
            blocks.append(DilatedBlock(prev, width, 2**i, kernel_size))
            prev = width
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x, generator=None):
        """``(B, T, D) -> (B, T, R)``; with a ``generator``, the timestamps are masked at random."""
        h = self.input_proj(x)
        if generator is not None:
            keep = torch.rand(h.shape[:2], generator=generator) >= self.mask_prob
            h = h * keep.unsqueeze(-1).to(h.dtype)
        return self.blocks(h.transpose(1, 2)).transpose(1, 2)

    def instance(self, x):
        """Instance representations ``(B, R)``: the per-step representations max-pooled over time."""
        return self.forward(x).amax(dim=1)


def overlapping_crops(x, generator, min_overlap=2):
    """Two crops of every window of ``x`` ``(B, T, D)`` that share ``L`` steps.

    One crop covers ``[a1, b1)``, the other ``[a2, b2)`` with ``a1 <= a2 < b1 <= b2`` and
    ``L = b1 - a2``; the crop positions are drawn once per batch and shifted by a random offset
    per window (both crops of a window by the same one).

    :returns: ``(crop1, crop2, L)``: the shared steps are the last ``L`` of ``crop1`` and the first
        ``L`` of ``crop2``.
    """
    batch, length = x.shape[:2]
    min_overlap = min(min_overlap, length)

    def randint(low, high, size=()):  # [low, high)
        return torch.randint(low, high, size, generator=generator)

    overlap = int(randint(min_overlap, length + 1))
    a2 = int(randint(0, length - overlap + 1))
    b1 = a2 + overlap
    a1 = int(randint(0, a2 + 1))
    b2 = int(randint(b1, length + 1))
    shift = randint(-a1, length - b2 + 1, (batch,))
    rows = torch.arange(batch).unsqueeze(1)

    def crop(start, stop):
        return x[rows, shift.unsqueeze(1) + torch.arange(start, stop).unsqueeze(0)]

    return crop(a1, b1), crop(a2, b2), overlap


def _contrast(z1, z2):
    """Mean InfoNCE over ``(G, M, R)`` groups: item ``m`` of ``z1`` against item ``m`` of ``z2``,
    with the other ``2M - 2`` items of both views in the group as negatives."""
    m = z1.shape[1]
    z = torch.cat([z1, z2], dim=1)  # (G, 2M, R)
    sim = z @ z.transpose(1, 2)
    eye = torch.eye(2 * m, dtype=torch.bool)
    logp = torch.log_softmax(sim.masked_fill(eye, float("-inf")), dim=-1)
    partner = torch.cat([torch.arange(m, 2 * m), torch.arange(m)])
    return -logp[:, torch.arange(2 * m), partner].mean()


def hierarchical_contrastive_loss(z1, z2, alpha=0.5):
    """TS2Vec's loss on two views ``(B, L, R)`` of the same steps.

    At each scale (the steps max-pooled in pairs from one scale to the next, down to one step) it
    adds ``alpha`` times the instance-wise contrast (per step, across the batch; needs ``B >= 2``)
    and ``1 - alpha`` times the temporal contrast (per window, across steps; while ``L >= 2``), and
    returns the mean over the scales.
    """
    total, scales = z1.new_zeros(()), 0
    while True:
        term = z1.new_zeros(())
        if z1.shape[0] > 1:
            term = term + alpha * _contrast(z1.transpose(0, 1), z2.transpose(0, 1))
        if z1.shape[1] > 1:
            term = term + (1 - alpha) * _contrast(z1, z2)
        total, scales = total + term, scales + 1
        if z1.shape[1] <= 1:
            return total / scales
        z1 = F.max_pool1d(z1.transpose(1, 2), kernel_size=2).transpose(1, 2)
        z2 = F.max_pool1d(z2.transpose(1, 2), kernel_size=2).transpose(1, 2)
