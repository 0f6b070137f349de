"""Unconditional generation of windows of 24 steps: every generator of pyrossm (and, when it is
installed, SDV's DeepEcho PAR) side by side, scored against held-out windows, from one command.

Data (:func:`posterior_stability.load_data`, windows of 24 steps):

* ``stock``: Google daily prices (6 channels), cut into blocks of 48 days, 20% of the blocks held
  out (short blocks, so that the held-out windows come from every price regime; a window may cross
  the border of two blocks on the same side);
* ``energy``: UCI appliances energy (28 channels), the same blocked split;
* ``basic_motions``: UEA BasicMotions (6 channels, 4 classes), windows with stride 12 of the 40
  training instances train, those of the 40 test instances are held out; every window keeps the
  class ``label`` of its instance (a coordinate on ``series``).  The generators are all
  unconditional: the labels only colour the real windows of the PCA figure.

Generators (``--generators``; per-profile options in :data:`PROFILES`):

* ``L2D``, ``L2D-latent-only``, ``L2D-data-only``: L2D-Diff (``l2d``) and its two ablations;
* ``LD``: time-series latent diffusion (``latent_diffusion``); ``CS``: the collapse-simulation
  framework (``collapse_simulation``);
* ``DDSSM``, ``DKF``: the state-space models, fitted on the windows and sampled with
  ``sample(num_series, length=24)``;
* ``DeepEcho-PAR``: SDV's probabilistic autoregressive model, an optional peer: without the
  ``deepecho`` package it is skipped (``pip install deepecho``), and nothing is recorded;
* ``Real``: not a generator but the reference row: as many training windows as are scored, drawn
  at random, scored as if generated -- the floor that a generator which reproduces the training
  distribution reaches (the scores are not 0: finite samples, and train and held-out windows
  come from different days).

Per run (data set x generator x seed): fit (``--steps`` steps per training stage), generate as
many windows as are scored (``--num-eval``, or all held-out windows if fewer; the same seeded
subset of held-out windows for every generator), then Context-FID (the TS2Vec encoder trained once
per data set and seed on those held-out windows), the discriminative (DS), predictive (PS) and
correlational (Corr) scores of :mod:`pyrossm.evaluation.generation` (each min-max scales the
channels by the held-out windows' range), and the fit and sampling times.  Lower is better for
every score.  A sample with non-finite values, or a fit that fails, is recorded without scores
(``failed`` in the tables, the reason below them).  The first fit of a process also pays torch's
and Pyro's one-time setup (about 2 s on a CPU).

Each run is stored as JSON in ``--out/runs/`` (with the first seed's generated windows, for the
figure, as ``.npz``) and skipped when it is there; a process claims a run with a lock file first,
so that several processes started with the same arguments share the work, and a cut run resumes
(after deleting its stale ``runs/*.lock``).  ``--report`` only prints the tables (one per score:
rows generators, columns data sets, mean +- sd over seeds; then the times) and draws
``pca_<data>.png``: real vs generated windows in the first two principal components of the real
windows, one panel per generator (``--embedding tsne``: a t-SNE, only if scikit-learn is
installed; ``tsne_<data>.png``).

Profiles: ``paper`` -- the library defaults, 4000 steps per stage; ``fast`` -- small networks,
600 steps per stage; ``smoke`` -- tiny networks, for the smoke run and the test.  ``--steps``
replaces the profile's steps (a state-space model or PAR has one stage: it trains ``--steps``
steps in all, where L2D trains three times as many).

    python benchmarks/generation.py --profile fast                      # everything
    python benchmarks/generation.py --profile fast &   # or: one process per core,
    python benchmarks/generation.py --profile fast &   # sharing the runs
    wait; python benchmarks/generation.py --profile fast --report
    python benchmarks/generation.py --profile smoke --steps 2 --seeds 0 --num-eval 8 \\
        --metric-steps 2 --datasets basic_motions --out /tmp/gen-smoke                # smoke run
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from posterior_stability import as_array, claim, fit_model, load_data, run_key, store, stored  # noqa: E402

from pyrossm.evaluation.generation import (  # noqa: E402
    context_fid,
    correlational_score,
    discriminative_score,
    fit_ts2vec,
    predictive_score,
)

LENGTH = 24
#: generator name -> registered model family (``None``: DeepEcho's PAR) and its fixed options
GENERATORS = {
    "L2D": ("l2d", {}),
    "L2D-latent-only": ("l2d", {"latent_only": True}),
    "L2D-data-only": ("l2d", {"data_only": True}),
    "LD": ("latent_diffusion", {}),
    "CS": ("collapse_simulation", {}),
    "DeepEcho-PAR": (None, {}),
    "DKF": ("dkf", {}),
    "DDSSM": ("ddssm", {}),
    "Real": ("real", {}),
}
PAR = "DeepEcho-PAR"
#: the reference row: training windows scored as if generated (the floor of every score)
REAL = "Real"
#: profile -> steps per training stage and the options of each model family (``par``: DeepEcho's
#: PAR, whose ``epochs`` (full-batch steps) are the profile's ``epochs`` or else ``--steps``;
#: ``max_windows`` caps the training windows it sees, as its loss loops over the sequences in Python)
PROFILES = {
    "paper": {
        "num_steps": 4000,
        "options": {
            "l2d": {"length": LENGTH},  # latent 8, hidden 64, channels 64, 4 layers, K = 100 + 100
            "latent_diffusion": {},  # hidden and latent 128, L = 1000 (Appendix G)
            "collapse_simulation": {},  # as LD, N = 50, M = 100, gamma = 2, eta = 1
            # 8 states for 6 to 28 channels; the paper's networks (the library's are compact)
            # channels 16, hidden 16, K = 128; the diffusion models z_t itself, its bound draws
            # the noise levels uniformly and its encoder is as wide as the rest, as in the paper
            "ddssm": {
                "latent_dim": 8,
                "architecture": "paper",
                "residual_transition": False,
                "level_sampling": "uniform",
                "encoder_hidden_dim": None,
            },
            "dkf": {"latent_dim": 8, "architecture": "paper", "summary": "gru"},  # channels 16, hidden 16, VHP init
            "par": {},  # PAR's own GRU (hidden 32), all training windows
        },
    },
    "fast": {
        "num_steps": 600,
        "options": {
            "l2d": {"length": LENGTH, "hidden_dim": 32, "channels": 32, "num_layers": 3, "latent_widths": (64, 32)},
            "latent_diffusion": {"hidden_dim": 64, "latent_dim": 32},
            "collapse_simulation": {"hidden_dim": 64, "latent_dim": 32},
            # the compact networks: a paper-architecture step costs ~10x more (speed.py)
            "ddssm": {"latent_dim": 8, "num_diffusion_steps": 64, "architecture": "compact"},
            "dkf": {"latent_dim": 8, "architecture": "compact"},
            # PAR's loss loops over the sequences in Python (3 s per epoch of 1000 windows here)
            "par": {"max_windows": 500, "epochs": 100},
        },
    },
    "smoke": {
        "num_steps": 2,
        "options": {
            "l2d": {
                "length": LENGTH,
                "latent_dim": 2,
                "hidden_dim": 4,
                "encoder_depth": 1,
                "channels": 4,
                "num_layers": 1,
                "latent_widths": (4,),
                "latent_steps": 5,
                "data_steps": 5,
            },
            "latent_diffusion": {"hidden_dim": 4, "latent_dim": 2, "diffusion_steps": 10, "prior_widths": (4,)},
            "collapse_simulation": {
                "hidden_dim": 4,
                "latent_dim": 2,
                "diffusion_steps": 10,
                "prior_widths": (4,),
                "vi_steps": 3,
                "collapse_from": 5,
            },
            "ddssm": {
                "latent_dim": 2,
                "channels": 4,
                "hidden_dim": 4,
                "diffusion_channels": 4,
                "diffusion_layers": 1,
                "num_diffusion_steps": 5,
            },
            "dkf": {"latent_dim": 2, "channels": 4, "hidden_dim": 4},
            "par": {"max_windows": 32},
        },
    },
}
METRICS = ("C-FID", "DS", "PS", "Corr")


# ------------------------------------------------------------------ data
def load_windows(name):
    """``(train, test)`` windows; those of ``basic_motions`` carry the ``label`` of their instance."""
    if name == "basic_motions":
        return load_data(name)
    return load_data(name, block=2 * LENGTH, straddle=True)


def eval_windows(test, num_eval, seed):
    """Indices of the held-out windows scored in the runs of ``seed`` (the same for every generator)."""
    n = min(num_eval, test.sizes["series"])
    return np.sort(np.random.default_rng(seed).permutation(test.sizes["series"])[:n])


# ------------------------------------------------------------------ generators
def fit_and_sample(generator, train, num_series, args, seed):
    """``(generated (N, T, D) float64, fit seconds, sampling seconds)``."""
    family, fixed = GENERATORS[generator]
    if family is None:
        return par_fit_and_sample(train, num_series, args, seed)
    if family == "real":
        index = np.sort(np.random.default_rng(seed).permutation(train.sizes["series"])[:num_series])
        return as_array(train.isel(series=index), list(train.data_vars)), 0.0, 0.0
    options = {**PROFILES[args.profile]["options"].get(family, {}), **fixed}
    res, fit_s = fit_model(family, options, train, args, seed)
    started = time.perf_counter()
    gen = res.sample(num_series=num_series, length=LENGTH, seed=seed)
    sample_s = time.perf_counter() - started
    return as_array(gen.isel(draw=0), list(train.data_vars)), fit_s, sample_s


def _par_model():
    """DeepEcho's ``PARModel`` class, or ``None`` if the package is not installed."""
    try:
        from deepecho import PARModel
    except ImportError:
        try:
            from deepecho.models.par import PARModel
        except ImportError:
            return None
    return PARModel


