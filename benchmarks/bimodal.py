"""Reproduces the DDSSM paper's Section 4: the bimodal random walk (Fig. 1 and Fig. 2).

Models: DKF+VHP and DDSSM with the tuned settings of the paper's Table 3 (mapped onto pyrossm's
parameter groups: enc_lr -> encoder, dec_lr -> emission, trans_lr -> transition,
zinit_lr -> init), and LOCF.  For each test series, 1024 draws of the 1-step predictive of x_32
given x_{1:31}; the Jensen-Shannon divergence (base 2, 100 bins on the exact mean +- 8) to the
exact law 0.5 N(0.9 z_31 + 4, 0.2) + 0.5 N(0.9 z_31 - 4, 0.2); mean and standard error over the
test set, with the sampling floor (JSD of 1024 draws of the exact law).  Writes
``predictive_density.png`` (Fig. 1a) and ``forecasts.png`` (Fig. 2: reconstructions and 8-step
forecasts) to ``--out`` and prints the table with training and forecasting times.

    python benchmarks/bimodal.py                 # the paper's setting: 3000 steps (long on a CPU)
    python benchmarks/bimodal.py --quick         # 300 steps, 256 test series: minutes
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import pyrossm  # noqa: E402
from pyrossm.datasets import bimodal_random_walk, bimodal_transition_law  # noqa: E402
from pyrossm.evaluation import jsd_to_density, plot_predictive_density  # noqa: E402

# Table 3 of the DDSSM paper (the "DSSD" column is the DDSSM)
SETTINGS = {
    "DKF+VHP": dict(model="dkf", init="vhp", batch_size=512, num_particles=2,
                    annealing="cosine", warmup_steps=867, annealing_end=1.245,
                    learning_rates=dict(encoder=0.00887, emission=0.00777, transition=0.000099,
                                        init=0.005)),
    "DDSSM": dict(model="ddssm", init="vhp", batch_size=128, num_particles=2, num_noise_draws=5,
                  annealing="cosine", warmup_steps=889, annealing_end=1.243,
                  learning_rates=dict(encoder=0.000864, emission=0.000300, transition=0.00941,
                                      init=0.000801)),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="300 steps, 256 test series, 512 draws")
    parser.add_argument("--num-test", type=int, default=1024)
    parser.add_argument("--num-samples", type=int, default=1024)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="*", default=list(SETTINGS))
    parser.add_argument("--out", default="benchmarks/output/bimodal")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.num_test, args.num_samples = 300, 256, 512
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    length, ctx1, ctx8 = 32, 31, 24
    train = bimodal_random_walk(n_series=1024, length=length, seed=args.seed)
    valid = bimodal_random_walk(n_series=1024, length=length, seed=args.seed + 1)
    test, latent = bimodal_random_walk(n_series=args.num_test, length=length, seed=args.seed + 2,
                                       return_latent=True)
    law = bimodal_transition_law(latent.values[:, ctx1 - 1])
    bounds = dict(low=law.mean - 8.0, high=law.mean + 8.0)
    print(f"bimodal random walk: 1024 train / 1024 validation / {args.num_test} test series x {length}; "
          f"{args.steps} SVI steps; {args.num_samples} predictive draws; device {args.device}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    rows, one_step, fans, recon = {}, {}, {}, {}
    for name in args.models:
        settings = SETTINGS[name]
        start = time.perf_counter()
        res = pyrossm.fit(data=train, validation_data=valid, validate_every=max(args.steps // 10, 1),
                          num_steps=args.steps, seed=args.seed, device=args.device, progress=True,
                          **settings)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        fc = res.forecast(test.isel(time=slice(0, ctx1)), horizon=1, num_samples=args.num_samples,
                          seed=args.seed)
        fc_s = time.perf_counter() - start
        one_step[name] = fc["x"].values[:, :, 0]
        fans[name] = res.forecast(test.isel(time=slice(0, ctx8)), horizon=length - ctx8,
                                  num_samples=64, seed=args.seed)
        recon[name] = res.posterior_predictive(test.isel(series=slice(0, 8)), num_samples=64,
                                               seed=args.seed)
        val = res.history["val_elbo"].dropna()
        rows[name] = dict(jsd=jsd_to_density(one_step[name], law.pdf, **bounds), fit_s=fit_s,
                          forecast_s=fc_s, val_elbo=float(val.iloc[-1]) if len(val) else float("nan"))
        res.save(out / f"{name.lower().replace('+', '_')}.pyrossm")
    locf = np.repeat(test["x"].values[None, :, ctx1 - 1], args.num_samples, axis=0)
    rows["LOCF"] = dict(jsd=jsd_to_density(locf, law.pdf, **bounds))
    exact = law.sample(args.num_samples, np.random.default_rng(args.seed))
    rows["sampling floor"] = dict(jsd=jsd_to_density(exact, law.pdf, **bounds))

    print(f"\n{'model':16s} {'JSD mean':>9s} {'s.e.':>8s} {'val ELBO':>10s} {'train s':>9s} "
          f"{'forecast s':>11s}")
    summary = {}
    for name, r in rows.items():
        jsd = r["jsd"]
        se = jsd.std(ddof=1) / np.sqrt(len(jsd))
        summary[name] = {"jsd_mean": float(jsd.mean()), "jsd_se": float(se),
                         **{k: v for k, v in r.items() if k != "jsd"}}
        fmt = lambda key, spec: format(r[key], spec) if key in r else "-"  # noqa: E731
        print(f"{name:16s} {jsd.mean():9.4f} {se:8.4f} {fmt('val_elbo', '10.3f'):>10s} "
              f"{fmt('fit_s', '9.1f'):>9s} {fmt('forecast_s', '11.2f'):>11s}")
    if "DDSSM" in summary and "DKF+VHP" in summary:
        ratio = summary["DDSSM"]["jsd_mean"] / summary["DKF+VHP"]["jsd_mean"]
        floor = summary["DDSSM"]["jsd_mean"] / summary["sampling floor"]["jsd_mean"]
        print(f"DDSSM / DKF JSD = {ratio:.3f} (target <= 0.3); DDSSM / floor = {floor:.2f} (target <= 3)")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))

    jumps = {name: s - 0.9 * latent.values[None, :, ctx1 - 1] for name, s in one_step.items()}
    grid = np.linspace(-8, 8, 400)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    plot_predictive_density(jumps, grid=grid, ax=ax,
                            pdf=lambda g: bimodal_transition_law(np.zeros(1)).pdf(g[:, None])[:, 0])
    ax.set_xlabel("x_32 - 0.9 z_31")
    ax.set_title("Average 1-step predictive vs the exact law (cf. DDSSM paper Fig. 1a)")
    fig.tight_layout()
    fig.savefig(out / "predictive_density.png", dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(2, len(fans), figsize=(5 * len(fans), 6), squeeze=False, sharey="row")
    for col, name in enumerate(fans):
        for row in range(2):
            ax = axes[row, col]
            t = test["time"].values
            ax.plot(t, test["x"].values[row], "k.-", lw=0.8, label="data")
            rec = recon[name]["posterior_predictive"]["x"].isel(chain=0, series=row)
            ax.plot(t, rec.mean("draw"), "C0--", label="reconstruction")
            paths = fans[name]["x"].isel(series=row)
            ax.plot(paths["time"], paths.values[:20].T, color="C3", alpha=0.15)
            ax.plot(paths["time"], paths.mean("draw"), color="C3", label="forecast mean")
            ax.set_title(f"{name}: test series {row}", fontsize=9)
            if row == 0 and col == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "forecasts.png", dpi=120)
    plt.close(fig)
    print(f"wrote {out}/predictive_density.png, {out}/forecasts.png, {out}/summary.json")


if __name__ == "__main__":
    main()
