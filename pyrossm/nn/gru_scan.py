r"""A multi-layer GRU over a whole sequence as one autograd function per layer.

PyTorch's CPU GRU records each step's operations for autograd, and a backward pass replays them
one by one; at a few dozen hidden units their bookkeeping outweighs the arithmetic (the encoder's
future summary, :class:`~pyrossm.nn.FutureSummary`, was the most expensive part of a DKF training
step).  :func:`gru_scan` runs the same recursion without recording it (six kernels a step: the
hidden product with the bias folded in, an addition and ``sigmoid``, ``addcmul`` and ``tanh``,
``lerp``) and differentiates it by hand, backwards through time (a concatenation, a product and
one matrix product a step); the weights' and biases' gradients are one product over all steps.
At batch 128 x 32 steps x 16 units, forward and backward took 3.6-4.1 ms against
:class:`torch.nn.GRU`'s 4.6-4.9 ms.  The equations are PyTorch's, so its parameters are used as
they are:

.. math::

    r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
    z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
    n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
    h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable
from torch.nn import functional as F


def _recursion(gi, w_hh, b_hh, reverse):
    """The forward recursion of one layer, time-major.

    :param gi: ``(T, N, 3H)``, the input's share of the gates, ``W_i x_t + b_i``.
    :returns: ``outputs (T, N, H)``, ``h_t`` at index ``t`` (a view of ``states``);
        ``states (T + 1, N, H + 1)``: ``h_t`` at index ``t + 1`` (``t`` when ``reverse``),
        the zero initial state at index 0 (``T``), and a last column of ones (so that one matrix
        product gives ``W_h h + b_h``); ``rz (T, N, 2H)`` (``r_t, z_t``), ``n (T, N, H)`` and
        ``gh (T, N, 3H)`` (``W_h h_{t-1} + b_h``).
    """
    length, batch, three_h = gi.shape
    h_dim = three_h // 3
    states = gi.new_empty(length + 1, batch, h_dim + 1)
    states[..., h_dim] = 1
    states[-1 if reverse else 0, :, :h_dim] = 0
    rz, n, gh = gi.new_empty(length, batch, 2 * h_dim), gi.new_empty(length, batch, h_dim), torch.empty_like(gi)
    outs, previous = _outputs_and_previous(states, reverse)
    steps = [gi[..., : 2 * h_dim], gi[..., 2 * h_dim :], gh, rz, n, outs[..., :h_dim], previous]
    steps = list(zip(*(x.unbind(0) for x in steps)))
    weight = torch.cat([w_hh.t(), b_hh.unsqueeze(0)])  # (H + 1, 3H)
    for gi_rz, gi_n, gh_t, rz_t, n_t, out_t, previous_t in reversed(steps) if reverse else steps:
        torch.mm(previous_t, weight, out=gh_t)
        torch.add(gi_rz, gh_t[:, : 2 * h_dim], out=rz_t).sigmoid_()
        torch.addcmul(gi_n, rz_t[:, :h_dim], gh_t[:, 2 * h_dim :], out=n_t).tanh_()
        torch.lerp(n_t, previous_t[:, :h_dim], rz_t[:, h_dim:], out=out_t)  # n + z (h - n)
    return outs[..., :h_dim], states, rz, n, gh


def _outputs_and_previous(states, reverse):
    """``(h_t, h_{t-1})`` of every step (``h_{t+1}`` when ``reverse``), each ``(T, N, H + 1)``
    (with :func:`_recursion`'s column of ones)."""
    return (states[:-1], states[1:]) if reverse else (states[1:], states[:-1])


class _GRULayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, reverse, gi, w_hh, b_hh):
        outputs, states, rz, n, gh = _recursion(gi, w_hh, b_hh, reverse)
        ctx.reverse = reverse
        ctx.save_for_backward(w_hh, states, rz, n, gh)
        return outputs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        w_hh, states, rz, n, gh = ctx.saved_tensors
        length, batch, h_dim = n.shape
        previous = _outputs_and_previous(states, ctx.reverse)[1]
        r, z = rz[..., :h_dim], rz[..., h_dim:]
        # what h_t's gradient is multiplied by to give those of (in this order) the hidden part's
        # r, z and n pre-activations (W_h h_{t-1} + b_h) and of h_{t-1} directly, for all steps
        local = n.new_empty(length, batch, 4 * h_dim)
        dr, dz, dn, dh = local.split(h_dim, dim=-1)
        dn_pre = (1 - z) * (1 - n * n)  # d h_t / d (n_t's pre-activation)
        torch.mul(dn_pre * gh[..., 2 * h_dim :], r * (1 - r), out=dr)
        torch.mul(previous[..., :h_dim] - n, z * (1 - z), out=dz)
        torch.mul(dn_pre, r, out=dn)  # the hidden part enters n's pre-activation times r_t
        dh.copy_(z)
        # the recursion backwards: dL/dh_t = grad_out_t + dL/dh_{t+1} . d h_{t+1} / d h_t
        grads = torch.empty_like(local)  # dL/d (hidden parts of r, z, n; h_{t-1} directly)
        weight = torch.cat([w_hh, torch.eye(h_dim, dtype=w_hh.dtype, device=w_hh.device)])  # (4H, H)
        grad_h = torch.empty_like(n).copy_(grad_out)  # each step's dL/dh_t, completed before it is read
        steps = list(zip(grad_h.unbind(0), local.unbind(0), grads.unbind(0)))
        steps = steps[::-1] if ctx.reverse else steps  # in the order the forward pass ran them
        for k in reversed(range(length)):
            g, local_t, grads_t = steps[k]
            torch.mul(local_t, torch.cat([g, g, g, g], dim=1), out=grads_t)
            if k:  # the step before: its h is this step's h_{t-1}
                steps[k - 1][0].addmm_(grads_t, weight)
        grad_gh = grads[..., : 3 * h_dim]
        needs = ctx.needs_input_grad
        grad_gi = grad_w = grad_b = None
        if needs[1]:  # the input's parts: the same but for n's, which enters without the factor r_t
            grad_gi = grad_gh.clone()
            torch.mul(grad_h, dn_pre, out=grad_gi[..., 2 * h_dim :])
        if needs[2] or needs[3]:  # one product: the column of ones gives the bias's gradient
            grad_wb = previous.flatten(0, 1).t().mm(grad_gh.flatten(0, 1))  # (H + 1, 3H)
            grad_w, grad_b = grad_wb[:h_dim].t(), grad_wb[h_dim]
        return None, grad_gi, grad_w, grad_b


