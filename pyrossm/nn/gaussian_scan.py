r"""The compact smoothing guide's sequential sampling loop as one autograd function.

Sampling ``z_t = loc_t + scale_t * eps_t`` step by step through :class:`~pyrossm.nn.MLPGaussian`
(as :meth:`~pyrossm.models.encoder.SmoothingEncoder.stepper` does) records about a dozen small
operations per step, and on a CPU their autograd bookkeeping dominates a training step.
:func:`gaussian_scan` runs the same recursion without recording it and differentiates it by hand,
backwards through time; every parameter gradient is then one matrix product over all steps.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from .activations import ACTIVATIONS, check_activation

#: the activations as called per step (``torch.relu`` skips ``F.relu``'s wrapper: the loop is
#: bound by per-call overhead)
_ACTIVATIONS = {"relu": torch.relu, "silu": F.silu}


def _activation_grad(activation, pre, out):
    """``activation'(pre)`` from ``pre`` and ``out = activation(pre)``, elementwise."""
    if activation == "relu":
        return torch.sign(out)  # (pre > 0).to(dtype), in a fraction of the time
    s = torch.sigmoid(pre)
    return s * (1 + pre * (1 - s))


def _steps(x, *split):
    """``x`` ``(T, B, ...)`` as a list of its ``T`` steps, or of its last dim's parts' steps."""
    return [part.unbind(0) for part in x.split(split, -1)] if split else x.unbind(0)


def _recursion(base, weight, layers, head, activation, max_log_var, noise, order, save):
    """The forward recursion.  :returns: ``(z, loc, scale)``, each ``(T, B, M)``, and with
    ``save`` what backward needs: the padded samples (see below), each step's first-layer output
    ``(T, B, W)``, the other trunk layers' pre-activations (one ``(T, B, H)`` each) and the head's
    output ``(T, B, 2M)``.  Each step writes into slices of buffers made beforehand (one step's
    worth where nothing is saved): the per-step work is a dozen ATen calls and nothing else."""
    length, batch, m = noise.shape
    rows, width = base.shape[1:]
    repeats, act, keep = batch // rows, _ACTIVATIONS[activation], length if save else 1
    # every row's z_{-j}, ..., z_{T-1} side by side, the first j zero (padding): step t's history
    # z_{t-j:t-1}, flattened as the encoder's (B, j*M), is then a view
    zs = noise.new_zeros(batch, (length + order) * m)
    histories = zs.unfold(1, order * m, m).unbind(1)
    z = zs[:, order * m :].view(batch, length, m)
    firsts, heads = noise.new_empty(keep, batch, width), noise.new_empty(keep, batch, 2 * m)
    pres = [noise.new_empty(keep, batch, width - m) for _ in layers]
    loc, scale = noise.new_empty(length, batch, m), noise.new_empty(length, batch, m)
    first_steps, (pre_steps, skip_steps) = _steps(firsts), _steps(firsts, width - m, m)
    head_steps, (mean_steps, log_var_steps) = _steps(heads), _steps(heads, m, m)
    trunk = [(b, w.t(), _steps(p)) for (w, b), p in zip(layers, pres)]
    head_bias, head_weight = head[1], head[0].t()
    half, bound = noise.new_tensor(0.5 * max_log_var), noise.new_tensor(max_log_var)
    for t, (base_t, noise_t, z_t, loc_t, scale_t) in enumerate(
        zip(base.unbind(0), noise.unbind(0), z.unbind(1), loc.unbind(0), scale.unbind(0))
    ):
        k = t if save else 0
        if repeats > 1:
            base_t = base_t.expand(repeats, rows, width).reshape(batch, width)
        torch.addmm(base_t, histories[t], weight, out=first_steps[k])
        hidden = act(pre_steps[k])
        for b, w, pre in trunk:
            hidden = act(torch.addmm(b, hidden, w, out=pre[k]))
        torch.addmm(head_bias, hidden, head_weight, out=head_steps[k])
        # as MLPGaussian.finish and SmoothingPosterior.rsample: the same operations, the same floats
        torch.add(mean_steps[k], skip_steps[k], out=loc_t)
        torch.exp(half * torch.tanh(log_var_steps[k] / bound), out=scale_t)
        torch.add(loc_t, scale_t * noise_t, out=z_t)
    return (z.transpose(0, 1).contiguous(), loc, scale), [zs, firsts, *pres, heads]


