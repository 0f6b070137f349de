"""Reverse-process samplers over a denoiser callable (DDSSM paper, Appendix D.1; Song et al., 2021).

A *denoiser* is ``denoiser(z_hat, k_index) -> D`` mapping rescaled noisy latents
``z_hat = z^0 + sigma_k eps`` (any shape ``(..., d)``) at 0-based step index ``k_index`` (an int)
to the predicted clean latent; conditioning is closed over by the caller.  Both samplers work
in the rescaled space ``z_hat = z~ / sqrt(abar)`` and are batched over any leading shape.
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


def ddim_sample(denoiser, schedule, shape, *, num_sampling_steps=None, device=None, progress=None, generator=None):
    r"""Deterministic DDIM sampling (eta = 0) on an evenly spaced sub-sequence of steps.

    In the rescaled space each step is ``z^_{prev} = D + sigma_prev (z^ - D) / sigma``, the Euler
    step of the probability-flow ODE ``dz^/dsigma = (z^ - D) / sigma`` (Karras et al., 2022);
    the last step returns ``D``.  With ``num_sampling_steps = K`` it visits every step.

    :param int num_sampling_steps: steps used (default ``K``).
    :returns: ``z^0`` of shape ``shape``; the only randomness is the initial ``z~^K ~ N(0, I)``.
    """
    K = schedule.num_steps
    n = _check_steps(schedule, num_sampling_steps)
    steps = torch.linspace(K - 1, 0, n).round().long().unique_consecutive().tolist()
    z_hat = torch.randn(shape, device=device, generator=generator) / schedule.alpha_bars[-1].sqrt()
    if steps[0] != K - 1:  # pragma: no cover (linspace starts at K - 1)
        steps = [K - 1] + steps
    for pos, i in enumerate(steps):
        d = denoiser(z_hat, i)
        if pos + 1 < len(steps):
            j = steps[pos + 1]
            z_hat = d + schedule.sigmas[j] / schedule.sigmas[i] * (z_hat - d)
        else:
            z_hat = d
        if progress is not None:
            progress(pos + 1, len(steps))
    return z_hat