def gru_scan(x, layers, reverse=False):
    r"""A multi-layer GRU from zero initial states, :class:`torch.nn.GRU`'s function, with a
    hand-written backward pass (see the module's docstring).

    :param x: ``(T, N, F)`` inputs, time-major.
    :param layers: per layer ``(w_ih (3H, F_l), w_hh (3H, H), b_ih (3H,), b_hh (3H,))``, as
        :attr:`torch.nn.GRU.all_weights` lists them (gates in the order ``r, z, n``).
    :param bool reverse: run from ``t = T-1`` down to 0 (``h_t`` then summarises ``x_{t:T}``),
        as :class:`torch.nn.GRU` on the time-flipped sequence, flipped back.
    :returns: the last layer's ``h_t``, ``(T, N, H)``.

    Outside grad mode (or with nothing that requires grad) nothing is kept for backward.
    """
    track = torch.is_grad_enabled()
    for w_ih, w_hh, b_ih, b_hh in layers:
        gi = F.linear(x, w_ih, b_ih)
        if track and (gi.requires_grad or w_hh.requires_grad or b_hh.requires_grad):
            x = _GRULayer.apply(reverse, gi, w_hh, b_hh)
        else:
            with torch.no_grad():
                x = _recursion(gi, w_hh, b_hh, reverse)[0]
    return x
