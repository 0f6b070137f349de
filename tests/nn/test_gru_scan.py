"""The hand-differentiated GRU (:func:`pyrossm.nn.gru_scan.gru_scan`): the values and gradients of
:class:`torch.nn.GRU` (both directions, one and several layers), gradcheck, partial requires-grad,
no_grad, and the encoder's future summary against the module run on the flipped sequence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pyrossm.nn import FutureSummary, sinusoidal_embedding
from pyrossm.nn.gru_scan import gru_scan

T, N, F, H = 6, 4, 3, 5


def reference(gru, x, reverse):
    """``nn.GRU`` (time-major) forwards, or on the time-flipped sequence flipped back."""
    return gru(x.flip(0))[0].flip(0) if reverse else gru(x)[0]


def problem(num_layers, seed=0, dtype=torch.double):
    torch.manual_seed(seed)
    gru = nn.GRU(F, H, num_layers=num_layers).to(dtype)
    x = torch.randn(T, N, F, dtype=dtype, requires_grad=True)
    weights = torch.randn(T, N, H, dtype=dtype)  # a loss sum(weights * out) that weighs every output
    return gru, x, weights


def grads(gru, x, out, weights):
    for p in [x, *gru.parameters()]:
        p.grad = None
    (weights * out).sum().backward()
    return [x.grad.clone()] + [p.grad.clone() for p in gru.parameters()]


@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("reverse", [False, True])
def test_values_and_gradients_are_nn_grus(num_layers, reverse):
    gru, x, weights = problem(num_layers)
    expected = reference(gru, x, reverse)
    expected_grads = grads(gru, x, expected, weights)
    out = gru_scan(x, gru.all_weights, reverse=reverse)
    assert out.shape == (T, N, H)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    for got, want in zip(grads(gru, x, out, weights), expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-11)


def test_float32_close_to_nn_gru():
    gru, x, weights = problem(2, dtype=torch.float32)
    expected = reference(gru, x, True)
    expected_grads = grads(gru, x, expected, weights)
    out = gru_scan(x, gru.all_weights, reverse=True)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    for got, want in zip(grads(gru, x, out, weights), expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reverse", [False, True])
def test_gradcheck(reverse):
    torch.manual_seed(1)
    length, batch, h = 4, 2, 3
    x = torch.randn(length, batch, 2, dtype=torch.double, requires_grad=True)
    layers = [
        [torch.randn(3 * h, 2, dtype=torch.double, requires_grad=True)]
        + [torch.randn(*shape, dtype=torch.double, requires_grad=True) for shape in [(3 * h, h), (3 * h,), (3 * h,)]],
        [
            torch.randn(*shape, dtype=torch.double, requires_grad=True)
            for shape in [(3 * h, h), (3 * h, h), (3 * h,), (3 * h,)]
        ],
    ]
    params = [p for layer in layers for p in layer]

    def f(x, *params):
        return gru_scan(x, [params[:4], params[4:]], reverse=reverse)

    assert torch.autograd.gradcheck(f, (x, *params))
    # once_differentiable: a second derivative is refused, not silently wrong
    with pytest.raises(RuntimeError, match="once_differentiable|double backward|differentiable"):
        out = f(x, *params)
        (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        g.sum().backward()


def test_partial_requires_grad():
    gru, x, weights = problem(1)
    # frozen weights: only the input's gradient
    for p in gru.parameters():
        p.requires_grad_(False)
    out = gru_scan(x, gru.all_weights, reverse=True)
    (weights * out).sum().backward()
    expected_x = x.grad.clone()
    x.grad = None
    (weights * reference(gru, x, True)).sum().backward()
    torch.testing.assert_close(expected_x, x.grad, rtol=0, atol=1e-11)
    # an input that needs no gradient: only the weights'
    for p in gru.parameters():
        p.requires_grad_(True)
    x0 = x.detach()
    (weights * gru_scan(x0, gru.all_weights, reverse=True)).sum().backward()
    got = [p.grad.clone() for p in gru.parameters()]
    gru.zero_grad()
    (weights * reference(gru, x0, True)).sum().backward()
    for g, p in zip(got, gru.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad, rtol=0, atol=1e-11)


def test_no_grad_keeps_nothing():
    gru, x, _ = problem(2)
    with torch.no_grad():
        out = gru_scan(x, gru.all_weights, reverse=True)
        expected = reference(gru, x, True)
    assert out.grad_fn is None and not out.requires_grad
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("num_layers", [1, 3])
def test_future_summary_is_the_backward_gru(num_layers):
    torch.manual_seed(2)
    summary = FutureSummary(obs_dim=2, covariate_dim=1, hidden_dim=H, num_layers=num_layers).double()
    x, cov = torch.randn(N, T, 2, dtype=torch.double), torch.randn(N, T, 1, dtype=torch.double)
    mask = torch.rand(N, T, 2) > 0.3
    weights = torch.randn(N, T, H, dtype=torch.double)
    out = summary(x, mask, cov)
    (weights * out).sum().backward()
    got = [p.grad.clone() for p in summary.parameters()]
    summary.zero_grad()
    # the module on the flipped sequence (the summary before the hand-differentiated loop)
    emb = torch.cat(
        [x, mask.double(), cov, sinusoidal_embedding(torch.arange(T), summary.time_dim).double().expand(N, T, -1)],
        dim=-1,
    )
    inputs = summary.project(emb).transpose(0, 1)
    expected = reference(summary.gru, inputs, True).transpose(0, 1)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    (weights * expected).sum().backward()
    for g, p in zip(got, summary.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad, rtol=0, atol=1e-11)
    # h_t depends on x_{t:T} only
    x2 = x.clone()
    x2[:, 3] += 1.0
    with torch.no_grad():
        moved = summary(x2, mask, cov) - summary(x, mask, cov)
    assert moved[:, 4:].abs().max() == 0 and moved[:, :4].abs().amax(dim=(0, 2)).min() > 0
