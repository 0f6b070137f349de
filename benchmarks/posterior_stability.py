"""Posterior stability of time-series latent diffusion (Li & van der Schaar, 2024): reproduce the
paper's Figures 2/4 and Tables 1/2 on pyrossm's shipped real data, from one command.

Data (windows of 24 steps, every channel standardised on the training windows):

* ``stock``: Google daily prices (6 channels), cut into blocks of 240 days, 20% of the blocks
  (seeded) held out; windows with stride 1 inside each block.
* ``energy``: UCI appliances energy (28 channels), the same blocked split.
* ``basic_motions``: UEA BasicMotions (6 channels, 4 classes); windows with stride 12 of the 40
  training instances train, those of the 40 test instances are held out.

Parts (``--parts``):

* ``table1``: every variant (latent diffusion ``LD`` and its remedies ``LD+KL``, ``LD+mask``,
  ``LD+skip``, and the collapse-simulation framework ``CS``) x backbone x seed: generate
  ``--num-eval`` windows and score them against as many held-out windows: the mean marginal
  Wasserstein-1 distance over (t, channel) (``W1``), the sliced Wasserstein distance of whole
  windows (``SW``) and the RBF MMD^2 (``MMD``); mean +- sd over seeds.
* ``dependency``: for ``LD`` and ``CS`` (seed 0), fitted on ordered and on time-shuffled
  training windows (:func:`pyrossm.data.shuffle_time`), the dependency measures of
  ``--num-dependency`` generated series: ``dependency_<data>_<backbone>.png`` (Figure 2 vs
  Figure 4) and a table of the mean global (``m_{t,0}``) and local (``m_{t,t-1}``) dependency
  over the late steps ``t >= 12``.
* ``ablation``: Table 2, the framework's ``N`` (``vi_steps``) and ``M`` (``collapse_from``) on the
  first data set and the first backbone.

Each run (one fit and its scores) is stored as JSON in ``--out/runs/`` and skipped when it is
there; a process claims a run with a lock file first, so that several processes started with
the same arguments share the work, and a cut run resumes (after deleting its stale
``runs/*.lock``); ``--report`` only prints the tables and draws the figures from what is stored.

Profiles: ``paper`` -- Appendix G's sizes (hidden and latent 128, L = 1000, N = 50, M = 100,
gamma = 2, eta = 1, dropout 0.1; the library defaults), 4000 steps per stage; ``fast`` -- hidden
64, latent 32, 600 steps per stage (L, N, M, gamma, eta as the paper).

    python benchmarks/posterior_stability.py --profile fast                      # everything
    python benchmarks/posterior_stability.py --profile fast &   # or: one process per core,
    python benchmarks/posterior_stability.py --profile fast &   # sharing the runs
    wait; python benchmarks/posterior_stability.py --profile fast --report
    python benchmarks/posterior_stability.py --profile fast --steps 5 --seeds 0 --num-eval 32 \\
        --num-dependency 8 --out /tmp/ps-smoke                                     # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import xarray as xr  # noqa: E402

import pyrossm  # noqa: E402
from pyrossm.data import shuffle_time, windows  # noqa: E402
from pyrossm.evaluation import dependency_measures, mmd, plot_dependency, sliced_wasserstein, wasserstein  # noqa: E402

LENGTH = 24
VARIANTS = {
    "LD": ("latent_diffusion", {}),
    "LD+KL": ("latent_diffusion", {"remedy": "kl_annealing"}),
    "LD+mask": ("latent_diffusion", {"remedy": "variable_masking"}),
    "LD+skip": ("latent_diffusion", {"remedy": "skip_connections"}),
    "CS": ("collapse_simulation", {}),
}
PROFILES = {
    "paper": {"options": {}, "num_steps": 4000},
    "fast": {"options": {"hidden_dim": 64, "latent_dim": 32}, "num_steps": 600},
}
#: Table 2's (N, M) pairs
ABLATION = [(50, 100), (50, 50), (50, 150), (50, 200), (10, 100), (100, 100), (150, 100)]
LATE = 12


# ------------------------------------------------------------------ data
def _blocked(ds, seed=0, fraction=0.2, block=10 * LENGTH, straddle=False):
    """Windows (stride 1) of a long series cut into blocks of ``block`` steps, a seeded
    ``fraction`` of the blocks held out: held-out windows share no step with training windows,
    and both cover every period (a chronological split of a trending price would hold out
    another regime).  ``straddle=False``: windows lie inside one block; ``True``: a window may
    cross the border of two blocks on the same side of the split (fewer windows are lost, so
    that short blocks, which spread the held-out steps over every period, stay affordable)."""
    num_blocks = ds.sizes["time"] // block
    order = np.random.default_rng(seed).permutation(num_blocks)
    held = set(order[: max(1, int(round(fraction * num_blocks)))].tolist())
    if straddle:
        side = np.array([b in held for b in range(num_blocks)]).repeat(block)
        all_windows = windows(ds.isel(time=slice(0, num_blocks * block)), LENGTH, stride=1)
        starts = np.arange(all_windows.sizes["series"])
        inside = np.stack([side[starts + k] for k in range(LENGTH)])
        parts = {h: [all_windows.isel(series=np.flatnonzero((inside == h).all(axis=0)))] for h in (True, False)}
    else:
        parts = {True: [], False: []}
        for b in range(num_blocks):
            piece = windows(ds.isel(time=slice(b * block, (b + 1) * block)), LENGTH, stride=1)
            parts[b in held].append(piece)
    train, test = (xr.concat(parts[h], dim="series") for h in (False, True))
    return (d.assign_coords(series=np.arange(d.sizes["series"])) for d in (train, test))


def load_data(name, **split):
    """``(train, test)`` windows of a shipped data set, as ``xr.Dataset`` (series, time);
    ``split``: :func:`_blocked`'s options for the long series (stock, energy)."""
    if name == "stock":
        return tuple(_blocked(pyrossm.datasets.stock(), **split))
    if name == "energy":
        return tuple(_blocked(pyrossm.datasets.energy(), **split))
    if name == "basic_motions":
        ds = pyrossm.datasets.basic_motions()
        split = ds["split"].values
        pieces = [windows(ds.isel(series=np.flatnonzero(split == s)), LENGTH, stride=12) for s in ("train", "test")]
        return pieces[0], pieces[1]
    raise ValueError(f"unknown data set {name!r}")


