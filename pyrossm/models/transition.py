"""Gaussian transition density ``p(z_t | z_{t-j:t-1}, u_{t-j:t})`` (DDSSM paper, Appendix H.5)."""

from __future__ import annotations

import contextlib

import pyro.distributions as dist
import torch
from torch import nn

from ..nn import denoiser_network, gaussian_network


class GaussianTransition(nn.Module):
    r"""Diagonal-Gaussian transition, the Deep Kalman Filter's dynamics.

    ``z_t ~ N(mu(z_{t-j:t-1}, u_{t-j:t}), diag(sigma^2(z_{t-j:t-1}, u_{t-j:t})))``.  A Context
    Producer over the ``j`` history states (the covariates ``u_{t-j:t-1}`` as side information)
    is pooled; the current covariate ``u_t`` joins the pooled context before the Gaussian head.

    Interface shared by every transition (see :mod:`pyrossm.distributions.markov`): calling the
    module with ``history`` ``(B, j, M)`` and ``covariates`` ``(B, j+1, V)`` returns a
    distribution with ``batch_shape (B,)`` and ``event_shape (M,)``.

    :param int latent_dim: ``M``.
    :param int order: Markov order ``j``.
    :param int covariate_dim: ``V``.
    :param str activation: ``"silu"`` or ``"relu"`` (see :class:`~pyrossm.nn.ContextGaussian`).
    :param str architecture: ``"paper"`` (default, :class:`~pyrossm.nn.ContextGaussian`) or
        ``"compact"`` (:class:`~pyrossm.nn.MLPGaussian`, ``num_layers`` hidden layers of width
        ``hidden_dim``); see :mod:`pyrossm.nn.architecture`.
    """

    def __init__(
        self,
        latent_dim,
        order=1,
        covariate_dim=0,
        channels=16,
        num_layers=3,
        seq_dim=16,
        hidden_dim=16,
        time_mixer="identity",
        feature_mixer="conv",
        activation="relu",
        architecture="paper",
    ):
        super().__init__()
        self.latent_dim, self.order, self.covariate_dim = latent_dim, order, covariate_dim
        self.net = gaussian_network(
            architecture,
            latent_dim,
            order,
            latent_dim,
            side_dim=covariate_dim,
            extra_dim=covariate_dim,
            seq_dim=seq_dim,
            channels=channels,
            num_layers=num_layers,
            hidden_dim=hidden_dim,
            time_mixer=time_mixer,
            feature_mixer=feature_mixer,
            activation=activation,
        )

    def forward(self, history: torch.Tensor, covariates: torch.Tensor):
        """``(B, j, M), (B, j+1, V) -> Normal`` with batch ``(B,)``, event ``(M,)``."""
        if self.covariate_dim:
            loc, scale = self.net(history, covariates[:, :-1, :], covariates[:, -1, :])
        else:
            loc, scale = self.net(history)
        return dist.Normal(loc, scale).to_event(1)


class LinearShift(nn.Module):
    r"""A learned linear mean for the diffusion transition, ``m(c_t) = A vec(z_{t-j:t-1}) + B vec(u_{t-j:t}) + b``.

    The diffusion then models ``z_t - m(c_t)`` (see
    :class:`~pyrossm.distributions.DiffusionTransition`'s ``shift``): the linear part of the
    dynamics -- for the bimodal walk ``0.9 z_{t-1}`` -- is carried exactly, and the denoiser is
    left with what is not linear (there, a context-free jump of +-4).  ``A``, ``B`` and ``b`` start
    at zero, so an untrained model is the paper's parameterisation, and are trained by the same
    bound.

    :param int latent_dim: ``M``.  :param int order: ``j``.  :param int covariate_dim: ``V``.
    """

    def __init__(self, latent_dim, order=1, covariate_dim=0):
        super().__init__()
        self.linear = nn.Linear(order * latent_dim + (order + 1) * covariate_dim, latent_dim)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, history, covariates):
        """``history (B, j, M)``, ``covariates (B, j+1, V)`` -> ``(B, M)``."""
        inputs = torch.cat([history.flatten(-2), covariates.flatten(-2)], dim=-1)
        return self.linear(inputs)


