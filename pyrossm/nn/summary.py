"""The encoder's future summaries (DDSSM paper, Appendix H.4; Krishnan et al., 2017)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .gru_scan import gru_scan


def sinusoidal_embedding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style sinusoidal embedding.

    :param positions: any shape ``S`` of (float) positions.
    :param int dim: embedding width (even).
    :returns: ``S + (dim,)``.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device) / max(half, 1))
    angles = positions.unsqueeze(-1).float() * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class _SummaryInputs(nn.Module):
    """What the future summaries share: each step's observation (missing entries zero-filled), its
    observed-mask, the covariates and a sinusoidal embedding of the time index, concatenated and
    projected to ``hidden_dim``."""

    def __init__(self, obs_dim, covariate_dim, hidden_dim, time_dim):
        super().__init__()
        self.time_dim, self.hidden_dim = time_dim, hidden_dim
        self.project = nn.Linear(2 * obs_dim + covariate_dim + time_dim, hidden_dim)

    def inputs(self, x, mask, covariates):
        """``(N, T, D), (N, T, D), (N, T, V) -> (T, N, hidden_dim)``, time-major."""
        n, t = x.shape[:2]
        parts = [x, mask.to(x.dtype), covariates]
        if self.time_dim > 0:
            emb = sinusoidal_embedding(torch.arange(t, device=x.device), self.time_dim)
            parts.append(emb.expand(n, t, self.time_dim))
        return self.project(torch.cat(parts, dim=-1).transpose(0, 1))


class FutureSummary(_SummaryInputs):
    """Backward GRU producing ``h_t`` that summarises ``x_{t:T}`` (and masks, covariates, time).

    At each step the observation (missing entries zero-filled), its observed-mask, the covariates
    and a sinusoidal embedding of the time index are concatenated, projected to
    ``hidden_dim`` and run through a multi-layer GRU from the last step back to the first, so that
    ``h_t`` depends only on steps ``>= t``.  The GRU's parameters are a :class:`torch.nn.GRU`'s;
    on a CPU its loop runs as :func:`~pyrossm.nn.gru_scan.gru_scan` (the same function,
    differentiated by hand: cheaper to train), elsewhere as the module (cuDNN's kernels).

    :param int obs_dim: ``D``.
    :param int covariate_dim: ``V``.
    :param int hidden_dim: ``C_summary``.
    :param int num_layers: GRU layers.
    :param int time_dim: width of the time embedding (0 disables it).
    """

    def __init__(self, obs_dim, covariate_dim=0, hidden_dim=16, num_layers=3, time_dim=8):
        super().__init__(obs_dim, covariate_dim, hidden_dim, time_dim)
        self.gru = nn.GRU(hidden_dim, hidden_dim, num_layers=num_layers)  # time-major

    def forward(self, x, mask, covariates):
        """
        :param x: ``(N, T, D)`` zero-filled observations.
        :param mask: ``(N, T, D)`` observed-mask.
        :param covariates: ``(N, T, V)``.
        :returns: ``h`` of shape ``(N, T, hidden_dim)`` (a view of a time-major tensor).
        """
        inputs = self.inputs(x, mask, covariates)
        if inputs.device.type != "cpu":  # cuDNN's fused kernels
            return self.gru(inputs.flip(0))[0].flip(0).transpose(0, 1)
        return gru_scan(inputs, self.gru.all_weights, reverse=True).transpose(0, 1)


def discounted_future_sums(values, rates):
    r"""``h_t = (1 - a) \sum_{s >= t} a^{s - t} v_s`` along the first dim, per channel: exponentially
    weighted averages of the present and future, computed in ``ceil(log2 T)`` doublings (after the
    one with offset ``k``, ``h_t`` sums the ``2k`` terms from ``t``), each a few whole-tensor
    operations: no step loop.

    :param values: ``(T, ..., C)``.  :param rates: ``(C,)``, each in ``[0, 1)``.
    :returns: ``(T, ..., C)``.
    """
    sums, power, offset = values, rates, 1
    while offset < values.shape[0]:
        sums = torch.cat([torch.addcmul(sums[:-offset], power, sums[offset:]), sums[-offset:]])
        power, offset = power * power, 2 * offset
    return sums * (1 - rates)


class DecaySummary(_SummaryInputs):
    r"""A future summary without a step loop: exponentially weighted averages of the future.

    The inputs of :class:`FutureSummary`, projected, go through ``tanh`` to ``v_t`` and are
    averaged over the present and future at a learned rate per channel,
    ``h_t = (1 - a) \sum_{s >= t} a^{s - t} v_s`` (:func:`discounted_future_sums`), so that
    ``h_t`` depends only on steps ``>= t`` and lies in ``(-1, 1)`` as a GRU's.  The rates start at
    ``exp(-1 / tau)`` for time scales ``tau`` spaced logarithmically from 1 to ``max_timescale``
    steps.  Linear in time as a Kalman smoother's backward pass is in the observations; the guide's
    network reads the channels together.  About a third of the GRU's cost in a training step.

    :param int obs_dim: ``D``.  :param int covariate_dim: ``V``.
    :param int hidden_dim: ``C_summary``.  :param int time_dim: width of the time embedding.
    :param float max_timescale: the slowest channel's initial time scale, in steps.
    """

    def __init__(self, obs_dim, covariate_dim=0, hidden_dim=16, time_dim=8, max_timescale=32.0):
        super().__init__(obs_dim, covariate_dim, hidden_dim, time_dim)
        scales = torch.logspace(0.0, math.log10(max_timescale), hidden_dim) if hidden_dim > 1 else torch.ones(1)
        self.rate_logits = nn.Parameter(torch.logit(torch.exp(-1.0 / scales)))

    @property
    def rates(self):
        """``(hidden_dim,)``, each channel's ``a`` in ``(0, 1)``."""
        return torch.sigmoid(self.rate_logits)

    def forward(self, x, mask, covariates):
        """Arguments and result as :meth:`FutureSummary.forward`."""
        values = torch.tanh(self.inputs(x, mask, covariates))
        return discounted_future_sums(values, self.rates).transpose(0, 1)


#: the future summaries by name (``summary=`` of the encoder and the presets)
SUMMARIES = ("gru", "decay")


def check_summary(summary) -> str:
    """Returns ``summary`` if it is a known name; raises ``ValueError`` naming the choices."""
    if not isinstance(summary, str) or summary not in SUMMARIES:
        raise ValueError(f"summary must be one of {list(SUMMARIES)}, got {summary!r}")
    return summary


def future_summary(summary, obs_dim, covariate_dim=0, hidden_dim=16, num_layers=1, time_dim=8):
    """The future summary named ``summary``: ``"gru"`` (:class:`FutureSummary`, ``num_layers``
    GRU layers) or ``"decay"`` (:class:`DecaySummary`; ``num_layers`` does not apply)."""
    if check_summary(summary) == "decay":
        return DecaySummary(obs_dim, covariate_dim, hidden_dim, time_dim)
    return FutureSummary(obs_dim, covariate_dim, hidden_dim, num_layers, time_dim)
