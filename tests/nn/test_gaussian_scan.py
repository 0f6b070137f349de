"""The fused sampling loop of the compact smoothing guide (:func:`pyrossm.nn.gaussian_scan.gaussian_scan`):
the same values and gradients as the plain step-by-step loop, gradcheck, partial requires-grad,
no_grad, and the guide's fused and per-step paths (:meth:`SmoothingEncoder.scan`) against each
other on DKF and DDSSM compact models."""

from __future__ import annotations

import pyro
import pytest
import torch
from pyro import poutine

from pyrossm.models import DDSSM, DKF
from pyrossm.nn.activations import activation_function
from pyrossm.nn.gaussian_scan import gaussian_scan

T, B, M, H = 5, 3, 2, 4
CASES = [(a, n, j) for a in ("relu", "silu") for n in (1, 2) for j in (1, 2)]
IDS = [f"{a}-layers{n}-j{j}" for a, n, j in CASES]


def inputs(num_layers, order, dtype, rows=B, seed=0):
    """``(base, weight, layers, head, noise)`` of a random problem (the tensors require grad)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=g, dtype=dtype)).requires_grad_()

    base = rand(T, rows, H + M)
    weight = rand(order * M, H + M, scale=0.7)
    layers = [(rand(H, H, scale=0.7), rand(H)) for _ in range(num_layers - 1)]
    head = (rand(2 * M, H, scale=0.7), rand(2 * M))
    noise = torch.randn(T, B, M, generator=g, dtype=dtype)
    return base, weight, layers, head, noise


def eager(base, weight, layers, head, activation, max_log_var, noise, order):
    """The plain loop (as SmoothingEncoder.stepper + SmoothingPosterior.rsample compute it)."""
    act, (length, batch, m) = activation_function(activation), noise.shape
    history = noise.new_zeros(batch, order, m)
    zs, locs, scales = [], [], []
    for t in range(length):
        base_t = base[t].expand(batch // base.shape[1], -1, -1).reshape(batch, -1)
        pre, skip = torch.addmm(base_t, history.reshape(batch, order * m), weight).split([H, m], -1)
        hidden = act(pre)
        for w, b in layers:
            hidden = act(torch.nn.functional.linear(hidden, w, b))
        mean, log_var = torch.nn.functional.linear(hidden, *head).split(m, -1)
        loc = mean + skip
        scale = torch.exp((0.5 * max_log_var) * torch.tanh(log_var / max_log_var))
        z = loc + scale * noise[t]
        zs.append(z)
        locs.append(loc)
        scales.append(scale)
        history = torch.cat([history[:, 1:], z.unsqueeze(1)], 1)
    return torch.stack(zs), torch.stack(locs), torch.stack(scales)


def flat(base, weight, layers, head):
    return [base, weight, *head, *(p for layer in layers for p in layer)]


@pytest.mark.parametrize("activation,num_layers,order", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_and_gradients_equal_the_eager_loop(activation, num_layers, order, dtype):
    base, weight, layers, head, noise = inputs(num_layers, order, dtype)
    args = (base, weight, layers, head, activation, 3.0, noise, order)
    fused, plain = gaussian_scan(*args), eager(*args)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    for a, b in zip(fused, plain):
        assert a.shape == (T, B, M)
        torch.testing.assert_close(a, b, **tol)
    cotangents = [torch.randn(T, B, M, dtype=dtype) for _ in range(3)]
    params = flat(base, weight, layers, head)
    g1 = torch.autograd.grad(fused, params, cotangents)
    g2 = torch.autograd.grad(plain, params, cotangents)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize("activation,num_layers,order", CASES, ids=IDS)
def test_gradcheck(activation, num_layers, order):
    base, weight, layers, head, noise = inputs(num_layers, order, torch.float64)
    n = len(layers)

    def f(base, weight, head_w, head_b, *params):
        layers = list(zip(params[:n], params[n:]))
        return gaussian_scan(base, weight, layers, (head_w, head_b), activation, 3.0, noise, order)

    params = [w for w, _ in layers] + [b for _, b in layers]
    assert torch.autograd.gradcheck(f, (base, weight, *head, *params))


@pytest.mark.parametrize("wanted", [(0, 3), (1, 4), (5,)], ids=["base+head_bias", "weight+layer", "layer_bias"])
def test_shared_base_rows_and_partial_requires_grad(wanted):
    # B = 3 R: row b reads base row b mod R; only the inputs `wanted` (indices into
    # (base, weight, head weight, head bias, layer weight, layer bias)) require grad
    base, weight, layers, head, _ = inputs(2, 2, torch.float64, rows=1)
    noise = torch.randn(T, 3, M, dtype=torch.float64)
    tensors = [x if i in wanted else x.detach() for i, x in enumerate(flat(base, weight, layers, head))]

    def f(*chosen):
        x = list(tensors)
        for i, c in zip(wanted, chosen):
            x[i] = c
        return gaussian_scan(x[0], x[1], [(x[4], x[5])], (x[2], x[3]), "silu", 3.0, noise, 2)

    chosen = [tensors[i] for i in wanted]
    fused = f(*chosen)
    plain = eager(tensors[0], tensors[1], [(tensors[4], tensors[5])], tensors[2:4], "silu", 3.0, noise, 2)
    for a, b in zip(fused, plain):
        torch.testing.assert_close(a, b)
    cotangents = [torch.randn(T, 3, M, dtype=torch.float64) for _ in range(3)]
    for a, b in zip(torch.autograd.grad(fused, chosen, cotangents), torch.autograd.grad(plain, chosen, cotangents)):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(f, chosen)


def test_no_grad_keeps_no_graph():
    base, weight, layers, head, noise = inputs(2, 1, torch.float32)
    with torch.no_grad():
        out = gaussian_scan(base, weight, layers, head, "relu", 3.0, noise, 1)
    assert all(x.grad_fn is None and not x.requires_grad for x in out)
    for a, b in zip(out, eager(base, weight, layers, head, "relu", 3.0, noise, 1)):
        torch.testing.assert_close(a, b)


# ------------------------------------------------------------------ the guide's two paths
def guide_run(model, args, fused, seed=3):
    """The guide's z and log q with the fused path (``fused``) or the per-step one, and the
    gradients of a loss through rsample w.r.t. the encoder's parameters."""
    encoder = model.encoder
    params = list(encoder.parameters())
    scan, calls = encoder.scan, []
    # the posterior falls back on the step loop where the encoder's scan returns None
    encoder.scan = (lambda *a: calls.append(scan(*a)) or calls[-1]) if fused else (lambda *a: None)
    try:
        pyro.set_rng_seed(seed)
        trace = poutine.trace(model.guide).get_trace(*args)
    finally:
        vars(encoder).pop("scan")
    assert len(calls) == fused and (not calls or calls[0] is not None)
    z = trace.nodes["z"]["value"]
    log_q = trace.nodes["z"]["fn"].log_prob(z)
    assert log_q is trace.nodes["z"]["fn"]._cache[1]  # the sampler's own density
    loss = (z**2).sum() + (z.sin() * log_q.unsqueeze(-1).unsqueeze(-1)).sum() - log_q.sum()
    return z, log_q, torch.autograd.grad(loss, params)


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("family", ["dkf", "ddssm"])
def test_fused_guide_equals_per_step_guide(family, order):
    torch.manual_seed(0)
    kw = dict(obs_dim=2, order=order, covariate_dim=1, architecture="compact", latent_dim=2)
    model = DKF(**kw) if family == "dkf" else DDSSM(**kw, num_diffusion_steps=4)
    n, length = 4, 7
    x = torch.randn(n, length, 2)
    mask = torch.rand(n, length, 2) > 0.2
    args = (x * mask, mask, torch.randn(n, length, 1))
    z1, q1, g1 = guide_run(model, args, fused=True)
    z2, q2, g2 = guide_run(model, args, fused=False)
    assert z1.shape == z2.shape == (n, length, 2) and q1.shape == (n,)
    torch.testing.assert_close(z1, z2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(q1, q2, rtol=1e-5, atol=1e-4)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # sampling under no_grad (forecasts) takes the fused path too, with leading sample dims
    pyro.set_rng_seed(1)
    s1 = model.sample_posterior(*args, 3)
    model.encoder.scan = lambda *a, **k: None
    pyro.set_rng_seed(1)
    s2 = model.sample_posterior(*args, 3)
    del model.encoder.scan
    assert s1.shape == (3, n, length, 2)
    torch.testing.assert_close(s1, s2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("covariate_dim", [0, 2])
@pytest.mark.parametrize("order", [1, 3])
def test_stepper_is_the_encoders_step(order, covariate_dim):
    """The linear terms computed once for all steps (:meth:`SmoothingEncoder.stepper`) give the
    network's own :meth:`SmoothingEncoder.step` at every ``t``, also for a batch that broadcasts
    the summary's (leading sample dims)."""
    torch.manual_seed(4)
    model = DKF(obs_dim=2, order=order, covariate_dim=covariate_dim, architecture="compact", latent_dim=2)
    encoder, n, length, m = model.encoder, 3, 6, 2
    summary = torch.randn(n, length, encoder.summary_dim)
    windows = torch.randn(n, length, order + 1, covariate_dim)
    pads = torch.rand(length, order) > 0.3
    shape = (2, n)
    step = encoder.stepper(summary, windows, pads, shape)
    for t in range(length):
        history = torch.randn(2 * n, order, m)
        loc, scale = step(t, history)
        expected = encoder.step(
            history, pads[t].float().expand(2 * n, order), summary[:, t].repeat(2, 1), windows[:, t].repeat(2, 1, 1)
        )
        torch.testing.assert_close(loc, expected[0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(scale, expected[1], rtol=1e-5, atol=1e-6)
