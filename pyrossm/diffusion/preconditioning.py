"""Karras et al. (2022) preconditioning with ``sigma_data = 1`` (DDSSM paper, Appendix E.2)."""

from __future__ import annotations

import torch


def karras_coefficients(sigma: torch.Tensor):
    """``(c_skip, c_out, c_in, c_noise)`` for noise levels ``sigma`` (any shape), ``sigma_data = 1``.

    ``c_skip = 1 / (sigma^2 + 1)``, ``c_out = sigma / sqrt(sigma^2 + 1)``,
    ``c_in = 1 / sqrt(sigma^2 + 1)``, ``c_noise = log(sigma) / 4``.
    """
    s2 = sigma**2 + 1
    return 1 / s2, sigma / s2.sqrt(), 1 / s2.sqrt(), 0.25 * torch.log(sigma)


#: the weightings of :func:`denoising_loss` over noise levels
LOSS_WEIGHTINGS = ("uniform", "edm")


def denoise(network, z_hat, sigma, context):
    r"""The preconditioned denoiser ``D(z^, sigma, c) = c_skip z^ + c_out F(c_in z^, c_noise, c)``.

    :param network: ``F(x_in (B, d), c_noise (B,), context) -> (B, d)``.
    :param z_hat: ``(B, d)`` rescaled noisy latents (Eq. 36).
    :param sigma: ``(B,)`` noise levels.
    :returns: ``(D, F)``, each ``(B, d)``.
    """
    c_skip, c_out, c_in, c_noise = karras_coefficients(sigma)
    out = network(c_in.unsqueeze(-1) * z_hat, c_noise, context)
    return c_skip.unsqueeze(-1) * z_hat + c_out.unsqueeze(-1) * out, out


def level_denoiser(network, sigmas, context):
    r"""The samplers' ``denoiser(z_hat (B, d), k_index) -> D`` (:mod:`~pyrossm.diffusion.samplers`):
    :func:`denoise` at level ``sigmas[k_index]`` for every row, with the ``context`` fixed.

    A network that offers ``conditioned(context, c_noise)`` (:class:`~pyrossm.nn.MLPDenoiser`)
    computes what the context and each level contribute once for all the calls of a reverse
    diffusion; any other is called as in :func:`denoise`.  The same function up to rounding.

    :param network: see :func:`denoise`.  :param sigmas: ``(K,)`` the schedule's levels.
    :param context: the network's conditioning, e.g. ``(history (B, j, M), covariates (B, j+1, V))``.
    """
    conditioned = getattr(network, "conditioned", None)
    if conditioned is None:

        def denoiser(z_hat, k_index):
            return denoise(network, z_hat, sigmas[k_index].expand(z_hat.shape[0]), context)[0]

        return denoiser
    c_skip, c_out, c_in, c_noise = karras_coefficients(sigmas)
    fixed = conditioned(context, c_noise)

    def denoiser(z_hat, k_index):
        return c_skip[k_index] * z_hat + c_out[k_index] * fixed(c_in[k_index] * z_hat, k_index)

    return denoiser


def regression_target(z0, z_hat, sigma):
    """``y(z^0, k) = (z^0 - c_skip z^) / c_out`` (Eq. 38); shapes ``(B, d)``, ``(B, d)``, ``(B,)``."""
    c_skip, c_out, _, _ = karras_coefficients(sigma)
    return (z0 - c_skip.unsqueeze(-1) * z_hat) / c_out.unsqueeze(-1)