def as_array(ds, names):
    """``(N, T, D)`` float64 of the variables ``names``."""
    return np.stack([ds[v].values for v in names], axis=-1)


def standardised(train, *others):
    loc, scale = np.nanmean(train, axis=(0, 1)), np.nanstd(train, axis=(0, 1))
    scale = np.where(scale > 0, scale, 1.0)
    return [(a - loc) / scale for a in (train,) + others]


# ------------------------------------------------------------------ runs
def run_key(*parts):
    return "__".join(str(p) for p in parts)


def claim(out, key):
    """Claims a run for this process (a ``.lock`` file made exclusively): False if another
    process has it.  A run cut short leaves its lock: delete ``runs/*.lock`` to redo it."""
    path = out / "runs" / f"{key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


def stored(out, key):
    path = out / "runs" / f"{key}.json"
    return json.loads(path.read_text()) if path.exists() else None


def store(out, key, record):
    path = out / "runs" / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)
    (out / "runs" / f"{key}.lock").unlink(missing_ok=True)


def fit_model(model, options, train, args, seed):
    started = time.perf_counter()
    res = pyrossm.fit(
        model,
        train,
        num_steps=args.steps,
        batch_size=args.batch_size,
        seed=seed,
        progress=False,
        device=args.device,
        **options,
    )
    return res, time.perf_counter() - started


def generation_scores(res, train, test, args, seed):
    names = list(train.data_vars)
    started = time.perf_counter()
    gen = res.sample(num_series=args.num_eval, length=LENGTH, seed=seed)
    sample_time = time.perf_counter() - started
    rng = np.random.default_rng(seed)
    real_test = as_array(test, names)
    real_test = real_test[rng.permutation(len(real_test))[: args.num_eval]]
    train_arr, real_std, gen_std = standardised(as_array(train, names), real_test, as_array(gen.isel(draw=0), names))
    flat_real, flat_gen = real_std.reshape(len(real_std), 1, -1), gen_std.reshape(len(gen_std), 1, -1)
    return {
        "W1": float(wasserstein(flat_gen, flat_real)[0]),
        "SW": float(sliced_wasserstein(flat_gen, flat_real, seed=seed)[0]),
        "MMD": float(mmd(flat_gen, flat_real)[0]),
        "sample_s": sample_time,
    }


