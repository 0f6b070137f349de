"""One DDSSM variant on the bimodal random walk: the cpu profile of ``bimodal.py`` plus overrides.

Fits the DDSSM with ``bimodal.fit_arguments("cpu", "DDSSM", steps)`` -- the library's DDSSM
defaults: the model's default options and the family's trainer defaults
(``pyrossm.models.registry.DDSSM_TRAINER_DEFAULTS``) stretched to ``--steps``, validated every
500 steps -- updated by ``--set`` (JSON values; a trainer setting or a model option, by name), on
the same 1024 training / 1024 validation series and seed as ``bimodal.py``, then scores the
1-step predictive of ``x_32`` on the first ``--num-test`` test series (1024 draws each) by the JSD
to the exact law, with the mode diagnostics of ``bimodal.py`` and where the predictive's width
comes from (``bimodal.width_decomposition``).  A quicker instrument than the full benchmark for
comparing settings (the defaults' 12000 steps unless ``--steps``).

    python benchmarks/ddssm_ablation.py                                   # the defaults as they are
    python benchmarks/ddssm_ablation.py --set lr_schedule='"constant"'    # without the decay
    python benchmarks/ddssm_ablation.py --steps 3000 --set seed=1
    python benchmarks/ddssm_ablation.py --steps 20 --num-test 8 --num-samples 64   # smoke run
    python benchmarks/ddssm_ablation.py --init-from FIT --steps 1800 --set ...      # train on

Figures with the former recipe (the removed ``ddssm-bimodal-cpu`` preset on smaller networks):
``docs/experiments/2026-12-01-*.md``.
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
        help="override a fit argument of the cpu profile (the library's defaults)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=STEPS["cpu"]["DDSSM"],
        help="SVI steps (the defaults' lambda knots are stretched to them)",
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
        "the learning-rate decay and the lambda schedule start afresh",
    )
    parser.add_argument(
        "--last-too",
        action="store_true",
        help="with keep_best: also score the last step's parameters (kept in a temporary checkpoint)",
    )
    args = parser.parse_args(argv)
    settings = fit_arguments("cpu", "DDSSM", args.steps)
    trainer = settings.pop("trainer")
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
