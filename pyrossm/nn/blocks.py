"""CSDI-style residual blocks and the Context Producer (DDSSM paper, Appendix H.1-H.2).

Tensors inside the stack are channel-last: ``(B, H, L, C)`` with ``H`` the feature (spatial)
positions, ``L`` the sequence positions and ``C`` the hidden channels.  Side information
(covariates, time embeddings, masks) varies over ``L`` and is shared across ``H``: it is given
as ``(B, L, E)``.  The same :class:`ResidualStack` serves the diffusion denoiser (with a
diffusion-step embedding) and every Context Producer (encoder, emission, transition, init).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .activations import activation_function
from .mixers import make_mixer


class ResidualBlock(nn.Module):
    """One gated residual block (Tashiro et al., 2021) with pluggable mixers.

    ``y = x (+ diffusion embedding)``, time-mix, feature-mix, a 1x1 projection to ``2C`` plus the
    projected side information, a ``sigmoid * tanh`` gate, and a 1x1 projection split into a
    residual and a skip output.

    :param int channels: hidden channels ``C``.
    :param int side_dim: side-information width ``E`` (0 for none).
    :param str time_mixer: mixer kind along ``L`` (see :func:`~pyrossm.nn.mixers.make_mixer`).
    :param str feature_mixer: mixer kind along ``H``.
    :param int diffusion_dim: width of the diffusion-step embedding (0 for none).
    """

    def __init__(self, channels, side_dim=0, time_mixer="conv", feature_mixer="conv", diffusion_dim=0, kernel_size=2):
        super().__init__()
        self.time_mixer = make_mixer(time_mixer, channels, "time", kernel_size)
        self.feature_mixer = make_mixer(feature_mixer, channels, "feature", kernel_size)
        self.mid = nn.Linear(channels, 2 * channels)
        self.out = nn.Linear(channels, 2 * channels)
        self.side = nn.Linear(side_dim, 2 * channels) if side_dim > 0 else None
        self.diffusion = nn.Linear(diffusion_dim, channels) if diffusion_dim > 0 else None

    def forward(self, x, side=None, diffusion_emb=None, diffusion_index=None):
        """
        :param x: ``(B, H, L, C)``.
        :param side: ``(B, L, E)`` or None.
        :param diffusion_emb: ``(B, E_diff)``, or ``(U, E_diff)`` embeddings of the ``U`` distinct
            noise levels when ``diffusion_index`` ``(B,)`` says which row each example uses.
        :returns: ``(residual_out, skip)``, both ``(B, H, L, C)``.
        """
        y = x
        if self.diffusion is not None and diffusion_emb is not None:
            proj = self.diffusion(diffusion_emb)
            if diffusion_index is not None:
                proj = proj[diffusion_index]
            y = y + proj[:, None, None, :]
        y = self.feature_mixer(self.time_mixer(y))
        y = self.mid(y)
        if self.side is not None and side is not None:
            y = y + self.side(side)[:, None, :, :]
        gate, filt = y.chunk(2, dim=-1)
        y = self.out(torch.sigmoid(gate) * torch.tanh(filt))
        residual, skip = y.chunk(2, dim=-1)
        return (x + residual) / math.sqrt(2.0), skip


class ResidualStack(nn.Module):
    """``num_layers`` residual blocks; returns the normalised sum of their skip outputs.

    :param int channels: hidden channels ``C``.
    :param int num_layers: number of blocks.
    Other arguments as for :class:`ResidualBlock`.
    """

    def __init__(
        self, channels, num_layers, side_dim=0, time_mixer="conv", feature_mixer="conv", diffusion_dim=0, kernel_size=2
    ):
        super().__init__()
        self.blocks = nn.ModuleList(
            ResidualBlock(channels, side_dim, time_mixer, feature_mixer, diffusion_dim, kernel_size)
            for _ in range(num_layers)
        )

    def forward(self, x, side=None, diffusion_emb=None, diffusion_index=None):
        """``(B, H, L, C)`` -> ``(B, H, L, C)`` (sum of skips / sqrt(num_layers))."""
        total = 0.0
        for block in self.blocks:
            x, skip = block(x, side, diffusion_emb, diffusion_index)
            total = total + skip
        return total / math.sqrt(len(self.blocks))


class ContextProducer(nn.Module):
    """Summarises a short multivariate sequence into one context vector (Appendix H.2).

    The input ``(B, H, L)`` is treated as one channel, lifted to ``C`` channels by a 1x1
    projection and the activation, passed through a :class:`ResidualStack`, projected once more, and pooled
    over ``L`` by a grouped convolution whose kernel spans the whole sequence (one kernel per
    ``(feature, channel)`` pair), giving a vector of size ``C * H``.

    :param int seq_dim: feature positions ``H`` of the input.
    :param int seq_len: sequence length ``L`` (fixed; the pooling kernel spans it).
    :param int side_dim: side-information width ``E`` (0 for none).
    :param int channels: hidden channels ``C``.
    :param int num_layers: residual blocks.
    :param str time_mixer: mixer along ``L``.
    :param str feature_mixer: mixer along ``H``.
    :param str activation: after the lift and the last projection: ``"silu"`` or ``"relu"``.
    """

    def __init__(
        self,
        seq_dim,
        seq_len,
        side_dim=0,
        channels=16,
        num_layers=2,
        time_mixer="conv",
        feature_mixer="conv",
        kernel_size=2,
        activation="relu",
    ):
        super().__init__()
        self.activation = activation
        self._act = activation_function(activation)
        self.seq_dim, self.seq_len, self.channels = seq_dim, seq_len, channels
        self.lift = nn.Linear(1, channels)
        self.stack = ResidualStack(channels, num_layers, side_dim, time_mixer, feature_mixer, 0, kernel_size)
        self.post = nn.Linear(channels, channels)
        self.pool_weight = nn.Parameter(torch.randn(seq_dim, seq_len, channels) / math.sqrt(seq_len))
        self.pool_bias = nn.Parameter(torch.zeros(seq_dim, channels))

    @property
    def output_dim(self) -> int:
        return self.seq_dim * self.channels

    def forward(self, seq, side=None):
        """
        :param seq: ``(B, H, L)``.
        :param side: ``(B, L, E)`` or None.
        :returns: ``(B, H * C)``.
        """
        x = self._act(self.lift(seq.unsqueeze(-1)))
        x = self._act(self.post(self.stack(x, side)))
        pooled = torch.einsum("bhlc,hlc->bhc", x, self.pool_weight) + self.pool_bias
        return pooled.reshape(seq.shape[0], -1)
