"""The diffusion transition alone: how sharp a bimodal conditional law can it learn?

The DDSSM's 1-step predictive on the bimodal random walk is wider than the exact law
(``bimodal.py``: mode sd about 2x the exact 0.447).  This script separates the diffusion core from
the rest of the model: it trains ``pyrossm.models.DiffusionDynamics`` alone, by its own bound
(``diffusion_bound``, the transition term of the DDSSM's ELBO), on exact transition pairs
``(z_{t-1}, z_t)`` of the walk ``z_t = 0.9 z_{t-1} +- 4`` -- rescaled to the latent scale a fitted
DDSSM uses and blurred by Gaussian jitter of sd ``--jitter`` (what the guide's draws add) -- with
the trainer's recipe (AdamW, clipping at 10, cosine learning-rate decay to 3%).  It then samples
``z_t`` for nine fixed ``z_{t-1}`` and reports, per context, the within-mode sd of the samples
against the data's own (``jitter * sqrt(1 + 0.81)``), the bias of the modes' means and the share
of samples between the modes.  No encoder, emission or guide is involved, so a too-wide result
here is the diffusion core's.

    python benchmarks/diffusion_core.py                      # the DDSSM paper's parameterisation
    python benchmarks/diffusion_core.py --residual last      # diffuse z_t - z_{t-1}
    python benchmarks/diffusion_core.py --residual linear    # diffuse z_t - (a z_{t-1} + b), a, b learned
    python benchmarks/diffusion_core.py --beta-end 0.3       # stop the noise levels at sigma_K = 15
    python benchmarks/diffusion_core.py --schedule karras    # sigma 0.002 .. 80, dense at low noise
    python benchmarks/diffusion_core.py --steps 200          # smoke run
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from pyrossm.models import DiffusionDynamics

DECAY, STEP = 0.9, 4.0
RESIDUAL = {"none": False, "last": True, "linear": "linear"}
LATENT_SCALE = 3.0  # x units per latent unit in a fitted CPU-profile DDSSM (data sd 8.5 x slope ~0.35)


def transition_pairs(num_series, rng, jitter, burn_in=9, length=31):
    """``(z_{t-1}, z_t)`` pairs of the walk in latent units, each state blurred by ``N(0, jitter^2)``.

    :returns: ``history (P, 1, 1)``, ``target (P, 1)`` float32 tensors, ``P = num_series * length``.
    """
    z = np.zeros(num_series)
    states = []
    for _ in range(burn_in + length + 1):
        z = DECAY * z + STEP * rng.choice([-1.0, 1.0], size=num_series)
        states.append(z)
    states = np.stack(states[burn_in:], axis=1) / LATENT_SCALE
    states = states + jitter * rng.standard_normal(states.shape)
    prev, nxt = states[:, :-1].reshape(-1), states[:, 1:].reshape(-1)
    return (torch.tensor(prev, dtype=torch.float32)[:, None, None], torch.tensor(nxt, dtype=torch.float32)[:, None])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64, help="series per step (x 31 pairs)")
    parser.add_argument("--num-diffusion-steps", type=int, default=32)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--num-noise-draws", type=int, default=4)
    parser.add_argument("--num-sampling-steps", type=int, default=16, help="DDIM steps")
    parser.add_argument("--jitter", type=float, default=0.03, help="sd of the blur, latent units")
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument(
        "--residual",
        default="none",
        choices=["none", "last", "linear"],
        help="diffuse z_t (none), z_t - z_{t-1} (last) or z_t - learned a z_{t-1} + b (linear)",
    )
    parser.add_argument(
        "--beta-end", type=float, default=None, help="last beta of the linear schedule (default min(20 / K, 0.999))"
    )
    parser.add_argument(
        "--beta-start", type=float, default=None, help="first beta of the linear schedule (default 0.1 / K)"
    )
    parser.add_argument("--schedule", default="linear", choices=["linear", "cosine", "karras"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    dynamics = DiffusionDynamics(
        1,
        1,
        0,
        num_diffusion_steps=args.num_diffusion_steps,
        channels=args.channels,
        num_layers=3,
        num_noise_draws=args.num_noise_draws,
        sampler="ddim",
        num_sampling_steps=args.num_sampling_steps,
        residual=RESIDUAL[args.residual],
        beta_end=args.beta_end,
        beta_start=args.beta_start,
        schedule=args.schedule,
    )
    optimizer = torch.optim.AdamW(dynamics.parameters(), lr=args.learning_rate, weight_decay=0.01)
    decay = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * min(s / args.steps, 1.0)))
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {vars(args)}")
    start = time.perf_counter()
    for _ in range(args.steps):
        history, target = transition_pairs(args.batch_size, rng, args.jitter)
        # the transition's own log_prob is the bound; the same call the DDSSM's ELBO makes
        dist = dynamics(history, torch.zeros(len(target), 2, 0))
        loss = -dist.log_prob(target).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dynamics.parameters(), 10.0)
        optimizer.step()
        decay.step()
    train_s = time.perf_counter() - start
    with torch.no_grad():
        history, target = transition_pairs(512, rng, args.jitter)
        # the transition's own bound, with 64 noise draws per pair for a steady estimate
        bound = dynamics(history, torch.zeros(len(target), 2, 0))
        bound.num_noise_draws = 64
        held_out = float(-bound.log_prob(target).mean())
        contexts = torch.linspace(-2.5, 2.5, 9)
        draws = 4000
        start = time.perf_counter()
        z = (
            dynamics(contexts.repeat_interleave(draws)[:, None, None], torch.zeros(9 * draws, 2, 0))
            .sample()[:, 0]
            .reshape(9, draws)
        )
        sample_s = time.perf_counter() - start
        if dynamics.shift is not None:
            print(
                f"learned linear mean: a = {dynamics.shift.linear.weight.item():.4f}, "
                f"b = {dynamics.shift.linear.bias.item():.4f} (the walk's a = {DECAY})"
            )
    jump = z - DECAY * contexts[:, None]
    step = STEP / LATENT_SCALE
    upper = jump > 0
    sd = [0.5 * (jump[i][upper[i]].std() + jump[i][~upper[i]].std()).item() for i in range(9)]
    bias = [
        0.5 * ((jump[i][upper[i]].mean() - step).abs() + (jump[i][~upper[i]].mean() + step).abs()).item()
        for i in range(9)
    ]
    data_sd = args.jitter * math.sqrt(1 + DECAY**2)
    print(
        f"trained {args.steps} steps in {train_s:.0f} s; held-out bound on -log p {held_out:.4f} nats per pair; "
        f"sampled {9 * draws} in {sample_s:.1f} s"
    )
    print(f"{'z_(t-1)':>8s} {'mode sd':>8s} {'/ data':>7s} {'bias':>7s}")
    for c, s, b in zip(contexts.tolist(), sd, bias):
        print(f"{c:8.2f} {s:8.4f} {s / data_sd:7.2f} {b:7.4f}")
    print(
        f"data within-mode sd {data_sd:.4f}; median sampled {np.median(sd):.4f} "
        f"({np.median(sd) / data_sd:.2f}x); median bias {np.median(bias):.4f}; share between the modes "
        f"{float((jump.abs() < step / 2).float().mean()):.4f}; upper share {float(upper.float().mean()):.3f}"
    )


if __name__ == "__main__":
    main()