class _GaussianScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, activation, max_log_var, order, base, weight, noise, head_weight, head_bias, *layer_params):
        layers = list(zip(layer_params[::2], layer_params[1::2]))
        (z, loc, scale), saved = _recursion(
            base, weight, layers, (head_weight, head_bias), activation, max_log_var, noise, order, save=True
        )
        ctx.meta = activation, max_log_var, order, base.shape[1]
        ctx.save_for_backward(scale, noise, weight, head_weight, *layer_params[::2], *saved)
        return z, loc, scale

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_z, grad_loc, grad_scale):
        activation, max_log_var, order, rows = ctx.meta
        scale, noise, weight, head_weight, *rest = ctx.saved_tensors
        num = (len(rest) - 3) // 2  # trunk layers after the first
        layer_weights, (zs, firsts, *trunk_pres, heads) = rest[:num], rest[num:]
        length, batch, m = noise.shape
        width = firsts.shape[-1]
        hidden = width - m
        # everything that does not depend on the recursion's gradient, for all t at once
        act = _ACTIVATIONS[activation]
        pres = [firsts[..., :hidden]] + trunk_pres  # (T, B, H) each: every trunk layer's input
        acts = [act(p) for p in pres]  # layer i's input; the head's is the last
        act_grads = [_steps(_activation_grad(activation, p, a)) for p, a in zip(pres, acts)]
        tanh = torch.tanh(heads[..., m:] / max_log_var)
        dscale = scale * (0.5 * max_log_var) * (1 - tanh * tanh) / max_log_var  # d scale / d log_var
        # d z_t / d (loc_t, log_var_t): (1, noise_t * dscale_t), (T, B, 2, M)
        dz = torch.stack([torch.ones_like(dscale), noise * dscale], dim=2)
        # each step's gradients w.r.t. the first layer's output (pre, skip) and the head's
        # (mean, log_var), laid out as (pre, skip = mean = loc, log_var), first those that come
        # straight from the outputs ...
        grads = grad_z.new_empty(length, batch, hidden + 2 * m)
        grad_first, grad_head = grads[..., :width], grads[..., hidden:]
        grad_head4 = grad_head.view(length, batch, 2, m)
        torch.add(grad_loc, grad_z, out=grad_head4[:, :, 0])
        torch.addcmul(grad_scale * dscale, grad_z, dz[:, :, 1], out=grad_head4[:, :, 1])
        # ... then, in the loop, what reaches z_t through the later steps' histories, collected
        # in the layout of _recursion's samples (so that step t's history gradient is a view)
        carry = grad_z.new_zeros(batch, length + order, 1, m)
        carry_steps = carry[:, order:].unbind(1)
        carry_histories = carry.view(batch, -1).unfold(1, order * m, m).unbind(1)
        grad_pres = [grad_z.new_empty(length, batch, hidden) for _ in layer_weights]
        trunk = list(zip(layer_weights, [_steps(g) for g in grad_pres], act_grads[1:]))[::-1]
        grad_first_steps, grad_head_steps, grad_head4_steps = _steps(grad_first), _steps(grad_head), _steps(grad_head4)
        grad_pre_steps, dz_steps, weight_t = _steps(grads[..., :hidden]), _steps(dz), weight.t()
        for t in reversed(range(length)):
            if t < length - 1:
                grad_head4_steps[t].addcmul_(carry_steps[t], dz_steps[t])
            g_hidden = grad_head_steps[t].mm(head_weight)
            for w, grad_pre, act_grad in trunk:
                g_hidden = torch.mul(g_hidden, act_grad[t], out=grad_pre[t]).mm(w)
            torch.mul(g_hidden, act_grads[0][t], out=grad_pre_steps[t])
            if t:
                carry_histories[t].addmm_(grad_first_steps[t], weight_t)

        # the parameters' gradients: one product over all (t, b) each
        needs = ctx.needs_input_grad
        grad_base = grad_weight = None
        if needs[3]:  # summed over the rows that share a base row
            grad_base = grad_first if batch == rows else grad_first.reshape(length, -1, rows, width).sum(1)
        if needs[4]:  # the histories, (T * B, j * M)
            history = zs.unfold(1, order * m, m)[:, :length].transpose(0, 1).reshape(-1, order * m)
            grad_weight = history.t().mm(grad_first.flatten(0, 1))
        pairs = [(grad_head, acts[num])] + list(zip(grad_pres, acts))
        params = []
        for i, (g, x) in enumerate(pairs):  # (weight, bias) of the head, then of each layer
            g, x = g.flatten(0, 1), x.flatten(0, 1)
            params += [g.t().mm(x) if needs[6 + 2 * i] else None, g.sum(0) if needs[7 + 2 * i] else None]
        return (None, None, None, grad_base, grad_weight, None, *params)


