"""Data-parallel scaling: training steps/s and series/s of ``pyrossm.fit`` against the world size.

For each world size it launches ``torchrun --standalone --nproc-per-node=N`` on this script in
worker mode: every rank fits the model on the bimodal random walk (1024 series x 32) with the
same global minibatch (``--batch-size``), one torch thread per process, and rank 0 reports the
steps/s of the steps after ``--warmup``.  On a CPU the processes use gloo; with
``--device cuda`` each takes one GPU (nccl).

    python benchmarks/scaling.py                                  # DKF and DDSSM, 1 and 2 processes
    python benchmarks/scaling.py --models ddssm --world-sizes 1 2 4 --device cuda
    python benchmarks/scaling.py --steps 6 --warmup 2 --models dkf      # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: small paper networks with a 1-D latent, as measured before the defaults became compact and 2-D
ARCHITECTURE = dict(channels=8, hidden_dim=8, encoder_layers=1, emission_layers=1, architecture="paper", latent_dim=1)


def worker(args):
    import torch

    import pyrossm
    from pyrossm.datasets import bimodal_random_walk
    from pyrossm.inference.distributed import world

    torch.set_num_threads(1)
    data = bimodal_random_walk(num_series=1024, length=32, seed=0)
    res = pyrossm.fit(
        args.model,
        data,
        num_steps=args.steps,
        batch_size=args.batch_size,
        device=args.device,
        progress=False,
        seed=0,
        **ARCHITECTURE,
    )
    seconds = res.history["seconds"].to_numpy()
    rank, size = world()
    if rank == 0:
        timed = seconds[-1] - seconds[args.warmup - 1]
        steps = args.steps - args.warmup
        Path(args.out).write_text(
            json.dumps(
                {"world_size": size, "steps_per_s": steps / timed, "series_per_s": steps * args.batch_size / timed}
            )
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=["dkf", "ddssm"], choices=["dkf", "ddssm"])
    parser.add_argument("--world-sizes", nargs="*", type=int, default=[1, 2])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="dkf", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 0 < args.warmup < args.steps:
        parser.error("need 0 < --warmup < --steps")
    if args.worker:
        return worker(args)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    print(
        f"pyrossm.fit, bimodal walk 1024 x 32, global batch {args.batch_size}, {args.steps} steps "
        f"({args.warmup} warm-up), device {args.device}, one thread per process"
    )
    print(f"{'model':6s} {'processes':>9s} {'steps/s':>8s} {'series/s':>9s} {'speed-up':>9s}")
    for model in args.models:
        base = None
        for size in args.world_sizes:
            with tempfile.TemporaryDirectory() as scratch:
                out = Path(scratch) / "result.json"
                command = [
                    sys.executable,
                    "-m",
                    "torch.distributed.run",
                    "--standalone",
                    f"--nproc-per-node={size}",
                    __file__,
                    "--worker",
                    "--model",
                    model,
                    "--out",
                    str(out),
                    "--steps",
                    str(args.steps),
                    "--warmup",
                    str(args.warmup),
                    "--batch-size",
                    str(args.batch_size),
                    "--device",
                    args.device,
                ]
                subprocess.run(command, env=env, check=True, capture_output=True)
                result = json.loads(out.read_text())
            base = base or result["steps_per_s"]
            print(
                f"{model:6s} {size:9d} {result['steps_per_s']:8.2f} {result['series_per_s']:9.0f} "
                f"{result['steps_per_s'] / base:8.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
