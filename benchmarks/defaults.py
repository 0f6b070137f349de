"""The library defaults on the suite of synthetic systems with exact one-step laws (issue 29).

For every system of :mod:`pyrossm.datasets.systems` (``--systems``) and every model
(``--models``: ``ddssm``, ``dkf``, and on request GluonTS's ``deepar``): simulate a training set
(``--num-train`` series x ``--length`` steps, seed ``--seed``) and a test set (``--num-test``
series, seed ``--seed + 1``); fit ``pyrossm.fit(model=m, data=train)`` with nothing but the
library defaults -- plus the system's covariates (``covariates=["u"]`` for ``covariate_gated``),
``seed``, ``progress`` and, only when ``--num-steps`` is given, ``num_steps``; then draw
``--num-samples`` times from the 1-step predictive of ``x`` at the last step given the first
``T - 1`` steps (``res.forecast(context, horizon=1)``, with the last step's covariates as
``future_covariates``), as ``benchmarks/bimodal.py`` does.

``--models deepar`` (only when asked for; GluonTS is an optional benchmark dependency, and
without it the script stops at the start saying so) adds GluonTS DeepAR as a baseline, through
``benchmarks/deepar_baseline.py``: ``gluonts.torch.DeepAREstimator`` on the same training series
(``x``; the system's covariates as dynamic real features, known at the forecast step), with
GluonTS's defaults (Student-t output; freq ``"D"`` as in ``benchmarks/speed.py``, so its daily
lags 1 ... 1093 and time features) but ``prediction_length=1``, ``context_length=T - 1``, batch
size 128 (pyrossm's) and, with ``--deepar-batches``, that many training batches (else GluonTS's 100
epochs x 50 batches); Lightning's ``seed_everything(--seed)``.  Its draws are ``--num-samples``
sample paths of the last step of every test series given the first ``T - 1`` steps (and the
covariates through ``T``), scored as the other models' are; ``--set`` does not apply to it (nor
to its runs' names), ``--threads`` does.

Scores: per test series, the Jensen-Shannon divergence (base 2, 100 bins) between the draws and
the exact predictive law of ``x_T`` given the observed ``x_{1:T-1}`` under the true system
(``system.predictive_law``: the exact one-step law averaged over a particle filter's posterior
of the latent state, 2048 particles per series), on
``[min(mean - 8, lowest mode - 6 sd), max(mean + 8, highest mode + 6 sd)]`` (for the bimodal walk
exactly ``bimodal.py``'s ``mean +- 8``); mean and standard error over the test series.  The
sampling floor is the JSD of as many exact draws from the law on the same bins: what a perfect
model would score with that number of draws; ``ratio`` = model JSD / floor JSD (1 is perfect).
The table also gives the JSD against the law given the true latent state at ``T - 1``
(``system.one_step_law``) and, in brackets, what the perfect model's draws score there: where the
observations do not pin the latent down, that law is narrower than any forecast from data can be
(runs stored before this target are scored again from their ``--keep-draws`` draws; without
draws, ``--report`` shows their old latent-law JSD only and a run fits them again).
Fit and forecast seconds are wall-clock times (the first fit of a process also pays torch's and
Pyro's one-time setup).  Cost: on a 2-core CPU shared with another job, one thread, the DKF with
the defaults took 1.6 s per SVI step (batch 128 x 32 steps) and 255 s for 512 draws x 256 test
series; the defaults' 1000 steps and 1024 x 1024 draws are meant for a GPU (``fit``'s default
``device="auto"`` takes one when there is one), or ``--num-steps`` / ``--num-test`` /
``--num-samples`` smaller on a CPU.

Each run (system x model) is stored as JSON in ``--out/runs/`` (written to a temporary file, then
renamed) and skipped when it is there, so a cut run resumes; its file name records the settings
(steps, sizes, seed, ``--set``), so runs with other settings do not collide.  The name does not
record the library's defaults: a stored run whose model options or trainer settings differ from
what today's defaults and ``--set`` give (it was stored before a default changed) is named on
stderr by ``--report`` and fitted again by a run.  A fit that fails is stored
with its error (delete the file to retry).  ``--report`` only prints the table of what is stored.
``--set key=value ...`` passes a candidate default to every fit (e.g. ``architecture=compact``;
values read as JSON) and records it in the runs' names: how one change does across the suite.

    python benchmarks/defaults.py                                     # every system, both models
    python benchmarks/defaults.py --models deepar                     # the GluonTS DeepAR baseline
    python benchmarks/defaults.py --models dkf &  python benchmarks/defaults.py --models ddssm &
    wait; python benchmarks/defaults.py --report                      # one process per core
    python benchmarks/defaults.py --systems covariate_gated --num-steps 2 --num-train 16 \\
        --length 8 --num-test 4 --num-samples 16 --out /tmp/defaults-smoke        # smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

import pyrossm
from pyrossm.datasets.systems import SYSTEMS, get_system
from pyrossm.distributions.diffusion import SAMPLERS
from pyrossm.evaluation import jsd_to_density

sys.path.insert(0, str(Path(__file__).resolve().parent))  # deepar_baseline, however this is imported
from deepar_baseline import OneStepDeepAR, load_gluonts  # noqa: E402

MODELS = ("ddssm", "dkf")
#: models run only when ``--models`` names them (GluonTS DeepAR: ``benchmarks/deepar_baseline.py``)
BASELINES = ("deepar",)
#: the JSD's range around the law: at least its mean +- PAD, and every used mode +- TAIL sds
PAD, TAIL = 8.0, 6.0
#: particles per test series of the exact predictive law (``System.predictive_law``)
PARTICLES = 2048


def jsd_bounds(law):
    """``dict(low=(N,), high=(N,))``: the binning range of :func:`jsd_to_density` for ``law``
    (a batch of :class:`~pyrossm.datasets.GaussianMixture1D` over series)."""
    used = law.weights > 0
    lowest = np.where(used, law.means - TAIL * law.stds, np.inf).min(-1)
    highest = np.where(used, law.means + TAIL * law.stds, -np.inf).max(-1)
    return dict(low=np.minimum(law.mean - PAD, lowest), high=np.maximum(law.mean + PAD, highest))


def summarise(jsd):
    jsd = np.asarray(jsd, dtype=np.float64)
    se = jsd.std(ddof=1) / np.sqrt(len(jsd)) if len(jsd) > 1 else float("nan")
    return float(jsd.mean()), float(se)


def parse_settings(items):
    """``["key=value", ...]`` (values read as JSON, else kept as strings) -> dict."""
    settings = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes key=value, got {item!r}")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    return settings


def parse_samplers(items):
    """``["ddim:16", ...]`` -> ``[("ddim", 16), ...]``; ``ValueError`` for a bad item or name."""
    samplers = []
    for item in items or []:
        name, sep, steps = item.partition(":")
        if not sep or not steps.isdigit():
            raise ValueError(f"--fast-samplers takes SAMPLER:STEPS, e.g. ddim:16, got {item!r}")
        if name not in SAMPLERS:
            raise ValueError(f"--fast-samplers: the sampler must be one of {SAMPLERS}, got {name!r}")
        samplers.append((name, int(steps)))
    return samplers


def steps_of(model, args):
    """The training budget of ``model``'s runs: ``--deepar-batches`` for DeepAR, else ``--num-steps``
    (``None``: the model's own default)."""
    return args.deepar_batches if model in BASELINES else args.num_steps


def run_key(system, model, args):
    steps = "default" if steps_of(model, args) is None else steps_of(model, args)
    settings = parse_settings(args.set) if model not in BASELINES else {}  # --set is pyrossm's
    named = "".join(f"__{k}-{v}" for k, v in sorted(settings.items()))
    if len(named) > 120 or any(c in named for c in "/{}[]'\" "):  # a nested value: a short digest
        digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
        named = "".join(f"__{k}-{v}" for k, v in sorted(settings.items()) if not isinstance(v, (dict, list)))
        named = f"{named[:80]}__settings-{digest}"
    settings = named
    return (
        f"{system}__{model}__steps-{steps}__train{args.num_train}x{args.length}"
        f"__test{args.num_test}__draws{args.num_samples}__seed{args.seed}{settings}"
    )


def expected_setup(system, model, args):
    """``(model_config, trainer)`` that a fit of ``model`` with these arguments records today,
    from the library's current defaults and ``--set`` (nothing is trained)."""
    from pyrossm.api import FROM_TRAINER, _trainer_config  # fit's own resolution of the settings
    from pyrossm.models.registry import get_spec

    settings = parse_settings(args.set)
    trainer = settings.pop("trainer", None)
    spec = get_spec(model)
    net = spec.build(obs_dim=1, covariate_dim=len(system.covariates), **settings)
    num_steps = FROM_TRAINER if args.num_steps is None else args.num_steps
    overrides = dict(batch_size=FROM_TRAINER, learning_rate=FROM_TRAINER, seed=args.seed, progress=False)
    config = _trainer_config(trainer, num_steps, overrides, spec.trainer_defaults)
    return net.config, config.to_dict()


def _differences(stored_value, expected, prefix=""):
    """Names of the entries of ``expected`` that ``stored_value`` holds with another value (a
    nested dict recursively; entries the stored one lacks, i.e. settings added since, are not
    compared)."""
    names = []
    for name, value in expected.items():
        if name not in stored_value:
            continue
        if isinstance(value, dict) and isinstance(stored_value[name], dict):
            names += _differences(stored_value[name], value, f"{prefix}{name}.")
        elif stored_value[name] != value:
            names.append(f"{prefix}{name}")
    return names


def stale_settings(rec, system, model, args):
    """What a stored pyrossm run was fitted with that today's defaults and ``--set`` would not
    use (model options, trainer settings; ``progress`` aside): a record keyed by its settings
    outlives a change of the library's defaults, and would otherwise be reported as if current."""
    if rec is None or "error" in rec or model in BASELINES or rec.get("model_config") is None:
        return []
    model_config, trainer = expected_setup(system, model, args)
    trainer.pop("progress", None)
    return _differences(rec["model_config"], model_config) + _differences(rec.get("trainer") or {}, trainer, "trainer.")


def stored(out, key):
    path = Path(out) / "runs" / f"{key}.json"
    return json.loads(path.read_text()) if path.exists() else None


def store(out, key, record):
    """Writes ``record`` atomically: a temporary file in the same folder, then ``os.replace``."""
    path = Path(out) / "runs" / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, path)