def table1(args, data_name, train, test):
    for backbone in args.backbones:
        for variant in args.variants:
            model, extra = VARIANTS[variant]
            for seed in args.seeds:
                key = run_key("table1", data_name, backbone, variant, seed)
                if stored(args.out, key) or not claim(args.out, key):
                    continue
                options = {**PROFILES[args.profile]["options"], **extra, "backbone": backbone}
                res, fit_s = fit_model(model, options, train, args, seed)
                record = {"fit_s": fit_s, **generation_scores(res, train, test, args, seed)}
                store(args.out, key, record)
                print(key, {k: round(v, 4) for k, v in record.items()}, flush=True)
                if seed == args.seeds[0] and variant in ("LD", "CS"):
                    dependency_run(args, data_name, backbone, variant, "ordered", res)


def dependency_run(args, data_name, backbone, variant, order, res, claimed=False):
    key = run_key("dependency", data_name, backbone, variant, order)
    if not claimed and (stored(args.out, key) or not claim(args.out, key)):
        return
    started = time.perf_counter()
    dm = dependency_measures(res, num_samples=args.num_dependency, length=LENGTH, seed=0)
    record = {name: dm[name].values.tolist() for name in ("global", "global_se", "local", "local_se")}
    record.update(dm.attrs, measure_s=time.perf_counter() - started)
    store(args.out, key, record)
    print(key, f"late global {np.nanmean(dm['global'].values[LATE - 1 :]):.3f}", flush=True)


def dependency(args, data_name, train):
    shuffled = shuffle_time(train, seed=0)
    for backbone in args.backbones:
        for variant in ("LD", "CS"):
            model, extra = VARIANTS[variant]
            options = {**PROFILES[args.profile]["options"], **extra, "backbone": backbone}
            for order, data in (("ordered", train), ("shuffled", shuffled)):
                key = run_key("dependency", data_name, backbone, variant, order)
                if stored(args.out, key) or not claim(args.out, key):
                    continue
                res, _ = fit_model(model, options, data, args, args.seeds[0])
                dependency_run(args, data_name, backbone, variant, order, res, claimed=True)


def ablation(args, data_name, train, test):
    backbone = args.backbones[0]
    for vi_steps, collapse_from in ABLATION:
        for seed in args.seeds:
            key = run_key("ablation", data_name, backbone, vi_steps, collapse_from, seed)
            if stored(args.out, key) or not claim(args.out, key):
                continue
            if (vi_steps, collapse_from) == (50, 100) and stored(
                args.out, run_key("table1", data_name, backbone, "CS", seed)
            ):
                store(args.out, key, stored(args.out, run_key("table1", data_name, backbone, "CS", seed)))
                continue
            options = {
                **PROFILES[args.profile]["options"],
                "backbone": backbone,
                "vi_steps": vi_steps,
                "collapse_from": collapse_from,
            }
            res, fit_s = fit_model("collapse_simulation", options, train, args, seed)
            record = {"fit_s": fit_s, **generation_scores(res, train, test, args, seed)}
            store(args.out, key, record)
            print(key, {k: round(v, 4) for k, v in record.items()}, flush=True)


# ------------------------------------------------------------------ report
def _records(out, prefix):
    for path in sorted((out / "runs").glob(f"{prefix}__*.json")):
        yield path.stem.split("__")[1:], json.loads(path.read_text())


def _mean_sd(values):
    values = np.asarray(values, dtype=float)
    sd = values.std(ddof=1) if len(values) > 1 else float("nan")
    return f"{values.mean():.3f} ± {sd:.3f}" if len(values) > 1 else f"{values.mean():.3f}"


