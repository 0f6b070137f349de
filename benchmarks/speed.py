#!/usr/bin/env python
"""Training and forecasting speed: DKF and DDSSM in both architectures against GluonTS DeepAR.

Not a test: it prints one table.  Run from the repository root::

    .venv/bin/python benchmarks/speed.py                       # full sizes
    .venv/bin/python benchmarks/speed.py --num-series 64 --num-draws 64 --skip-deepar

On the bimodal random walk (``pyrossm.datasets.bimodal_random_walk(num_series, 32)``), one torch
thread by default:

1. **Training.**  Median seconds of a training step at batch ``--batch-size`` (T = 32) of
   DKF and DDSSM with their defaults ("compact": a second-order transition, the DKF's 2-D
   latent and the DDSSM's 4-D one, VHP init, hidden 16, the DKF's future summary
   ``summary="decay"``; DDSSM K = 128, S_k = 2), the DKF with the GRU future summary ("DKF
   gru-summary"), and both with the paper's networks (``architecture="paper"``, a 3-layer GRU
   summary) -- a pyrossm
   :class:`~pyrossm.inference.Trainer` step (ELBO, backward, gradient clipping, AdamW), as in
   ``train_throughput.py`` -- and of GluonTS's ``DeepAREstimator`` (its defaults, context length
   24, prediction length 8, the same batch size; the step timed by a Lightning callback from
   ``on_train_batch_start`` to ``on_train_batch_end``: forward, backward, optimiser step; the
   loader's time between batches is shown apart).  All models are timed in interleaved rounds of
   a few steps, so background load hits them alike.
2. **Forecasting.**  Seconds to draw ``--num-draws`` forecasts of the 8 steps after 24 steps of
   context for each of ``--num-series`` series: pyrossm's ``FitResult.forecast`` (the guide's
   smoothing posterior over the context, then transition and emission rolled forward, in passes
   of ``pyrossm.draws.ROWS_PER_PASS`` draws x series), the DDSSM with its default sampler (Heun's
   second-order method on 12 of the K = 128 noise levels: 22 denoiser calls a step) and with each
   of ``--fast-samplers`` (default DDIM on 16 steps and DDPM through all 128,
   ``transition.sampling("ddpm", 128)``);
   DeepAR's ``predictor.predict(num_samples=...)``.  The models are the ones just trained (the cost
   does not depend on the parameters' values).  A row whose first pass projects beyond
   ``--max-forecast-seconds`` is timed on as many whole passes as fit that budget and
   extrapolated linearly to the full size (the passes are all the same size), and says so.
3. **Ratios** against DeepAR: training steps/s and forecasting time.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_throughput, from any directory
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import pandas as pd  # noqa: E402
from deepar_baseline import import_gluonts  # noqa: E402
from defaults import parse_samplers  # noqa: E402
from train_throughput import OursRunner, cpu_name, interleaved, table  # noqa: E402

import pyrossm  # noqa: E402
from pyrossm import draws  # noqa: E402
from pyrossm.data import DataContract  # noqa: E402
from pyrossm.models import DDSSM, DKF  # noqa: E402

LENGTH, CONTEXT, HORIZON = 32, 24, 8
#: the DDSSM's fast samplers in the forecasting rows (``--fast-samplers``)
FAST_SAMPLERS = ["ddim:16", "ddpm:128"]
#: the paper's rows: the paper's networks, the encoder's as wide as the others, a GRU future summary
_PAPER = {"architecture": "paper", "summary": "gru"}
#: each row's model and its options beside the library's defaults (the compact rows: none)
MODELS = {
    "DKF paper": (DKF, _PAPER),
    "DKF compact": (DKF, {}),
    "DKF gru-summary": (DKF, {"summary": "gru"}),  # the compact DKF with the former summary
    "DDSSM paper": (DDSSM, dict(_PAPER, encoder_hidden_dim=None)),
    "DDSSM compact": (DDSSM, {}),
}


# ------------------------------------------------------------------------------------------ data
def bimodal(num_series, seed):
    """The bimodal random walk as an ``xr.Dataset`` (variable ``x``), and the model tensors
    ``(x, mask, u)`` scaled by its :class:`DataContract` (what ``pyrossm.fit`` trains on)."""
    data = pyrossm.datasets.bimodal_random_walk(num_series, LENGTH, seed=seed)[["x"]]
    contract, train = DataContract.fit(data)
    return data, contract, (train.filled_values, train.mask, train.covariates)


# ------------------------------------------------------------------------------------ pyrossm
def build(name, seed, num_diffusion_steps=128):
    cls, options = MODELS[name]
    torch.manual_seed(seed)
    if cls is DDSSM:
        return cls(obs_dim=1, num_diffusion_steps=num_diffusion_steps, **options)
    return cls(obs_dim=1, **options)


class _Args:
    """What :class:`train_throughput.OursRunner` reads of the command line."""

    def __init__(self, batch_size, seed):
        self.batch_size, self.seed = batch_size, seed
        self.num_particles, self.annealing = 1, 1.0


# ------------------------------------------------------------------------------------ DeepAR
class DeepARRunner:
    """GluonTS DeepAR (``gluonts.torch.DeepAREstimator``, defaults) on the same series, trained
    ``k`` batches at a time: each call fits a fresh Lightning trainer on the same module and data
    loader (so the optimiser restarts each round: the step's cost is the same) and records, per
    batch, the step (``on_train_batch_start`` -> ``on_train_batch_end``) and the loader's time
    before it."""

    def __init__(self, gluonts, data, batch_size, freq, workdir):
        DeepAREstimator, ListDataset, pl = gluonts
        self.pl, self.ListDataset, self.freq = pl, ListDataset, freq
        self.workdir = workdir
        x = np.asarray(data["x"].values, dtype=np.float32)
        self.start = pd.Period("2000-01-01", freq=freq)
        self.train_ds = ListDataset([{"start": self.start, "target": row} for row in x], freq=freq)
        self.context_ds = ListDataset([{"start": self.start, "target": row[:CONTEXT]} for row in x], freq=freq)
        self.estimator = DeepAREstimator(
            freq=freq,
            prediction_length=HORIZON,
            context_length=CONTEXT,
            batch_size=batch_size,
            num_batches_per_epoch=10**6,
        )
        self.transformation = self.estimator.create_transformation()
        transformed = self.transformation.apply(self.train_ds, is_train=True)
        self.module = self.estimator.create_lightning_module()
        self.loader = self.estimator.create_training_data_loader(transformed, self.module)
        self.iterator = None
        self.timer = self._timer()

    def _timer(self):
        pl = self.pl

        class BatchTimer(pl.Callback):
            def __init__(self):
                self.steps, self.loads, self.start, self.end = [], [], None, None

            def on_train_batch_start(self, trainer, module, batch, batch_idx):
                self.start = time.perf_counter()
                if self.end is not None:
                    self.loads.append(self.start - self.end)

            def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
                self.end = time.perf_counter()
                self.steps.append(self.end - self.start)

        return BatchTimer()

    def run(self, k):
        """Trains ``k`` batches; returns their step durations in seconds."""
        first = len(self.timer.steps)
        self.timer.end = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer = self.pl.Trainer(
                accelerator="cpu",
                devices=1,
                max_steps=k,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                callbacks=[self.timer],
                default_root_dir=self.workdir,
            )
            trainer.fit(self.module, train_dataloaders=self.loader)
        return self.timer.steps[first:]

    def forecast_seconds(self, num_series, num_draws, budget):
        """Seconds of ``predictor.predict(num_samples=num_draws)`` over the first ``num_series``
        context series, ``(seconds, note)``; beyond ``budget`` extrapolated from whole batches."""
        predictor = self.estimator.create_predictor(self.transformation, self.module)
        batch = self.estimator.batch_size
        entries = list(self.context_ds)

        def timed(n):
            subset = self.ListDataset(
                [{"start": e["start"], "target": e["target"]} for e in entries[:n]], freq=self.freq
            )
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                forecasts = list(predictor.predict(subset, num_samples=num_draws))
            assert len(forecasts) == n and forecasts[0].samples.shape == (num_draws, HORIZON)
            return time.perf_counter() - start

        passes = math.ceil(num_series / batch)
        return extrapolated(lambda k: timed(min(k * batch, num_series)), passes, budget, "batches of series")


# ------------------------------------------------------------------------------------ timing
def extrapolated(run_passes, passes, budget, unit):
    """``(seconds, note)`` of ``passes`` equal passes: ``run_passes(k)`` times ``k`` of them.
    One pass first; if ``passes`` of them would exceed ``budget`` seconds, as many as fit in the
    budget are timed and scaled linearly (the note says so), else all of them."""
    one = run_passes(1)
    if passes == 1:
        return one, "measured"
    if one * passes <= budget:
        return run_passes(passes), "measured"
    k = max(1, min(passes, int(budget // one)))
    seconds = run_passes(k) if k > 1 else one
    return seconds * passes / k, f"extrapolated from {k} of {passes} {unit}"


def pyrossm_forecast_seconds(model, contract, context, num_draws, budget, sampler=None):
    """Seconds of ``FitResult.forecast(context, horizon=8, num_samples=num_draws)``, ``(seconds,
    note)``; beyond ``budget`` extrapolated from whole passes of ``draws.draw_chunks``."""
    result = pyrossm.FitResult(model, contract, pd.DataFrame(), {"model": None}, torch.device("cpu"))
    chunks = draws.draw_chunks(num_draws, context.sizes["series"])
    per_pass = chunks[0]

    def timed(k):
        n = num_draws if k >= len(chunks) else k * per_pass
        start = time.perf_counter()
        if sampler is None:
            fc = result.forecast(context, horizon=HORIZON, num_samples=n, seed=0)
        else:
            with model.transition.sampling(*sampler):
                fc = result.forecast(context, horizon=HORIZON, num_samples=n, seed=0)
        seconds = time.perf_counter() - start
        assert fc["x"].shape == (n, context.sizes["series"], HORIZON) and np.isfinite(fc["x"].values).all()
        return seconds

    return extrapolated(timed, len(chunks), budget, f"passes of {per_pass} draws x {context.sizes['series']} series")


# --------------------------------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--num-series", type=int, default=1024, help="series (training data and forecast contexts)")
    p.add_argument("--num-draws", type=int, default=1024, help="forecast draws per series")
    p.add_argument("--batch-size", type=int, default=128, help="series per training step")
    p.add_argument(
        "--steps",
        type=int,
        default=60,
        help="timed training steps per model (20 gave medians 10-15 %% apart run to run)",
    )
    p.add_argument("--warmup", type=int, default=2, help="untimed training steps per model first")
    p.add_argument("--round-size", type=int, default=5, help="steps per model per interleaved round")
    p.add_argument(
        "--max-forecast-seconds",
        type=float,
        default=120.0,
        help="a forecast row projected (from its first pass) beyond this is timed on fewer passes and extrapolated",
    )
    p.add_argument("--num-diffusion-steps", type=int, default=128, help="the DDSSMs' K (128 is their default)")
    p.add_argument(
        "--fast-samplers",
        nargs="*",
        default=FAST_SAMPLERS,
        metavar="SAMPLER:STEPS",
        help="the DDSSMs' extra forecasting rows: sampler (ddpm, ddim or heun) on STEPS of the K noise levels",
    )
    p.add_argument("--skip-deepar", action="store_true", help="leave out the GluonTS DeepAR rows")
    p.add_argument("--skip-forecast", action="store_true", help="time training only")
    p.add_argument("--deepar-freq", default="D", help="the GluonTS frequency the series are given (sets DeepAR's lags)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (0 keeps torch's default)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the models")
    args = p.parse_args(argv)
    for name in ("num_series", "num_draws", "batch_size", "steps", "round_size", "num_diffusion_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0 or args.max_forecast_seconds <= 0:
        p.error("--warmup must be >= 0 and --max-forecast-seconds > 0")
    try:
        fast_samplers = parse_samplers(args.fast_samplers)  # before the training rows
    except ValueError as exc:
        p.error(str(exc))
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    print("pyrossm speed: DKF / DDSSM (paper and compact architectures) against GluonTS DeepAR")
    print(
        f"  torch {torch.__version__}, python {platform.python_version()}, {cpu_name()}, "
        f"torch threads {torch.get_num_threads()}, cpu count {os.cpu_count()}"
        + (f", load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "")
    )
    data, contract, tensors = bimodal(args.num_series, args.seed)
    print(f"  data: bimodal_random_walk({args.num_series}, {LENGTH}); training batch {args.batch_size}")

    models = {name: build(name, args.seed, args.num_diffusion_steps) for name in MODELS}
    runners = {
        name: OursRunner(m, tensors, _Args(args.batch_size, args.seed), torch.device("cpu"))
        for name, m in models.items()
    }
    gluonts = None if args.skip_deepar else import_gluonts()
    workdir = tempfile.TemporaryDirectory(prefix="pyrossm-speed-")
    if gluonts is not None:
        runners["DeepAR"] = DeepARRunner(gluonts, data, args.batch_size, args.deepar_freq, workdir.name)
    print(
        f"\n1. Training: {args.warmup} warm-up + {args.steps} timed steps per model, "
        f"interleaved in rounds of {args.round_size}"
    )
    times = interleaved(runners, args.warmup, args.steps, args.round_size)
    med = {name: float(np.median(t)) for name, t in times.items()}
    # wall time per batch: pyrossm's trainer rows include the batch selection; DeepAR's steps
    # exclude its data loader's time between batches, added here
    wall = dict(med)
    if "DeepAR" in runners:
        loads = runners["DeepAR"].timer.loads
        wall["DeepAR"] += float(np.median(loads)) if loads else 0.0
    rows = []
    for name in times:
        params = sum(q.numel() for q in (models[name] if name in models else runners[name].module).parameters())
        rows.append(
            [
                name,
                params,
                f"{1e3 * med[name]:.1f}",
                f"{1 / med[name]:.2f}",
                f"{args.batch_size / med[name]:.0f}",
                f"{med['DeepAR'] / med[name]:.2f}" if "DeepAR" in med else "-",
                f"{1e3 * wall[name]:.1f}",
                f"{wall['DeepAR'] / wall[name]:.2f}" if "DeepAR" in wall else "-",
            ]
        )
    table(
        rows,
        ["model", "params", "ms/step", "steps/s", "seqs/s", "vs DeepAR", "ms/batch incl. data", "vs DeepAR"],
    )
    if "DeepAR" in runners:
        print("  (vs DeepAR: steps/s over DeepAR's, > 1 is faster)")
        print(
            f"  (DeepAR: freq {args.deepar_freq!r}; its data loader took a median "
            f"{1e3 * (wall['DeepAR'] - med['DeepAR']):.1f} ms between batches: in 'incl. data' only)"
        )
    print(f"  (pyrossm {', '.join(f'{n}: {runners[n].last_loss:.3f}' for n in models)} last loss/series)")

    if not args.skip_forecast:
        context = data.isel(series=slice(0, args.num_series), time=slice(0, CONTEXT))
        print(
            f"\n2. Forecasting: {args.num_series} series x {args.num_draws} draws x {HORIZON} steps after "
            f"{CONTEXT} steps of context (budget {args.max_forecast_seconds:.0f} s per row before extrapolating)"
        )
        rows, seconds = [], {}
        jobs = []
        for name, model in models.items():
            if isinstance(model, DDSSM):
                transition = model.transition
                levels = transition.num_sampling_steps or transition.schedule.num_steps
                jobs.append((f"{name} ({transition.sampler.upper()}, {levels} steps, default)", model, None))
                for sampler, steps in fast_samplers:
                    steps = min(steps, args.num_diffusion_steps)
                    jobs.append((f"{name} ({sampler.upper()}, {steps} steps)", model, (sampler, steps)))
            else:
                jobs.append((name, model, None))
        for label, model, sampler in jobs:
            s, note = pyrossm_forecast_seconds(
                model, contract, context, args.num_draws, args.max_forecast_seconds, sampler
            )
            seconds[label] = (s, note)
            print(f"  {label}: {s:.1f} s ({note})", flush=True)
        if "DeepAR" in runners:
            s, note = runners["DeepAR"].forecast_seconds(args.num_series, args.num_draws, args.max_forecast_seconds)
            seconds["DeepAR"] = (s, note)
            print(f"  DeepAR: {s:.1f} s ({note})", flush=True)
        for label, (s, note) in seconds.items():
            ratio = f"{s / seconds['DeepAR'][0]:.2f}" if "DeepAR" in seconds else "-"
            rate = args.num_series * args.num_draws / s
            rows.append([label, f"{s:.1f}", f"{rate:.0f}", ratio, note])
        print()
        table(rows, ["model", "seconds", "draws x series / s", "time vs DeepAR", "how"])
        if "DeepAR" in seconds:
            print("  (time vs DeepAR: seconds over DeepAR's, > 1 is slower)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n  total {time.perf_counter() - t0:.0f} s; load average at end {load:.2f} on {os.cpu_count()} cpus")
    workdir.cleanup()


if __name__ == "__main__":
    main()