def draws_path(out, key):
    """Where ``--keep-draws`` keeps a run's ``(S, N)`` draws (``--out/draws/``, not committed)."""
    return Path(out) / "draws" / f"{key}.npz"


def store_draws(out, key, draws):
    """Writes ``draws`` as float32 atomically (a temporary file, then ``os.replace``), as :func:`store`."""
    path = draws_path(out, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, draws=np.asarray(draws, dtype=np.float32))
    os.replace(tmp, path)


def data_sets(system, args):
    """``(train, test, law, latent_law)`` of the test set's last step: ``law`` the exact
    predictive given the observed past (what the models are scored against), ``latent_law`` the
    exact law given the true latent state (which no model sees)."""
    train = system.simulate(num_series=args.num_train, length=args.length, seed=args.seed)
    test, latent = system.simulate(num_series=args.num_test, length=args.length, seed=args.seed + 1, return_latent=True)
    last = args.length - 1
    law = system.predictive_law(test, last, num_particles=PARTICLES, seed=args.seed)
    return train, test, law, system.one_step_law(latent, last, test)


def scores(draws, law, latent_law):
    """The record's score fields for ``(S, N)`` 1-step draws."""
    jsd_mean, jsd_se = summarise(jsd_to_density(draws, law.pdf, **jsd_bounds(law)))
    latent_mean, latent_se = summarise(jsd_to_density(draws, latent_law.pdf, **jsd_bounds(latent_law)))
    return {
        "target": "predictive",
        "jsd_mean": jsd_mean,
        "jsd_se": jsd_se,
        "latent_jsd_mean": latent_mean,
        "latent_jsd_se": latent_se,
    }


