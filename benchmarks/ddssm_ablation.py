"""One DDSSM variant on the bimodal random walk: the cpu profile of ``bimodal.py`` plus overrides.

Fits the DDSSM with ``bimodal.fit_arguments("cpu", "DDSSM", steps)`` (the architecture and the
``ddssm-bimodal-cpu`` trainer preset stretched to ``--steps``) updated by ``--set`` (JSON values;
a trainer setting or a model option, by name), on the same
1024 training / 1024 validation series and seed as ``bimodal.py``, then scores the 1-step
predictive of ``x_32`` on the first ``--num-test`` test series (1024 draws each) by the JSD to the
exact law, with the mode diagnostics of ``bimodal.py``.  A quicker instrument than the full
benchmark for comparing settings (about 10 minutes per 3000 steps on one core; the profile's
18600 steps by default).

    python benchmarks/ddssm_ablation.py                                   # the profile as it is
    python benchmarks/ddssm_ablation.py --set lr_schedule='"constant"'    # without the decay
    python benchmarks/ddssm_ablation.py --steps 3000 --set seed=1
    python benchmarks/ddssm_ablation.py --steps 20 --num-test 8 --num-samples 64   # smoke run
    python benchmarks/ddssm_ablation.py --init-from FIT --steps 1800 --set ...      # train on

Measured on the 2-core machine (128 test series x 1024 draws, 3000 steps unless stated; one
run each, so differences below about 0.02 are within the scatter).  "The profile" in this table
and the notes under it is the cpu profile before it became the row "phase at lambda 1.75" (ReLU,
K = 32, betas 1e-4 .. 0.2, lambda 0.01 -> 1 in 200 steps; earlier still, without the linear mean
and those betas), run with ``--steps 3000`` unless stated:

============================================  =======  ============
variant                                       JSD      val ELBO
============================================  =======  ============
constant learning rates (the old profile)     0.154    3.8
cosine decay to 3% (the profile now)          0.107    5.7
constant, transition rate 3e-3                0.148    4.7
decay + EMA 0.999                             0.111    5.5
decay + K = 128                               0.120    11.1
decay, 6000 steps                             0.097    8.9
decay, training seed 1                        0.141    5.1
decay + annealing_end 1.25                    0.560    -22.5 (collapsed)
decay + diffusion_channels 32                 0.553    -21.6 (collapsed)
decay + residual_transition                   0.356    -11.7
decay + residual_transition, seed 1           0.557    -21.1 (collapsed)
decay + diffusion_beta_end 0.3                0.114    7.6
decay + diffusion_beta_end 0.2                0.122    6.4
decay + annealing "constant" (lambda = 1)     0.115    7.4
decay + encoder channels 16, hidden 16, 2 l.  0.139    5.6
decay + Table 3's learning-rate pattern       0.127    0.6
decay + schedule "karras" (sigma 0.002..80)   0.163    4.7
decay + residual_transition "linear"          0.120    4.4
decay + betas 1e-4 .. 0.2                     0.130    6.2
decay + "linear" + betas 1e-4 .. 0.2          0.091    7.7
the same, training seed 1                     0.117    10.0
the same, 6000 steps                          0.071    12.5
the same, 6000 steps, training seed 1         0.112    11.1
the same, clip_norm 1e9 (no clipping)         0.113    7.5
the same, order 4                             0.194    -0.4
"linear", K = 512 (default betas)             0.134    14.0
the same, annealing "constant"                0.557    -22.1 (collapsed)
the same, guide channels 16, hidden 16, 2 l.  0.078    15.8
the same, training seed 1                     0.556    -22.2 (collapsed)
the same guide, K = 128 (default betas)       0.078    13.2
the same, training seed 1                     0.556    -20.5 (collapsed)
the same, seed 1, transition rate 3e-3        0.131    12.0
the same, seed 0, transition rate 3e-3        0.091    13.0
the same, seed 2, transition rate 3e-3        0.072    14.9
the same, seed 1, lr_warmup_steps 300         0.558    -20.5 (collapsed)
the same guide, K = 128, activation "silu"    0.105    12.4
the same, training seed 1                     0.170    9.9
K = 32 profile, activation "silu"             0.118    7.5
the same, training seed 1                     0.105    11.9
"silu", K = 128 (the profile's annealing)     0.143    9.5
"silu", K = 128, annealing "constant"         0.115    11.8
"silu", K = 128, annealing_start 0.3          0.173    9.9
K = 32 profile, guide 16 / 16 / 2 l., seed 1  0.554    -19.7 (collapsed)
"silu", K = 128, piecewise lambda (see below)  0.075    12.8
the same, training seed 1                     0.076    14.1
the same, ending at lambda 1.25               0.081    12.4
the same, 6000 steps, phase to step 4800      0.041    15.7
the same, training seed 1                     0.042    16.4
the same (seed 0), phase at lambda 1.75       0.038    15.9
the same, training seed 1                     0.036    16.4
the same (seed 0), 9000 steps (knots x 1.5)   0.032    18.1
the same, training seed 1                     0.041    14.9
the same (6000), guide 16 / 16 / 2 l.         0.039    16.0
the same (small guide), phase 1.75 -> 2.25     0.037    15.9
the same, guide 16 / 16 / 2 l.                0.063    13.2
the 6000-step fit + a cycle (1800 steps)      0.031    18.2
+ a second cycle                              0.027    19.1
+ a third cycle                               0.024    19.8
+ a fourth cycle (restarts inside, see below)  0.026    19.4
the 6000-step fit + a phase at lambda 0.5      0.099    15.1
the profile (6 cycles, 16800 steps), seed 1   0.047    13.0
the same, keep_best, validate 300 (seed 1)     0.062    15.9 (kept step 5099)
keep_best by log score, validate 300, seed 0  0.022    18.0 (kept 14999; last 0.026)
the same, seed 1                              0.046    15.6 (kept 5399; last 0.083)
the same, seed 2                              0.019    20.2 (kept the last, 16799)
+ restart_from_best (the profile), seed 1     0.027    15.2 (kept the last; no collapse)
the same, seed 2                              0.025    19.0 (kept the last, 16799)
the same, seed 3                              0.020    22.8 (kept the last, 16799)
the same, the cycles' phase at 2.5, seed 0    0.021    18.2 (kept 14999)
the same, seed 1                              0.026    15.4 (kept the last, 16799)
the same, seed 2                              0.026    19.2 (kept 12899)
the same, seed 3                              0.019    23.0 (kept the last, 16799)
the table's fit + 1800 steps of guide only    0.025    19.8 (filter sd 0.247: no gain)
seed 0's profile fit (no restart_from_best)   0.024    20.4
+ a cycle with the phase at 2.5, keep_best    0.022    20.0 (step sd 0.142)
+ a cycle holding 1.75 to its end             0.035    19.5 (guide sd 0.293)
seed 1's 6000-step fit + a cycle              0.036    16.4
the same, lr_warmup_steps 200                 0.034    16.4
the same, rates 1e-3 (transition 3e-3)        0.035    16.5
"silu", K = 128, cosine lambda 3 -> 1         0.722    -45.3 (posterior collapse)
"silu", K = 128, lambda 1 -> 2                0.586    -27.6 (posterior collapse)
"silu", K = 128, lambda 0.01 -> 1.5           0.568    -24.9 (posterior collapse)
============================================  =======  ============

The rows from ``"linear" + betas 1e-4 .. 0.2`` to ``order 4`` override the cpu profile as it is
(``residual_transition="linear"``, ``diffusion_beta_start=1e-4``, ``diffusion_beta_end=0.2``,
K = 32, the small guide; its first two rows are the profile itself); the rows above them the
profile as it was before (the paper's parameterisation, betas ``0.1 / K .. 20 / K``).  The K = 512
rows are ``--set num_diffusion_steps=512 --set diffusion_beta_start=null --set
diffusion_beta_end=null`` on the profile, plus the stated change ("2 l." = ``channels=16
hidden_dim=16 encoder_layers=2``); the K = 128 rows the same with 128.  Every row above used ReLU
networks (the profile pins ``activation="relu"``) except those marked ``"silu"`` (the last two
with the small guide and K = 128's default betas); the runs
that "collapsed" were dead ReLU layers (``dead_units.py``, ``docs/experiments/2026-11-30-dead-units.md``, "Dead
units").  The piecewise lambda is ``--set annealing='{"kind": "piecewise", "points": [[0, 0.01],
[200, 1], [1000, 1], [1200, 1.5], [2400, 1.5], [2700, 1]]}'`` (a phase at 1.5, then back to 1;
``docs/experiments/2026-11-30-lambda-phase.md``); the rows under it ramp lambda as stated
over 1000 steps (the last over 200).  The cycle rows continue the 6000-step fit of the profile as
it was then (the phase at 1.75, seed 0; now the profile's first 6000 steps), each from the one
before, with ``--init-from FIT --steps 1800 --set annealing='{"kind": "piecewise", "points":
[[0, 1], [200, 1.75], [1200, 1.75], [1500, 1]]}'`` (the learning-rate decay restarts with each);
the row at lambda 0.5 is the first of them with 0.5 in place of 1.75.  The fourth cycle ran
after the profile gained its ``lr_restarts``, which ``--init-from`` then still stretched into the
fine-tune (four restarts inside its 1800 steps); ``--init-from`` now drops them unless ``--set``.

Each run also prints where the predictive's width comes from (``bimodal.width_decomposition``).
Every variant above that stayed bimodal has the same profile, e.g. for the profile as it is:
the guide's ``mu(z_31)`` misses the true ``z_31`` by 0.29 (the observation noise's median size is
0.30), the transition's within-mode step sd is 0.59 (a noisy copy of the data needs
``sqrt(1.81 * 0.2) = 0.60``) and the emission's sd is 0.25 (exact 0.447): the latent is a noisy
copy of the observations.  ``bimodal_oracle.py`` shows why.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bimodal import STEPS, fit_arguments, format_decomposition, mode_diagnostics, width_decomposition  # noqa: E402

import pyrossm  # noqa: E402
from pyrossm.datasets import bimodal_random_walk, bimodal_transition_law  # noqa: E402
from pyrossm.evaluation import jsd_to_density  # noqa: E402
from pyrossm.inference.checkpoint import safe_torch_load  # noqa: E402
from pyrossm.inference.config import SECTION_OF  # noqa: E402
from pyrossm.inference.trainer import CHECKPOINT_NAME  # noqa: E402
from pyrossm.models.registry import build_model, model_arguments  # noqa: E402


def parse_override(text):
    """``KEY=JSON`` -> ``(key, value)``; a value that is not JSON is taken as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set needs KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=parse_override,
        default=[],
        metavar="KEY=JSON",
        help="override a fit argument of the cpu profile",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=STEPS["cpu"]["DDSSM"],
        help="SVI steps (the profile's lambda knots are stretched to them)",
    )
    parser.add_argument("--num-test", type=int, default=128)
    parser.add_argument("--num-samples", type=int, default=1024)
    parser.add_argument("--save", default=None, help="save the fit to this path")
    parser.add_argument("--load", default=None, help="score a fit saved by --save instead of training")
    parser.add_argument(
        "--init-from",
        default=None,
        help="start from the parameters of a fit saved by --save (same architecture) "
        "and train it --steps more under this run's settings; the optimiser, "
        "the learning-rate decay and the lambda schedule start afresh (one "
        "decay: the profile's lr_restarts are dropped unless --set)",
    )
    parser.add_argument(
        "--last-too",
        action="store_true",
        help="with keep_best: also score the last step's parameters (kept in a temporary checkpoint)",
    )
    args = parser.parse_args(argv)
    settings = fit_arguments("cpu", "DDSSM", args.steps)
    trainer = settings.pop("trainer")
    if args.init_from:  # the profile's restarts belong to its own timeline
        trainer = trainer.updated(lr_restarts=[], restart_from_best=False)
    overrides = dict(args.overrides)
    trainer = trainer.updated(seed=0, **{k: v for k, v in overrides.items() if k in SECTION_OF or k == "seed"})
    settings.update({k: v for k, v in overrides.items() if not (k in SECTION_OF or k == "seed")})
    # (a run shorter than the validation interval still validates, at its last step)
    settings["trainer"] = trainer.updated(validate_every=min(trainer.selection.validate_every, args.steps))
    train = bimodal_random_walk(num_series=1024, length=32, seed=0)
    valid = bimodal_random_walk(num_series=1024, length=32, seed=1)
    test, latent = bimodal_random_walk(num_series=args.num_test, length=32, seed=2, return_latent=True)
    source = f"loaded from {args.load}" if args.load else f"{args.steps} steps"
    last = None
    print(f"DDSSM, cpu profile with {dict(args.overrides)}; {source}", flush=True)
    start = time.perf_counter()
    if args.load:
        res = pyrossm.load(args.load)
    elif args.init_from:
        res = continue_fit(args.init_from, settings, train, valid, args.steps)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            if args.last_too:
                settings.update(checkpoint_dir=scratch)
                settings["trainer"] = settings["trainer"].updated(checkpoint_every=args.steps)
            res = pyrossm.fit(data=train, validation_data=valid, device="cpu", progress=False, **settings)
            last = safe_torch_load(Path(scratch) / CHECKPOINT_NAME)["params"] if args.last_too else None
    fit_s = time.perf_counter() - start
    if args.save:
        res.save(args.save)
    report(res, test, latent, args.num_samples, fit_s)
    if last is not None:
        groups = res.model.parameter_groups()
        with torch.no_grad():
            for name, tensors in last.items():
                for p, t in zip(groups[name], tensors):
                    p.copy_(t)
        print("the last step's parameters:")
        report(res, test, latent, args.num_samples, fit_s)


