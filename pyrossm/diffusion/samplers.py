"""Reverse-process samplers over a denoiser callable (DDSSM paper, Appendix D.1; Song et al., 2021).

A *denoiser* is ``denoiser(z_hat, k_index) -> D`` mapping rescaled noisy latents
``z_hat = z^0 + sigma_k eps`` (any shape ``(..., d)``) at 0-based step index ``k_index`` (an int)
to the predicted clean latent; conditioning is closed over by the caller.  Both samplers work
in the rescaled space ``z_hat = z~ / sqrt(abar)`` and are batched over any leading shape:
:func:`ddpm_sample` runs all ``K`` steps of the chain, :func:`ddim_sample` a sub-sequence of them,
deterministically (``eta = 0``) or ancestrally (``eta = 1``, DDPM on the shortened chain), and
:func:`heun_sample` the same sub-sequence with a second-order ODE step.
"""

from __future__ import annotations

import torch


def _check_steps(schedule, num_sampling_steps):
    if num_sampling_steps is None:
        return schedule.num_steps
    if (
        isinstance(num_sampling_steps, bool)
        or not isinstance(num_sampling_steps, int)
        or not 1 <= num_sampling_steps <= schedule.num_steps
    ):
        raise ValueError(f"num_sampling_steps must be an int in [1, {schedule.num_steps}], got {num_sampling_steps!r}")
    return num_sampling_steps


def _sub_sequence(schedule, num_sampling_steps):
    """The 0-based step indices ``K - 1, ..., 0`` of ``num_sampling_steps`` evenly spaced steps."""
    K = schedule.num_steps
    n = _check_steps(schedule, num_sampling_steps)
    return torch.linspace(K - 1, 0, n).round().long().unique_consecutive().tolist()


def _walk(denoiser, schedule, shape, num_sampling_steps, move, device, progress, generator):
    """The loop :func:`ddim_sample` and :func:`heun_sample` share: from ``z~^K ~ N(0, I)``
    (rescaled), at each used step ``i`` of :func:`_sub_sequence` evaluate ``D``, then go to the
    next used step ``j`` by ``move(z_hat, D, i, j)``; the last step returns ``D``."""
    steps = _sub_sequence(schedule, num_sampling_steps)
    z_hat = torch.randn(shape, device=device, generator=generator) / schedule.alpha_bars[-1].sqrt()
    for pos, i in enumerate(steps):
        d = denoiser(z_hat, i)
        z_hat = move(z_hat, d, i, steps[pos + 1]) if pos + 1 < len(steps) else d
        if progress is not None:
            progress(pos + 1, len(steps))
    return z_hat


def ddpm_sample(denoiser, schedule, shape, *, device=None, progress=None, generator=None, stop_index=None):
    r"""Ancestral sampling through the reverse steps.

    ``z~^K ~ N(0, I)``; for ``k = K..1``: ``eps = (z^ - D) / sigma_k``,
    ``z~^{k-1} = (z~^k - beta_k / sqrt(1 - abar_k) eps) / sqrt(alpha_k) + sqrt(beta_k) xi``
    (Eq. 31 with reverse variance ``beta_k``; no noise is added at the last step).

    :param shape: ``(..., d)`` of the samples.
    :param progress: optional callable ``progress(done, total)``.
    :param stop_index: ``None`` (run to ``z^0``) or the step ``i`` at which to stop, an int or
        a long tensor of shape ``shape[:-1]`` (one per sample): the reverse process runs
        ``k = K..i+1`` and returns the intermediate ``z~^i`` (in the unscaled space,
        ``z~^i ~ q(z^i | z^0)``), as in the collapse-simulation framework's sampling
        (Li & van der Schaar, 2024, Algorithm 2).
    :returns: ``z^0`` (or ``z~^i``) of shape ``shape``.
    """
    K = schedule.num_steps
    z = torch.randn(shape, device=device, generator=generator)  # z~^K
    stop = None
    if stop_index is not None:
        stop = torch.as_tensor(stop_index, device=z.device).expand(shape[:-1]).unsqueeze(-1)
        if int(stop.min()) < 0 or int(stop.max()) > K:
            raise ValueError(f"stop_index must be in [0, {K}], got {stop_index!r}")
    for i in reversed(range(K)):
        abar = schedule.alpha_bars[i]
        d = denoiser(z / abar.sqrt(), i)
        eps = (z - abar.sqrt() * d) / (1 - abar).sqrt()
        new = (z - schedule.betas[i] / (1 - abar).sqrt() * eps) / schedule.alphas[i].sqrt()
        if i > 0:
            new = new + schedule.betas[i].sqrt() * torch.randn(shape, device=device, generator=generator)
        z = new if stop is None else torch.where(stop <= i, new, z)
        if progress is not None:
            progress(K - i, K)
    return z