def par_fit_and_sample(train, num_series, args, seed):
    """DeepEcho's PAR on the standardised training windows (long format: an ``entity`` column
    and one column per channel, the rows of an entity in time order), ``num_series`` windows
    sampled with ``sequence_length=24``; written against DeepEcho 0.3-0.6 (``epochs`` or
    ``nb_epochs``, with or without ``sequence_length``)."""
    model_class = _par_model()
    options = dict(PROFILES[args.profile]["options"].get("par", {}))
    names = list(train.data_vars)
    x = as_array(train, names)
    rng = np.random.default_rng(seed)
    if options.get("max_windows") and len(x) > options["max_windows"]:
        x = x[np.sort(rng.permutation(len(x))[: options["max_windows"]])]
    loc, scale = x.mean(axis=(0, 1)), x.std(axis=(0, 1))
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - loc) / scale
    columns = [f"c{i}" for i in range(len(names))]
    frame = {"entity": np.repeat(np.arange(len(z)), LENGTH)}
    frame.update({c: z[..., i].reshape(-1) for i, c in enumerate(columns)})
    import pandas as pd

    frame = pd.DataFrame(frame)
    accepted = inspect.signature(model_class).parameters
    epochs = options.get("epochs", args.steps)
    wanted = {"epochs": epochs, "nb_epochs": epochs, "cuda": args.device != "cpu", "verbose": False}
    torch.manual_seed(seed)
    np.random.seed(seed)  # PAR draws from torch's and numpy's global generators
    model = model_class(**{k: v for k, v in wanted.items() if k in accepted})
    started = time.perf_counter()
    model.fit(frame, entity_columns=["entity"])
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    if "sequence_length" in inspect.signature(model.sample).parameters:
        out = model.sample(num_entities=num_series, sequence_length=LENGTH)
    else:
        out = model.sample(num_entities=num_series)
    sample_s = time.perf_counter() - started
    windows = []
    for _, group in out.groupby("entity", sort=True):
        values = group[columns].to_numpy(dtype=np.float64, na_value=np.nan)
        if len(values) < LENGTH:
            raise ValueError(f"DeepEcho PAR sampled a sequence of {len(values)} steps; expected {LENGTH}")
        windows.append(values[:LENGTH])
    if len(windows) != num_series:
        raise ValueError(f"DeepEcho PAR sampled {len(windows)} sequences; expected {num_series}")
    return np.stack(windows) * scale + loc, fit_s, sample_s