def floors(law, latent_law, num_samples, seed):
    """The sampling floor (exact predictive draws against their law) and what those perfect
    draws score against the latent law (the part of the latent-law JSD no model can remove)."""
    exact = law.sample(num_samples, np.random.default_rng(seed))
    floor_mean, floor_se = summarise(jsd_to_density(exact, law.pdf, **jsd_bounds(law)))
    perfect = summarise(jsd_to_density(exact, latent_law.pdf, **jsd_bounds(latent_law)))[0]
    return {"floor_mean": floor_mean, "floor_se": floor_se, "perfect_latent_jsd": perfect}


def one_step_draws(result, test, system, num_samples, seed):
    """``(S, N)`` draws of ``x_T`` given ``x_{1:T-1}`` (and the covariates up to ``T``)."""
    length = test.sizes["time"]
    context = test.isel(time=slice(0, length - 1))
    future = test[list(system.covariates)].isel(time=slice(length - 1, length)) if system.covariates else None
    forecast = result.forecast(context, horizon=1, num_samples=num_samples, future_covariates=future, seed=seed)
    return forecast["x"].values[:, :, 0]


def pyrossm_draws(system, model, train, test, args):
    """``(draws, fit_s, forecast_s, fields)``: ``pyrossm.fit`` with the defaults and its ``(S, N)``
    1-step draws; ``fields`` what the record keeps of the fit."""
    options = dict(seed=args.seed, progress=args.progress, **parse_settings(args.set))
    if system.covariates:
        options["covariates"] = list(system.covariates)
    if args.num_steps is not None:
        options["num_steps"] = args.num_steps
    start = time.perf_counter()
    result = pyrossm.fit(model=model, data=train, **options)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    draws = one_step_draws(result, test, system, args.num_samples, args.seed)
    forecast_s = time.perf_counter() - start
    fast = []
    sampling = getattr(result.model.transition, "sampling", None)  # a diffusion transition
    for sampler, steps in parse_samplers(args.fast_samplers) if sampling is not None else []:
        start = time.perf_counter()
        with sampling(sampler, num_sampling_steps=steps):
            fast_draws = one_step_draws(result, test, system, args.num_samples, args.seed)
        fast.append((sampler, steps, fast_draws, time.perf_counter() - start))
    history = result.history
    return (
        draws,
        fit_s,
        forecast_s,
        {
            "fast": fast,
            "steps_trained": int(len(history)),
            "final_loss": float(history["loss"].iloc[-1]) if "loss" in history and len(history) else None,
            "model_config": result.config.get("model_config"),
            "trainer": result.config.get("trainer"),
            # the validations ([step, 1-step log score of the held-out step]) and the kept one
            "validation": [
                [int(step), float(score)]
                for step, score in zip(history["step"], history.get("val_log_score", []))
                if score == score
            ],
            "kept": result.config.get("kept"),
        },
    )