def gaussian_scan(base, weight, layers, head, activation, max_log_var, noise, order):
    r"""Samples ``z_t = loc_t + scale_t * noise_t``, ``t = 0 .. T-1``, through the compact Gaussian
    network (:class:`~pyrossm.nn.MLPGaussian`) whose inputs are fixed but for the history
    ``z_{t-j:t-1}`` of the samples before (zeros before ``t = 0``): with
    ``out_t = base_t + history_t @ weight`` split into the first hidden layer's pre-activation
    ``(B, H)`` and the skip ``(B, M)``, ``(loc_t, scale_t) = MLPGaussian.finish(pre, skip)``.

    The same function as the step loop, up to rounding, but one autograd node: its backward pass
    runs the recursion back in time by hand (the gradient reaching ``z_t`` through the later steps'
    histories) and then forms each parameter's gradient with one matrix product over all steps.
    Outside grad mode (or with no input that requires grad) nothing is kept for backward.

    :param base: ``(T, R, W)``, ``W = H + M``: each step's ``out_t`` with zero history; row ``b``
        of the batch reads row ``b mod R`` (``B`` a multiple of ``R``), so a base shared by leading
        sample dims is not repeated in memory.
    :param weight: ``(j * M, W)``, the history's weights (slots oldest first, as
        ``history.reshape(B, j * M)``).
    :param layers: ``(weight (H, H), bias (H,))`` of each trunk layer after the first.
    :param head: ``(weight (2M, H), bias (2M,))`` of the head (mean rows, then log-variance rows).
    :param str activation: ``"relu"`` or ``"silu"``.
    :param float max_log_var: the bound of the log-variance (see :class:`~pyrossm.nn.MLPGaussian`).
    :param noise: ``(T, B, M)`` standard normal draws.
    :param int order: ``j >= 1``.
    :returns: ``(z, loc, scale)``, each ``(T, B, M)``.
    """
    check_activation(activation)
    params = [p for layer in layers for p in layer]
    tensors = [base, weight, *head, *params]
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return _GaussianScan.apply(activation, max_log_var, order, base, weight, noise, *head, *params)
    with torch.no_grad():
        return _recursion(base, weight, list(layers), tuple(head), activation, max_log_var, noise, order, False)[0]


def mlp_gaussian_scan(net, base, weight, noise, order):
    """:func:`gaussian_scan` through the layers of ``net``, an :class:`~pyrossm.nn.MLPGaussian`
    (``base`` and ``weight`` from its ``input_terms`` and ``input_weights``)."""
    activation = next(name for name, (_, cls) in ACTIVATIONS.items() if isinstance(net.trunk[1], cls))
    layers = [(layer.weight, layer.bias) for layer in net.trunk[2::2]]
    return gaussian_scan(
        base, weight, layers, (net.head.weight, net.head.bias), activation, net.max_log_var, noise, order
    )