# ------------------------------------------------------------------ scores
def metric_options(args):
    return {} if args.metric_steps is None else {"num_steps": args.metric_steps}


_ENCODERS = {}


def encoder(data_name, real, args, seed):
    """The TS2Vec encoder of ``data_name``'s scored held-out windows (one per data set and seed)."""
    key = (data_name, seed)
    if key not in _ENCODERS:
        _ENCODERS[key] = fit_ts2vec(real, seed=seed, **metric_options(args))
    return _ENCODERS[key]


def scores(data_name, real, generated, args, seed):
    """The scores of ``generated`` against ``real`` (both ``(N, T, D)`` in data units)."""
    opts = metric_options(args)
    return {
        "C-FID": context_fid(real, generated, seed=seed, encoder=encoder(data_name, real, args, seed)),
        "DS": discriminative_score(real, generated, seed=seed, **opts),
        "PS": predictive_score(real, generated, seed=seed, **opts),
        "Corr": correlational_score(real, generated) if real.shape[-1] > 1 else None,
    }


def _save_npz(path, **arrays):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    tmp = path.with_suffix(".npz.tmp")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)


def run(args, data_name, generator, train, test, seed):
    key = run_key(data_name, generator, seed)
    if stored(args.out, key) or not claim(args.out, key):
        return
    names = list(train.data_vars)
    index = eval_windows(test, args.num_eval, seed)
    real = as_array(test.isel(series=index), names)
    record = {"num_eval": len(real), "profile": args.profile, "steps": args.steps}
    try:
        generated, record["fit_s"], record["sample_s"] = fit_and_sample(generator, train, len(real), args, seed)
    except Exception as err:  # a failed fit is a result: recorded, and the other runs go on
        store(args.out, key, {**record, "error": f"{type(err).__name__}: {err}"})
        print(key, "failed:", f"{type(err).__name__}: {err}", flush=True)
        return
    finite = bool(np.all(np.isfinite(generated)))
    if finite:
        record.update(scores(data_name, real, generated, args, seed))
    else:
        record.update({m: None for m in METRICS}, nonfinite=int((~np.isfinite(generated)).sum()))
    if seed == args.seeds[0]:
        keep = slice(0, args.num_plot)
        real_path = args.out / "runs" / f"{run_key('real', data_name, seed)}.npz"
        if not real_path.exists():
            labels = test["label"].values[index] if "label" in test.coords else np.array([], dtype=str)
            _save_npz(real_path, windows=real[keep].astype(np.float32), labels=labels[keep].astype(str))
        _save_npz(args.out / "runs" / f"{key}.npz", windows=generated[keep].astype(np.float32))
    store(args.out, key, record)
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in record.items() if k != "profile"}
    print(key, shown, flush=True)