def diffusion_bound(network, schedule, z0, context, num_draws=1, include_constant=True, levels=None):
    r"""Monte-Carlo negative-ELBO bound on ``-log p(z^0 | c)`` (Eq. 29 / 52), per example.

    ``L_forward(z^0) + 1/S_k sum_m K w~_{k_m} ||F(c_in z^_m, c_noise, c) - y(z^0, k_m)||^2``
    with ``k_m ~ Unif{1..K}`` and ``eps_m ~ N(0, I)`` (with ``levels``, ``k_m ~ p`` and each
    term divided by ``K p_{k_m}``: the same expectation), plus (when ``include_constant``) the
    schedule constant ``C`` of Eq. 33 (reverse variances ``beta_k``), so that the result bounds
    ``-log p(z^0 | c)`` itself.  Differentiable in ``z0``, the network and the context.

    :param network: see :func:`denoise`.
    :param schedule: :class:`~pyrossm.diffusion.NoiseSchedule`.
    :param z0: ``(B, d)`` clean latents.
    :param context: anything the network takes, batched over ``B`` (repeated for the draws).
    :param int num_draws: ``S_k``.
    :param levels: ``None`` (uniform levels) or a :class:`~pyrossm.diffusion.LossAwareLevels`
        that draws them; while gradients are recorded, the draws' terms update its statistics.
    :returns: ``(B,)``.
    """
    b, d = z0.shape
    if levels is None:
        k = torch.randint(0, schedule.num_steps, (num_draws, b), device=z0.device)
    else:
        k, importance = levels.draw((num_draws, b), device=z0.device)
    noise = torch.randn(num_draws, b, d, device=z0.device, dtype=z0.dtype)
    sigma = schedule.sigmas[k]  # (S_k, B)
    z_hat = z0.unsqueeze(0) + sigma.unsqueeze(-1) * noise
    z0_rep = z0.unsqueeze(0).expand(num_draws, b, d)
    flat = lambda t: t.reshape((num_draws * b,) + t.shape[2:])  # noqa: E731
    ctx = _repeat(context, num_draws)
    _, out = denoise(network, flat(z_hat), flat(sigma), ctx)
    target = regression_target(flat(z0_rep), flat(z_hat), flat(sigma))
    squares = ((out - target) ** 2).sum(-1)  # (S_k B,)
    level_weights = schedule.loss_weights[flat(k)]  # w~_k per draw
    weights = schedule.num_steps * level_weights
    if levels is not None:
        if torch.is_grad_enabled():
            levels.record(flat(k), level_weights * squares)  # the terms L_k
        weights = weights * flat(importance).to(weights.dtype)
    err = (weights * squares).reshape(num_draws, b).mean(0)
    bound = schedule.forward_kl(z0) + err
    if include_constant:
        bound = bound + d * schedule.constant_per_dim
    return bound


def denoising_loss(network, schedule, z0, context=None, num_draws=1, mask=None, weighting="uniform"):
    r"""The x0-prediction loss ``E_{k, eps} ||D(z^_k, sigma_k, c) - z^0||^2`` per example, with
    ``k ~ Unif{1..K}`` (the "simple" objective of Ho et al., 2020, written for the clean sample as
    in Diffusion-TS and L2D-Diff), for diffusion models trained for samples rather than for a
    bound.  ``D`` is :func:`denoise`'s preconditioned denoiser.

    :param network: see :func:`denoise`.  :param schedule: :class:`~pyrossm.diffusion.NoiseSchedule`.
    :param z0: ``(B, d)`` clean samples (flatten any event shape into ``d``; missing entries
        zero-filled).
    :param context: anything the network takes, batched over ``B``.
    :param int num_draws: draws of ``(k, eps)`` per example.
    :param mask: ``None`` or ``(B, d)``: the squared error counts only where ``mask`` is true
        (observed entries).
    :param str weighting: ``"uniform"`` (the plain x0 loss) or ``"edm"``: each draw's squared
        error divided by ``c_out(sigma)^2``, i.e. ``||F - y(z^0, k)||^2`` on the network's own
        output scale (Karras et al., 2022's ``lambda(sigma)``), so that the small noise levels,
        whose x0 errors are of order ``sigma^2``, weigh as much as the large ones.
    :returns: ``(B,)``.
    """
    if weighting not in LOSS_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {LOSS_WEIGHTINGS}, got {weighting!r}")
    b, d = z0.shape
    k = torch.randint(0, schedule.num_steps, (num_draws, b), device=z0.device)
    sigma = schedule.sigmas[k].reshape(-1)
    z0_rep = z0.repeat(num_draws, 1)
    z_hat = z0_rep + sigma.unsqueeze(-1) * torch.randn(num_draws * b, d, device=z0.device, dtype=z0.dtype)
    prediction, _ = denoise(network, z_hat, sigma, _repeat(context, num_draws))
    error = (prediction - z0_rep) ** 2
    if weighting == "edm":
        error = error / karras_coefficients(sigma)[1].unsqueeze(-1) ** 2
    if mask is not None:
        error = error * mask.to(z0.dtype).repeat(num_draws, 1)
    return error.sum(-1).reshape(num_draws, b).mean(0)


def _repeat(context, times):
    """Repeats every tensor in ``context`` (a tensor, tuple or dict) ``times`` along dim 0."""
    if context is None:
        return None
    if isinstance(context, torch.Tensor):
        return context.repeat((times,) + (1,) * (context.dim() - 1))
    if isinstance(context, (tuple, list)):
        return type(context)(_repeat(c, times) for c in context)
    if isinstance(context, dict):
        return {key: _repeat(c, times) for key, c in context.items()}
    raise TypeError(f"context must be a tensor, tuple, list or dict, got {type(context).__name__}")