def report(args):
    rows = {}
    for (data, backbone, variant, _seed), rec in _records(args.out, "table1"):
        rows.setdefault((backbone, variant), {}).setdefault(data, []).append(rec)
    if rows:
        datasets = sorted({d for r in rows.values() for d in r})
        print("\nTable 1 analogue: generated vs held-out windows, mean ± sd over seeds (lower is better)\n")
        for metric in ("W1", "SW", "MMD"):
            print(f"**{metric}**\n")
            print("| backbone | model | " + " | ".join(datasets) + " |")
            print("|---|---|" + "---:|" * len(datasets))
            for backbone in args.backbones:
                for variant in VARIANTS:
                    if (backbone, variant) in rows:
                        cells = [
                            _mean_sd([r[metric] for r in rows[(backbone, variant)].get(d, [])])
                            if rows[(backbone, variant)].get(d)
                            else "-"
                            for d in datasets
                        ]
                        print(f"| {backbone} | {variant} | " + " | ".join(cells) + " |")
            print()
        print("| backbone | model | " + " | ".join(f"{d} fit s" for d in datasets) + " | seeds |")
        print("|---|---|" + "---:|" * (len(datasets) + 1))
        for (backbone, variant), per in sorted(rows.items()):
            cells = [f"{np.mean([r['fit_s'] for r in per[d]]):.0f}" if per.get(d) else "-" for d in datasets]
            print(f"| {backbone} | {variant} | " + " | ".join(cells) + f" | {max(len(v) for v in per.values())} |")
    deps = {}
    for (data, backbone, variant, order), rec in _records(args.out, "dependency"):
        deps[(data, backbone, variant, order)] = rec
    if deps:
        print(f"\nDependency measures of generated series: mean over t >= {LATE} (t = 1..{LENGTH})\n")
        print("| data | backbone | model | order | global m_t,0 | local m_t,t-1 | completeness err (mean / max) |")
        print("|---|---|---|---|---:|---:|---:|")
        for (data, backbone, variant, order), rec in sorted(deps.items()):
            g = np.nanmean(np.asarray(rec["global"], float)[LATE - 1 :])
            loc = np.nanmean(np.asarray(rec["local"], float)[LATE - 1 :])
            err = f"{rec.get('mean_completeness_error', float('nan')):.1e} / {rec['max_completeness_error']:.1e}"
            print(f"| {data} | {backbone} | {variant} | {order} | {g:.3f} | {loc:.3f} | {err} |")
        for data, backbone in sorted({(k[0], k[1]) for k in deps}):
            fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True)
            for row, variant in enumerate(("LD", "CS")):
                for col, order in enumerate(("ordered", "shuffled")):
                    rec = deps.get((data, backbone, variant, order))
                    ax = axes[row, col]
                    if rec is None:
                        ax.set_visible(False)
                        continue
                    t = np.arange(1, len(rec["global"]) + 1)
                    ds = xr.Dataset(
                        {k: ("time", np.asarray(rec[k], float)) for k in rec if k.startswith(("global", "local"))}
                    )
                    ds = ds.assign_coords(time=t)
                    name = "latent diffusion" if variant == "LD" else "collapse simulation"
                    plot_dependency(ds, ax=ax, title=f"{name}, {order} ({data}, {backbone})")
            fig.tight_layout()
            path = args.out / f"dependency_{data}_{backbone}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            print(f"wrote {path}")
    abl = {}
    for (data, backbone, n, m, _seed), rec in _records(args.out, "ablation"):
        abl.setdefault((data, backbone, int(n), int(m)), []).append(rec)
    if abl:
        print("\nTable 2 analogue: the framework's N (vi_steps) and M (collapse_from), L = 1000\n")
        print("| data | backbone | N | M | W1 | SW | MMD |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for (data, backbone, n, m), recs in sorted(abl.items(), key=lambda kv: ABLATION.index(kv[0][2:])):
            cells = [_mean_sd([r[k] for r in recs]) for k in ("W1", "SW", "MMD")]
            print(f"| {data} | {backbone} | {n} | {m} | " + " | ".join(cells) + " |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="fast")
    parser.add_argument("--datasets", nargs="+", default=["stock", "energy", "basic_motions"])
    parser.add_argument("--backbones", nargs="+", default=["lstm", "transformer"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--parts", nargs="+", default=["table1", "dependency", "ablation"])
    parser.add_argument("--steps", type=int, default=None, help="steps per stage (default: the profile's)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--num-eval", type=int, default=500, help="generated and held-out windows scored")
    parser.add_argument("--num-dependency", type=int, default=500, help="series the dependencies average over")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--report", action="store_true", help="only print tables and draw figures")
    args = parser.parse_args(argv)
    args.steps = args.steps or PROFILES[args.profile]["num_steps"]
    args.out = args.out or Path("benchmarks/results") / f"posterior_stability_{args.profile}"
    args.out.mkdir(parents=True, exist_ok=True)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if not args.report:
        started = time.perf_counter()
        for name in args.datasets:
            train, test = load_data(name)
            print(f"{name}: {train.sizes['series']} training and {test.sizes['series']} held-out windows", flush=True)
            if "table1" in args.parts:
                table1(args, name, train, test)
            if "dependency" in args.parts:
                dependency(args, name, train)
            if "ablation" in args.parts and name == args.datasets[0]:
                ablation(args, name, train, test)
        print(f"\ntotal {time.perf_counter() - started:.0f} s", flush=True)
    report(args)


if __name__ == "__main__":
    main()