class DiffusionDynamics(nn.Module):
    """Diffusion transition module: calling it returns a :class:`~pyrossm.distributions.DiffusionTransition`.

    Holds the denoiser network ``F`` (default :class:`~pyrossm.nn.CSDIDenoiser`) and the noise
    schedule; follows the transition interface (``history (B, j, M)``, ``covariates (B, j+1, V)``
    -> distribution with batch ``(B,)``, event ``(M,)``), so :class:`StateSpaceModel` evaluates
    every transition of a trajectory -- all windows, all ``S_k`` noise draws -- in one denoiser
    call.  Defaults follow Table 2 of the DDSSM paper (K = 128 linear, 16 channels, 3 layers,
    conv(k=2) mixers, step embedding 64 -> 128).

    :param int latent_dim: ``M``.  :param int order: ``j``.  :param int covariate_dim: ``V``.
    :param int num_diffusion_steps: ``K``.
    :param str schedule: ``"linear"``, ``"cosine"`` or ``"karras"`` (see
        :class:`~pyrossm.diffusion.NoiseSchedule`).
    :param int num_noise_draws: ``S_k`` (Table 3: 1-8).
    :param str sampler: ``"ddpm"`` (ancestral), ``"ddim"`` or ``"heun"`` (deterministic); ``num_sampling_steps``
        evenly spaced reverse steps of the ``K`` (``None``: all; see
        :class:`~pyrossm.distributions.DiffusionTransition`).
    :param network: a custom denoiser (same call signature as :class:`CSDIDenoiser`).
    :param beta_start: the first ``beta_1`` of the linear schedule (default ``0.1 / K``).  It sets
        the finest noise level ``sigma_1 ~ sqrt(beta_1)`` and the width ``sqrt(beta_1)`` of the
        bound's last (Gaussian) reverse step, so the bound cannot reward a transition much
        sharper than that.
    :param beta_end: the last ``beta_K`` of the linear schedule (default ``min(20 / K, 0.999)``,
        DDPM's range scaled to ``K``; a smaller value stops the noise levels at a smaller
        ``sigma_K``, so fewer training draws land where the denoiser only returns the mean).
    :param str activation: the default denoiser's activation, ``"silu"`` or ``"relu"`` (see
        :class:`~pyrossm.nn.CSDIDenoiser`).
    :param str architecture: the default denoiser: ``"paper"`` (:class:`~pyrossm.nn.CSDIDenoiser`)
        or ``"compact"`` (:class:`~pyrossm.nn.MLPDenoiser`, ``num_layers`` hidden layers of width
        ``channels``, the same preconditioning around it); see :mod:`pyrossm.nn.architecture`.
    :param residual: what the diffusion models: ``False`` ``z_t`` itself (the paper's), ``True``
        the increment ``z_t - z_{t-1}`` (see :class:`~pyrossm.distributions.DiffusionTransition`),
        ``"linear"`` the departure from a learned linear mean (:class:`LinearShift`).
    :param str level_sampling: how the training bound draws its noise levels: ``"uniform"``
        (the paper's) or ``"loss-aware"`` (:class:`~pyrossm.diffusion.LossAwareLevels`: the same
        bound, drawn where its terms vary most, so its estimate is less noisy).
    """

    def __init__(
        self,
        latent_dim,
        order=1,
        covariate_dim=0,
        num_diffusion_steps=128,
        schedule="linear",
        num_noise_draws=2,
        channels=16,
        num_layers=3,
        time_mixer="conv",
        feature_mixer="conv",
        sampler="ddpm",
        num_sampling_steps=None,
        network=None,
        residual=False,
        beta_end=None,
        beta_start=None,
        activation="relu",
        architecture="paper",
        level_sampling="uniform",
    ):
        super().__init__()
        from ..diffusion import LossAwareLevels, NoiseSchedule, check_level_sampling

        self.latent_dim, self.order, self.covariate_dim = latent_dim, order, covariate_dim
        self.schedule = NoiseSchedule(num_diffusion_steps, schedule, beta_start=beta_start, beta_end=beta_end)
        self.network = (
            network
            if network is not None
            else denoiser_network(
                architecture,
                latent_dim,
                order,
                covariate_dim,
                channels,
                num_layers,
                time_mixer,
                feature_mixer,
                activation,
            )
        )
        from ..distributions.diffusion import check_diffusion_arguments

        check_diffusion_arguments(self.schedule, num_noise_draws, sampler, num_sampling_steps)
        self.num_noise_draws = num_noise_draws
        self.sampler, self.num_sampling_steps = sampler, num_sampling_steps
        if not (isinstance(residual, bool) or residual == "linear"):
            raise ValueError(f"residual must be one of False, True or 'linear', got {residual!r}")
        self.residual = residual
        self.shift = LinearShift(latent_dim, order, covariate_dim) if residual == "linear" else None
        self.level_sampling = check_level_sampling(level_sampling)
        self.levels = LossAwareLevels(self.schedule.num_steps) if level_sampling == "loss-aware" else None

    @contextlib.contextmanager
    def sampling(self, sampler, num_sampling_steps=None):
        """Temporarily switches the sampler used by ``sample()`` (e.g. for forecasts)::

            with result.model.transition.sampling("ddim", num_sampling_steps=16):
                fc = result.forecast(context, horizon=8)

        The training bound does not depend on the sampler, so a model trained with one can be
        sampled with any; the saved configuration keeps the original sampler.

        :param str sampler: ``"ddpm"``, ``"ddim"`` or ``"heun"``.  :param num_sampling_steps: the reverse steps
            used (``None``: all ``K``).
        """
        from ..distributions.diffusion import check_diffusion_arguments

        check_diffusion_arguments(self.schedule, self.num_noise_draws, sampler, num_sampling_steps)
        saved = self.sampler, self.num_sampling_steps
        self.sampler, self.num_sampling_steps = sampler, num_sampling_steps
        try:
            yield self
        finally:
            self.sampler, self.num_sampling_steps = saved

    def forward(self, history, covariates):
        from ..distributions import DiffusionTransition

        return DiffusionTransition(
            self.network,
            self.schedule,
            history,
            covariates,
            self.num_noise_draws,
            self.sampler,
            self.num_sampling_steps,
            residual=self.residual is True,
            shift=self.shift,
            levels=self.levels,
        )
