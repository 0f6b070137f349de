"""Time and feature mixers for the CSDI-style residual blocks (DDSSM paper, Appendix H.1).

Every mixer maps a tensor of shape ``(B, H, L, C)`` -- batch, feature (spatial) positions,
sequence positions, channels -- to a tensor of the same shape.  A *time* mixer mixes along
``L``; a *feature* mixer mixes along ``H``.  Which one is wanted is chosen by name
(``"identity"``, ``"conv"``, ``"gru"``, ``"attention"``) so that model configurations stay
plain JSON.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

MIXER_KINDS = ("identity", "conv", "gru", "attention")


class _AxisMixer(nn.Module):
    """Applies a sequence operator along one axis (``"time"`` = L or ``"feature"`` = H)."""

    def __init__(self, axis: str):
        super().__init__()
        if axis not in ("time", "feature"):
            raise ValueError(f"axis must be 'time' or 'feature', got {axis!r}")
        self.axis = axis

    def _to_sequences(self, x: torch.Tensor):
        b, h, l, c = x.shape
        if self.axis == "time":
            return x.reshape(b * h, l, c), (b, h, l, c)
        return x.transpose(1, 2).reshape(b * l, h, c), (b, h, l, c)

    def _from_sequences(self, y: torch.Tensor, shape):
        b, h, l, c = shape
        if self.axis == "time":
            return y.reshape(b, h, l, c)
        return y.reshape(b, l, h, c).transpose(1, 2)

    def mix(self, seq: torch.Tensor) -> torch.Tensor:  # (batch, length, C) -> same
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq, shape = self._to_sequences(x)
        return self._from_sequences(self.mix(seq), shape)


class ConvMixer(nn.Module):
    """Causal 1-D convolution with kernel ``kernel_size`` along one axis (left zero padding).

    Written as one matrix product to ``kernel_size * C`` channels followed by shifted sums (tap
    ``i`` is delayed by ``kernel_size - 1 - i`` steps), which on the short, narrow sequences of
    these models is several times faster than ``nn.Conv1d``.
    """

    def __init__(self, channels: int, axis: str, kernel_size: int = 2):
        super().__init__()
        if axis not in ("time", "feature"):
            raise ValueError(f"axis must be 'time' or 'feature', got {axis!r}")
        self.dim = 2 if axis == "time" else 1
        self.kernel_size, self.channels = kernel_size, channels
        self.linear = nn.Linear(channels, kernel_size * channels)

    def forward(self, x):
        taps = self.linear(x).split(self.channels, dim=-1)
        out = taps[-1]
        length = x.shape[self.dim]
        for i, tap in enumerate(taps[:-1]):
            delay = self.kernel_size - 1 - i
            if delay >= length:
                continue
            pad = [0, 0] * (x.dim() - self.dim - 1) + [delay, 0]
            out = out + F.pad(tap.narrow(self.dim, 0, length - delay), pad)
        return out


class GRUMixer(_AxisMixer):
    """A one-layer GRU run along one axis."""

    def __init__(self, channels: int, axis: str):
        super().__init__(axis)
        self.gru = nn.GRU(channels, channels, batch_first=True)

    def mix(self, seq):
        return self.gru(seq)[0]


class AttentionMixer(_AxisMixer):
    """One transformer encoder layer (self-attention + MLP) along one axis."""

    def __init__(self, channels: int, axis: str, num_heads: int = 1):
        super().__init__(axis)
        self.layer = nn.TransformerEncoderLayer(
            channels, num_heads, dim_feedforward=2 * channels, dropout=0.0, batch_first=True
        )

    def mix(self, seq):
        return self.layer(seq)


def make_mixer(kind: str, channels: int, axis: str, kernel_size: int = 2) -> nn.Module:
    """Builds a mixer by name.

    :param str kind: one of ``"identity"``, ``"conv"``, ``"gru"``, ``"attention"``.
    :param int channels: channel count ``C`` of the ``(B, H, L, C)`` tensors mixed.
    :param str axis: ``"time"`` (mix along L) or ``"feature"`` (mix along H).
    :param int kernel_size: kernel of the ``"conv"`` mixer.
    """
    if kind == "identity":
        return nn.Identity()
    if kind == "conv":
        return ConvMixer(channels, axis, kernel_size)
    if kind == "gru":
        return GRUMixer(channels, axis)
    if kind == "attention":
        return AttentionMixer(channels, axis)
    raise ValueError(f"mixer kind must be one of {MIXER_KINDS}, got {kind!r}")
