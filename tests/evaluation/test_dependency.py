"""Dependency measures (posterior-stability paper, Eq. 10, Proposition 3.3): completeness for random
decoders, the closed form of a linear decoder, signs, the Dataset and the fit-level function."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pyrossm
from pyrossm.data import windows
from pyrossm.evaluation import dependency_matrix, dependency_measures
from pyrossm.evaluation.dependency import quadrature
from pyrossm.nn import AutoregressiveDecoder


@pytest.mark.parametrize("backbone", ["lstm", "transformer"])
@pytest.mark.parametrize("skip", [False, True])
def test_measures_sum_to_one_for_random_decoders(backbone, skip):
    """Proposition 3.3: sum_j m_{t,j} = 1 for every sample and t, up to the quadrature error."""
    torch.manual_seed(0)
    dec = AutoregressiveDecoder(obs_dim=3, latent_dim=5, hidden_dim=16, backbone=backbone, skip=skip).eval().double()
    with torch.no_grad():
        for p in dec.parameters():
            p.mul_(2.0)  # a more nonlinear network than the default init
    z, x = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 9, 3, dtype=torch.float64)
    m = dependency_matrix(dec.representation, z, x, num_points=128).numpy()
    assert m.shape == (6, 9, 9)
    sums = np.nansum(m, axis=-1)
    np.testing.assert_allclose(sums, 1.0, atol=1e-4)
    # causality: sources j >= t are NaN, all others finite
    future = np.arange(9)[None, :] >= np.arange(1, 10)[:, None]
    assert np.isnan(m[:, future]).all() and np.isfinite(m[:, ~future]).all()
    assert np.allclose(m[:, 0, 0], 1.0, atol=1e-4)  # h_1 depends on z alone


def test_linear_decoder_has_the_closed_form():
    """h_t = a_t z + sum_{j<t} B_{t,j} x_j + c: IG is exact, m_{t,j} = <B_{t,j} x_j, d_t> / |d_t|^2
    with d_t = h_t - h~_t = a_t z + sum_j B_{t,j} x_j."""
    g = torch.Generator().manual_seed(1)
    T, D, M, H = 5, 2, 3, 4
    a = torch.randn(T, H, M, generator=g)
    B = torch.randn(T, T, H, D, generator=g)
    c = torch.randn(H, generator=g)

    def representation(z, x):
        out = torch.einsum("thm,bm->bth", a, z) + c
        for t in range(T):
            for j in range(1, t + 1):  # h_{t+1} reads x_1..x_t = x[:, 0..t-1]
                out[:, t] = out[:, t] + x[:, j - 1] @ B[t, j].T
        return out

    z, x = torch.randn(2, M, generator=g), torch.randn(2, T, D, generator=g)
    m = dependency_matrix(representation, z, x, num_points=2).numpy()
    for b in range(2):
        for t in range(T):
            parts = [a[t] @ z[b]] + [B[t, j] @ x[b, j - 1] for j in range(1, t + 1)]
            d = sum(parts)
            expected = [float(p @ d / (d @ d)) for p in parts]
            np.testing.assert_allclose(m[b, t, : t + 1], expected, rtol=1e-5, atol=1e-6)


def test_negative_impact_is_signed():
    """h_2 = 2 z - x_1 at z = x_1 = 1: z contributes 2, x_1 contributes -1 (sum 1)."""

    def representation(z, x):
        return torch.stack([z[:, 0], 2 * z[:, 0] - x[:, 0, 0]], dim=1).unsqueeze(-1)

    m = dependency_matrix(representation, torch.ones(1, 1), torch.ones(1, 2, 1), num_points=4).numpy()
    np.testing.assert_allclose(m[0, 1, :2], [2.0, -1.0], atol=1e-6)


def test_quadrature_integrates_polynomials_exactly():
    nodes, weights = quadrature(4)
    assert np.isclose((weights * nodes**7).sum(), 1 / 8) and np.isclose(weights.sum(), 1.0)
    with pytest.raises(ValueError, match="num_points"):
        quadrature(0)


@pytest.fixture(scope="module")
def small_fit():
    ds = windows(pyrossm.datasets.stock(), 12, stride=24)
    return pyrossm.fit(
        "latent_diffusion",
        ds,
        num_steps=3,
        batch_size=32,
        progress=False,
        seed=0,
        hidden_dim=8,
        latent_dim=4,
        diffusion_steps=20,
        prior_widths=[8, 4],
    ), ds


def test_dependency_measures_of_a_fit(small_fit):
    res, ds = small_fit
    out = dependency_measures(res, num_samples=7, length=6, num_points=8, seed=3)
    assert dict(out.sizes) == {"time": 6, "source": 6}
    assert list(out["time"].values) == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(out["global"].values, out["m"].values[:, 0])
    np.testing.assert_allclose(out["local"].values[1:], np.diag(out["m"].values)[1:])  # m[t, t-1]
    assert np.isnan(out["local"].values[0]) and np.isnan(out["m"].values[0, 1])
    assert out.attrs["num_samples"] == 7 and out.attrs["max_completeness_error"] < 1e-3
    assert (out["global_se"].values[1:] > 0).all()
    again = dependency_measures(res, num_samples=7, length=6, num_points=8, seed=3)
    assert out.equals(again)  # the seed reproduces
    assert not out.equals(dependency_measures(res, num_samples=7, length=6, num_points=8, seed=4))
    on_data = dependency_measures(res, ds, num_samples=5, num_points=8)
    assert on_data.attrs["num_samples"] == 5 and on_data.sizes["time"] == 12


def test_dependency_measures_rejects_bad_input(small_fit):
    res, _ = small_fit
    with pytest.raises(ValueError, match="length must be a positive int"):
        dependency_measures(res, num_samples=3)
    with pytest.raises(ValueError, match="num_samples"):
        dependency_measures(res, num_samples=0, length=4)
    with pytest.raises(TypeError, match="seed"):
        dependency_measures(res, num_samples=2, length=4, seed="a")

    class NotADecoder:
        model = object()

    with pytest.raises(TypeError, match=r"representation\(z, x\)"):
        dependency_measures(NotADecoder(), num_samples=2, length=4)


def test_plot_dependency(small_fit):
    import matplotlib

    matplotlib.use("Agg")
    from pyrossm.evaluation import plot_dependency

    res, _ = small_fit
    ax = plot_dependency(dependency_measures(res, num_samples=4, length=5, num_points=4), title="x")
    assert len(ax.patches) == 10 and ax.get_title() == "x"
    with pytest.raises(ValueError, match="measures"):
        plot_dependency(res.history)
