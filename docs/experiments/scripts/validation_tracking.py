"""Does a validation score track the test JSD across a default fit's validations?

Fits the DDSSM with the library defaults (plus ``--set``) on one system of
``benchmarks/defaults.py`` (``--num-train`` x 32 training series, seed ``--seed``), keeps a copy of the
parameters at every validation, then scores each copy: the recorded validation log score of the
held-out last step, the same with 128 draws, the 1-step CRPS of that step (64 draws) and the JSD
of 256 test series' 1-step forecasts (256 draws) against the exact predictive law.  A criterion
that tracks the JSD picks a step whose JSD is near the best.
``docs/experiments/2026-12-07-holdout-keep-best.md`` has the measurements.

    KEEP='{"holdout_last_step": true, "keep_best": true, "validate_every": 500,
           "validation_metric": "log_score"}'
    python docs/experiments/scripts/validation_tracking.py trimodal_walk --out track.json --set "trainer=$KEEP"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))

import defaults  # noqa: E402

import pyrossm  # noqa: E402
from pyrossm import draws  # noqa: E402
from pyrossm.datasets.systems import SYSTEMS  # noqa: E402
from pyrossm.evaluation import crps  # noqa: E402
from pyrossm.inference import Trainer  # noqa: E402


def fit_with_snapshots(system, train, options):
    """``(result, snapshots, params)``: a fit, ``(step, val values, parameter copies)`` at each of
    its validations (``keep_best`` must be on), and the trained parameter tensors."""
    snapshots, seen = [], {}
    remember, fit = Trainer._remember_if_best, Trainer.fit

    def spy_remember(self, values):
        snapshots.append((self.step, dict(values), [p.detach().clone() for p in self.stage_params]))
        return remember(self, values)

    def spy_fit(self, *args, **kwargs):
        seen["trainer"] = self
        return fit(self, *args, **kwargs)

    Trainer._remember_if_best, Trainer.fit = spy_remember, spy_fit
    try:
        result = pyrossm.fit(model="ddssm", data=train, **options)
    finally:
        Trainer._remember_if_best, Trainer.fit = remember, fit
    return result, snapshots, seen["trainer"].stage_params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=sorted(SYSTEMS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-train", type=int, default=1024, help="training series")
    parser.add_argument("--set", nargs="*", default=[], help="fit options as KEY=JSON (see defaults.py)")
    parser.add_argument("--out", required=True, help="JSON file of the rows")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    system = SYSTEMS[args.system]
    sizes = argparse.Namespace(num_train=args.num_train, length=32, num_test=256, seed=args.seed)
    train, test, law, latent_law = defaults.data_sets(system, sizes)
    options = dict(seed=args.seed, progress=False, **defaults.parse_settings(args.set))
    if system.covariates:
        options["covariates"] = list(system.covariates)
    result, snapshots, params = fit_with_snapshots(system, train, options)
    if not snapshots:
        raise SystemExit("no validation was kept: the fit needs keep_best, validate_every and validation (see --help)")
    length = train.sizes["time"]
    context = train.isel(time=slice(0, length - 1))
    future = train[list(system.covariates)].isel(time=slice(length - 1, length)) if system.covariates else None
    encoded = result._encode(train)
    rows = []
    for step, values, copy in snapshots:
        with torch.no_grad():
            torch._foreach_copy_(params, copy)
        test_draws = defaults.one_step_draws(result, test, system, 256, args.seed)
        with draws.seeded_on(0, result.device):
            score = draws.one_step_log_score(result.model, result.contract, encoded, 128, result.device)
        forecast = result.forecast(context, horizon=1, num_samples=64, future_covariates=future, seed=0)
        row = {
            "step": step,
            "val_log_score": values["val_log_score"],
            "log_score_128": float(score.nanmean()),
            "crps_64": float(crps(forecast["x"].values[:, :, 0], train["x"].values[:, -1]).mean()),
            "jsd": defaults.scores(test_draws, law, latent_law)["jsd_mean"],
        }
        print(row, flush=True)
        rows.append(row)
    Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
