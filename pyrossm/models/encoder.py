"""The structured smoothing encoder ``q(z_t | z_{t-j:t-1}, x_{t:T}, u_{t-j:t})`` (Appendix H.4)."""

from __future__ import annotations

import torch
from torch import nn

from ..nn import SUMMARY_LAYERS, check_architecture, future_summary, gaussian_network
from ..nn.gaussian_scan import mlp_gaussian_scan


class SmoothingEncoder(nn.Module):
    """Future summary (backward GRU, or discounted averages) + autoregressive Context Producer
    with a Gaussian head.

    The Context Producer's input has ``j + 1`` slots: the projected future summary ``h_t`` at
    slot 0 and the history ``z_{t-j:t-1}`` at slots ``1..j`` (zero-padded for ``t <= j``).  Side
    information per slot: a role mask (0 = summary, 1 = history), a padding mask (1 = real) and
    the covariates (``u_t`` for the summary slot, ``u_{t-j:t-1}`` for the history slots).

    :param int obs_dim: ``D``.  :param int latent_dim: ``M``.  :param int order: ``j``.
    :param int covariate_dim: ``V``.  :param int summary_dim: ``C_summary``.
    :param summary_layers: the future summary's GRU layers (``None``: the architecture's, 3 for
        ``"paper"`` as in Table 1, 1 for ``"compact"``).
    :param str summary: the future summary, ``"gru"`` (default, :class:`~pyrossm.nn.FutureSummary`)
        or ``"decay"`` (:class:`~pyrossm.nn.DecaySummary`, no step loop; ``summary_layers`` does not
        apply).
    :param str activation: ``"silu"`` or ``"relu"`` (see :class:`~pyrossm.nn.ContextGaussian`).
    :param str architecture: ``"paper"`` (default, :class:`~pyrossm.nn.ContextGaussian`) or
        ``"compact"`` (:class:`~pyrossm.nn.MLPGaussian`, ``num_layers`` hidden layers of width
        ``hidden_dim``); see :mod:`pyrossm.nn.architecture`.
    """

    def __init__(
        self,
        obs_dim,
        latent_dim,
        order=1,
        covariate_dim=0,
        summary_dim=16,
        summary_layers=None,
        channels=16,
        num_layers=2,
        seq_dim=16,
        hidden_dim=16,
        time_mixer="conv",
        feature_mixer="conv",
        time_dim=8,
        activation="relu",
        architecture="paper",
        summary="gru",
    ):
        super().__init__()
        self.latent_dim, self.order, self.covariate_dim = latent_dim, order, covariate_dim
        if summary_layers is None:
            summary_layers = SUMMARY_LAYERS[check_architecture(architecture)]
        self.summary = future_summary(summary, obs_dim, covariate_dim, summary_dim, summary_layers, time_dim)
        self.summary_dim = summary_dim
        self.net = gaussian_network(
            architecture,
            summary_dim + latent_dim,
            order + 1,
            latent_dim,
            side_dim=2 + covariate_dim,
            seq_dim=seq_dim,
            channels=channels,
            num_layers=num_layers,
            hidden_dim=hidden_dim,
            time_mixer=time_mixer,
            feature_mixer=feature_mixer,
            activation=activation,
        )

    def summarize(self, x, mask, covariates):
        """``(N, T, D), (N, T, D), (N, T, V) -> h (N, T, C_summary)``."""
        return self.summary(x, mask, covariates)

    def step(self, history, pad_mask, summary, covariates):
        """Parameters of ``q(z_t | ...)``.

        :param history: ``(B, j, M)``.  :param pad_mask: ``(B, j)``.
        :param summary: ``(B, C_summary)``.  :param covariates: ``(B, j+1, V)`` = ``u_{t-j:t}``.
        :returns: ``(loc, scale)``, each ``(B, M)``.
        """
        return self.net(*self._inputs(history, pad_mask, summary, covariates))

    def _inputs(self, history, pad_mask, summary, covariates):
        """The network's ``(sequence (B, j+1, C+M), side (B, j+1, 2+V))`` of :meth:`step`."""
        b, j, m = history.shape
        slot0 = torch.cat([summary, summary.new_zeros(b, m)], dim=-1).unsqueeze(1)
        slots = torch.cat([history.new_zeros(b, j, self.summary_dim), history], dim=-1)
        seq = torch.cat([slot0, slots], dim=1)  # (B, j+1, C+M)
        role = torch.cat([history.new_zeros(b, 1), history.new_ones(b, j)], dim=1)
        pad = torch.cat([history.new_ones(b, 1), pad_mask], dim=1)
        cov = torch.cat([covariates[:, -1:, :], covariates[:, :-1, :]], dim=1)
        side = torch.cat([role.unsqueeze(-1), pad.unsqueeze(-1), cov], dim=-1)
        return seq, side

    def _linear_terms(self, summary, covariates, pad_masks):
        """What :meth:`stepper` and :meth:`scan` share: ``(base (T, *batch, W), weight (j*M, W),
        hidden)`` such that step ``t``'s first hidden pre-activation and skip are
        ``(base_t + history.reshape(B, j*M) @ weight).split([hidden, W - hidden], -1)``, ``batch``
        the broadcast batch of ``summary`` and ``covariates``; ``None`` where the network offers
        no such split (arguments as in :meth:`stepper`)."""
        if not hasattr(self.net, "input_terms"):
            return None
        j, m, c, v = self.order, self.latent_dim, self.summary_dim, self.covariate_dim
        length = summary.shape[-2]
        batch = torch.broadcast_shapes(summary.shape[:-2], covariates.shape[:-3])
        n = batch.numel()
        # the linear terms are sums of the inputs' shares: the bias, role and padding's depend on
        # t alone (the step's inputs with zero summary, history and covariates, (T, W)) ...
        zeros = summary.new_zeros(length, j + 1, c + m + v)
        pre, skip = self.net.input_terms(
            *self._inputs(zeros[:, 1:, :m], pad_masks.to(summary.dtype), zeros[:, 0, :c], zeros[..., :v])
        )
        hidden, width = pre.shape[-1], pre.shape[-1] + skip.shape[-1]
        fixed = torch.cat([pre, skip], dim=-1)
        # ... the summary's (slot 0's first C sequence entries) are one product, time-major ...
        summary = summary.expand(batch + summary.shape[-2:]).reshape(n, length, c).transpose(0, 1)
        base = (summary @ self.net.input_weights(range(c)).t()).add_(fixed.unsqueeze(1))  # (T, n, W)
        if v:  # ... and so are the covariates' (side information: u_t at slot 0, u_{t-j:t-1} after)
            covariates = covariates.expand(batch + covariates.shape[-3:]).reshape((n,) + covariates.shape[-3:])
            ordered = torch.cat([covariates[..., -1:, :], covariates[..., :-1, :]], dim=-2).flatten(-2)
            columns = [self.net.seq_width + s * (2 + v) + 2 + k for s in range(j + 1) for k in range(v)]
            weight = self.net.input_weights(columns)[:hidden].t()  # (j+1)*V -> hidden (the skip reads no side)
            base[..., :hidden] += ordered.transpose(0, 1) @ weight
        base = base.reshape((length,) + batch + (width,))
        # the history's entries in the flattened sequence: slots 1..j, after the summary's C
        slot = c + m
        columns = [(i + 1) * slot + c + k for i in range(j) for k in range(m)]
        weight = self.net.input_weights(columns).t()  # (j*M, hidden + M)
        return base, weight, hidden

    def stepper(self, summary, covariates, pad_masks, batch_shape):
        """:meth:`step` for every ``t`` of a trajectory sampled step by step, as a function
        ``(t, history (B, j, M)) -> (loc, scale)``; ``None`` where the network offers no shortcut
        (then call :meth:`step`).

        :param summary: ``(..., T, C_summary)``.  :param covariates: ``(..., T, j+1, V)``
            (``u_{t-j:t}`` for each ``t``).  :param pad_masks: ``(T, j)``.
        :param batch_shape: the batch the histories flatten (``B`` is its size), to which the
            batch dims of ``summary`` and ``covariates`` broadcast.

        With the compact network (:class:`~pyrossm.nn.MLPGaussian`) everything but the history
        enters its first layer and skip linearly, so that part is computed for all ``t`` in one
        call before the loop (over the batch of ``summary`` and ``covariates``, not yet broadcast
        to ``batch_shape``), and each step adds only the history's part (one matrix product): the
        same function, up to rounding, with a fraction of the per-step operations.
        """
        terms = self._linear_terms(summary, covariates, pad_masks)
        if terms is None:
            return None
        base, weight, hidden = terms
        j, m, width = self.order, self.latent_dim, base.shape[-1]
        base = base.unbind(0)
        batch_shape = torch.Size(batch_shape)
        b = batch_shape.numel()

        def step(t, history):
            base_t = base[t].expand(batch_shape + (width,)).reshape(b, width)
            out = torch.addmm(base_t, history.reshape(b, j * m), weight)
            return self.net.finish(*out.split([hidden, width - hidden], dim=-1))

        return step

    def scan(self, summary, covariates, pad_masks, batch_shape, noise):
        """A whole trajectory sampled as :meth:`stepper`'s loop would (``z_t = loc_t + scale_t *
        noise_t``, each step's history the samples before), fused into one autograd function
        (:func:`~pyrossm.nn.gaussian_scan.gaussian_scan`); ``None`` where the network offers no
        shortcut (the ``"paper"`` architecture).

        :param noise: ``(T, B, M)`` standard normal draws; the other arguments as in
            :meth:`stepper`.  :returns: ``(z, loc, scale)``, each ``(T, B, M)``.
        """
        terms = self._linear_terms(summary, covariates, pad_masks)
        if terms is None:
            return None
        base, weight, _ = terms
        length, width = base.shape[0], base.shape[-1]
        batch_shape, batch = torch.Size(batch_shape), base.shape[1:-1]
        if batch_shape[len(batch_shape) - len(batch) :] != batch:  # broadcast within: repeat the rows
            base = base.expand((length,) + batch_shape + (width,))
        # otherwise the leading dims of batch_shape share base's rows (gaussian_scan's b mod R)
        return mlp_gaussian_scan(self.net, base.reshape(length, -1, width), weight, noise, self.order)