# ------------------------------------------------------------------ report
def _records(out):
    for path in sorted((out / "runs").glob("*.json")):
        parts = path.stem.split("__")
        if len(parts) == 3:
            yield parts, json.loads(path.read_text())


def _cell(values, digits=3):
    """``mean ± sd`` of the finite values, with ``(k/n)`` when only ``k`` of ``n`` runs scored."""
    values = np.array([np.nan if v is None else v for v in values], dtype=float)
    ok = values[np.isfinite(values)]
    if not len(ok):
        return "failed" if len(values) else "-"
    text = f"{ok.mean():.{digits}f} ± {ok.std(ddof=1):.{digits}f}" if len(ok) > 1 else f"{ok.mean():.{digits}f}"
    return text if len(ok) == len(values) else f"{text} ({len(ok)}/{len(values)} runs)"


def _embedding(real, generated, method, seed=0):
    """2-D coordinates of ``real`` and of each of ``generated`` (windows min-max scaled by the
    real windows' per-channel range, as the scores do, then flattened)."""
    low = real.min(axis=(0, 1))
    span = np.where(real.max(axis=(0, 1)) - low > 0, real.max(axis=(0, 1)) - low, 1.0)
    flat = [((a - low) / span).reshape(len(a), -1) for a in [real, *generated]]
    if method == "tsne":
        from sklearn.manifold import TSNE

        joint = np.concatenate(flat)
        perplexity = min(30.0, max(2.0, (len(joint) - 1) / 3))
        coords = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(joint)
        return np.split(coords, np.cumsum([len(a) for a in flat])[:-1])
    mean = flat[0].mean(axis=0)
    _, _, vt = np.linalg.svd(flat[0] - mean, full_matrices=False)
    basis = vt[:2].T if vt.shape[0] >= 2 else np.pad(vt.T, ((0, 0), (0, 2 - vt.shape[0])))
    return [(a - mean) @ basis for a in flat]


def figures(args):
    method = args.embedding
    if method == "tsne":
        try:
            import sklearn.manifold  # noqa: F401
        except ImportError:
            print("t-SNE needs scikit-learn, which is not installed: drawing PCA instead")
            method = "pca"
    reals = {}
    for path in sorted((args.out / "runs").glob("real__*.npz")):
        _, data, seed = path.stem.split("__")
        if data not in reals or int(seed) < reals[data][0]:
            reals[data] = (int(seed), path)
    for data, (seed, path) in sorted(reals.items()):
        with np.load(path) as f:
            real, labels = f["windows"].astype(np.float64), f["labels"]
        panels = []
        for generator in GENERATORS:
            gen_path = args.out / "runs" / f"{run_key(data, generator, seed)}.npz"
            if gen_path.exists():
                with np.load(gen_path) as f:
                    windows = f["windows"].astype(np.float64)
                if np.all(np.isfinite(windows)):
                    panels.append((generator, windows))
        if not panels:
            continue
        coords = _embedding(real, [w for _, w in panels], method, seed)
        cols = min(4, len(panels))
        rows = -(-len(panels) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
        for ax, (generator, _), gen_xy in zip(axes.flat, panels, coords[1:]):
            if len(labels):
                for label in np.unique(labels):
                    pts = coords[0][labels == label]
                    ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.5, label=f"real: {label}")
            else:
                ax.scatter(coords[0][:, 0], coords[0][:, 1], s=6, alpha=0.5, color="tab:blue", label="real")
            ax.scatter(gen_xy[:, 0], gen_xy[:, 1], s=6, alpha=0.5, color="black", marker="x", label="generated")
            ax.set_title(generator, fontsize=9)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(panels) :]:
            ax.set_visible(False)
        axes.flat[0].legend(fontsize=6, loc="best")
        name = "PCA" if method == "pca" else "t-SNE"
        fig.suptitle(f"{data}: held-out vs generated windows ({name}, seed {seed})", fontsize=10)
        fig.tight_layout()
        out = args.out / f"{method}_{data}.png"
        fig.savefig(out, dpi=110)
        plt.close(fig)
        print(f"wrote {out}")


