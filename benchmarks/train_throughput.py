#!/usr/bin/env python
"""DKF training throughput: pyrossm's Pyro SVI step vs the same ELBO written in plain PyTorch.

Not a test: it prints figures.  Run from the repository root::

    .venv/bin/python benchmarks/train_throughput.py            # (= make bench)
    .venv/bin/python benchmarks/train_throughput.py --help

What it does, on the bimodal random walk of Sec. 4 of the DDSSM paper
(``z_t = 0.9 z_{t-1} + 4 s_t``, ``s_t`` uniform on {-1, +1}, ``z_0 = 0``,
``x_t = z_t + N(0, 0.2)`` with 0.2 a variance; standardised before training):

1. Builds one :class:`pyrossm.models.DKF` (paper architecture: VHP init, channels 16, hidden 16).
2. **Equivalence check.**  Computes, from the same parameters, minibatch and RNG seed,
   (a) the loss of pyrossm's trainer -- ``pyrossm.inference.elbo_terms(model.model, model.guide,
   ...)`` divided by the batch size -- and (b) the loss of a hand-written pure-PyTorch ELBO that
   calls the *same* submodules (``model.encoder``, ``model.transition``, ``model.emission``,
   ``model.init``) with no Pyro tracing (for DDSSM the transition term is the diffusion bound of
   every window, all ``S_k`` draws, in one denoiser call, as in pyrossm); prints both, asserts
   they agree to 1e-4 (relative), and also compares the gradients of every parameter.
3. **Throughput.**  Times ``--steps`` optimisation steps (after ``--warmup`` steps) of
   (a) :class:`pyrossm.inference.Trainer` ``.fit`` (``progress=False``) and
   (b) the pure-PyTorch loop (loss + backward + the same gradient clipping + the same AdamW).
   Both start from the same initial parameters.
4. **Scaling.**  Cost of one training step of (a) (and of (b) for reference) as the series
   length ``T`` grows (16, 32, 64, 128 by default; 1 warm-up + 8 timed steps each).  For DDSSM
   the table also times the *model side* alone (the prior's log-density of a fixed trajectory,
   forward + backward): it is one denoiser call whatever ``T``, so its cost per time step must
   stay flat (no Python loop over t).

Timing: (a) and (b) run on two copies of the same initial model (own optimisers), interleaved in
rounds of a few steps so background load hits both alike; figures use the median step.  One
torch thread by default (``--threads 0`` keeps torch's default).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import pyro  # noqa: E402

from pyrossm.distributions import window_log_prob  # noqa: E402  (plain torch)
from pyrossm.inference import AnnealedELBO, AnnealingSchedule, Callback, Trainer, TrainerConfig, elbo_terms  # noqa: E402
from pyrossm.models import DDSSM, DKF  # noqa: E402

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


# ------------------------------------------------------------------------------------------ data
def bimodal_data(num_series, length, seed, device):
    """``(x, mask, u)`` of shapes ``(N, T, 1)``, ``(N, T, 1)`` bool, ``(N, T, 0)``; x standardised.

    Uses :func:`pyrossm.datasets.bimodal_random_walk` when it imports, else the same recursion
    written here with numpy.
    """
    source = "pyrossm.datasets.bimodal_random_walk"
    try:
        from pyrossm.datasets import bimodal_random_walk

        x = np.asarray(bimodal_random_walk(num_series=num_series, length=length, seed=seed)["x"].values)
    except Exception:  # noqa: BLE001  (module missing or being rewritten: fall back)
        source = "numpy (in this script)"
        rng = np.random.default_rng(seed)
        signs = 2.0 * rng.integers(0, 2, size=(num_series, length)) - 1.0
        noise = rng.normal(0.0, math.sqrt(0.2), size=(num_series, length))
        z = np.empty((num_series, length))
        prev = np.zeros(num_series)
        for t in range(length):
            prev = 0.9 * prev + 4.0 * signs[:, t]
            z[:, t] = prev
        x = z + noise
    x = (x - x.mean()) / x.std()
    x = torch.as_tensor(x, dtype=torch.float32, device=device).unsqueeze(-1)
    mask = torch.ones_like(x, dtype=torch.bool)
    u = x.new_zeros(num_series, length, 0)
    return (x, mask, u), source


# ---------------------------------------------------------------------- (b) the pure-torch ELBO
def normal_log_prob(value, loc, scale):
    return -0.5 * ((value - loc) / scale) ** 2 - scale.log() - LOG_SQRT_2PI


def pure_torch_loss(model, x, mask, u, annealing, num_particles):
    """The annealed negative ELBO summed over series and averaged over particles, without Pyro.

    The random draws are made in the same order and with the same shapes as pyrossm's guide
    (one ``randn`` of shape ``(S, N, T, M)`` for the encoder noise, then the VHP auxiliary
    posterior's ``rsample``), so that with the same seed the two losses coincide.
    """
    enc, init = model.encoder, model.init
    j, m = model.order, model.latent_dim
    s = num_particles
    n, length, _ = x.shape
    v = u.shape[-1]
    b = s * n

    # guide: q(z_{1:T} | x) -- future summary, then z_t sequentially, reparameterised
    summary = enc.summarize(x, mask, u)  # (N, T, C)
    summary = summary.expand(s, *summary.shape).reshape(b, length, -1)
    u_pad = torch.cat([u.new_zeros(n, j, v), u], dim=1)  # (N, j+T, V)
    u_pad = u_pad.expand(s, *u_pad.shape).reshape(b, j + length, v)
    steps = torch.arange(length, device=x.device).unsqueeze(-1)
    pads = ((steps - j + torch.arange(j, device=x.device)) >= 0).to(x.dtype)  # (T, j)
    noise = torch.randn(s, n, length, m, dtype=x.dtype, device=x.device)
    history = x.new_zeros(b, j, m)  # left padding
    zs, log_q = [], 0.0
    for t in range(length):
        loc, scale = enc.step(history, pads[t].expand(b, j), summary[:, t], u_pad[:, t : t + j + 1])
        z_t = loc + scale * noise[:, :, t].reshape(b, m)
        log_q = log_q + normal_log_prob(z_t, loc, scale).sum(-1)
        zs.append(z_t)
        history = torch.cat([history[:, 1:], z_t.unsqueeze(1)], dim=1)
    z = torch.stack(zs, dim=1).reshape(s, n, length, m)
    log_q = log_q.reshape(s, n)

    # model: log p(z) (VHP init + all transitions in one call) and log p(x | z); the auxiliary
    # draw comes before the transitions' log-density, whose diffusion bound draws (k, eps) --
    # the order in which Pyro's trace evaluates them
    if init.auxiliary:
        q_aux = init.aux_posterior(z[..., :j, :], u[..., :j, :])
        z_aux = q_aux.rsample()  # (S, N, j, M)
        log_q_aux = normal_log_prob(z_aux, q_aux.base_dist.loc, q_aux.base_dist.scale).sum((-2, -1))
        log_p_aux = normal_log_prob(z_aux, torch.zeros_like(z_aux), torch.ones_like(z_aux)).sum((-2, -1))
        log_p_init = init.prior(u[..., :j, :], z_aux).log_prob(z[..., :j, :])
        rate_aux = log_p_aux - log_q_aux
    else:
        z_init = z[..., :j, :]
        log_p_init = normal_log_prob(z_init, torch.zeros_like(z_init), torch.ones_like(z_init)).sum((-2, -1))
        rate_aux = 0.0
    log_p = window_log_prob(model.transition, z, u, j)  # (S, N)
    log_lik = model.emission_dist(z, u).log_prob(x)  # (S, N, T, D)
    recon = torch.where(mask, log_lik, log_lik.new_zeros(())).sum()
    rate = (log_p_init + log_p - log_q + rate_aux).sum()
    return -(recon + annealing * rate) / s


class PureTorchTrainer:
    """The same optimisation step as :class:`~pyrossm.inference.Trainer`, around :func:`pure_torch_loss`."""

    def __init__(self, model, config: TrainerConfig):
        self.model, self.config = model, config
        groups = {k: ps for k, ps in model.parameter_groups().items() if ps}
        self.params = [p for ps in groups.values() for p in ps]
        self.optimizer = torch.optim.AdamW(
            [{"params": ps, "lr": config.learning_rate_of(k)} for k, ps in groups.items()],
            weight_decay=config.optimizer.weight_decay,
            fused=True,
        )
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step = 0

    def fit(self, data, num_steps):
        x, mask, u = data
        cfg, n = self.config, x.shape[0]
        batch = min(cfg.batching.batch_size or n, n)
        for _ in range(num_steps):
            idx = torch.randperm(n, generator=self.generator)[:batch].to(x.device)
            lam = cfg.objective.annealing(self.step)
            loss = pure_torch_loss(self.model, x[idx], mask[idx], u[idx], lam, cfg.objective.num_particles) / batch
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params, cfg.optimizer.clip_norm or float("inf"))
            self.optimizer.step()
            self.last_loss = float(loss.detach())
            self.step += 1


# ------------------------------------------------------------------------------------ helpers
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_config(args, num_steps):
    return TrainerConfig.from_dict(
        dict(
            num_steps=num_steps,
            batch_size=args.batch_size,
            num_particles=args.num_particles,
            progress=False,
            seed=args.seed,
            annealing=AnnealingSchedule(kind="constant", end=args.annealing),
        )
    )


def build_model(args, device, name):
    torch.manual_seed(args.seed)
    common = dict(
        obs_dim=1,
        latent_dim=args.latent_dim,
        order=args.order,
        init=args.init,
        channels=args.channels,
        hidden_dim=args.hidden_dim,
        architecture="paper",  # the paper's networks, as measured since 2026-11-23 (no longer the default)
        summary="gru",  # and its future summary
    )
    if name == "dkf":
        return DKF(**common).to(device)
    return DDSSM(
        **common,
        num_diffusion_steps=args.num_diffusion_steps,
        num_noise_draws=args.num_noise_draws,
        diffusion_channels=args.diffusion_channels,
        residual_transition=False,  # the paper's transition, as measured since 2026-11-23
        level_sampling="uniform",
        encoder_hidden_dim=None,
    ).to(device)


def describe(name, args):
    if name == "dkf":
        return (
            f"DKF(init={args.init!r}, channels={args.channels}, hidden_dim={args.hidden_dim}, "
            f"latent_dim={args.latent_dim}, order={args.order})"
        )
    return (
        f"DDSSM(init={args.init!r}, channels={args.channels}, hidden_dim={args.hidden_dim}, "
        f"latent_dim={args.latent_dim}, order={args.order}, K={args.num_diffusion_steps}, "
        f"S_k={args.num_noise_draws}, diffusion_channels={args.diffusion_channels})"
    )


def time_model_side(model, data, args, device, repeats):
    """Median seconds of the prior's transition log-density of a fixed trajectory, fwd + bwd.

    The trajectory is the data itself, standing in for a latent path ``(S, B, T, 1)``; this is
    the transition part of the ELBO (all windows in one call), isolated from the sequential guide.
    """
    x, _, u = (t[: args.batch_size] for t in data)
    z = x.expand(args.num_particles, *x.shape).contiguous()
    times = []
    for _ in range(repeats + 1):
        sync(device)
        start = time.perf_counter()
        window_log_prob(model.transition, z, u, model.order).sum().backward()
        sync(device)
        times.append(time.perf_counter() - start)
    model.zero_grad(set_to_none=True)
    return float(np.median(times[1:]))


class _StopAfter(Callback):
    """Ends a trainer's run after ``remaining`` more steps."""

    remaining = 0

    def on_step_end(self, trainer, row):
        self.remaining -= 1
        if self.remaining <= 0:
            trainer.request_stop()


class OursRunner:
    """(a): pyrossm's :class:`~pyrossm.inference.Trainer` (``progress=False``), continued ``k``
    steps at a time (a callback ends each call's run; the schedules are constant).

    Per-step times come from the trainer's own ``seconds`` column (wall clock since the start of
    each ``fit`` call, taken after the optimiser step), so they cover the whole step.
    """

    def __init__(self, model, data, args, device):
        self.data, self.device = data, device
        config = make_config(args, 10**9)
        objective = AnnealedELBO(model.model, model.guide, config.objective.annealing, config.objective.num_particles)
        self.stopper = _StopAfter()
        self.trainer = Trainer(objective, model.parameter_groups(), config, callbacks=[self.stopper])

    def make_args(self, idx):
        x, mask, u = self.data
        idx = idx.to(self.device)
        return x[idx], mask[idx], u[idx]

    def run(self, k):
        """Runs ``k`` steps; returns their durations in seconds."""
        first = len(self.trainer.rows)
        self.stopper.remaining = k
        self.trainer.fit(self.make_args, self.data[0].shape[0])
        secs = [0.0] + [row["seconds"] for row in self.trainer.rows[first:]]
        return [b - a for a, b in zip(secs[:-1], secs[1:])]

    @property
    def last_loss(self):
        return self.trainer.rows[-1]["loss"]


class PureRunner:
    """(b): :class:`PureTorchTrainer`, continued ``k`` steps at a time, each step timed."""

    def __init__(self, model, data, args, device):
        self.data, self.device = data, device
        self.trainer = PureTorchTrainer(model, make_config(args, 0))

    def run(self, k):
        out = []
        for _ in range(k):
            sync(self.device)
            start = time.perf_counter()
            self.trainer.fit(self.data, 1)
            sync(self.device)
            out.append(time.perf_counter() - start)
        return out

    @property
    def last_loss(self):
        return self.trainer.last_loss


def compare(model, data, args, device, warmup, steps, round_size=5):
    """Times ``steps`` steps of (a) and of (b), interleaved in rounds of ``round_size`` steps.

    Each runs on its own copy of ``model`` (identical parameters, its own optimiser), so the two
    optimisers never touch the same tensors; interleaving spreads any background load evenly.
    :returns: ``{"a": (step_seconds, last_loss), "b": ...}``.
    """
    runners = {
        "a": OursRunner(copy.deepcopy(model), data, args, device),
        "b": PureRunner(copy.deepcopy(model), data, args, device),
    }
    times = interleaved(runners, warmup, steps, round_size)
    return {name: (times[name], r.last_loss) for name, r in runners.items()}


def interleaved(runners, warmup, steps, round_size):
    """Step durations of each runner (``run(k)`` -> ``k`` seconds), after ``warmup`` steps each,
    timed in interleaved rounds of ``round_size`` steps so background load hits all alike.
    :returns: ``{name: [seconds per step]}``."""
    for r in runners.values():
        if warmup:
            r.run(warmup)
    times = {name: [] for name in runners}
    done = 0
    while done < steps:
        k = min(round_size, steps - done)
        for name, r in runners.items():
            times[name] += r.run(k)
        done += k
    return times


def check_equivalence(model, data, args):
    """Same parameters, batch and seed: (a) pyrossm's loss and gradients vs (b) the pure-torch ones."""
    x, mask, u = (t[: args.batch_size] for t in data)
    lam, s, batch = args.annealing, args.num_particles, x.shape[0]
    params = dict(model.named_parameters())

    pyro.set_rng_seed(args.seed)
    loss_a, _ = elbo_terms(model.model, model.guide, x, mask, u, annealing=lam, num_particles=s)
    loss_a = loss_a / batch
    model.zero_grad(set_to_none=True)
    loss_a.backward()
    grads_a = {k: p.grad.detach().clone() for k, p in params.items() if p.grad is not None}

    pyro.set_rng_seed(args.seed)
    loss_b = pure_torch_loss(model, x, mask, u, lam, s) / batch
    model.zero_grad(set_to_none=True)
    loss_b.backward()
    grads_b = {k: p.grad.detach().clone() for k, p in params.items() if p.grad is not None}
    model.zero_grad(set_to_none=True)

    a, b = loss_a.item(), loss_b.item()
    rel = abs(a - b) / max(abs(a), 1e-12)
    if set(grads_a) != set(grads_b):
        raise AssertionError(f"different parameters received gradients: {set(grads_a) ^ set(grads_b)}")
    grad_rel = max(float((grads_a[k] - grads_b[k]).norm() / grads_a[k].norm().clamp_min(1e-12)) for k in grads_a)
    print(f"  (a) pyrossm elbo_terms loss / batch : {a:.8f}")
    print(f"  (b) pure-PyTorch loss / batch       : {b:.8f}")
    print(f"  relative difference                 : {rel:.2e}   (must be <= 1e-4)")
    print(f"  gradients: {len(grads_a)} parameter tensors, max relative L2 difference {grad_rel:.2e}")
    if not rel <= 1e-4:  # explicit raises: `python -O` strips asserts
        raise AssertionError(f"losses differ: {a} vs {b} (relative {rel:.3g})")
    if not grad_rel <= 1e-3:
        raise AssertionError(f"gradients differ (max relative L2 difference {grad_rel:.3g})")


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def table(rows, header):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = "  " + "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    print(line.format(*header))
    print("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        print(line.format(*r))


def run_model(name, data, args, device):
    """Sections 1-3 of the module docstring for one model (``"dkf"`` or ``"ddssm"``)."""
    model = build_model(args, device, name)
    num_params = sum(p.numel() for p in model.parameters())
    print(f"\n=== {describe(name, args)}, {num_params} parameters")
    print("\n1. Same ELBO? (same parameters, first minibatch, seed)")
    check_equivalence(model, data, args)
    if args.check_only:
        return

    print(
        f"\n2. Throughput (T = {args.length}; (a) and (b) interleaved in rounds of 5 steps, "
        f"each on its own copy of the initial model)"
    )
    res = compare(model, data, args, device, args.warmup, args.steps)
    rows, med = [], {}
    for key, label in [("a", "(a) pyrossm SVITrainer"), ("b", "(b) pure PyTorch")]:
        secs, loss = res[key]
        med[key], mean = float(np.median(secs)), float(np.mean(secs))
        rows.append(
            [
                label,
                f"{1 / med[key]:.2f}",
                f"{args.batch_size / med[key]:.0f}",
                f"{1e3 * med[key]:.1f}",
                f"{1e3 * mean:.1f}",
                f"{1e3 * min(secs):.1f}",
                f"{loss:.3f}",
            ]
        )
    table(rows, ["", "steps/s", "seqs/s", "ms/step", "mean ms", "min ms", "last loss"])
    ratio = med["a"] / med["b"]
    print(f"  (steps/s, seqs/s and ms/step from the median step; seqs/s = steps/s x batch {args.batch_size})")
    print(f"  ratio (a)/(b) time per step: {ratio:.2f}x   (goal <= 1.3x: {'met' if ratio <= 1.3 else 'NOT met'})")

    lengths = [int(v) for v in args.scaling_lengths.split(",") if v.strip()]
    if not lengths:
        return
    print(
        f"\n3. Cost of one training step vs series length T (batch {args.batch_size}, "
        f"{args.num_series} series; 1 warm-up + {args.scaling_steps} timed steps each, median)"
    )
    rows, base = [], None
    for length in lengths:
        data_t, _ = bimodal_data(args.num_series, length, args.seed, device)
        res = compare(model, data_t, args, device, 1, args.scaling_steps, round_size=4)
        ms_a, ms_b = (1e3 * float(np.median(res[k][0])) for k in ("a", "b"))
        ms_model = 1e3 * time_model_side(model, data_t, args, device, args.scaling_steps)
        base = base or ms_a
        rows.append(
            [
                length,
                f"{ms_a:.1f}",
                f"{ms_a / length:.2f}",
                f"{ms_a / base:.2f}",
                f"{args.batch_size * 1e3 / ms_a:.0f}",
                f"{ms_b:.1f}",
                f"{ms_a / ms_b:.2f}",
                f"{ms_model:.1f}",
                f"{ms_model / length:.3f}",
            ]
        )
    table(
        rows,
        [
            "T",
            "(a) ms/step",
            "(a) ms per t",
            f"(a) vs T={lengths[0]}",
            "(a) seqs/s",
            "(b) ms/step",
            "(a)/(b)",
            "model side ms",
            "model ms per t",
        ],
    )
    print("  (model side = transition log-density of all T - j windows, forward + backward, one call)")


# --------------------------------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--models", nargs="+", choices=("dkf", "ddssm"), default=["dkf", "ddssm"], help="models to benchmark"
    )
    p.add_argument("--steps", type=int, default=30, help="timed optimisation steps")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before timing")
    p.add_argument("--batch-size", type=int, default=128, help="series per minibatch")
    p.add_argument("--num-series", type=int, default=1024, help="series in the data set")
    p.add_argument("--length", type=int, default=32, help="series length T")
    p.add_argument("--num-particles", type=int, default=1, help="vectorised ELBO particles S")
    p.add_argument("--channels", type=int, default=16, help="context channels C")
    p.add_argument(
        "--hidden-dim", type=int, default=16, help="hidden_dim (MLP width, GRU width and Context Producer seq_dim)"
    )
    p.add_argument("--latent-dim", type=int, default=1, help="latent dimension M")
    p.add_argument("--order", type=int, default=1, help="Markov order j")
    p.add_argument("--init", choices=("vhp", "normal"), default="vhp", help="initial-state prior")
    p.add_argument("--num-diffusion-steps", type=int, default=128, help="DDSSM diffusion steps K")
    p.add_argument("--num-noise-draws", type=int, default=2, help="DDSSM noise draws S_k per transition")
    p.add_argument("--diffusion-channels", type=int, default=16, help="DDSSM denoiser channels")
    p.add_argument(
        "--annealing",
        type=float,
        default=0.5,
        help="constant rate weight lambda (not 1, so the check exercises the scaling)",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads; 0 keeps torch's default (one per core). 1 by default: "
        "these small ops gain little from intra-op threads, and on a shared machine "
        "two OpenMP threads competing with other processes make timings erratic",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the data, the model and the check")
    p.add_argument(
        "--scaling-lengths", default="16,32,64,128", help="comma-separated T for the scaling table ('' skips it)"
    )
    p.add_argument("--check-only", action="store_true", help="only run the equivalence check")
    p.add_argument("--scaling-steps", type=int, default=8, help="timed steps per length in the scaling table")
    args = p.parse_args(argv)

    for name in ("steps", "batch_size", "num_series", "length", "num_particles", "scaling_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda requested but torch.cuda.is_available() is False")
    device = torch.device(args.device)
    default_threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    print("pyrossm training throughput (" + ", ".join(m.upper() for m in args.models) + ")")
    print(f"  torch {torch.__version__}, pyro {pyro.__version__}, python {platform.python_version()}")
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(
        f"  device {device} ({dev_name}); torch threads {torch.get_num_threads()} "
        f"(--threads {args.threads}; torch default {default_threads}), "
        f"cpu count {os.cpu_count()}"
        + (f", load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "")
    )
    data, source = bimodal_data(args.num_series, args.length, args.seed, device)
    print(f"  data: bimodal random walk, {args.num_series} series x length {args.length} (from {source})")
    print(
        f"  step: batch {args.batch_size}, particles {args.num_particles}, lambda {args.annealing}, "
        f"AdamW lr 1e-3 wd 0.01, grad clip 10; {args.warmup} warm-up + {args.steps} timed steps"
    )
    for name in args.models:
        run_model(name, data, args, device)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(
        f"\n  total {time.perf_counter() - t0:.0f} s"
        + (
            f"; load average at end {load[0]:.2f} on {os.cpu_count()} cpus "
            f"(> cpus means other processes competed for the CPU: figures are noisy)"
            if load
            else ""
        )
    )


if __name__ == "__main__":
    main()
