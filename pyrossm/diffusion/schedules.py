"""Discrete-time noise schedules (DDSSM paper, Appendix D.1 and E).

Indices: diffusion steps are ``k = 1..K``; tensors are stored 0-based, entry ``k - 1`` for step
``k``.  The forward process is ``q(z^k | z^{k-1}) = N(sqrt(alpha_k) z^{k-1}, beta_k I)``, so
``q(z^k | z^0) = N(sqrt(abar_k) z^0, (1 - abar_k) I)`` with ``abar_k = prod_{i<=k} alpha_i``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SCHEDULE_KINDS = ("linear", "cosine", "karras")


def _karras_betas(num_steps, sigma_min, sigma_max, rho=7.0):
    """Betas whose rescaled noise levels are Karras et al.'s ``sigma_min .. sigma_max`` (float64)."""
    for name, value in (("sigma_min", sigma_min), ("sigma_max", sigma_max)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    if num_steps == 1:
        sigmas = torch.tensor([float(sigma_max)], dtype=torch.float64)
    else:
        ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64)
        low, high = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
        sigmas = (low + ramp * (high - low)) ** rho
    abar = 1 / (1 + sigmas**2)
    abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    return 1 - abar / abar_prev


class NoiseSchedule(nn.Module):
    r"""A fixed beta schedule with the derived quantities every diffusion model here needs.

    ``linear``: ``beta_k`` evenly spaced from ``beta_start`` to ``beta_end`` (Ho et al., 2020).
    By default these are Ho et al.'s 1000-step values rescaled to ``K`` steps
    (``0.1 / K`` to ``20 / K``), so that ``abar_K`` is near 0 for any ``K`` (with the unscaled
    values and ``K = 128``, ``abar_K`` would be 0.27 and ``z^K`` far from ``N(0, I)``).
    ``cosine``: ``abar_k = f(k) / f(0)``, ``f(k) = cos^2(((k / K) + s) / (1 + s) * pi / 2)``,
    ``s = 0.008``, betas clipped at 0.999 (Nichol & Dhariwal, 2021).
    ``karras``: the noise levels ``sigma_k`` of the rescaled process run from ``sigma_min`` to
    ``sigma_max`` with Karras et al.'s (2022, Eq. 5) spacing ``rho = 7`` (dense at low noise),
    ``abar_k = 1 / (1 + sigma_k^2)`` and ``beta_k = 1 - abar_k / abar_{k-1}``: a discrete-time
    schedule whose smallest level, and so the sharpest density the bound can reward, is set
    directly (``sigma_1`` of the default linear schedule is ``sqrt(0.1 / K)``, 0.056 for K = 32).

    Buffers (shape ``(K,)``, float32, computed in float64): ``betas``, ``alphas``,
    ``alpha_bars``, ``sigmas`` (``sqrt((1 - abar_k) / abar_k)``, the noise level of the rescaled
    process ``z^0 + sigma_k eps`` of Eq. 36), ``loss_weights`` (``w~_k = beta_k abar_k / (2 alpha_k
    (1 - abar_k))``, Eq. 44), ``eps_weights`` (``w_k = beta_k / (2 alpha_k (1 - abar_k))``, Eq. 33).

    :param int num_steps: ``K``.
    :param str kind: ``"linear"``, ``"cosine"`` or ``"karras"``.
    :param beta_start: ``beta_1`` of the linear schedule (default ``0.1 / K``).
    :param beta_end: ``beta_K`` of the linear schedule (default ``min(20 / K, 0.999)``).
    :param float sigma_min: ``sigma_1`` of the karras schedule (default 0.002, as Karras et al.).
    :param float sigma_max: ``sigma_K`` of the karras schedule (default 80).
    :raises ValueError: for betas with a schedule other than linear, sigmas with one other than
        karras, betas outside ``0 < beta_start <= beta_end < 1`` or sigmas outside
        ``0 < sigma_min < sigma_max``.
    """

    def __init__(
        self,
        num_steps: int = 128,
        kind: str = "linear",
        beta_start: float | None = None,
        beta_end: float | None = None,
        sigma_min: float | None = None,
        sigma_max: float | None = None,
    ):
        super().__init__()
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
        if kind not in SCHEDULE_KINDS:
            raise ValueError(f"schedule kind must be one of {SCHEDULE_KINDS}, got {kind!r}")
        if kind != "linear" and (beta_start is not None or beta_end is not None):
            raise ValueError(
                f"beta_start and beta_end set a linear schedule; the {kind} schedule "
                f"has no free betas (got beta_start={beta_start}, beta_end={beta_end})"
            )
        if kind != "karras" and (sigma_min is not None or sigma_max is not None):
            raise ValueError(f"sigma_min and sigma_max set a karras schedule, not a {kind} one")
        self.num_steps, self.kind = num_steps, kind
        # computed on the CPU (small, fixed) also when a model is built on the meta device to check
        # a saved file's shapes (pyrossm.io) before anything is allocated
        with torch.device("cpu"):
            self._compute(num_steps, kind, beta_start, beta_end, sigma_min, sigma_max)

    def _compute(self, num_steps, kind, beta_start, beta_end, sigma_min, sigma_max):
        #: the parameters of the chosen kind; ``None`` for those of another kind
        self.beta_start = self.beta_end = self.sigma_min = self.sigma_max = None
        if kind == "linear":
            beta_start = 0.1 / num_steps if beta_start is None else beta_start
            beta_end = min(20.0 / num_steps, 0.999) if beta_end is None else beta_end
            if not 0 < beta_start <= beta_end < 1:
                raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}")
            self.beta_start, self.beta_end = beta_start, beta_end
            betas = torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)
        elif kind == "karras":
            self.sigma_min = 0.002 if sigma_min is None else sigma_min
            self.sigma_max = 80.0 if sigma_max is None else sigma_max
            betas = _karras_betas(num_steps, self.sigma_min, self.sigma_max)
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
        extra = {"linear": ("beta_start", "beta_end"), "karras": ("sigma_min", "sigma_max")}
        params = "".join(f", {name}={getattr(self, name):.4g}" for name in extra.get(self.kind, ()))
        return f"num_steps={self.num_steps}, kind={self.kind!r}{params}"

    def forward_kl(self, z0: torch.Tensor) -> torch.Tensor:
        r"""``L_forward = KL(q(z^K | z^0) || N(0, I))`` in closed form (Appendix E.1).

        ``1/2 [abar_K ||z0||^2 - d abar_K - d log(1 - abar_K)]``.

        :param z0: ``(..., d)``.  :returns: ``(...)``.
        """
        abar = self.alpha_bars[-1]
        d = z0.shape[-1]
        return 0.5 * (abar * (z0**2).sum(-1) - d * abar - d * torch.log1p(-abar))

    def add_noise(self, z0, k_index, noise):
        """The rescaled noisy latent ``z^0 + sigma_k eps`` (Eq. 36); ``k_index`` is 0-based ``(...)``."""
        return z0 + self.sigmas[k_index].unsqueeze(-1) * noise
