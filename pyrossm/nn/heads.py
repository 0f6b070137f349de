"""Gaussian output heads and small MLPs."""

from __future__ import annotations

import torch
from torch import nn

from .activations import activation_module


def mlp(in_dim: int, hidden_dim: int, out_dim: int, num_hidden: int = 1, activation: str = "relu") -> nn.Sequential:
    """An MLP ``in_dim -> hidden_dim (x num_hidden) -> out_dim`` with ``activation`` (``"silu"`` or
    ``"relu"``) after each hidden layer."""
    layers, width = [], in_dim
    for _ in range(num_hidden):
        layers += [nn.Linear(width, hidden_dim), activation_module(activation)]
        width = hidden_dim
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class GaussianHead(nn.Module):
    """Maps a context vector to the mean and log-variance of a diagonal Gaussian.

    Two MLPs (as in Appendix H.3 of the DDSSM paper), one for the mean and one for the
    log-variance; the log-variance is softly bounded to ``[-max_log_var, max_log_var]`` with a
    scaled ``tanh`` so extreme values cannot produce infinite densities.

    :param int in_dim: context width.
    :param int out_dim: Gaussian dimension.
    :param int hidden_dim: MLP width.
    :param str activation: the MLPs' activation, ``"silu"`` or ``"relu"``.
    """

    def __init__(
        self, in_dim: int, out_dim: int, hidden_dim: int = 16, max_log_var: float = 12.0, activation: str = "relu"
    ):
        super().__init__()
        self.mean = mlp(in_dim, hidden_dim, out_dim, activation=activation)
        self.log_var = mlp(in_dim, hidden_dim, out_dim, activation=activation)
        self.max_log_var = max_log_var

    def forward(self, context: torch.Tensor):
        """``(B, in_dim)`` -> ``(mean, scale)``, each ``(B, out_dim)``."""
        log_var = self.max_log_var * torch.tanh(self.log_var(context) / self.max_log_var)
        return self.mean(context), torch.exp(0.5 * log_var)
