"""Which noise levels a Monte-Carlo diffusion bound draws: uniform, or loss-aware importance sampling.

The bound of Eq. 29 / 52 is a sum of ``K`` per-level terms ``L_k``, estimated from draws of one
level each.  Drawn uniformly, the estimate's variance is ``K^2 Var_k[L_k]``: large when a few
levels carry most of the bound, as the finest levels do for a sharp transition.  Drawing level
``k`` with probability ``p_k`` and weighting its term by ``1 / (K p_k)`` keeps the estimate
unbiased; ``p_k`` proportional to ``sqrt(E[L_k^2])`` minimises its variance (Nichol & Dhariwal,
2021, Sec. 3.3, "Improved denoising diffusion probabilistic models").
"""

from __future__ import annotations

import torch
from torch import nn

#: what ``level_sampling`` may name
LEVEL_SAMPLINGS = ("uniform", "loss-aware")


def check_level_sampling(level_sampling) -> str:
    """Returns ``level_sampling`` if it is one of :data:`LEVEL_SAMPLINGS`; else ``ValueError``."""
    if not isinstance(level_sampling, str) or level_sampling not in LEVEL_SAMPLINGS:
        raise ValueError(f"level_sampling must be one of {list(LEVEL_SAMPLINGS)}, got {level_sampling!r}")
    return level_sampling


class LossAwareLevels(nn.Module):
    r"""Draws noise levels with ``p_k = (1 - u) q_k + u / K``, ``q_k`` proportional to
    ``sqrt(m_k)``, where ``m_k`` is a moving average of the squared per-level term ``L_k^2``
    recorded by :meth:`record` from training draws; uniform until every level has been recorded.

    The state is training bookkeeping, not part of the model: its buffers are not saved with
    the parameters (a loaded model starts uniform again and re-learns ``m`` within a few steps).

    :param int num_levels: ``K``.
    :param float uniform_share: ``u``, the mass kept uniform, so that every level is drawn and a
        level's weight ``1 / (K p_k)`` stays below ``1 / u``.
    :param float decay: ``m_k <- decay m_k + (1 - decay) mean(L_k^2 in the call)`` for the
        levels a call drew (the first value of a level replaces its zero).
    """

    def __init__(self, num_levels: int, uniform_share: float = 0.1, decay: float = 0.9):
        super().__init__()
        if isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels < 1:
            raise ValueError(f"num_levels must be a positive int, got {num_levels!r}")
        if not 0 < uniform_share <= 1:
            raise ValueError(f"uniform_share must be in (0, 1], got {uniform_share!r}")
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        self.num_levels, self.uniform_share, self.decay = num_levels, float(uniform_share), float(decay)
        self.register_buffer("second_moments", torch.zeros(num_levels), persistent=False)
        self.register_buffer("seen", torch.zeros(num_levels, dtype=torch.bool), persistent=False)

    def extra_repr(self) -> str:
        return f"num_levels={self.num_levels}, uniform_share={self.uniform_share}, decay={self.decay}"

    @property
    def warmed_up(self) -> bool:
        """Whether every level has a recorded second moment (before then draws are uniform)."""
        return bool(self.seen.all())

    def probabilities(self) -> torch.Tensor:
        """``p`` ``(K,)``: uniform before :attr:`warmed_up`, else the loss-aware mixture."""
        k = self.num_levels
        uniform = torch.full((k,), 1.0 / k, device=self.second_moments.device)
        if not self.warmed_up:
            return uniform
        root = self.second_moments.clamp_min(0).sqrt()
        total = root.sum()
        if not torch.isfinite(total) or total <= 0:
            return uniform
        return (1 - self.uniform_share) * root / total + self.uniform_share * uniform

    def draw(self, shape, device=None):
        """``(k, weight)``, each of ``shape``: level indices in ``0..K-1`` and the factor
        ``1 / (K p_k)`` that keeps the weighted terms' mean an unbiased estimate of the bound's
        mean term (1 everywhere while uniform; then the draws are ``torch.randint``'s)."""
        shape = torch.Size(shape)
        if not self.warmed_up:
            k = torch.randint(0, self.num_levels, shape, device=device)
            return k, torch.ones(shape, device=device)
        p = self.probabilities().to(device)
        k = torch.multinomial(p, shape.numel(), replacement=True).reshape(shape)
        return k, 1.0 / (self.num_levels * p[k])

    @torch.no_grad()
    def record(self, k: torch.Tensor, terms: torch.Tensor) -> None:
        """Updates ``m`` from per-draw terms ``L_k`` (any shape, matching ``k``; unweighted by
        the draw's ``1 / (K p_k)``).  Non-finite terms are ignored."""
        k, terms = k.reshape(-1), terms.detach().reshape(-1).to(self.second_moments.dtype)
        finite = torch.isfinite(terms)
        k, squares = k[finite], terms[finite] ** 2
        sums = torch.zeros_like(self.second_moments).index_add_(0, k, squares)
        counts = torch.zeros_like(self.second_moments).index_add_(0, k, torch.ones_like(squares))
        drawn = counts > 0
        means = sums[drawn] / counts[drawn]
        old = self.second_moments[drawn]
        blended = torch.where(self.seen[drawn], self.decay * old + (1 - self.decay) * means, means)
        self.second_moments[drawn] = blended
        self.seen |= drawn
