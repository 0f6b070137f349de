"""The walk diagnostics of ``docs/experiments/scripts/walk_modes.py``: shares, offsets and widths
per mode, and the correlation that shows a latent copying the last observation."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "experiments" / "scripts"))

import walk_modes  # noqa: E402

from pyrossm.datasets.systems import get_system  # noqa: E402


def test_mode_statistics_of_known_draws():
    # two series, modes at -4 and +4; series 0: all draws at -3.5 (offset +0.5), series 1: half at
    # 4.0 and half at 4.2 (offset 0.1, sd 0.1) -- and nothing near its other mode
    means = np.array([[-4.0, 4.0], [-4.0, 4.0]])
    draws = np.stack([np.full(4, -3.5), np.array([4.0, 4.2, 4.0, 4.2])], axis=1)  # (S=4, N=2)
    (share0, offset0, sd0), (share1, offset1, sd1) = walk_modes.mode_statistics(draws, means)
    np.testing.assert_allclose(share0, [1.0, 0.0])
    np.testing.assert_allclose(share1, [0.0, 1.0])
    np.testing.assert_allclose(offset0[0], 0.5)
    np.testing.assert_allclose(offset1[1], 0.1, atol=1e-12)
    np.testing.assert_allclose(sd1[1], 0.1, atol=1e-12)
    assert np.isnan(offset0[1]) and np.isnan(offset1[0])


def _draws_file(tmp_path, copy_weight, num_series=128, num_draws=64, seed=0):
    """Draws of the bimodal walk's law given the true latent, each series' modes moved by
    ``copy_weight * 0.9`` times the last observation's noise (a latent that copies it)."""
    system = get_system("bimodal_walk")
    test, latent = system.simulate(num_series=num_series, length=32, seed=seed + 1, return_latent=True)
    law = system.one_step_law(latent, 31, test)
    noise = test["x"].values[:, 30] - latent["z"].values[:, 30]
    draws = law.sample(num_draws, np.random.default_rng(5)) + copy_weight * 0.9 * noise
    path = tmp_path / "draws.npz"
    np.savez(path, draws=draws.astype(np.float32))
    return path


@pytest.mark.parametrize("copy_weight, low, high", [(0.0, -0.35, 0.35), (1.0, 0.9, 1.0)])
def test_correlation_with_the_last_observation_noise(tmp_path, capsys, copy_weight, low, high):
    walk_modes.main([str(_draws_file(tmp_path, copy_weight)), "bimodal_walk", "--seed", "0"])
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if "noise at T-1" in row)
    corr = float(line.rsplit("=", 1)[1])
    assert low <= corr <= high, out
    shares = [float(row.split(":")[1].split("/")[0]) for row in out.splitlines()[1:3]]
    assert all(abs(share - 0.5) < 0.05 for share in shares), out
