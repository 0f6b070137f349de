"""Which hidden units of a fitted bimodal model are dead: never positive for any input.

A unit followed by a ReLU that is negative for every input passes no gradient and never recovers.
When all units before a network's output projection die, that network returns a constant: for the
DDSSM's denoiser this means ``D = c_skip z^`` plus a constant, whose samples are unimodal -- the
transition "collapses" to the DKF's level (1-step JSD about 0.556) although the guide's latent
still has two modes.  ``docs/experiments/2026-11-30-dead-units.md`` has the measurements.

The script loads a fit saved by ``ddssm_ablation.py --save`` (or ``bimodal.py``), runs the ELBO of
the model/guide pair on the first ``--num-series`` training series of the bimodal benchmark
(``--num-particles`` guide draws; the transition's bound draws its noise levels as in training),
and prints, for each projection that feeds an activation, how many of its units were positive
for at least one input.  With ``--noise-levels`` it also runs the denoiser at every step ``k`` of
the schedule (its inputs: the guide's departures plus noise of that level), since training draws
only a few ``k`` per call.  With ``--retrain-transition N`` it trains the fitted transition
alone for ``N`` Adam steps on the guide's latents (all else frozen), then the same transition
with its denoiser re-initialised, printing the mean bound ``log_prob`` and the histogram of the
sampled departures: a denoiser with dead output units stays where it is, a fresh one learns the
two modes.

    python docs/experiments/scripts/dead_units.py FIT.pyrossm
    python docs/experiments/scripts/dead_units.py FIT.pyrossm --noise-levels --retrain-transition 400
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import pyrossm  # noqa: E402
from pyrossm.datasets import bimodal_random_walk  # noqa: E402
from pyrossm.diffusion.preconditioning import denoise  # noqa: E402
from pyrossm.inference import elbo_terms  # noqa: E402

#: names of the projections whose outputs go through an activation, by their last component
ACTIVATED = ("input", "post", "lift")


def activated_layers(model):
    """``{qualified name: module}`` of the projections followed by an activation: the denoiser's
    and the Context Producers' ``input`` / ``lift`` / ``post`` and every hidden layer of the
    Gaussian heads' MLPs (a Linear followed by a ReLU or SiLU inside an ``nn.Sequential``)."""
    layers = {}
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] in ACTIVATED and isinstance(module, torch.nn.Linear):
            layers[name] = module
        if isinstance(module, torch.nn.Sequential):
            children = list(module.named_children())
            for (first, layer), (_, act) in zip(children, children[1:]):
                if isinstance(layer, torch.nn.Linear) and isinstance(act, (torch.nn.ReLU, torch.nn.SiLU)):
                    layers[f"{name}.{first}"] = layer
    return layers


def count_alive(model, run):
    """Runs ``run()`` with hooks on :func:`activated_layers`; returns ``{name: (alive, width)}``."""
    positive, handles = {}, []
    for name, layer in activated_layers(model).items():

        def hook(module, inputs, output, name=name):
            seen = (output.detach() > 0).reshape(-1, output.shape[-1]).any(0)
            positive[name] = positive.get(name, torch.zeros_like(seen)) | seen

        handles.append(layer.register_forward_hook(hook))
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return {name: (int(seen.sum()), seen.numel()) for name, seen in positive.items()}


def print_counts(counts, indent=2):
    """One line per layer of :func:`count_alive`'s result, flagging layers with no live unit."""
    for name, (alive, width) in counts.items():
        flag = "   <- all dead" if alive == 0 else ""
        print(f"{' ' * indent}{name:<{50 - indent}} {alive:3d} of {width:3d}{flag}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("fit", help="a saved fit (FitResult.save)")
    parser.add_argument("--num-series", type=int, default=256)
    parser.add_argument("--num-particles", type=int, default=4)
    parser.add_argument(
        "--noise-levels", action="store_true", help="also run the denoiser at every step k of the schedule"
    )
    parser.add_argument(
        "--retrain-transition",
        type=int,
        default=0,
        metavar="N",
        help="train the transition alone for N steps, as fitted and re-initialised",
    )
    args = parser.parse_args(argv)
    res = pyrossm.load(args.fit)
    model = res.model
    data = bimodal_random_walk(num_series=args.num_series, length=32, seed=0)
    enc = res.contract.encode(data).to(res.device)
    tensors = (enc.filled_values, enc.mask, enc.covariates)
    torch.manual_seed(0)
    counts = count_alive(
        model, lambda: elbo_terms(model.model, model.guide, *tensors, num_particles=args.num_particles)
    )
    print(
        f"{args.fit}: units positive for at least one input ({args.num_series} series x "
        f"{args.num_particles} guide draws)"
    )
    print_counts(counts)
    transition = model.transition
    if not (args.noise_levels or args.retrain_transition) or not hasattr(transition, "schedule"):
        return
    # (z_{t-1}, z_t) pairs of guide draws, as order-1 transition contexts without covariates
    z = model.sample_posterior(*tensors, args.num_particles)  # (S, N, T, M)
    history = z[..., :-1, :].reshape(-1, 1, z.shape[-1])
    target = z[..., 1:, :].reshape(-1, z.shape[-1])
    cov = torch.zeros(len(history), 2, enc.covariates.shape[-1], device=res.device)
    if args.noise_levels:
        offset = transition(history, cov).offset()
        departure = target if offset is None else target - offset

        def every_level():
            for sigma in transition.schedule.sigmas:
                noisy = departure + sigma * torch.randn_like(departure)
                denoise(transition.network, noisy, sigma.expand(len(noisy)), (history, cov))

        counts = count_alive(transition.network, every_level)
        print(f"  denoiser at all {transition.schedule.num_steps} noise levels:")
        print_counts(counts, indent=4)
    if args.retrain_transition:
        print(f"  the transition alone, {args.retrain_transition} Adam steps on the guide's latents:")
        with torch.enable_grad():
            retrain_transition(transition, history, target, cov, args.retrain_transition)
            print("  the same with the denoiser re-initialised:")
            torch.manual_seed(0)
            transition.network.reset_parameters()
            retrain_transition(transition, history, target, cov, args.retrain_transition)


def retrain_transition(transition, history, target, cov, steps, lr=1e-2, batch=2048, seed=0):
    """Adam on ``-log_prob`` of the transition only; prints the bound and the sampled departures
    (from the first 2000 contexts) before and at four points of training."""
    gen = torch.Generator().manual_seed(seed)

    def report(tag):
        with torch.no_grad():
            h, c = history[:2000], cov[:2000]
            dist = transition(h, c)
            sample = dist.sample()
            offset = dist.offset()
            departure = (sample if offset is None else sample - offset).flatten()
            bound = transition(history[:4000], cov[:4000]).log_prob(target[:4000]).mean()
        counts = torch.histc(departure, bins=16).int().tolist()
        print(
            f"    {tag:<24} log_prob {bound:7.3f}; departures {float(departure.min()):.2f}.."
            f"{float(departure.max()):.2f}: {counts}",
            flush=True,
        )

    report("before")
    optimizer = torch.optim.Adam(transition.parameters(), lr=lr)
    for step in range(steps):
        index = torch.randint(0, len(history), (batch,), generator=gen)
        loss = -transition(history[index], cov[index]).log_prob(target[index]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (step + 1) % max(1, steps // 4) == 0:
            report(f"step {step + 1}")


if __name__ == "__main__":
    main()
