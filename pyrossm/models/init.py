"""Initial-state priors ``p(z_{1:j} | u_{1:j})``: standard normal and the variational hierarchical prior."""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import nn

from ..distributions import MarkovChain
from ..nn import gaussian_network
from .transition import GaussianTransition


class StandardNormalInit(nn.Module):
    """``z_{1:j} ~ N(0, I)`` (Krishnan et al., 2017).  No auxiliary latents.

    Interface shared by every init: ``auxiliary`` (bool); ``prior(covariates, aux)`` returns a
    distribution with event shape ``(j, M)`` and batch shape ``covariates.shape[:-2]``.
    """

    auxiliary = False

    def __init__(self, latent_dim, order=1):
        super().__init__()
        self.latent_dim, self.order = latent_dim, order

    def prior(self, covariates, aux=None):
        """:param covariates: ``(..., j, V)``.  :returns: ``N(0, I)`` with event ``(j, M)``."""
        zeros = covariates.new_zeros(covariates.shape[:-2] + (self.order, self.latent_dim))
        return dist.Normal(zeros, 1.0).to_event(2)


class VHPInit(nn.Module):
    r"""Variational hierarchical prior over the first ``j`` states (Appendix G, H.6; Klushyn et al. 2021).

    Generative side: ``z_{1-j:0} ~ N(0, I)`` (auxiliary latents), then
    ``z_t ~ p_eta(z_t | z_{t-j:t-1}, u)`` for ``t = 1..j`` (a Gaussian conditional with the
    same architecture as the Gaussian transition).  Inference side:
    ``q_Phi(z_{1-j:0} | z_{1:j})``, a diagonal Gaussian from a Context Producer over ``z_{1:j}``.
    In the model/guide pair the auxiliary latents are the sample site ``"z_aux"``, so Pyro's ELBO
    contains exactly Eq. (45): ``E[log p_eta(z_{1:j} | z_aux) + log p(z_aux) - log q_Phi(z_aux | z_{1:j})]``.

    :param int latent_dim: ``M``.  :param int order: ``j``.  :param int covariate_dim: ``V``.
    :param str activation: ``"silu"`` or ``"relu"`` (see :class:`~pyrossm.nn.ContextGaussian`).
    :param str architecture: ``"paper"`` (default, :class:`~pyrossm.nn.ContextGaussian`) or
        ``"compact"`` (:class:`~pyrossm.nn.MLPGaussian`, ``num_layers`` hidden layers of width
        ``hidden_dim``); see :mod:`pyrossm.nn.architecture`.
    """

    auxiliary = True

    def __init__(
        self,
        latent_dim,
        order=1,
        covariate_dim=0,
        channels=16,
        num_layers=2,
        seq_dim=16,
        hidden_dim=16,
        feature_mixer="conv",
        activation="relu",
        architecture="paper",
    ):
        super().__init__()
        self.latent_dim, self.order, self.covariate_dim = latent_dim, order, covariate_dim
        self.conditional = GaussianTransition(
            latent_dim,
            order,
            covariate_dim,
            channels,
            num_layers,
            seq_dim,
            hidden_dim,
            "identity",
            feature_mixer,
            activation=activation,
            architecture=architecture,
        )
        self.posterior_net = gaussian_network(
            architecture,
            latent_dim,
            order,
            order * latent_dim,
            side_dim=covariate_dim,
            seq_dim=seq_dim,
            channels=channels,
            num_layers=num_layers,
            hidden_dim=hidden_dim,
            time_mixer="identity",
            feature_mixer=feature_mixer,
            activation=activation,
        )

    def aux_prior(self, like: torch.Tensor):
        """``N(0, I)`` over ``z_{1-j:0}``, event ``(j, M)``, batch ``like.shape[:-2]``."""
        zeros = like.new_zeros(like.shape[:-2] + (self.order, self.latent_dim))
        return dist.Normal(zeros, 1.0).to_event(2)

    def aux_posterior(self, z_init, covariates):
        """``q_Phi(z_{1-j:0} | z_{1:j})``.

        :param z_init: ``(..., j, M)``.  :param covariates: ``(..., j, V)``.
        :returns: Normal with event ``(j, M)`` and batch ``z_init.shape[:-2]``.
        """
        batch = z_init.shape[:-2]
        flat = z_init.reshape((-1,) + z_init.shape[-2:])
        side = covariates.expand(batch + covariates.shape[-2:]).reshape(flat.shape[0], self.order, -1)
        loc, scale = self.posterior_net(flat, side if self.covariate_dim else None)
        shape = batch + (self.order, self.latent_dim)
        return dist.Normal(loc.reshape(shape), scale.reshape(shape)).to_event(2)

    def prior(self, covariates, aux):
        """``p_eta(z_{1:j} | z_aux, u_{1:j})`` as a :class:`MarkovChain` (aux covariates are 0).

        :param covariates: ``(..., j, V)``.  :param aux: ``(..., j, M)``.
        """
        pad = covariates.new_zeros(covariates.shape[:-2] + (self.order, covariates.shape[-1]))
        return MarkovChain(self.conditional, aux, torch.cat([pad, covariates], dim=-2), self.order)
