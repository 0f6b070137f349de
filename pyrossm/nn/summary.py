"""The encoder's future-summary module (DDSSM paper, Appendix H.4; Krishnan et al., 2017)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .gru_scan import gru_scan


def sinusoidal_embedding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style sinusoidal embedding.

    :param positions: any shape ``S`` of (float) positions.
    :param int dim: embedding width (even).
    :returns: ``S + (dim,)``.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device) / max(half, 1))
    angles = positions.unsqueeze(-1).float() * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class FutureSummary(nn.Module):
    """Backward GRU producing ``h_t`` that summarises ``x_{t:T}`` (and masks, covariates, time).

    At each step the observation (missing entries zero-filled), its observed-mask, the covariates
    and a sinusoidal embedding of the time index are concatenated, projected to
    ``hidden_dim`` and run through a multi-layer GRU from the last step back to the first, so that
    ``h_t`` depends only on steps ``>= t``.  The GRU's parameters are a :class:`torch.nn.GRU`'s;
    on a CPU its loop runs as :func:`~pyrossm.nn.gru_scan.gru_scan` (the same function,
    differentiated by hand: cheaper to train), elsewhere as the module (cuDNN's kernels).

    :param int obs_dim: ``D``.
    :param int covariate_dim: ``V``.
    :param int hidden_dim: ``C_summary``.
    :param int num_layers: GRU layers.
    :param int time_dim: width of the time embedding (0 disables it).
    """

    def __init__(self, obs_dim, covariate_dim=0, hidden_dim=16, num_layers=3, time_dim=8):
        super().__init__()
        self.time_dim = time_dim
        self.project = nn.Linear(2 * obs_dim + covariate_dim + time_dim, hidden_dim)
        self.gru = nn.GRU(hidden_dim, hidden_dim, num_layers=num_layers)  # time-major
        self.hidden_dim = hidden_dim

    def forward(self, x, mask, covariates):
        """
        :param x: ``(N, T, D)`` zero-filled observations.
        :param mask: ``(N, T, D)`` observed-mask.
        :param covariates: ``(N, T, V)``.
        :returns: ``h`` of shape ``(N, T, hidden_dim)`` (a view of a time-major tensor).
        """
        n, t = x.shape[:2]
        parts = [x, mask.to(x.dtype), covariates]
        if self.time_dim > 0:
            emb = sinusoidal_embedding(torch.arange(t, device=x.device), self.time_dim)
            parts.append(emb.expand(n, t, self.time_dim))
        inputs = self.project(torch.cat(parts, dim=-1).transpose(0, 1))  # time-major, (T, N, hidden)
        if inputs.device.type != "cpu":  # cuDNN's fused kernels
            return self.gru(inputs.flip(0))[0].flip(0).transpose(0, 1)
        return gru_scan(inputs, self.gru.all_weights, reverse=True).transpose(0, 1)
