"""The Diffusion-Driven State-Space Model preset (DDSSM paper, Sec. 2, App. F-I)."""

from __future__ import annotations

from ..nn import check_architecture
from .dkf import PresetModel
from .ssm import check_order_and_latent_dim
from .transition import DiffusionDynamics

#: the noise levels Heun's sampler visits by default (22 denoiser calls): on the six systems of
#: ``benchmarks/defaults.py`` as good as DDPM through all 128 steps
HEUN_LEVELS = 12


class DDSSM(PresetModel):
    """DDSSM: a :class:`StateSpaceModel` whose transition density is a conditional diffusion model.

    Same encoder, emission and VHP as :class:`~pyrossm.models.DKF` (Table 1); the Gaussian
    transition is replaced by :class:`~pyrossm.models.transition.DiffusionDynamics` (Table 2).
    Trained end to end by one ELBO: the ``"z"`` site's prior log-density includes each
    transition's diffusion bound (Eq. 29 / 52, see
    :class:`~pyrossm.distributions.DiffusionTransition`).

    :param int obs_dim: ``D``.  :param int latent_dim: ``M`` (default 4: on the six systems of
        ``benchmarks/defaults.py`` a 4-D latent halved the 1-step JSD of the 2-D latent system
        against a 2-D one, 0.194 -> 0.106, and moved the others by at most 14 %).
    :param int order: ``j``, the transition's Markov order (default 2: on the six systems of
        ``benchmarks/defaults.py`` a second-order transition lowered the sum of the 1-step JSD
        ratios to the sampling floor from 49.8 to 33.5 at seed 0 and from 56.1 to 38.9 at seed 1,
        and was no worse on any system; the paper's experiments use ``j = 1``).  Every series
        needs at least ``j`` observed steps to be fitted, and a forecast's context more than ``j``.
    :param int covariate_dim: ``V``.  :param str init: ``"vhp"`` or ``"normal"``.
    :param int num_diffusion_steps: ``K``.  Training costs the same for any ``K`` (each noise
        draw picks one step), but the bound is tighter with more steps, and much more so for sharp
        transitions than for broad ones: with the exact denoiser, a bimodal transition 0.05 data
        units wide has a gap of about 1 nat per latent dimension at ``K = 32``, 0.19 at 128 and 0.09
        at 512, against at most 0.13 for one 0.6 wide (``docs/experiments/scripts/bound_gap.py``).  A small
        ``K`` therefore tilts the ELBO towards broad transitions; forecasts can keep their cost
        with ``num_sampling_steps``.
    :param str schedule: ``"linear"`` (the paper's), ``"cosine"`` or ``"karras"``.
    :param int num_noise_draws: ``S_k``.
    :param str sampler: how forecasts and samples run the reverse diffusion: ``"heun"`` (default:
        the probability-flow ODE by Heun's second-order method, deterministic given the first
        noise), ``"ddpm"`` (ancestral, the paper's) or ``"ddim"`` (Euler steps of the ODE).  On
        the six systems of ``benchmarks/defaults.py`` Heun on 12 levels (22 denoiser calls) scored
        the same 1-step JSD as DDPM through all 128 steps, at a third to a quarter of the forecast
        time; DDIM on 16 steps scored 3-26 % worse.  The bound, hence training, does not depend on
        the sampler.
    :param num_sampling_steps: the noise levels the sampler visits, evenly spaced among the ``K``
        (``"ddpm"`` draws ancestrally on them, ``"ddim"`` and ``"heun"`` step deterministically);
        ``None``: all ``K``, but ``min(12, K)`` for ``"heun"`` (:data:`HEUN_LEVELS`).
    :param diffusion_beta_start: ``beta_1`` of the linear schedule (``None``: ``0.1 / K``); the
        finest width the bound can reward is about ``sqrt(beta_1)`` latent units.
    :param diffusion_beta_end: ``beta_K`` of the linear schedule (``None``: ``min(20 / K, 0.999)``).
    :param residual_transition: what the diffusion models: ``"linear"`` (default) ``z_t`` minus a
        learned linear function of the context (:class:`~pyrossm.models.transition.LinearShift`,
        zero at the start); ``True`` ``z_t - z_{t-1}``; ``False`` ``z_t`` itself (the paper's).
        The same transition family and bound, but the denoiser need not carry the linear part of
        the dynamics through to its output.  On the six systems of ``benchmarks/defaults.py``
        ``"linear"`` lowered the sum of the 1-step JSD ratios to the sampling floor from 25.3 to
        17.6 at seed 0 and from 26.1 to 19.6 at seed 1, at no extra cost: lower on every system
        but the bimodal walk at seed 1 (6.2x against 5.7x); the seasonal system 6.5x -> 2.2x and
        the trimodal walk 9.7x -> 4.8x at their worse seeds.  Fits saved before this default load
        with the value they were trained with (``False`` where the saved options predate the
        option).
    :param str activation: every network's activation (denoiser, encoder, emission, init):
        ``"relu"`` (default; CSDI's and the paper's) or ``"silu"``, whose units cannot die (whole
        ReLU layers died in some fits, see :class:`~pyrossm.nn.CSDIDenoiser`; SiLU prevented that
        but did not lower the bimodal JSD, ``docs/experiments/2026-11-30-dead-units.md``).  Fits saved
        before this option existed load with ReLU.
    :param str architecture: every network's shape: ``"compact"`` (default): MLPs over the
        flattened inputs in the encoder, emission and VHP (see :class:`~pyrossm.models.DKF`) and
        an MLP denoiser (:class:`~pyrossm.nn.MLPDenoiser`, ``diffusion_layers`` hidden layers of
        width ``diffusion_channels``, the same preconditioning and bound), about 10x cheaper to
        train and sample; or ``"paper"`` (Tables 1-2).  Fits saved before this option existed
        load as ``"paper"``, later ones as saved.
    :param str level_sampling: how the training bound draws the diffusion's noise levels:
        ``"loss-aware"`` (default: importance sampling by each level's recent squared term,
        Nichol & Dhariwal, 2021, :class:`~pyrossm.diffusion.LossAwareLevels`) or ``"uniform"``
        (the paper's).  The same bound and expectation with a less noisy estimate: on a fitted
        bimodal-walk DDSSM 57 % of the draws go to the finest 10 % of the levels, where a sharp
        transition and a noisy copy of the data differ, and the estimate's second moment falls
        6x.  On the six systems of ``benchmarks/defaults.py`` the sum of the 1-step JSD ratios to
        the sampling floor went from 13.5 / 15.2 / 16.9 to 13.5 / 14.0 / 13.7 (seeds 0 / 1 / 2),
        the walks' worst cells from 3.6x and 4.5x to 2.8x and 2.0x, at no measurable cost a step.
        Fits saved before this option load with ``"uniform"``, what they were trained with.
    :param encoder_hidden_dim: the width of the guide's network (the encoder's Context
        Producer; default 32); ``None``: ``hidden_dim``.  Its future summary, the emission and the
        VHP keep ``hidden_dim``.  On the six systems of ``benchmarks/defaults.py`` a 32-wide
        network lowered the sum of the 1-step JSD ratios to the sampling floor from 13.5 / 14.0 /
        13.7 to 12.0 / 12.1 / 12.5 (seeds 0 / 1 / 2) and brought every cell within 3x (the
        seasonal system's worst 3.10x -> 2.68x); a 32-wide future summary instead broke the
        bimodal walk (up to 4.4x): it lets the guide copy ``x_t``, noise and all, into ``z_t``.
        No measurable cost a step (1.27-1.41x the DKF's step, 1.28-1.46x before).  Fits saved
        before this option load with ``None``, what they were trained with.
    :param str summary: the guide's future summary, ``"gru"`` (default, the paper's backward GRU)
        or ``"decay"`` (loop-free, the DKF's default; see :class:`~pyrossm.models.DKF`).  On the six
        systems of ``benchmarks/defaults.py`` at seed 0 ``"decay"`` scored 2.62 / 2.68 / 2.36 /
        1.54 / 1.89 / 2.99x the sampling floor against the GRU's 2.37 / 1.91 / 1.62 / 1.64 / 1.99 /
        2.43x (sum 14.1 against 12.0): the guide separates modes worse without the GRU.
    """

    def __init__(
        self,
        obs_dim,
        latent_dim=4,
        order=2,
        covariate_dim=0,
        init="vhp",
        channels=16,
        hidden_dim=16,
        encoder_layers=2,
        emission_layers=2,
        diffusion_channels=16,
        diffusion_layers=3,
        num_diffusion_steps=128,
        schedule="linear",
        num_noise_draws=2,
        sampler="heun",
        num_sampling_steps=None,
        residual_transition="linear",
        diffusion_beta_end=None,
        diffusion_beta_start=None,
        activation="relu",
        architecture="compact",
        level_sampling="loss-aware",
        encoder_hidden_dim=32,
        summary="gru",
    ):
        check_order_and_latent_dim(order, latent_dim)
        check_architecture(architecture)
        transition = DiffusionDynamics(
            latent_dim,
            order,
            covariate_dim,
            num_diffusion_steps,
            schedule,
            num_noise_draws,
            diffusion_channels,
            diffusion_layers,
            sampler=sampler,
            num_sampling_steps=(
                min(HEUN_LEVELS, num_diffusion_steps)
                if sampler == "heun" and num_sampling_steps is None and isinstance(num_diffusion_steps, int)
                else num_sampling_steps
            ),
            residual=residual_transition,
            beta_end=diffusion_beta_end,
            beta_start=diffusion_beta_start,
            activation=activation,
            architecture=architecture,
            level_sampling=level_sampling,
        )
        super().__init__(
            transition,
            dict(
                obs_dim=obs_dim,
                latent_dim=latent_dim,
                order=order,
                covariate_dim=covariate_dim,
                init=init,
                channels=channels,
                hidden_dim=hidden_dim,
                encoder_layers=encoder_layers,
                emission_layers=emission_layers,
                diffusion_channels=diffusion_channels,
                diffusion_layers=diffusion_layers,
                num_diffusion_steps=num_diffusion_steps,
                schedule=schedule,
                num_noise_draws=num_noise_draws,
                sampler=sampler,
                num_sampling_steps=num_sampling_steps,
                residual_transition=residual_transition,
                diffusion_beta_end=diffusion_beta_end,
                diffusion_beta_start=diffusion_beta_start,
                activation=activation,
                architecture=architecture,
                level_sampling=level_sampling,
                encoder_hidden_dim=encoder_hidden_dim,
                summary=summary,
            ),
        )
