"""The structured smoothing encoder ``q(z_t | z_{t-j:t-1}, x_{t:T}, u_{t-j:t})`` (Appendix H.4)."""

from __future__ import annotations

import torch
from torch import nn

from ..nn import SUMMARY_LAYERS, FutureSummary, check_architecture, gaussian_network


class SmoothingEncoder(nn.Module):
    """Future summary (backward GRU) + autoregressive Context Producer with a Gaussian head.

    The Context Producer's input has ``j + 1`` slots: the projected future summary ``h_t`` at
    slot 0 and the history ``z_{t-j:t-1}`` at slots ``1..j`` (zero-padded for ``t <= j``).  Side
    information per slot: a role mask (0 = summary, 1 = history), a padding mask (1 = real) and
    the covariates (``u_t`` for the summary slot, ``u_{t-j:t-1}`` for the history slots).

    :param int obs_dim: ``D``.  :param int latent_dim: ``M``.  :param int order: ``j``.
    :param int covariate_dim: ``V``.  :param int summary_dim: ``C_summary``.
    :param summary_layers: the future summary's GRU layers (``None``: the architecture's, 3 for
        ``"paper"`` as in Table 1, 1 for ``"compact"``).
    :param str activation: ``"silu"`` or ``"relu"`` (see :class:`~pyrossm.nn.ContextGaussian`).
    :param str architecture: ``"paper"`` (default, :class:`~pyrossm.nn.ContextGaussian`) or
        ``"compact"`` (:class:`~pyrossm.nn.MLPGaussian`, ``num_layers`` hidden layers of width
        ``hidden_dim``); see :mod:`pyrossm.nn.architecture`.
    """

    def __init__(
        self,
        obs_dim,
        latent_dim,
        order=1,
        covariate_dim=0,
        summary_dim=16,
        summary_layers=None,
        channels=16,
        num_layers=2,
        seq_dim=16,
        hidden_dim=16,
        time_mixer="conv",
        feature_mixer="conv",
        time_dim=8,
        activation="relu",
        architecture="paper",
    ):
        super().__init__()
        self.latent_dim, self.order, self.covariate_dim = latent_dim, order, covariate_dim
        if summary_layers is None:
            summary_layers = SUMMARY_LAYERS[check_architecture(architecture)]
        self.summary = FutureSummary(obs_dim, covariate_dim, summary_dim, summary_layers, time_dim)
        self.summary_dim = summary_dim
        self.net = gaussian_network(
            architecture,
            summary_dim + latent_dim,
            order + 1,
            latent_dim,
            side_dim=2 + covariate_dim,
            seq_dim=seq_dim,
            channels=channels,
            num_layers=num_layers,
            hidden_dim=hidden_dim,
            time_mixer=time_mixer,
            feature_mixer=feature_mixer,
            activation=activation,
        )

    def summarize(self, x, mask, covariates):
        """``(N, T, D), (N, T, D), (N, T, V) -> h (N, T, C_summary)``."""
        return self.summary(x, mask, covariates)

    def step(self, history, pad_mask, summary, covariates):
        """Parameters of ``q(z_t | ...)``.

        :param history: ``(B, j, M)``.  :param pad_mask: ``(B, j)``.
        :param summary: ``(B, C_summary)``.  :param covariates: ``(B, j+1, V)`` = ``u_{t-j:t}``.
        :returns: ``(loc, scale)``, each ``(B, M)``.
        """
        b, j, m = history.shape
        slot0 = torch.cat([summary, summary.new_zeros(b, m)], dim=-1).unsqueeze(1)
        slots = torch.cat([history.new_zeros(b, j, self.summary_dim), history], dim=-1)
        seq = torch.cat([slot0, slots], dim=1)  # (B, j+1, C+M)
        role = torch.cat([history.new_zeros(b, 1), history.new_ones(b, j)], dim=1)
        pad = torch.cat([history.new_ones(b, 1), pad_mask], dim=1)
        cov = torch.cat([covariates[:, -1:, :], covariates[:, :-1, :]], dim=1)
        side = torch.cat([role.unsqueeze(-1), pad.unsqueeze(-1), cov], dim=-1)
        return self.net(seq, side)