def deepar_draws(system, train, test, args):
    """As :func:`pyrossm_draws` for GluonTS DeepAR (:class:`deepar_baseline.OneStepDeepAR`): trained
    on ``x`` with the covariates as dynamic real features, ``--deepar-batches`` batches when given."""
    deepar = OneStepDeepAR(
        system.covariates, num_batches=steps_of("deepar", args), seed=args.seed, progress=args.progress
    )
    start = time.perf_counter()
    deepar.fit(train)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    draws = deepar.draws(test, args.num_samples, seed=args.seed)
    forecast_s = time.perf_counter() - start
    return (
        draws,
        fit_s,
        forecast_s,
        {"steps_trained": deepar.steps_trained, "final_loss": deepar.final_loss, **deepar.config},
    )


def run(system, model, args):
    """One fit and its 1-step scores, as a JSON-ready dict."""
    train, test, law, latent_law = data_sets(system, args)
    record = {
        "system": system.name,
        "model": model,
        "num_steps": steps_of(model, args),
        "num_train": args.num_train,
        "length": args.length,
        "num_test": args.num_test,
        "num_samples": args.num_samples,
        "seed": args.seed,
        "settings": parse_settings(args.set) if model not in BASELINES else {},
        **floors(law, latent_law, args.num_samples, args.seed),
    }
    try:
        if model == "deepar":
            draws, fit_s, forecast_s, fitted = deepar_draws(system, train, test, args)
        else:
            draws, fit_s, forecast_s, fitted = pyrossm_draws(system, model, train, test, args)
    except Exception as err:  # recorded, so that one failure does not stop the suite
        return {**record, "error": f"{type(err).__name__}: {err}"}
    if args.keep_draws:  # to score again later, without refitting
        store_draws(args.out, run_key(system.name, model, args), draws)
    scored = scores(draws, law, latent_law)
    if fitted.get("fast"):  # the same fit forecast with each of --fast-samplers
        record["fast_samplers"] = []
        for sampler, steps, fast_draws, seconds in fitted["fast"]:
            fast_scored = scores(fast_draws, law, latent_law)
            record["fast_samplers"].append(
                {
                    "sampler": sampler,
                    "steps": steps,
                    "jsd_mean": fast_scored["jsd_mean"],
                    "jsd_se": fast_scored["jsd_se"],
                    "forecast_s": seconds,
                }
            )
    return {
        **record,
        **scored,
        "ratio": scored["jsd_mean"] / record["floor_mean"],
        "fit_s": fit_s,
        "forecast_s": forecast_s,
        "steps_trained": fitted["steps_trained"],
        "final_loss": fitted["final_loss"],
        "nonfinite_draws": int((~np.isfinite(draws)).sum()),
        "model_config": fitted["model_config"],
        "trainer": fitted["trainer"],
        **{k: fitted[k] for k in ("validation", "kept") if fitted.get(k)},
    }


