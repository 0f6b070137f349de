"""``pyrossm demo``: the DDSSM paper's bimodal random walk (Sec. 4), fitted with DDSSM and a DKF.

Prints the 1-step predictive JSD against the exact law (with the sampling floor and LOCF),
the 8-step CRPS against LOCF, and writes two figures and the fitted models to the output folder.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

#: the demo fits the library's defaults, exactly what ``pyrossm.fit(model=..., data=train)`` does
#: (compact networks, 3000 DKF and 12000 DDSSM steps: about 2 and 7 minutes on a 2-core CPU)
DEMO_FITS = {"DDSSM": dict(model="ddssm"), "DKF": dict(model="dkf")}


def run_demo(
    out: Path, num_steps=None, seed=0, progress=True, n_train=1024, n_test=64, models=("DDSSM", "DKF"), num_samples=512
):
    """Fits each demo model, evaluates and plots; returns a dict of the printed figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import pyrossm
    from pyrossm.datasets import bimodal_random_walk, bimodal_transition_law
    from pyrossm.evaluation import crps, jsd_to_density, plot_forecast, plot_predictive_density
    from pyrossm.models import get_spec

    out.mkdir(parents=True, exist_ok=True)
    length, context_1, context_8 = 32, 31, 24
    train = bimodal_random_walk(num_series=n_train, length=length, seed=seed)
    test, latent = bimodal_random_walk(num_series=n_test, length=length, seed=seed + 2, return_latent=True)
    law = bimodal_transition_law(latent.values[:, context_1 - 1])
    bounds = dict(low=law.mean - 8.0, high=law.mean + 8.0)
    truth = test["x"].values[:, context_8:]
    print(f"pyrossm demo: bimodal random walk, {n_train} training series x {length} steps, {n_test} test series")

    results, one_step, fans = {}, {}, {}
    for name in models:
        settings = dict(DEMO_FITS[name])
        if num_steps:
            settings["num_steps"] = num_steps
        steps = num_steps or get_spec(settings["model"]).trainer_defaults["num_steps"]
        print(f"\nfitting {name} ({steps} SVI steps, the library defaults) ...", flush=True)
        start = time.perf_counter()
        res = pyrossm.fit(data=train, seed=seed, progress=progress, **settings)
        fit_seconds = time.perf_counter() - start
        print(res)
        # 1-step predictive of x_32 given x_{1:31} against the exact law (DDSSM paper, Fig. 1)
        start = time.perf_counter()
        fc1 = res.forecast(test.isel(time=slice(0, context_1)), horizon=1, num_samples=num_samples, seed=seed)
        forecast_seconds = time.perf_counter() - start
        one_step[name] = fc1["x"].values[:, :, 0]  # (S, N)
        # 8-step forecasts from x_{1:24} (DDSSM paper, Fig. 2)
        fans[name] = res.forecast(
            test.isel(time=slice(0, context_8)), horizon=length - context_8, num_samples=256, seed=seed
        )
        results[name] = {
            "jsd": jsd_to_density(one_step[name], law.pdf, **bounds),
            "crps": float(crps(fans[name]["x"].values, truth).mean()),
            "fit_seconds": fit_seconds,
            "forecast_seconds": forecast_seconds,
        }
        res.save(out / f"{name.lower()}.pyrossm")

    exact = law.sample(num_samples, np.random.default_rng(seed))
    locf = np.repeat(test["x"].values[None, :, context_1 - 1], num_samples, axis=0)
    results["LOCF"] = {
        "jsd": jsd_to_density(locf, law.pdf, **bounds),
        "crps": float(
            crps(np.repeat(test["x"].values[None, :, context_8 - 1 : context_8], truth.shape[1], 2), truth).mean()
        ),
    }
    results["exact law (sampling floor)"] = {"jsd": jsd_to_density(exact, law.pdf, **bounds), "crps": float("nan")}

    print(f"\n{'model':28s} {'1-step JSD (mean +- s.e.)':>26s} {'8-step CRPS':>12s} {'fit s':>8s} {'forecast s':>11s}")
    for name, r in results.items():
        se = r["jsd"].std(ddof=1) / np.sqrt(len(r["jsd"]))
        jsd_text = f"{r['jsd'].mean():.4f} +- {se:.4f}"
        fit_s = f"{r['fit_seconds']:.1f}" if "fit_seconds" in r else "-"
        fc_s = f"{r['forecast_seconds']:.2f}" if "forecast_seconds" in r else "-"
        crps_text = f"{r['crps']:.4f}" if np.isfinite(r["crps"]) else "-"
        print(f"{name:28s} {jsd_text:>26s} {crps_text:>12s} {fit_s:>8s} {fc_s:>11s}")
    print(
        "(JSD base 2 against the exact law of x_32 | z_31, 100 bins on mean +- 8; forecast s = "
        f"{num_samples} samples x {n_test} series)"
    )

    # Figures: pooled predictive of the jump x_32 - 0.9 z_31 (Fig. 1a) and fan charts (Fig. 2)
    jumps = {name: s - 0.9 * latent.values[None, :, context_1 - 1] for name, s in one_step.items()}
    grid = np.linspace(-8, 8, 400)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    plot_predictive_density(
        jumps, grid=grid, pdf=lambda g: bimodal_transition_law(np.zeros(1)).pdf(g[:, None])[:, 0], ax=ax
    )
    ax.set_xlabel("x_32 - 0.9 z_31")
    ax.set_title("1-step predictive vs the exact bimodal law")
    fig.tight_layout()
    fig.savefig(out / "predictive_density.png", dpi=120)
    plt.close(fig)
    series = test["series"].values[:2]
    fig, axes = plt.subplots(
        len(series), len(fans), figsize=(5 * len(fans), 5.5), squeeze=False, sharex=True, sharey="row"
    )
    for row, s in enumerate(series):
        for col, (name, fc) in enumerate(fans.items()):
            ax = axes[row, col]
            plot_forecast(test.isel(time=slice(0, context_8)), fc, "x", s, truth=test, ax=ax)
            ax.set_title(f"{name}, series {s}: 8-step forecast from x_1:24", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "forecast.png", dpi=120)
    plt.close(fig)
    print(f"wrote {out / 'predictive_density.png'}, {out / 'forecast.png'} and the fitted models")
    return {name: {k: (float(np.mean(v)) if k == "jsd" else v) for k, v in r.items()} for name, r in results.items()}
