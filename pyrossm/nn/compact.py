"""The ``"compact"`` architecture's networks: plain MLPs in place of the paper's Context Producers
and CSDI denoiser, with the same call signatures (see :mod:`pyrossm.nn.architecture`).

The paper's networks lift every scalar input to ``seq_dim x channels`` (16 x 16) activations at
every window position and layer, so even a one-dimensional latent costs about 256 floats per
position and layer and a training step is compute-bound
(``docs/experiments/2026-11-23-throughput.md``).  These MLPs read the flattened inputs directly.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from .activations import activation_function, activation_module
from .denoiser import DiffusionEmbedding


def _trunk(in_dim: int, hidden_dim: int, num_layers: int, activation: str) -> nn.Sequential:
    """``num_layers`` hidden layers ``Linear -> activation`` of width ``hidden_dim``."""
    layers, width = [], in_dim
    for _ in range(num_layers):
        layers += [nn.Linear(width, hidden_dim), activation_module(activation)]
        width = hidden_dim
    return nn.Sequential(*layers)


def _check_layers(num_layers) -> int:
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
    return num_layers


class MLPGaussian(nn.Module):
    """``(sequence, side, extra) -> (mean, scale)`` of a diagonal Gaussian: an MLP over the
    flattened inputs, a drop-in for :class:`~pyrossm.nn.ContextGaussian` (same call signature).

    The flattened sequence ``(L * in_dim)``, side information ``(L * E)`` and extra vector feed
    ``num_layers`` hidden layers of width ``hidden_dim``; one linear layer gives the mean and the
    log-variance, the latter softly bounded to ``[-max_log_var, max_log_var]`` by a scaled
    ``tanh`` as in :class:`~pyrossm.nn.GaussianHead`.  As in :class:`~pyrossm.nn.ContextGaussian`, a
    bias-free linear skip from the raw sequence and extra vector is added to the mean, so the
    network contains the linear-Gaussian model as a special case.

    :param int in_dim: width of each input step.  :param int seq_len: sequence length ``L``.
    :param int out_dim: Gaussian dimension.
    :param int side_dim: width ``E`` of the per-step side information (0 for none).
    :param int extra_dim: width of the extra vector (0 for none).
    :param int hidden_dim: width of the hidden layers.  :param int num_layers: hidden layers.
    :param str activation: ``"relu"`` (default) or ``"silu"``.
    """

    def __init__(
        self,
        in_dim,
        seq_len,
        out_dim,
        side_dim=0,
        extra_dim=0,
        hidden_dim=16,
        num_layers=2,
        activation="relu",
        max_log_var=12.0,
    ):
        super().__init__()
        self.side_dim, self.out_dim, self.max_log_var = side_dim, out_dim, max_log_var
        self.seq_width, self.side_width = seq_len * in_dim, seq_len * side_dim  # of the flattened inputs
        self.trunk = _trunk(
            seq_len * (in_dim + side_dim) + extra_dim, hidden_dim, _check_layers(num_layers), activation
        )
        self.head = nn.Linear(hidden_dim, 2 * out_dim)
        self.skip = nn.Linear(seq_len * in_dim + extra_dim, out_dim, bias=False)

    def forward(self, seq, side=None, extra=None):
        """
        :param seq: ``(B, L, in_dim)``.
        :param side: ``(B, L, E)`` or None (zeros).
        :param extra: ``(B, extra_dim)`` or None.
        :returns: ``(mean, scale)``, each ``(B, out_dim)``.
        """
        return self.finish(*self.input_terms(seq, side, extra))

    def input_terms(self, seq, side=None, extra=None):
        """The network's two linear functions of its inputs: the first hidden layer's
        pre-activation ``(B, hidden_dim)`` and the skip ``(B, out_dim)`` (arguments as in
        :meth:`forward`, whose result is ``finish(*input_terms(...))``).

        Both are affine in the inputs, so a caller that varies only some sequence entries (the
        encoder's history, step after step) may evaluate them once with those entries at zero and
        add the entries' part with :meth:`input_weights` (exact up to rounding)."""
        flat = seq.flatten(1)
        inputs, raw = [flat], [flat]
        if self.side_dim:
            inputs.append(
                side.flatten(1) if side is not None else seq.new_zeros(seq.shape[0], seq.shape[1] * self.side_dim)
            )
        if extra is not None:
            inputs.append(extra)
            raw.append(extra)
        pre = self.trunk[0](torch.cat(inputs, dim=-1) if len(inputs) > 1 else flat)
        skip = self.skip(torch.cat(raw, dim=-1) if len(raw) > 1 else flat)
        return pre, skip

    def input_weights(self, columns):
        """The weights of the input entries ``columns`` in :meth:`input_terms`, indices into the
        flattened sequence, side information and extra vector side by side (``seq.flatten(1)``
        first, then ``side.flatten(1)``, then ``extra``): ``(hidden_dim + out_dim,
        len(columns))``, the pre-activation's rows first, then the skip's (zero for the side
        information, which the skip does not read)."""
        index = torch.as_tensor(columns, dtype=torch.long, device=self.skip.weight.device)
        skip = self.skip.weight
        if self.side_dim:  # aligned with the first layer's input: zeros for the side information
            skip = torch.cat(
                [skip[:, : self.seq_width], skip.new_zeros(self.out_dim, self.side_width), skip[:, self.seq_width :]], 1
            )
        return torch.cat([self.trunk[0].weight.index_select(1, index), skip.index_select(1, index)], dim=0)

    def finish(self, pre, skip):
        """``(mean, scale)`` from :meth:`input_terms`' pre-activation and skip."""
        hidden = pre
        for layer in itertools.islice(self.trunk, 1, None):
            hidden = layer(hidden)
        mean, log_var = self.head(hidden).split(self.out_dim, dim=-1)
        # exp(0.5 * max_log_var * tanh(log_var / max_log_var)); halving is exact, so one product
        # with max_log_var / 2 gives the same floats as two
        return mean + skip, torch.exp((0.5 * self.max_log_var) * torch.tanh(log_var / self.max_log_var))


class MLPDenoiser(nn.Module):
    r"""A conditional denoiser ``F(x_in, c_noise, (history, covariates))``: an MLP over the noisy
    target, the flattened history ``z_{t-j:t-1}`` and covariates ``u_{t-j:t}``, a drop-in for
    :class:`~pyrossm.nn.CSDIDenoiser` (same call signature, same preconditioning around it).

    The noise-level embedding (:class:`~pyrossm.nn.DiffusionEmbedding`, computed once per distinct
    level) modulates every hidden layer by a scale and a shift (FiLM, as in
    :class:`~pyrossm.nn.VectorDenoiser`: at low noise the target is about ``-eps``, which the
    network must read off its input scaled by the noise level -- a product that an added embedding
    hardly expresses).  The output layer starts at zero, so an untrained denoiser returns
    ``c_skip z^`` (as CSDI's).

    :param int latent_dim: ``M``.  :param int order: ``j``.  :param int covariate_dim: ``V``.
    :param int hidden_dim: width of the hidden layers.  :param int num_layers: hidden layers.
    :param str activation: ``"relu"`` (default) or ``"silu"``.
    :param int embedding_dim: sinusoidal width of the noise-level embedding.
    :param int diffusion_dim: width of the embedding's MLP.
    """

    def __init__(
        self,
        latent_dim,
        order=1,
        covariate_dim=0,
        hidden_dim=16,
        num_layers=3,
        activation="relu",
        embedding_dim=64,
        diffusion_dim=128,
    ):
        super().__init__()
        self.latent_dim, self.order, self.covariate_dim = latent_dim, order, covariate_dim
        self.hidden_dim, self.num_layers = hidden_dim, _check_layers(num_layers)
        self._act = activation_function(activation)
        in_dim = (order + 1) * latent_dim + (order + 1) * covariate_dim
        self.layers = nn.ModuleList(nn.Linear(in_dim if i == 0 else hidden_dim, hidden_dim) for i in range(num_layers))
        self.embedding = DiffusionEmbedding(embedding_dim, diffusion_dim)
        self.film = nn.Linear(diffusion_dim, 2 * hidden_dim * num_layers)
        self.output = nn.Linear(hidden_dim, latent_dim)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, x_in, c_noise, context):
        """
        :param x_in: ``(B, M)`` preconditioned noisy target ``c_in z^``.
        :param c_noise: ``(B,)``.
        :param context: ``(history (B, j, M), covariates (B, j+1, V))``.
        :returns: ``(B, M)``.
        """
        history, covariates = context
        h = torch.cat([x_in, history.flatten(1), covariates.flatten(1)], dim=-1)
        return self._from_first_layer(self.layers[0](h), c_noise)

    def conditioned(self, context, c_noise):
        """:meth:`forward` with its context fixed, at each of the given noise levels: the many
        calls of one reverse diffusion (:func:`~pyrossm.diffusion.level_denoiser`).  Computed
        once: the context's share of the first layer (the history's and covariates' columns and
        the bias), each level's FiLM scale and shift, and the later layers' weights and biases
        with them folded in (``s * (W h + b) + t = (s W) h + (s b + t)``); each call adds only the
        noisy target's ``M`` columns and runs the folded layers.  Equal to :meth:`forward` up to
        rounding.

        :param context: ``(history (B, j, M), covariates (B, j+1, V))``.
        :param c_noise: ``(K,)`` the noise levels of the calls.
        :returns: ``F(x_in (B, M), k) -> (B, M)``, the network at level ``c_noise[k]`` (``k`` an int).
        """
        history, covariates = context
        first, m = self.layers[0], self.latent_dim
        fixed = torch.cat([history.flatten(1), covariates.flatten(1)], dim=-1)
        base = nn.functional.linear(fixed, first.weight[:, m:], first.bias)  # (B, hidden)
        weight = first.weight[:, :m].t()  # (M, hidden)
        scale, shift = self._film(c_noise)  # (K, layers, hidden) each
        folded = [  # (K, hidden, hidden) weights, (K, hidden) biases
            (layer.weight.t() * scale[:, i, None, :], torch.addcmul(shift[:, i], layer.bias, scale[:, i]))
            for i, layer in enumerate(self.layers[1:], start=1)
        ]

        def network(x_in, k):
            inplace = not torch.is_grad_enabled()  # (SiLU's backward needs its input)
            h = self._act(torch.addcmul(shift[k, 0], torch.addmm(base, x_in, weight), scale[k, 0]), inplace=inplace)
            for weights, biases in folded:
                h = self._act(torch.addmm(biases[k], h, weights[k]), inplace=inplace)
            return self.output(h)

        return network

    def _film(self, levels):
        """FiLM ``(scale, shift)`` of each hidden layer at ``levels`` ``(U,)``: ``(U, layers, hidden)`` each."""
        film = self.film(self.embedding(levels)).view(-1, self.num_layers, 2, self.hidden_dim)
        return 1 + film[:, :, 0], film[:, :, 1]

    def _modulation(self, c_noise):
        """The FiLM ``(scales, shifts)`` of each hidden layer, each a tuple of ``num_layers``
        tensors ``(B, hidden)`` (``(1, hidden)`` where every row has the same level)."""
        # the noise level takes at most K distinct values (one while sampling): embed each once
        if bool((c_noise == c_noise[:1]).all()):
            levels, index = c_noise[:1], None
        else:
            levels, index = torch.unique(c_noise, return_inverse=True)
        scale, shift = self._film(levels)  # (U, layers, hidden) each
        if index is not None:  # (index_select and unbind: their backward passes write no zeros)
            scale, shift = scale.index_select(0, index), shift.contiguous().index_select(0, index)
        return scale.unbind(1), shift.unbind(1)

    def _from_first_layer(self, pre, c_noise):
        """The network after the first layer's affine map: ``pre`` ``(B, hidden)``, ``c_noise``
        ``(B,)`` -> ``(B, M)``."""
        scales, shifts = self._modulation(c_noise)
        h = self._act(torch.addcmul(shifts[0], pre, scales[0]))
        for i in range(1, self.num_layers):
            h = self._act(torch.addcmul(shifts[i], self.layers[i](h), scales[i]))
        return self.output(h)