def report(args):
    rows = {}
    for (data, generator, _seed), rec in _records(args.out):
        rows.setdefault(generator, {}).setdefault(data, []).append(rec)
    if not rows:
        print("no stored runs")
        return
    datasets = [d for d in ("stock", "energy", "basic_motions") if any(d in r for r in rows.values())]
    order = [g for g in [REAL, *GENERATORS] if g in rows]
    order = list(dict.fromkeys(order)) + sorted(g for g in rows if g not in GENERATORS)
    print("\nGenerated vs held-out windows of 24 steps, mean ± sd over seeds (lower is better)\n")
    for metric in METRICS:
        print(f"**{metric}**\n")
        print("| model | " + " | ".join(datasets) + " |")
        print("|---|" + "---:|" * len(datasets))
        for generator in order:
            per = rows[generator]
            cells = [_cell([r.get(metric) for r in per[d]]) if d in per else "-" for d in datasets]
            print(f"| {generator} | " + " | ".join(cells) + " |")
        print()
    print("**Time** (seconds per run: fit / sampling of the scored windows)\n")
    print("| model | " + " | ".join(f"{d} fit s | {d} sample s" for d in datasets) + " | seeds |")
    print("|---|" + "---:|---:|" * len(datasets) + "---:|")
    for generator in order:
        per = rows[generator]
        cells = []
        for d in datasets:
            for k in ("fit_s", "sample_s"):
                cells.append(_cell([r.get(k) for r in per[d]], digits=1) if d in per else "-")
        print(f"| {generator} | " + " | ".join(cells) + f" | {max(len(v) for v in per.values())} |")
    for (data, generator, seed), rec in _records(args.out):
        if "error" in rec:
            print(f"\n{generator} on {data}, seed {seed}: failed: {rec['error']}")
        elif rec.get("nonfinite"):
            print(f"\n{generator} on {data}, seed {seed}: {rec['nonfinite']} non-finite generated values, not scored")
    figures(args)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="fast")
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["stock", "energy", "basic_motions"],
        choices=["stock", "energy", "basic_motions"],
    )
    parser.add_argument(
        "--generators",
        nargs="+",
        default=[REAL] + [g for g in GENERATORS if g != REAL],
        choices=list(GENERATORS),
        help="run in this order, each on every data set and seed before the next",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="steps per training stage (default: the profile's)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--num-eval", type=int, default=500, help="held-out and generated windows scored")
    parser.add_argument(
        "--metric-steps", type=int, default=None, help="training steps of DS, PS and TS2Vec (default: the library's)"
    )
    parser.add_argument("--num-plot", type=int, default=250, help="windows per set kept for the figure")
    parser.add_argument("--embedding", choices=["pca", "tsne"], default="pca")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--report", action="store_true", help="only print tables and draw figures")
    args = parser.parse_args(argv)
    args.steps = args.steps or PROFILES[args.profile]["num_steps"]
    args.out = args.out or Path("benchmarks/results") / f"generation_{args.profile}"
    (args.out / "runs").mkdir(parents=True, exist_ok=True)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if not args.report:
        generators = list(args.generators)
        if PAR in generators and _par_model() is None:
            print(f"{PAR}: skipped (pip install deepecho)", flush=True)
            generators.remove(PAR)
        started = time.perf_counter()
        data = {}
        for name in args.datasets:
            data[name] = load_windows(name)
            train, test = data[name]
            print(f"{name}: {train.sizes['series']} training and {test.sizes['series']} held-out windows", flush=True)
        for generator in generators:  # generator by generator: the costly ones come last
            for name in args.datasets:
                for seed in args.seeds:
                    run(args, name, generator, *data[name], seed)
        print(f"\ntotal {time.perf_counter() - started:.0f} s", flush=True)
    report(args)


if __name__ == "__main__":
    main()
