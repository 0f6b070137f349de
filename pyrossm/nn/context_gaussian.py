"""A Context Producer followed by a Gaussian head: the network shape shared by the encoder,
emission, Gaussian transition and VHP modules of the DDSSM paper (Appendix H.3-H.6)."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ContextProducer
from .heads import GaussianHead


class ContextGaussian(nn.Module):
    """``(sequence, side, extra) -> (mean, scale)`` of a diagonal Gaussian.

    Each step of the input sequence is linearly projected from ``in_dim`` to the Context
    Producer's spatial width ``seq_dim``; the pooled context (size ``channels * seq_dim``),
    concatenated with an optional per-example ``extra`` vector, feeds a :class:`GaussianHead`.
    A linear skip path from the flattened raw inputs (sequence and extra) is added to the mean,
    so the network contains the linear-Gaussian model as a special case.  Without it the deep
    path starts with a near-zero sensitivity to its inputs and the DKF collapses to i.i.d.
    emissions on linear-Gaussian data (found in testing; cf. the residual static-covariate path
    of the DDSSM paper's decoder, Appendix H.3).

    :param int in_dim: width of each input step.
    :param int seq_len: sequence length ``L``.
    :param int out_dim: Gaussian dimension.
    :param int side_dim: width ``E`` of the per-step side information (0 for none).
    :param int extra_dim: width of the extra vector (0 for none).
    :param int seq_dim: spatial width ``H_seq``.
    :param int channels: hidden channels ``C``.
    :param int num_layers: residual blocks.
    :param int hidden_dim: width of the head's MLPs.
    :param str time_mixer: mixer along the sequence.
    :param str feature_mixer: mixer along the spatial axis.
    :param str activation: ``"relu"`` (default) or ``"silu"``, in the producer and the head.
    """

    def __init__(
        self,
        in_dim,
        seq_len,
        out_dim,
        side_dim=0,
        extra_dim=0,
        seq_dim=16,
        channels=16,
        num_layers=2,
        hidden_dim=16,
        time_mixer="conv",
        feature_mixer="conv",
        activation="relu",
    ):
        super().__init__()
        self.project = nn.Linear(in_dim, seq_dim)
        self.context = ContextProducer(
            seq_dim, seq_len, side_dim, channels, num_layers, time_mixer, feature_mixer, activation=activation
        )
        self.head = GaussianHead(self.context.output_dim + extra_dim, out_dim, hidden_dim, activation=activation)
        self.skip = nn.Linear(seq_len * in_dim + extra_dim, out_dim, bias=False)

    def forward(self, seq, side=None, extra=None):
        """
        :param seq: ``(B, L, in_dim)``.
        :param side: ``(B, L, E)`` or None.
        :param extra: ``(B, extra_dim)`` or None.
        :returns: ``(mean, scale)``, each ``(B, out_dim)``.
        """
        context = self.context(self.project(seq).transpose(1, 2), side)
        raw = seq.reshape(seq.shape[0], -1)
        if extra is not None:
            context = torch.cat([context, extra], dim=-1)
            raw = torch.cat([raw, extra], dim=-1)
        mean, scale = self.head(context)
        return mean + self.skip(raw), scale