def continue_fit(path, settings, train, valid, steps):
    """Trains the fit saved at ``path`` for ``steps`` more steps with ``settings``' training
    arguments; its architecture must match ``settings``' model arguments."""
    arch = model_arguments("ddssm")
    model = build_model("ddssm", obs_dim=1, **{k: v for k, v in settings.items() if k in arch})
    model = pyrossm.load(path, model=model).model
    return pyrossm.fit(
        model=model,
        data=train,
        validation_data=valid,
        trainer=settings["trainer"],
        num_steps=steps,
        device="cpu",
        progress=False,
    )


def report(res, test, latent, num_samples, fit_s):
    """Prints the 1-step JSD of ``x_32`` (``num_samples`` draws per test series), the mode
    diagnostics, the validation ELBOs and the width decomposition of a fitted model."""
    law = bimodal_transition_law(latent.values[:, 30])
    context = test.isel(time=slice(0, 31))
    draws = res.forecast(context, horizon=1, num_samples=num_samples, seed=0)["x"].values[:, :, 0]
    jsd = jsd_to_density(draws, law.pdf, low=law.mean - 8, high=law.mean + 8)
    modes = mode_diagnostics(draws, law.mean)
    val = res.history["val_elbo"].dropna().to_numpy()
    print(
        f"JSD {jsd.mean():.4f} +- {jsd.std(ddof=1) / np.sqrt(len(jsd)):.4f}; mode sd {modes['mode_sd']:.3f} "
        f"(exact 0.447), bias {modes['mode_bias']:.3f}, between {modes['between']:.4f}; "
        f"val ELBO {np.round(val, 2).tolist()}; fit {fit_s:.0f} s"
    )
    if "val_log_score" in res.history:
        print(f"val 1-step log score {np.round(res.history['val_log_score'].dropna().to_numpy(), 3).tolist()}")
    if "kept" in res.config:
        kept = res.config["kept"]
        print(
            f"kept the parameters of step {kept['step']} (val ELBO {kept['val_elbo']:.2f}"
            + (f", log score {kept['val_log_score']:.3f})" if "val_log_score" in kept else ")")
        )
    print(format_decomposition(width_decomposition(res, context, latent.values[:, 30])))


if __name__ == "__main__":
    main()
