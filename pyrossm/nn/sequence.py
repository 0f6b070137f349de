"""Sequence encoders ``X -> v`` and autoregressive decoders ``p(X | z)`` (LSTM and Transformer
backbones) for the time-series latent diffusion models (Li & van der Schaar, 2024, Sec. 2, 3.2 and
Appendix B).

A decoder reads the input sequence ``[x_0 = z, x_1, ..., x_{T-1}]`` and returns the
representations ``h_t = W2 tanh(W1 s_t)`` (Eq. 7, 18, 19), ``t = 1..T``, from which a diagonal
Gaussian head gives ``p(x_t | z, x_{1:t-1})``.  ``h_t`` depends on ``z`` and ``x_{1:t-1}`` only:
this is the *decoder protocol* that :func:`pyrossm.evaluation.dependency_measures` reads.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .summary import sinusoidal_embedding

BACKBONES = ("lstm", "transformer")
#: the smallest decoder standard deviation (in the data contract's scaled units)
MIN_SCALE = 1e-3


def check_backbone(backbone) -> str:
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
    return backbone


def _causal_mask(length, device):
    return torch.triu(torch.full((length, length), float("-inf"), device=device), diagonal=1)


def _transformer(hidden, num_layers, dropout):
    layer = nn.TransformerEncoderLayer(
        hidden,
        nhead=4,
        dim_feedforward=2 * hidden,
        dropout=dropout,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    return nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)


class SequenceEncoder(nn.Module):
    """``v = f_enc(X)``: a fixed-size summary of a (masked, possibly ragged) series.

    Each step's input is the zero-filled observation and its observed-mask.  LSTM: the state
    after the last observed step.  Transformer: the mean of the outputs over the observed steps
    (sinusoidal positions, padding beyond a series' length masked out of the attention).

    :param int obs_dim: ``D``.  :param int hidden_dim: ``H``.  :param int out_dim: width of ``v``.
    :param str backbone: ``"lstm"`` or ``"transformer"``.  :param int num_layers: layers.
    :param float dropout: dropout rate.
    """

    def __init__(self, obs_dim, hidden_dim=128, out_dim=128, backbone="lstm", num_layers=1, dropout=0.1):
        super().__init__()
        self.backbone = check_backbone(backbone)
        self.hidden_dim = hidden_dim
        self.input = nn.Linear(2 * obs_dim, hidden_dim)
        if backbone == "lstm":
            self.body = nn.LSTM(hidden_dim, hidden_dim, num_layers=num_layers, batch_first=True)
        else:
            self.body = _transformer(hidden_dim, num_layers, dropout)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden_dim, out_dim)

    def forward(self, x, mask):
        """
        :param x: ``(N, T, D)`` zero-filled observations.  :param mask: ``(N, T, D)`` bool.
        :returns: ``(N, out_dim)``.
        """
        n, t, _ = x.shape
        observed = mask.any(-1)  # (N, T)
        steps = torch.arange(t, device=x.device)
        lengths = torch.where(observed, steps + 1, 0).amax(-1).clamp(min=1)  # (N,)
        e = self.input(torch.cat([x * mask, mask.to(x.dtype)], -1))
        if self.backbone == "lstm":
            out = self.body(e)[0]
            pooled = out[torch.arange(n, device=x.device), lengths - 1]
        else:
            e = e + sinusoidal_embedding(steps, self.hidden_dim)
            padding = steps >= lengths.unsqueeze(-1)  # (N, T)
            out = self.body(e, src_key_padding_mask=padding)
            keep = (~padding).unsqueeze(-1).to(out.dtype)
            pooled = (out * keep).sum(1) / keep.sum(1)
        return self.output(self.dropout(pooled))


class AutoregressiveDecoder(nn.Module):
    r"""``p_gen(X | z) = prod_t N(x_t; mu(h_t), diag sigma(h_t)^2)`` with ``h_t = f_dec(x_0 = z,
    x_1, ..., x_{t-1})`` (Eq. 7; Appendix B).

    The input sequence is ``e_0 = A z`` and ``e_j = B x_j`` (``j >= 1``); with ``skip=True``
    ``C z`` is added to every ``e_j`` as well (skip connections of ``z`` into every step,
    Dieng et al., 2019).  LSTM: ``s_t`` is the state after ``e_0..e_{t-1}`` (Eq. 18, the latent
    as the first input).  Transformer: a causal self-attention stack over ``e_0..e_{t-1}`` with
    sinusoidal positions, ``s_{t-1}`` its output at position ``t - 1`` (Eq. 19).  Then
    ``h_t = W2 tanh(W1 s_t)`` and ``mu, sigma`` are linear in ``h_t`` (``sigma`` through a
    softplus, at least :data:`MIN_SCALE`).

    :param int obs_dim: ``D``.  :param int latent_dim: width of ``z``.
    :param int hidden_dim: ``H`` (also the width of ``h_t``).
    :param str backbone: ``"lstm"`` or ``"transformer"``.  :param bool skip: skip connections.
    :param int num_layers: layers.  :param float dropout: dropout rate.
    :param float input_dropout: the probability that an observed input ``x_j`` is replaced by 0
        during training (variable masking, "word dropout", Bowman et al., 2016).
    """

    def __init__(
        self,
        obs_dim,
        latent_dim,
        hidden_dim=128,
        backbone="lstm",
        skip=False,
        num_layers=1,
        dropout=0.1,
        input_dropout=0.0,
    ):
        super().__init__()
        self.backbone = check_backbone(backbone)
        self.obs_dim, self.latent_dim, self.hidden_dim = obs_dim, latent_dim, hidden_dim
        self.skip, self.input_dropout = bool(skip), float(input_dropout)
        self.latent_input = nn.Linear(latent_dim, hidden_dim)
        self.obs_input = nn.Linear(obs_dim, hidden_dim)
        self.skip_input = nn.Linear(latent_dim, hidden_dim, bias=False) if skip else None
        if backbone == "lstm":
            self.body = nn.LSTM(hidden_dim, hidden_dim, num_layers=num_layers, batch_first=True)
        else:
            self.body = _transformer(hidden_dim, num_layers, dropout)
        self.dropout = nn.Dropout(dropout)
        self.w1 = nn.Linear(hidden_dim, hidden_dim)
        self.w2 = nn.Linear(hidden_dim, hidden_dim)
        self.loc = nn.Linear(hidden_dim, obs_dim)
        self.raw_scale = nn.Linear(hidden_dim, obs_dim)

    def _inputs(self, z, x):
        """``(N, T, H)`` inputs ``e_0..e_{T-1}`` from ``z`` ``(N, M)`` and ``x`` ``(N, T, D)``."""
        prev = x[:, :-1]
        if self.training and self.input_dropout > 0:
            keep = torch.rand(prev.shape[:-1] + (1,), device=x.device) >= self.input_dropout
            prev = prev * keep
        e = torch.cat([self.latent_input(z).unsqueeze(1), self.obs_input(prev)], 1)
        if self.skip:
            e = e + self.skip_input(z).unsqueeze(1)
        return e

    def representation(self, z, x):
        """``h`` ``(N, T, H)``: ``h[:, t-1]`` is ``h_t``, a function of ``z`` and ``x[:, :t-1]`` only.

        :param z: ``(N, M)``.  :param x: ``(N, T, D)`` (zero-filled where missing; only
            ``x[:, :T-1]`` is read).
        """
        e = self._inputs(z, x)
        if self.backbone == "lstm":
            s = self.body(e)[0]
        else:
            t = e.shape[1]
            e = e + sinusoidal_embedding(torch.arange(t, device=e.device), self.hidden_dim)
            s = self.body(e, mask=_causal_mask(t, e.device), is_causal=True)
        return self.w2(torch.tanh(self.w1(self.dropout(s))))

    def distribution_parameters(self, h):
        """``(loc, scale)``, each ``(..., D)``, of ``p(x_t | ...)`` from ``h_t`` ``(..., H)``."""
        return self.loc(h), F.softplus(self.raw_scale(h)) + MIN_SCALE

    def forward(self, z, x):
        """``(loc, scale)`` of every step, each ``(N, T, D)``, teacher-forced on ``x``."""
        return self.distribution_parameters(self.representation(z, x))

    @torch.no_grad()
    def sample(self, z, length, generator=None):
        """Ancestral samples ``x_{1:T}`` ``(N, T, D)`` given ``z`` ``(N, M)``.

        The LSTM carries its state from step to step; the Transformer re-reads the prefix.
        """
        n = z.shape[0]
        out = z.new_zeros(n, length, self.obs_dim)
        if self.backbone == "lstm":
            e = self.latent_input(z).unsqueeze(1)
            extra = self.skip_input(z).unsqueeze(1) if self.skip else 0
            state = None
            for t in range(length):
                s, state = self.body(e + extra, state)
                loc, scale = self.distribution_parameters(self.w2(torch.tanh(self.w1(s[:, 0]))))
                out[:, t] = loc + scale * torch.randn(loc.shape, device=z.device, generator=generator)
                e = self.obs_input(out[:, t]).unsqueeze(1)
            return out
        for t in range(length):
            h = self.representation(z, out[:, : t + 1])[:, t]
            loc, scale = self.distribution_parameters(h)
            out[:, t] = loc + scale * torch.randn(loc.shape, device=z.device, generator=generator)
        return out
