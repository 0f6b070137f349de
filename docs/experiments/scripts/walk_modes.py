#!/usr/bin/env python
"""Where a walk's 1-step draws go wrong: each mode's weight, place and width, and how the place
follows the last observation's noise.

Reads the ``(S, N)`` draws that ``benchmarks/defaults.py --keep-draws`` stored for one run,
simulates the run's test set again (seed + 1) and draws as many samples of the exact predictive
law.  Each draw goes to the nearest mode of the law given the true latent state (``0.9 z_{T-1}
+- 4`` on the bimodal walk); per mode and series: the share of draws, their mean offset from the
mode and their sd, for the model's draws and for the exact ones.  Then the model's offset error
(its per-series offset less the exact draws') against the observation noise of the context's last
two steps: a latent that copies the last observation, noise and all, shows as a correlation near 1
with ``x_{T-1} - z_{T-1}``.  Prints only::

    .venv/bin/python docs/experiments/scripts/walk_modes.py \\
        benchmarks/results/defaults/draws/<run key>.npz bimodal_walk --seed 0
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # run from a checkout

from pyrossm.datasets.systems import get_system  # noqa: E402

PARTICLES = 2048


def mode_statistics(draws, means):
    """Per mode ``c``: ``(share (N,), mean offset (N,), sd (N,))`` of the ``(S, N)`` draws nearest
    to ``means[:, c]`` (NaN where a series has no draw there)."""
    nearest = np.abs(draws[..., None] - means[None]).argmin(-1)
    stats = []
    for c in range(means.shape[1]):
        chosen = nearest == c
        offsets = np.where(chosen, draws - means[None, :, c], np.nan)
        with warnings_off():
            stats.append((chosen.mean(0), np.nanmean(offsets, 0), np.nanstd(offsets, 0)))
    return stats


@contextlib.contextmanager
def warnings_off():
    """Silences numpy's all-NaN slice warnings (a series with no draw near a mode)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("draws", help="a --keep-draws .npz of benchmarks/defaults.py")
    parser.add_argument("system", choices=["bimodal_walk", "trimodal_walk"])
    parser.add_argument("--seed", type=int, default=0, help="the run's --seed")
    parser.add_argument("--length", type=int, default=32, help="the run's --length")
    args = parser.parse_args(argv)
    draws = np.load(args.draws)["draws"]
    system = get_system(args.system)
    last = args.length - 1
    num_series = draws.shape[1]
    test, latent = system.simulate(num_series=num_series, length=args.length, seed=args.seed + 1, return_latent=True)
    means = np.asarray(system.one_step_law(latent, last, test).means)
    predictive = system.predictive_law(test, last, num_particles=PARTICLES, seed=args.seed)
    exact = predictive.sample(draws.shape[0], np.random.default_rng(args.seed))
    model_stats, exact_stats = mode_statistics(draws, means), mode_statistics(exact, means)
    print("mode: share model/exact (mean |diff| per series); offset model/exact (mean |diff|); sd model/exact")
    for c, (m, e) in enumerate(zip(model_stats, exact_stats)):
        print(
            f"{c}: {np.mean(m[0]):.3f}/{np.mean(e[0]):.3f} ({np.nanmean(np.abs(m[0] - e[0])):.3f}); "
            f"{np.nanmean(m[1]):+.3f}/{np.nanmean(e[1]):+.3f} ({np.nanmean(np.abs(m[1] - e[1])):.3f}); "
            f"{np.nanmedian(m[2]):.3f}/{np.nanmedian(e[2]):.3f}"
        )
    with warnings_off():
        error = np.nanmean(np.stack([m[1] - e[1] for m, e in zip(model_stats, exact_stats)]), 0)
    ok = np.isfinite(error)
    x, z = test["x"].values, latent["z"].values
    for lag in (1, 2):
        noise = x[:, last - lag] - z[:, last - lag]
        corr = np.corrcoef(error[ok], noise[ok])[0, 1]
        print(f"corr(offset error, observation noise at T-{lag}) = {corr:.3f}")


if __name__ == "__main__":
    main()
