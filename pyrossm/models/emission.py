"""Emission densities ``p(x_t | z_{t-j+1:t}, u_{t-j+1:t})`` (DDSSM paper, Appendix H.3)."""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn

from ..distributions.windows import flatten_batch
from ..nn import gaussian_network


class Emission(nn.Module):
    """Base class of elementwise emissions: subclass it to build your own (Student-t, Poisson, ...).

    Calling an emission with ``window`` ``(..., j, M)`` (the latents ``z_{t-j+1:t}``, left-padded
    with zeros for ``t < j``), ``covariates`` ``(..., j, V)`` and ``pad_mask`` ``(..., j)`` (1 =
    real, 0 = padding) returns a distribution with ``batch_shape (..., D)`` and
    ``event_shape ()`` -- elementwise, so the model can mask missing entries one by one.
    Subclasses implement :meth:`parameters_of` on flat inputs and :meth:`distribution`.
    """

    obs_dim: int

    def parameters_of(self, window, covariates, pad_mask):
        """``(B, j, M), (B, j, V), (B, j) -> dict`` of parameter tensors, each ``(B, D)``."""
        raise NotImplementedError

    def distribution(self, **params):
        """Builds the elementwise distribution from parameters of shape ``(..., D)``."""
        raise NotImplementedError

    def forward(self, window, covariates, pad_mask):
        batch = torch.broadcast_shapes(window.shape[:-2], covariates.shape[:-2], pad_mask.shape[:-1])
        w, c, p = flatten_batch(window, covariates, pad_mask, batch_shape=batch, keep_dims=(2, 2, 1))
        params = self.parameters_of(w, c, p)
        return self.distribution(**{k: v.reshape(batch + v.shape[-1:]) for k, v in params.items()})


class GaussianEmission(Emission):
    r"""Diagonal-Gaussian emission from the last ``j`` latent states.

    ``x_t ~ N(mu(z_{t-j+1:t}, u_{t-j+1:t}), diag(sigma^2(...)))``: a Context Producer over the
    window (covariates and the padding mask as side information) and a Gaussian head.

    :param int obs_dim: ``D``.  :param int latent_dim: ``M``.  :param int order: ``j``.
    :param int covariate_dim: ``V``.
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
        channels=16,
        num_layers=2,
        seq_dim=16,
        hidden_dim=16,
        time_mixer="conv",
        feature_mixer="conv",
        activation="relu",
        architecture="paper",
    ):
        super().__init__()
        self.obs_dim, self.latent_dim, self.order = obs_dim, latent_dim, order
        self.covariate_dim = covariate_dim
        self.net = gaussian_network(
            architecture,
            latent_dim,
            order,
            obs_dim,
            side_dim=covariate_dim + 1,
            seq_dim=seq_dim,
            channels=channels,
            num_layers=num_layers,
            hidden_dim=hidden_dim,
            time_mixer=time_mixer,
            feature_mixer=feature_mixer,
            activation=activation,
        )

    def parameters_of(self, window, covariates, pad_mask):
        loc, scale = self.net(window, torch.cat([covariates, pad_mask.unsqueeze(-1)], dim=-1))
        return {"loc": loc, "scale": scale}

    def distribution(self, loc, scale):
        return dist.Normal(loc, scale)
