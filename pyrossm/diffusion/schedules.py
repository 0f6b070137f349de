"""Discrete-time noise schedules (DDSSM paper, Appendix D.1 and E).

Indices: diffusion steps are ``k = 1..K``; tensors are stored 0-based, entry ``k - 1`` for step
``k``.  The forward process is ``q(z^k | z^{k-1}) = N(sqrt(alpha_k) z^{k-1}, beta_k I)``, so
``q(z^k | z^0) = N(sqrt(abar_k) z^0, (1 - abar_k) I)`` with ``abar_k = prod_{i<=k} alpha_i``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SCHEDULE_KINDS = ("linear", "cosine")


class NoiseSchedule(nn.Module):
    r"""A fixed beta schedule with the derived quantities every diffusion model here needs.

    ``linear``: ``beta_k`` evenly spaced from ``beta_start`` to ``beta_end`` (Ho et al., 2020).
    By default these are Ho et al.'s 1000-step values rescaled to ``K`` steps
    (``0.1 / K`` to ``20 / K``), so that ``abar_K`` is near 0 for any ``K`` (with the unscaled
    values and ``K = 128``, ``abar_K`` would be 0.27 and ``z^K`` far from ``N(0, I)``).
    ``cosine``: ``abar_k = f(k) / f(0)``, ``f(k) = cos^2(((k / K) + s) / (1 + s) * pi / 2)``,
    ``s = 0.008``, betas clipped at 0.999 (Nichol & Dhariwal, 2021).

    Buffers (shape ``(K,)``, float32, computed in float64): ``betas``, ``alphas``,
    ``alpha_bars``, ``sigmas`` (``sqrt((1 - abar_k) / abar_k)``, the noise level of the rescaled
    process ``z^0 + sigma_k eps`` of Eq. 36), ``loss_weights`` (``w~_k = beta_k abar_k / (2 alpha_k
    (1 - abar_k))``, Eq. 44), ``eps_weights`` (``w_k = beta_k / (2 alpha_k (1 - abar_k))``, Eq. 33).

    :param int num_steps: ``K``.
    :param str kind: ``"linear"`` or ``"cosine"``.
    :param beta_start: ``beta_1`` of the linear schedule (default ``0.1 / K``).
    :param beta_end: ``beta_K`` of the linear schedule (default ``min(20 / K, 0.999)``).
    :raises ValueError: for ``beta_start`` or ``beta_end`` with the cosine schedule, or betas
        outside ``0 < beta_start <= beta_end < 1``.
    """

    def __init__(self, num_steps: int = 128, kind: str = "linear", beta_start: float | None = None,
                 beta_end: float | None = None):
        super().__init__()
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
        if kind not in SCHEDULE_KINDS:
            raise ValueError(f"schedule kind must be one of {SCHEDULE_KINDS}, got {kind!r}")
        if kind == "cosine" and (beta_start is not None or beta_end is not None):
            raise ValueError("beta_start and beta_end set a linear schedule; the cosine schedule "
                             f"has no free betas (got beta_start={beta_start}, beta_end={beta_end})")
        beta_start = 0.1 / num_steps if beta_start is None else beta_start
        beta_end = min(20.0 / num_steps, 0.999) if beta_end is None else beta_end
        if not 0 < beta_start <= beta_end < 1:
            raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}")
        self.num_steps, self.kind = num_steps, kind
        self.beta_start, self.beta_end = beta_start, beta_end
        if kind == "linear":
            betas = torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)
        else:
            s = 0.008
            k = torch.arange(num_steps + 1, dtype=torch.float64)
            f = torch.cos((k / num_steps + s) / (1 + s) * math.pi / 2) ** 2
            abar = f / f[0]
            betas = (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
        alphas = 1 - betas
        alpha_bars = torch.cumprod(alphas, 0)
        self._set("betas", betas)
        self._set("alphas", alphas)
        self._set("alpha_bars", alpha_bars)
        self._set("sigmas", ((1 - alpha_bars) / alpha_bars).sqrt())
        self._set("eps_weights", betas / (2 * alphas * (1 - alpha_bars)))
        self._set("loss_weights", betas * alpha_bars / (2 * alphas * (1 - alpha_bars)))
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
        beta_tilde = (1 - abar_prev) / (1 - alpha_bars) * betas
        self._set("alpha_bars_prev", abar_prev)
        self._set("posterior_variances", beta_tilde)
        # the schedule constant C of Eq. 33 per latent dimension, reverse variances sigma_k^2 = beta_k:
        # sum_{k>=2} KL constants 1/2 (r - 1 - log r), r = beta~_k / beta_k, plus 1/2 log(2 pi beta_1)
        ratio = beta_tilde[1:] / betas[1:]
        const = 0.5 * (ratio - 1 - ratio.log()).sum() + 0.5 * math.log(2 * math.pi * betas[0].item())
        self.constant_per_dim = float(const)

    def _set(self, name, value):
        self.register_buffer(name, value.float(), persistent=False)

    def extra_repr(self) -> str:
        return f"num_steps={self.num_steps}, kind={self.kind!r}"

    def forward_kl(self, z0: torch.Tensor) -> torch.Tensor:
        r"""``L_forward = KL(q(z^K | z^0) || N(0, I))`` in closed form (Appendix E.1).

        ``1/2 [abar_K ||z0||^2 - d abar_K - d log(1 - abar_K)]``.

        :param z0: ``(..., d)``.  :returns: ``(...)``.
        """
        abar = self.alpha_bars[-1]
        d = z0.shape[-1]
        return 0.5 * (abar * (z0 ** 2).sum(-1) - d * abar - d * torch.log1p(-abar))

    def add_noise(self, z0, k_index, noise):
        """The rescaled noisy latent ``z^0 + sigma_k eps`` (Eq. 36); ``k_index`` is 0-based ``(...)``."""
        return z0 + self.sigmas[k_index].unsqueeze(-1) * noise