def rescore(system, model, args, rec):
    """A run stored before the predictive-law target, scored again from its stored draws
    (``--keep-draws``); the record unchanged (and reported as such) when it has none."""
    key = run_key(system.name, model, args)
    path = draws_path(args.out, key)
    if rec is None or "error" in rec or rec.get("target") == "predictive" or not path.exists():
        return rec
    with np.load(path, allow_pickle=False) as kept:
        draws = kept["draws"].astype(np.float64)
    _, _, law, latent_law = data_sets(system, args)
    floor = floors(law, latent_law, args.num_samples, args.seed)
    scored = scores(draws, law, latent_law)
    rec = {**rec, **floor, **scored, "ratio": scored["jsd_mean"] / floor["floor_mean"]}
    store(args.out, key, rec)
    return rec


def table(records):
    """The markdown table of the stored records (``None`` for a run not stored yet).  Runs
    stored before the predictive-law target and without draws to rescore show their old
    latent-law JSD in its column only."""
    lines = [
        "| system | model | 1-step JSD | sampling floor | ratio | JSD vs latent law (perfect model) "
        "| fit s | forecast s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (system, model), rec in records.items():
        if rec is None:
            lines.append(f"| {system} | {model} | not run | | | | | |")
        elif "error" in rec:
            lines.append(f"| {system} | {model} | failed | {rec['floor_mean']:.4f} +- {rec['floor_se']:.4f} | | | | |")
        elif rec.get("target") != "predictive":
            lines.append(
                f"| {system} | {model} | not scored | | | {rec['jsd_mean']:.4f} (old run) "
                f"| {rec['fit_s']:.1f} | {rec['forecast_s']:.2f} |"
            )
        else:
            lines.append(
                f"| {system} | {model} | {rec['jsd_mean']:.4f} +- {rec['jsd_se']:.4f} "
                f"| {rec['floor_mean']:.4f} +- {rec['floor_se']:.4f} | {rec['ratio']:.2f} "
                f"| {rec['latent_jsd_mean']:.4f} ({rec['perfect_latent_jsd']:.4f}) "
                f"| {rec['fit_s']:.1f} | {rec['forecast_s']:.2f} |"
            )
    fast = [
        f"| {s} | {m} | {r['jsd_mean']:.4f} ({r['forecast_s']:.1f} s) | {f['sampler']} {f['steps']} "
        f"| {f['jsd_mean']:.4f} ({f['forecast_s']:.1f} s) |"
        for (s, m), r in records.items()
        if r is not None and r.get("target") == "predictive"
        # (runs stored before --fast-samplers kept one DDIM row as "fast_sampler")
        for f in r.get("fast_samplers", [r["fast_sampler"]] if "fast_sampler" in r else [])
    ]
    if fast:
        lines += ["", "| system | model | JSD (forecast s), fit's sampler | sampler, steps | JSD (forecast s) |"]
        lines += ["|---|---|---|---|---|", *fast]
    failures = [f"{s} / {m}: {r['error']}" for (s, m), r in records.items() if r is not None and "error" in r]
    return "\n".join(lines + ([""] + ["failed: " + f for f in failures] if failures else []))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(MODELS),
        choices=[*MODELS, *BASELINES],
        help="deepar (GluonTS DeepAR, an optional dependency) only when named",
    )
    parser.add_argument(
        "--num-steps", type=int, default=None, help="SVI steps of the pyrossm models (default: the library's)"
    )
    parser.add_argument("--num-train", type=int, default=1024, help="training series")
    parser.add_argument("--length", type=int, default=32, help="time steps of every series")
    parser.add_argument("--num-test", type=int, default=1024, help="test series")
    parser.add_argument("--num-samples", type=int, default=1024, help="1-step predictive draws per test series")
    parser.add_argument("--seed", type=int, default=0, help="training data and fit seed (test data: seed + 1)")
    parser.add_argument("--progress", action="store_true", help="show the library's progress bar")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads (0: torch's default, one per core); 1 by default: the small networks "
        "of the defaults run several times faster on one thread than on two contended ones",
    )
    parser.add_argument("--out", default="benchmarks/output/defaults", help="folder of the stored runs (runs/*.json)")
    parser.add_argument("--report", action="store_true", help="only print the table of the stored runs")
    parser.add_argument(
        "--deepar-batches",
        type=int,
        default=None,
        help="DeepAR's training batches (default: GluonTS's own budget, 100 epochs of 50 batches)",
    )
    parser.add_argument(
        "--fast-samplers",
        nargs="*",
        default=[],
        metavar="SAMPLER:STEPS",
        help="also forecast each DDSSM fit with these samplers (ddpm, ddim or heun, on STEPS of the K "
        "noise levels) and record their JSD and time, e.g. ddim:16 heun:8",
    )
    parser.add_argument(
        "--keep-draws",
        action="store_true",
        help="also store each run's (draws, series) 1-step draws in --out/draws/ (float32 .npz, not committed)",
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="a candidate default, passed to every fit (values as JSON), e.g. architecture=compact",
    )
    args = parser.parse_args(argv)
    if args.length < 2:
        parser.error("--length must be at least 2 (a context and the scored step)")
    if "deepar" in args.models and not args.report:
        try:
            load_gluonts()
        except ImportError as exc:
            parser.error(f"--models deepar needs GluonTS (pip install 'gluonts[torch]'): {exc}")
    try:
        parse_samplers(args.fast_samplers)  # checked before any fit
    except ValueError as exc:
        parser.error(str(exc))
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    print(
        f"library defaults on {len(args.systems)} systems: {args.num_train} train / {args.num_test} test series x "
        f"{args.length} steps, SVI steps {args.num_steps or 'default'}, {args.num_samples} draws, seed {args.seed}, "
        f"settings {parse_settings(args.set) or 'none'}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    records = {}
    for name in args.systems:
        system = get_system(name)
        for model in args.models:
            key = run_key(name, model, args)
            rec = rescore(system, model, args, stored(args.out, key))
            if rec is not None and "error" not in rec and rec.get("target") != "predictive" and not args.report:
                rec = None  # stored before the predictive target, without draws to score again: run again
            stale = stale_settings(rec, system, model, args)
            if stale and args.report:
                print(f"{key}: stored with other settings than today's ({', '.join(stale)})", file=sys.stderr)
            elif stale:
                print(f"{key}: stored with other settings than today's ({', '.join(stale)}): fitting again")
                rec = None
            if rec is None and not args.report:
                print(f"{key} ...", flush=True)
                rec = run(system, model, args)
                store(args.out, key, rec)
                if "error" in rec:
                    print(f"  failed: {rec['error']}", file=sys.stderr)
                else:
                    print(f"  JSD {rec['jsd_mean']:.4f} (floor {rec['floor_mean']:.4f}), fit {rec['fit_s']:.1f} s")
            records[name, model] = rec
    print()
    print(table(records))
    return records


if __name__ == "__main__":
    main()
