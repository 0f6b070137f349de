"""``pyrossm demo``: the DDSSM paper's bimodal random walk (Sec. 4), fitted with a DKF.

Prints the 1-step predictive JSD against the exact law (with the sampling floor and LOCF),
the 8-step CRPS against LOCF, and writes two figures and the fitted model to the output folder.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

#: settings of the demo fit: small networks so it runs in a few minutes on a 2-core CPU
DEMO_FIT = dict(model="dkf", latent_dim=1, order=1, num_steps=600, batch_size=128,
                learning_rate=3e-3, warmup_steps=200, channels=8, hidden_dim=8)


def run_demo(out: Path, num_steps=None, seed=0, progress=True, n_train=1024, n_test=256):
    """Fits, evaluates and plots; returns a dict of the printed figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import pyrossm
    from pyrossm.datasets import bimodal_random_walk, bimodal_transition_law
    from pyrossm.evaluation import crps, jsd_to_density, plot_forecast, plot_predictive_density

    out.mkdir(parents=True, exist_ok=True)
    length, context_1, context_8 = 32, 31, 24
    train = bimodal_random_walk(n_series=n_train, length=length, seed=seed)
    test, latent = bimodal_random_walk(n_series=n_test, length=length, seed=seed + 2, return_latent=True)
    settings = dict(DEMO_FIT, num_steps=num_steps or DEMO_FIT["num_steps"])
    print(f"pyrossm demo: bimodal random walk, {n_train} training series x {length} steps")
    print(f"fitting {settings['model'].upper()} ({settings['num_steps']} SVI steps) ...", flush=True)
    start = time.perf_counter()
    res = pyrossm.fit(data=train, seed=seed, progress=progress, **settings)
    fit_seconds = time.perf_counter() - start
    print(res)

    # 1-step predictive of x_32 given x_{1:31} against the exact law (DDSSM paper, Fig. 1)
    start = time.perf_counter()
    fc1 = res.forecast(test.isel(time=slice(0, context_1)), horizon=1, num_samples=1024, seed=seed)
    forecast_seconds = time.perf_counter() - start
    samples = fc1["x"].values[:, :, 0]                                          # (S, N)
    law = bimodal_transition_law(latent.values[:, context_1 - 1])
    exact = law.sample(1024, np.random.default_rng(seed))                       # (S, N)
    locf = np.repeat(test["x"].values[None, :, context_1 - 1], 1024, axis=0)
    bounds = dict(low=law.mean - 8.0, high=law.mean + 8.0)
    jsd = {name: jsd_to_density(s, law.pdf, **bounds)
           for name, s in [("DKF", samples), ("LOCF", locf), ("exact-law samples (floor)", exact)]}

    # 8-step forecasts from x_{1:24}: CRPS against LOCF
    fc8 = res.forecast(test.isel(time=slice(0, context_8)), horizon=length - context_8,
                       num_samples=256, seed=seed)
    truth = test["x"].values[:, context_8:]
    crps_model = crps(fc8["x"].values, truth).mean()
    crps_locf = crps(np.repeat(test["x"].values[None, :, context_8 - 1:context_8], truth.shape[1], 2),
                     truth).mean()

    print("\n1-step predictive of x_32 | x_1:31, JSD (base 2) to the exact law, mean +- s.e. over "
          f"{n_test} test series")
    for name, values in jsd.items():
        print(f"  {name:28s} {values.mean():.4f} +- {values.std(ddof=1) / np.sqrt(len(values)):.4f}")
    print(f"\n8-step forecast CRPS (x_25:32 | x_1:24):  DKF {crps_model:.4f}   LOCF {crps_locf:.4f}")
    print(f"\ntraining {fit_seconds:.1f} s; 1-step forecast of 1024 samples x {n_test} series "
          f"{forecast_seconds:.2f} s")

    # Figures: pooled predictive of the jump x_32 - 0.9 z_31 (Fig. 1a) and fan charts (Fig. 2)
    jump = samples - 0.9 * latent.values[None, :, context_1 - 1]
    grid = np.linspace(-8, 8, 400)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    plot_predictive_density({"DKF": jump}, grid=grid,
                            pdf=lambda g: bimodal_transition_law(np.zeros(1)).pdf(g[:, None])[:, 0],
                            ax=ax)
    ax.set_xlabel("x_32 - 0.9 z_31")
    ax.set_title("1-step predictive vs the exact bimodal law")
    fig.tight_layout()
    fig.savefig(out / "predictive_density.png", dpi=120)
    plt.close(fig)
    fig, axes = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for ax, s in zip(axes, test["series"].values[:2]):
        plot_forecast(test.isel(time=slice(0, context_8)), fc8, "x", s, truth=test, ax=ax)
        ax.set_title(f"series {s}: 8-step forecast from x_1:24")
    fig.tight_layout()
    fig.savefig(out / "forecast.png", dpi=120)
    plt.close(fig)
    res.save(out / "dkf.pyrossm")
    print(f"wrote {out / 'predictive_density.png'}, {out / 'forecast.png'}, {out / 'dkf.pyrossm'}")
    return {"jsd": {k: float(v.mean()) for k, v in jsd.items()}, "crps_model": float(crps_model),
            "crps_locf": float(crps_locf), "fit_seconds": fit_seconds}
