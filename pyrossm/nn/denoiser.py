"""The conditional denoiser network ``F`` of a diffusion transition (DDSSM paper, Appendix H.1)."""

from __future__ import annotations

import torch
from torch import nn

from .activations import activation_function
from .blocks import ResidualStack
from .summary import sinusoidal_embedding


class DiffusionEmbedding(nn.Module):
    """Sinusoidal embedding of the noise level ``c_noise`` followed by a two-layer SiLU MLP.

    :param int dim: sinusoidal width (Table 2: 64).  :param int out_dim: output width (128).
    """

    def __init__(self, dim: int = 64, out_dim: int = 128, scale: float = 100.0):
        super().__init__()
        self.dim, self.scale = dim, scale
        self.mlp = nn.Sequential(nn.Linear(dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim), nn.SiLU())

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        """``(B,) -> (B, out_dim)``; ``c_noise`` is scaled by ``scale`` before the sinusoids."""
        return self.mlp(sinusoidal_embedding(c_noise * self.scale, self.dim))


class CSDIDenoiser(nn.Module):
    r"""CSDI-style denoiser over ``[z_{t-j:t-1}, z_t^k]`` with output at the target step only.

    Input tensor ``Z`` of shape ``(M, j+1)``: the clean history in the first ``j`` positions and
    the (preconditioned) noisy target in the last, split into two channels by the history mask,
    lifted to ``C`` channels by a 1x1 projection and the activation, passed through ``num_layers`` gated
    residual blocks (time mixer along ``j+1``, feature mixer along ``M``, the diffusion-step
    embedding and side information = history mask and covariates ``u_{t-j:t}``), and projected
    back to one channel; only the target position is returned.  The output projection starts at
    zero (as in CSDI), so an untrained denoiser returns ``c_skip z^``.

    :param int latent_dim: ``M``.  :param int order: ``j``.  :param int covariate_dim: ``V``.
    :param int channels: ``C`` (Table 2: 16).  :param int num_layers: residual blocks (3).
    :param str time_mixer: ``"conv"`` (k=2), ``"gru"``, ``"attention"`` or ``"identity"``.
    :param str feature_mixer: mixer along the latent dimension.
    :param str activation: the activation after the input and before the output projection:
        ``"relu"`` (default, CSDI's) or ``"silu"``.  With ReLU all ``C`` units before the output
        projection can die for every input during a fit, and then the denoiser returns
        ``c_skip z^`` plus a constant, whose samples are unimodal, and no gradient reaches the
        network again: measured in a bimodal DDSSM fit (``docs/experiments/2026-11-30-dead-units.md``).
        SiLU's gradient vanishes only far below zero, so such units can recover.
    """

    def __init__(
        self,
        latent_dim,
        order=1,
        covariate_dim=0,
        channels=16,
        num_layers=3,
        time_mixer="conv",
        feature_mixer="conv",
        embedding_dim=64,
        diffusion_dim=128,
        activation="relu",
    ):
        super().__init__()
        self.activation = activation
        self._act = activation_function(activation)
        self.latent_dim, self.order, self.covariate_dim = latent_dim, order, covariate_dim
        self.input = nn.Linear(2, channels)
        self.embedding = DiffusionEmbedding(embedding_dim, diffusion_dim)
        self.stack = ResidualStack(channels, num_layers, 1 + covariate_dim, time_mixer, feature_mixer, diffusion_dim)
        self.post = nn.Linear(channels, channels)
        self.output = nn.Linear(channels, 1)
        self.reset_parameters(children=False)

    def reset_parameters(self, children=True):
        """Draws fresh parameters: every layer's own initialisation (when ``children``), then
        CSDI's -- Kaiming-normal 1x1 projections and a zero output projection."""
        if children:
            for module in self.modules():
                if module is not self and hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        # CSDI's initialisation (Kaiming-normal 1x1 projections): with PyTorch's default Linear
        # init the stack's output hardly varies with its input (per-unit std ~0.01 against a mean
        # ~0.3), so under Adam every ReLU before the output projection died at once, for all
        # inputs, within ~100 steps.  This init made that rarer, not impossible (hence the SiLU option).
        projections = [self.input, self.post]
        for block in self.stack.blocks:
            projections += [layer for layer in (block.mid, block.out, block.side) if layer is not None]
        for layer in projections:
            nn.init.kaiming_normal_(layer.weight)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, x_in, c_noise, context):
        """
        :param x_in: ``(B, M)`` preconditioned noisy target ``c_in z^``.
        :param c_noise: ``(B,)``.
        :param context: ``(history (B, j, M), covariates (B, j+1, V))``.
        :returns: ``(B, M)``.
        """
        history, covariates = context
        b, j, m = history.shape
        hist = torch.cat([history, history.new_zeros(b, 1, m)], dim=1)  # (B, j+1, M)
        noisy = torch.cat([history.new_zeros(b, j, m), x_in.unsqueeze(1)], dim=1)
        z = torch.stack([hist, noisy], dim=-1).transpose(1, 2)  # (B, M, j+1, 2)
        h = self._act(self.input(z))
        mask = torch.cat([history.new_ones(b, j, 1), history.new_zeros(b, 1, 1)], dim=1)
        side = torch.cat([mask, covariates], dim=-1)  # (B, j+1, 1+V)
        # the noise level takes at most K distinct values: embed each once
        levels, index = torch.unique(c_noise, return_inverse=True)
        h = self.stack(h, side, self.embedding(levels), index)
        out = self.output(self._act(self.post(h)))  # (B, M, j+1, 1)
        return out[:, :, -1, 0]
