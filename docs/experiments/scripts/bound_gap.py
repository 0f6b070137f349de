"""How loose the diffusion bound is for sharp and for broad laws, with the exact denoiser.

``DiffusionTransition.log_prob`` is the negative of a bound (Eq. 29 / 52) on ``-log p(z | c)``.
Its gap ``E[bound] - H(p)`` depends on the noise schedule *and on the law*: if a schedule leaves a
larger gap for a sharp law than for a broad one, the ELBO is tilted towards broad transitions,
i.e. towards the noisy-copy latent the bimodal DDSSMs settle in (``bimodal_oracle.py``).

This script measures that tilt without any training.  The law is the bimodal transition's
departure from its mean, ``0.5 N(-a, tau^2) + 0.5 N(a, tau^2)`` in latent units, with the
jump ``a = 4 s`` and the width ``tau = w s`` for a data-unit width ``w`` and a latent scale ``s``
(latent units per data unit).  The denoiser is the exact posterior mean ``E[z^0 | z^0 + sigma
eps]``, so each term of the bound is at its minimum; the expectation over ``eps`` is by Monte
Carlo per step ``k`` (all ``K`` terms, no sampling of ``k``), in float64; ``H(p)`` by quadrature.

Per schedule it prints the gap for the noisy copy's width (0.60 data units) and for sharp widths,
and the per-step ELBO each solution then reaches (``docs/experiments/2026-11-30-bound-gap.md``, "How much the ELBO can
prefer a clean latent"): ``-1.61 - gap(0.60)`` for the noisy copy and, for a clean latent whose
guide noise of fresh sd ``w`` is carried along the path, ``-1.31 - 13.2 w^2 - gap(w)``, best over
``w`` and over the latent scale ``s``.  The clean latent wins when its figure is the larger.

    python docs/experiments/scripts/bound_gap.py                 # the table (about 4 minutes on one core)
    python docs/experiments/scripts/bound_gap.py --draws 4000    # quicker, noisier (about 0.02 nats)

Measured (20000 draws per step; ELBOs per step in data units, each at its best latent scale):

============================================  =========  ========  ==========  ==========
schedule                                      gap noisy  gap 0.05  ELBO noisy  ELBO clean
============================================  =========  ========  ==========  ==========
linear K=32, default betas (paper)            0.127      1.007     -1.737      -1.624 (s=10)
linear K=32, betas 1e-4..0.2 (cpu profile)    0.084      1.064     -1.694      -1.860
cosine K=32                                   0.094      0.961     -1.704      -1.790
karras K=32, sigma 0.002..80                  0.199      0.625     -1.809      -1.587 (s=10)
linear K=128, default betas                   0.027      0.188     -1.637      -1.419
karras K=128, sigma 0.002..80                 0.047      0.175     -1.657      -1.396
linear K=512, default betas                   0.005      0.090     -1.615      -1.347
karras K=512, sigma 0.002..80                 0.008      0.065     -1.618      -1.349
linear K=1000, default betas                  -0.001     0.069     -1.609      -1.322
============================================  =========  ========  ==========  ==========

(the gap columns at the noisy copy's best scale).  With K = 32 the bound is 0.6-1.1 nats looser
for a law 0.05 data units wide than for the noisy copy's 0.60: more than the 0.30 nats a step a
clean latent can gain, so the ELBO prefers the noisy copy at every latent scale a fit uses (the
clean latent wins only at ``s = 10``, jumps of +-40 latent units).  From K = 128 the gap for sharp
laws falls below 0.2 nats and the clean latent wins at moderate scales; with K = 512 or more the
bound is within 0.1 nats of the entropy for both.  Training costs the same for any K (``k`` is
drawn, not summed); only ancestral sampling grows with K, and DDIM's cost is set by its own
step count.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from pyrossm.diffusion import NoiseSchedule  # noqa: E402
from pyrossm.diffusion.preconditioning import karras_coefficients  # noqa: E402

NOISY_WIDTH = 0.60  # data units: sd of x_t - 0.9 x_{t-1} within a mode, sqrt(1.81 * 0.2)
SHARP_WIDTHS = (0.02, 0.05, 0.1, 0.2)
SCALES = (0.1, 0.2, 0.35, 0.6, 1.0, 2.0, 3.5, 6.0, 10.0)  # latent units per data unit
STEP = 4.0

SCHEDULES = {
    "linear K=32, default betas (paper)": dict(num_steps=32),
    "linear K=32, betas 1e-4..0.2 (cpu profile)": dict(num_steps=32, beta_start=1e-4, beta_end=0.2),
    "linear K=128, betas 1e-4..0.05": dict(num_steps=128, beta_start=1e-4, beta_end=0.05),
    "linear K=128, default betas": dict(num_steps=128),
    "cosine K=32": dict(num_steps=32, kind="cosine"),
    "karras K=32, sigma 0.002..80": dict(num_steps=32, kind="karras"),
    "karras K=32, sigma 0.005..20": dict(num_steps=32, kind="karras", sigma_min=0.005, sigma_max=20.0),
    "karras K=128, sigma 0.005..20": dict(num_steps=128, kind="karras", sigma_min=0.005, sigma_max=20.0),
    "karras K=128, sigma 0.002..80": dict(num_steps=128, kind="karras"),
    "linear K=512, default betas": dict(num_steps=512),
    "karras K=512, sigma 0.002..80": dict(num_steps=512, kind="karras"),
    "linear K=1000, default betas": dict(num_steps=1000),
}


def mixture_entropy(a, tau):
    """``H(0.5 N(-a, tau^2) + 0.5 N(a, tau^2))`` in nats, by quadrature on a fine grid."""
    half = a + 12 * tau
    grid = torch.linspace(-half, half, 400_001, dtype=torch.float64)
    logp = (
        torch.logaddexp(-((grid - a) ** 2) / (2 * tau**2), -((grid + a) ** 2) / (2 * tau**2))
        - math.log(2)
        - 0.5 * math.log(2 * math.pi * tau**2)
    )
    return float(-(logp.exp() * logp).sum() * (grid[1] - grid[0]))


def posterior_mean(y, sigma, a, tau):
    """``E[z^0 | z^0 + sigma eps = y]`` for the mixture; ``y`` and ``sigma`` broadcast."""
    var = tau**2 + sigma**2
    w_up = torch.sigmoid(2 * a * y / var)  # posterior weight of the +a component
    mean_up = (tau**2 * y + sigma**2 * a) / var
    mean_down = (tau**2 * y - sigma**2 * a) / var
    return w_up * mean_up + (1 - w_up) * mean_down


def expected_bound(schedule, a, tau, draws, generator):
    """``E[bound(z^0)]`` over ``z^0 ~`` the mixture, with the exact denoiser: the forward KL, the
    ``K`` weighted denoising terms (each by ``draws`` Monte-Carlo pairs) and the constant ``C``.

    :returns: the mean in nats (its Monte-Carlo error is about 0.01-0.03 at 20000 draws).
    """
    sign = torch.randint(0, 2, (draws,), generator=generator, dtype=torch.float64) * 2 - 1
    z0 = a * sign + tau * torch.randn(draws, generator=generator, dtype=torch.float64)
    sigmas = schedule.sigmas.double()
    weights = schedule.loss_weights.double()
    noise = torch.randn(schedule.num_steps, draws, generator=generator, dtype=torch.float64)
    y = z0 + sigmas[:, None] * noise  # (K, draws)
    _, c_out, _, _ = karras_coefficients(sigmas)
    err = (posterior_mean(y, sigmas[:, None], a, tau) - z0) ** 2 / c_out[:, None] ** 2
    per_draw = (weights[:, None] * err).sum(0)  # (draws,)
    total = per_draw + schedule.forward_kl(z0.unsqueeze(-1)) + schedule.constant_per_dim
    return float(total.mean())


def gap(schedule, width, scale, draws, generator):
    """``E[bound] - H`` for the law of data-unit width ``width`` at latent scale ``scale``."""
    a, tau = STEP * scale, width * scale
    return expected_bound(schedule, a, tau, draws, generator) - mixture_entropy(a, tau)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=20000, help="Monte-Carlo pairs per step k")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    gen = torch.Generator().manual_seed(args.seed)
    print(
        "gap = E[bound] - H(law) in nats per latent dimension, exact denoiser; "
        "widths in data units; best over latent scales " + ", ".join(map(str, SCALES))
    )
    head = f"{'schedule':<44} {'gap noisy':>9} " + " ".join(f"{'gap ' + str(w):>8}" for w in SHARP_WIDTHS)
    print(head + f" {'ELBO noisy':>10} {'ELBO clean':>10} {'clean w':>7}")
    for name, kwargs in SCHEDULES.items():
        schedule = NoiseSchedule(**kwargs)
        best_noisy = best_clean = -math.inf
        gaps_at_best = None
        for scale in SCALES:
            noisy = gap(schedule, NOISY_WIDTH, scale, args.draws, gen)
            sharp = [gap(schedule, w, scale, args.draws, gen) for w in SHARP_WIDTHS]
            elbo_noisy = -1.61 - noisy
            clean = [(-1.31 - 13.2 * w**2 - g, w) for w, g in zip(SHARP_WIDTHS, sharp)]
            elbo_clean, w_best = max(clean)
            if elbo_noisy > best_noisy:
                best_noisy, gaps_at_best = elbo_noisy, (noisy, sharp, scale)
            if elbo_clean > best_clean:
                best_clean, clean_w, clean_scale = elbo_clean, w_best, scale
        noisy, sharp, scale = gaps_at_best
        print(
            f"{name:<44} {noisy:9.3f} "
            + " ".join(f"{g:8.3f}" for g in sharp)
            + f" {best_noisy:10.3f} {best_clean:10.3f} {clean_w:7.2f}"
            + f"   (scales: noisy {scale}, clean {clean_scale})",
            flush=True,
        )


if __name__ == "__main__":
    main()