def ddim_sample(
    denoiser, schedule, shape, *, num_sampling_steps=None, eta=0.0, device=None, progress=None, generator=None
):
    r"""DDIM sampling on an evenly spaced sub-sequence of steps (Song et al., 2021, Eq. 12).

    In the rescaled space, from level ``sigma`` to the next used level ``sigma_prev``::

        z^_prev = D + sqrt(sigma_prev^2 - s^2) (z^ - D) / sigma + s xi,
        s = eta sigma_prev sqrt(1 - sigma_prev^2 / sigma^2)

    and the last step returns ``D``.  ``eta = 0`` (default) is deterministic: the Euler step of the
    probability-flow ODE ``dz^/dsigma = (z^ - D) / sigma`` (Karras et al., 2022).  ``eta = 1``
    draws from the forward process's posterior ``q(z^_prev | z^, z^0 = D)``: ancestral (DDPM)
    sampling on the shortened sequence, as in the DDIM paper's ``eta = 1`` rows and Improved DDPM's
    strided sampling (Nichol & Dhariwal, 2021, Sec. 4).  With ``num_sampling_steps = K`` every
    step is visited.

    :param int num_sampling_steps: steps used (default ``K``).
    :param float eta: in ``[0, 1]``, the share of fresh noise per step.
    :returns: ``z^0`` of shape ``shape``; with ``eta = 0`` the only randomness is the initial
        ``z~^K ~ N(0, I)``.
    """
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0 <= eta <= 1:
        raise ValueError(f"eta must be a number in [0, 1], got {eta!r}")
    sigmas = schedule.sigmas

    def move(z_hat, d, i, j):
        sigma, sigma_prev = sigmas[i], sigmas[j]
        if eta == 0:
            return d + sigma_prev / sigma * (z_hat - d)
        s = eta * sigma_prev * (1 - (sigma_prev / sigma) ** 2).sqrt()
        noise = torch.randn(shape, device=device, generator=generator)
        return d + (sigma_prev**2 - s**2).sqrt() / sigma * (z_hat - d) + s * noise

    return _walk(denoiser, schedule, shape, num_sampling_steps, move, device, progress, generator)


def heun_sample(denoiser, schedule, shape, *, num_sampling_steps=None, device=None, progress=None, generator=None):
    r"""The probability-flow ODE ``dz^/dsigma = (z^ - D) / sigma`` solved by Heun's second-order
    method (Karras et al., 2022, Algorithm 1) on the evenly spaced sub-sequence of
    :func:`ddim_sample`: each step from ``sigma`` to ``sigma_prev`` takes DDIM's Euler step, then
    averages its slope with the slope at the new point.  The last step returns ``D``, and the step
    into the finest level ``sigma_1`` keeps its Euler value (``D`` is evaluated there next), so
    ``n`` levels cost ``2 n - 2`` denoiser calls.  Far more accurate than DDIM for the same calls
    on smooth laws: for Gaussian data of sd 0.7 (K = 128) the sd of the draws is 0.684 with
    16 levels (30 calls), as DDIM through all 128 steps gives, against 0.602 with DDIM's 16.

    :param int num_sampling_steps: levels used (default ``K``).
    :returns: ``z^0`` of shape ``shape``; the only randomness is the initial ``z~^K ~ N(0, I)``.
    """
    sigmas = schedule.sigmas

    def move(z_hat, d, i, j):
        slope = (z_hat - d) / sigmas[i]
        euler = z_hat + (sigmas[j] - sigmas[i]) * slope
        if j == 0:
            return euler
        slope_new = (euler - denoiser(euler, j)) / sigmas[j]
        return z_hat + (sigmas[j] - sigmas[i]) * 0.5 * (slope + slope_new)

    return _walk(denoiser, schedule, shape, num_sampling_steps, move, device, progress, generator)
