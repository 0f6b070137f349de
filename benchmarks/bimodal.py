"""Reproduces the DDSSM paper's Section 4: the bimodal random walk (Fig. 1 and Fig. 2).

Models: DKF+VHP and DDSSM with the tuned settings of the paper's Table 3 (mapped onto pyrossm's
parameter groups: enc_lr -> encoder, dec_lr -> emission, trans_lr -> transition,
zinit_lr -> init), and LOCF.  For each test series, 1024 draws of the 1-step predictive of x_32
given x_{1:31}; the Jensen-Shannon divergence (base 2, 100 bins on the exact mean +- 8) to the
exact law 0.5 N(0.9 z_31 + 4, 0.2) + 0.5 N(0.9 z_31 - 4, 0.2); mean and standard error over the
test set, with the sampling floor (JSD of 1024 draws of the exact law), and where a predictive
departs from the law (:func:`mode_diagnostics`: width and place of the modes, mass between them)
and where each model's width comes from (:func:`width_decomposition`: guide, transition, emission).  Writes
``predictive_density.png`` (Fig. 1a) and ``forecasts.png`` (Fig. 2: reconstructions and 8-step
forecasts) to ``--out`` and prints the table with training and forecasting times.

Two profiles:

* ``--profile paper`` (default): Table 3's settings and the paper's architecture (channels 16,
  hidden 16, 2 layers, K = 128), 3000 steps (``STEPS``) -- about 1 s (DDSSM) to 4 s (DKF, batch 512 x 2
  particles) per step on a 2-core CPU, so hours there: meant for a GPU.
* ``--profile cpu``: the same data, test protocol and models with the library's defaults: the
  model options' (compact networks, a 2-D (DKF) / 4-D (DDSSM) latent, a second-order transition,
  the DDSSM's K = 128 around a learned linear mean, forecasts with the default Heun sampler on 12
  levels) and each family's trainer defaults (``pyrossm.models.registry``: 3000 DKF / 12000
  DDSSM steps, batches of 128, a rate of 3e-3 decayed by a cosine to 3%, the DDSSM's lambda
  phase), about 5 minutes per model on one core of a 2-core CPU.  ``--train-only`` in one process
  per model trains them in parallel; ``--reuse`` then scores the saved fits.

For DDSSM it also measures what faster sampling costs: the 1-step JSD and forecast time with
ancestral DDPM over all K steps, Heun's method on the default 12 levels and DDIM on fewer steps,
on the first ``--study-series`` test series.

    python benchmarks/bimodal.py --profile cpu            # the CPU table and figures
    python benchmarks/bimodal.py --profile cpu --train-only --models DDSSM &   # or: in parallel,
    python benchmarks/bimodal.py --profile cpu --train-only --models DKF+VHP   # one per core,
    wait; python benchmarks/bimodal.py --profile cpu --reuse                   # then score
    python benchmarks/bimodal.py --profile paper --device cuda
    python benchmarks/bimodal.py --profile cpu --steps 10 --num-test 32 --num-samples 64  # smoke run
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
from pyrossm.inference import TrainerConfig  # noqa: E402
from pyrossm.models.ddssm import HEUN_LEVELS  # noqa: E402
from pyrossm.models.registry import get_spec  # noqa: E402

# Each model's architecture (model options) per profile and its training recipe: a library preset
# (pyrossm.inference.TRAINER_PRESETS) named by "trainer", or without one the model family's
# trainer defaults.  The paper profile's presets "dkf-table3" / "ddssm-table3" are the paper's
# Table 3 (the "DSSD" column is the DDSSM) with the paper's architecture.
#: the paper's networks, a 1-D latent, a first-order transition and the backward-GRU future
#: summary, pinned: the library's defaults became compact, 2-D (DKF) / 4-D (DDSSM), second-order
#: and (DKF) a loop-free summary
_PAPER_NETWORKS = dict(architecture="paper", latent_dim=1, order=1, summary="gru")
PAPER = {
    "DKF+VHP": dict(model="dkf", init="vhp", trainer="dkf-table3", **_PAPER_NETWORKS),
    "DDSSM": dict(
        model="ddssm",
        init="vhp",
        num_noise_draws=5,
        residual_transition=False,  # the paper's: the diffusion models z_t itself
        level_sampling="uniform",  # the paper's: the bound's noise levels drawn uniformly
        encoder_hidden_dim=None,  # the paper's: the encoder's network as wide as the others
        trainer="ddssm-table3",
        **_PAPER_NETWORKS,
    ),
}
#: the library's defaults, architecture and training alike (init "vhp" is both families' default);
#: the former CPU recipe's figures are in docs/experiments/
CPU = {"DKF+VHP": dict(model="dkf"), "DDSSM": dict(model="ddssm")}
PROFILES = {"paper": PAPER, "cpu": CPU}
#: latent draws per test series for the table's 1-step log score (FitResult.log_score)
LOG_SCORE_DRAWS = 64


def trainer_config(settings, steps=None):
    """The training recipe of a profile entry as a :class:`TrainerConfig`: its ``"trainer"``
    preset, or without one its model family's trainer defaults, stretched to ``steps`` when given
    (see :meth:`TrainerConfig.stretched`), as ``pyrossm.fit`` would."""
    if "trainer" in settings:
        return TrainerConfig.from_preset(settings["trainer"], steps)
    config = TrainerConfig.from_dict(get_spec(settings["model"]).trainer_defaults)
    return config if steps is None else config.stretched(steps)


#: the number of SVI steps each model of each profile is meant for (its recipe's)
STEPS = {
    profile: {name: trainer_config(settings).num_steps for name, settings in models.items()}
    for profile, models in PROFILES.items()
}


def fit_arguments(profile, name, steps=None, validate_every=500):
    """The :func:`pyrossm.fit` keyword arguments of model ``name`` in ``profile``: its
    architecture and its recipe as a :class:`TrainerConfig` (:func:`trainer_config`) stretched to
    ``steps`` (default the recipe's own).  A recipe without validation validates every
    ``validate_every`` steps (at most ``steps``), for the history's validation ELBO."""
    settings = dict(PROFILES[profile][name])
    config = trainer_config(settings, steps)
    settings.pop("trainer", None)
    if not config.selection.validate_every:
        config = config.updated(validate_every=min(validate_every, config.num_steps))
    return dict(settings, trainer=config)


def mode_diagnostics(draws, centre, step=4.0):
    """Where a 1-step predictive departs from the exact law: per test series, the draws are split
    at the law's centre ``0.9 z_31`` into the upper and the lower mode.

    :param draws: ``(S, N)`` draws of ``x_32``.  :param centre: ``(N,)`` exact ``0.9 z_31``.
    :returns: dict of ``mode_sd`` (median over series of the within-mode standard deviation; the
        exact law has ``sqrt(0.2) = 0.447``), ``mode_bias`` (median of the mean absolute distance
        of the two modes' means from ``centre +- step``), ``between`` (share of draws within
        ``step / 2`` of the centre, i.e. between the modes; about 1e-5 for the exact law) and
        ``upper`` (share of draws in the upper mode; 0.5 exactly).
    """
    d = np.asarray(draws, dtype=np.float64) - np.asarray(centre)[None, :]
    upper = d > 0
    sd, bias = [], []
    for n in range(d.shape[1]):
        hi, lo = d[upper[:, n], n], d[~upper[:, n], n]
        if len(hi) > 1 and len(lo) > 1:
            sd.append(0.5 * (hi.std(ddof=1) + lo.std(ddof=1)))
            bias.append(0.5 * (abs(hi.mean() - step) + abs(lo.mean() + step)))
    return {
        "mode_sd": float(np.median(sd)) if sd else float("nan"),
        "mode_bias": float(np.median(bias)) if bias else float("nan"),
        "between": float((np.abs(d) < step / 2).mean()),
        "upper": float(upper.mean()),
    }


def width_decomposition(result, context, z_true, num_samples=256, seed=0, step=4.0, decay=0.9):
    """Where a fitted model's 1-step predictive width comes from, in the data's units.

    The predictive of ``x_32`` is built in three stages -- the guide's ``z_31``, the transition's
    ``z_32`` and the emission's noise -- and each is read through the emission mean ``mu(z)``
    (the latent has no fixed scale, so only ``mu`` gives it units).  For the exact law the first
    two stages are deterministic: ``mu(z_31) = z_31`` and ``mu(z_32) - 0.9 mu(z_31) = +-4``; all
    the width (``sqrt(0.2) = 0.447``) is the emission's.  (A model of order ``j`` emits each step
    from its last ``j`` states: ``mu(z_31)`` is read from ``z_{32-j:31}``, ``mu(z_32)`` from
    ``z_{33-j:32}``.)

    :param context: ``x_{1:31}`` of the test series.  :param z_true: ``(N,)`` true ``z_31``.
    :returns: dict, each a median over series: ``filter_sd`` (sd of ``mu(z_31)`` over guide
        draws), ``filter_err`` (|mean of ``mu(z_31)`` - ``z_31``|), ``step_sd`` (within-mode sd of
        the innovation ``mu(z_32) - 0.9 mu(z_31)``, modes split at 0), ``step_bias`` (distance of
        the innovation's mode means from +-4) and ``emission_sd`` (the emission's own scale).
    """
    model, j = result.model, result.model.order
    enc = result.contract.encode(context).to(result.device)
    loc, scale = float(result.contract.loc[0]), float(result.contract.scale[0])
    no_future = torch.zeros(len(enc), 1, enc.covariates.shape[-1], device=result.device)
    torch.manual_seed(seed)
    with torch.no_grad():
        z = model.sample_posterior(enc.filled_values, enc.mask, enc.covariates, num_samples)
        z_next, _ = model.forecast(z, enc.covariates, no_future, 1)
        # the last j states and the next one: the emissions of its last two steps read full windows
        path = torch.cat([z[..., -j:, :], z_next], dim=-2)  # (S, N, j + 1, M)
        emission = model.emission_dist(path, torch.cat([enc.covariates, no_future], dim=-2)[..., -(j + 1) :, :])
    mu = emission.loc[..., 0].cpu().numpy().astype(np.float64) * scale + loc  # (S, N, j + 1)
    mu_now, mu_next = mu[..., -2], mu[..., -1]  # (S, N)
    emission_sd = emission.scale[..., -2, 0].cpu().numpy().astype(np.float64) * scale
    # the step's modes are split at 0 and measured against +-step exactly as the predictive's are
    steps = mode_diagnostics(mu_next - decay * mu_now, np.zeros(mu_now.shape[1]), step)
    return {
        "filter_sd": float(np.median(mu_now.std(axis=0, ddof=1))),
        "filter_err": float(np.median(np.abs(mu_now.mean(axis=0) - np.asarray(z_true)))),
        "step_sd": steps["mode_sd"],
        "step_bias": steps["mode_bias"],
        "emission_sd": float(np.median(np.median(emission_sd, axis=0))),
    }


def format_decomposition(parts):
    """One line for :func:`width_decomposition`'s dict, with the exact law's values."""
    return (
        f"width: filter sd {parts['filter_sd']:.3f} err {parts['filter_err']:.3f} (exact 0), "
        f"step sd {parts['step_sd']:.3f} bias {parts['step_bias']:.3f} (exact 0), "
        f"emission sd {parts['emission_sd']:.3f} (exact 0.447)"
    )


def sampler_study(result, context, z_last, num_samples, seed):
    """1-step JSD and time of a fitted DDSSM's transition sampler: ancestral DDPM over all ``K``
    steps, Heun's method on the default ``min(12, K)`` levels (``2 n - 2`` denoiser calls for ``n``
    levels) and DDIM on ``K, K/2, K/4, K/8, 16, 8, 4`` steps.

    The latent states at the end of the context are drawn from the guide once; each sampler then
    draws ``z_32`` and ``x_32`` from the same states, so the comparison isolates the sampler.

    :param context: ``x_{1:31}`` of the test series studied.  :param z_last: ``(N,)`` their true
        ``z_31``.
    :returns: list of rows ``(sampler, denoiser calls per step, JSD mean, s.e., sampling s)``.
    """
    model, transition = result.model, result.model.transition
    law = bimodal_transition_law(z_last)
    bounds = dict(low=law.mean - 8.0, high=law.mean + 8.0)
    enc = result.contract.encode(context).to(result.device)
    no_future = torch.zeros(len(enc), 1, enc.covariates.shape[-1], device=result.device)
    torch.manual_seed(seed)
    z = model.sample_posterior(enc.filled_values, enc.mask, enc.covariates, num_samples)
    time_next = result.contract.extend_time(enc.time, 1)
    k = transition.schedule.num_steps
    counts = {k, k // 2, k // 4, k // 8, 16, 8, 4}
    variants = [("ddpm", None), ("heun", min(HEUN_LEVELS, k))]
    variants += [("ddim", n) for n in sorted(counts, reverse=True) if 1 <= n <= k]
    rows = []
    for sampler, steps in variants:
        torch.manual_seed(seed)
        with transition.sampling(sampler, steps):
            start = time.perf_counter()
            _, x = model.forecast(z, enc.covariates, no_future, 1)
            seconds = time.perf_counter() - start
        draws = result.contract.decode(x, enc.series, time_next)["x"].values[:, :, 0]
        jsd = jsd_to_density(draws, law.pdf, **bounds)
        rows.append(
            (
                sampler,
                k if steps is None else 2 * steps - 2 if sampler == "heun" else steps,
                float(jsd.mean()),
                float(jsd.std(ddof=1) / np.sqrt(len(jsd))),
                seconds,
            )
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="paper",
        help="paper: Table 3 settings (GPU); cpu: the library's defaults",
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="SVI steps of every model (default: each model's own, STEPS)"
    )
    parser.add_argument("--num-test", type=int, default=1024)
    parser.add_argument("--num-samples", type=int, default=1024)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="*", default=list(PAPER), choices=list(PAPER))
    parser.add_argument(
        "--validate-every",
        type=int,
        default=500,
        help="validation ELBO every N steps, for models whose profile sets none",
    )
    parser.add_argument("--out", default=None, help="default benchmarks/output/bimodal_<profile>")
    parser.add_argument(
        "--reuse", action="store_true", help="load the fits saved in --out by an earlier run instead of training"
    )
    parser.add_argument(
        "--train-only",
        action="store_true",
        help="fit and save the models in --out, and stop (a later --reuse run scores "
        "them; run one process per model to train them in parallel)",
    )
    parser.add_argument(
        "--study-series",
        type=int,
        default=128,
        help="test series of the DDSSM sampler study (all of DDPM's K calls per draw "
        "on all series would take as long as the rest of the benchmark)",
    )
    args = parser.parse_args(argv)
    steps = {name: STEPS[args.profile][name] if args.steps is None else args.steps for name in args.models}
    study_series = min(args.study_series, args.num_test)
    out = Path(args.out or f"benchmarks/output/bimodal_{args.profile}")
    out.mkdir(parents=True, exist_ok=True)

    length, ctx1, ctx8 = 32, 31, 24
    train = bimodal_random_walk(num_series=1024, length=length, seed=args.seed)
    valid = bimodal_random_walk(num_series=1024, length=length, seed=args.seed + 1)
    test, latent = bimodal_random_walk(num_series=args.num_test, length=length, seed=args.seed + 2, return_latent=True)
    law = bimodal_transition_law(latent.values[:, ctx1 - 1])
    bounds = dict(low=law.mean - 8.0, high=law.mean + 8.0)
    print(
        f"profile {args.profile!r}; bimodal random walk: 1024 train / 1024 validation / "
        f"{args.num_test} test series x {length}; "
        f"SVI steps {steps}; {args.num_samples} predictive draws; device {args.device}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )

    rows, one_step, fans, recon, widths = {}, {}, {}, {}, {}
    for name in args.models:
        settings = fit_arguments(args.profile, name, steps[name], args.validate_every)
        path = out / f"{name.lower().replace('+', '_')}.pyrossm"
        if args.reuse and path.is_file():
            res = pyrossm.load(path, device=args.device)
            fit_s = float(res.history["seconds"].iloc[-1])
            print(f"{name}: loaded {path} ({len(res.history)} steps, trained in {fit_s:.0f} s)")
        else:
            start = time.perf_counter()
            res = pyrossm.fit(
                data=train, validation_data=valid, seed=args.seed, device=args.device, progress=True, **settings
            )
            fit_s = time.perf_counter() - start
            res.save(path)
        if args.train_only:
            print(f"{name}: trained in {fit_s:.0f} s, saved {path}")
            continue
        start = time.perf_counter()
        fc = res.forecast(test.isel(time=slice(0, ctx1)), horizon=1, num_samples=args.num_samples, seed=args.seed)
        fc_s = time.perf_counter() - start
        one_step[name] = fc["x"].values[:, :, 0]
        fans[name] = res.forecast(test.isel(time=slice(0, ctx8)), horizon=length - ctx8, num_samples=64, seed=args.seed)
        recon[name] = res.posterior_predictive(test.isel(series=slice(0, 8)), num_samples=64, seed=args.seed)
        # the validation ELBO of the parameters the model ended with (keep_best: the kept step's)
        val = res.history["val_elbo"].dropna() if "val_elbo" in res.history else []
        kept = res.config.get("kept")
        if kept:
            metric = kept.get("metric", "elbo")
            print(
                f"{name}: kept the parameters of step {kept['step']} (best validation {metric} "
                f"{kept['val_' + metric]:.3f}; the last validation's "
                f"{res.history['val_' + metric].dropna().iloc[-1]:.3f})"
            )
        rows[name] = dict(
            jsd=jsd_to_density(one_step[name], law.pdf, **bounds),
            **mode_diagnostics(one_step[name], law.mean),
            fit_s=fit_s,
            forecast_s=fc_s,
            kept_step=kept["step"] if kept else None,
            log_score=float(
                res.log_score(test.isel(time=slice(0, ctx1 + 1)), num_samples=LOG_SCORE_DRAWS, seed=args.seed).mean()
            ),
            val_elbo=kept["val_elbo"] if kept else float(val.iloc[-1]) if len(val) else float("nan"),
        )
        widths[name] = width_decomposition(
            res, test.isel(time=slice(0, ctx1)), latent.values[:, ctx1 - 1], seed=args.seed
        )
        if name == "DDSSM":
            study = slice(0, study_series)
            samplers = sampler_study(
                res,
                test.isel(time=slice(0, ctx1), series=study),
                latent.values[study, ctx1 - 1],
                args.num_samples,
                args.seed,
            )
    if args.train_only:
        return
    locf = np.repeat(test["x"].values[None, :, ctx1 - 1], args.num_samples, axis=0)
    rows["LOCF"] = dict(jsd=jsd_to_density(locf, law.pdf, **bounds))
    exact = law.sample(args.num_samples, np.random.default_rng(args.seed))
    rows["sampling floor"] = dict(
        jsd=jsd_to_density(exact, law.pdf, **bounds),
        **mode_diagnostics(exact, law.mean),
        log_score=float(np.log(law.pdf(test["x"].values[:, ctx1])).mean()),
    )

    print(
        f"\n{'model':16s} {'JSD mean':>9s} {'s.e.':>8s} {'mode sd':>8s} {'bias':>6s} {'between':>8s} "
        f"{'val ELBO':>10s} {'log score':>10s} {'train s':>9s} {'forecast s':>11s}"
    )
    summary = {}
    for name, r in rows.items():
        jsd = r["jsd"]
        se = jsd.std(ddof=1) / np.sqrt(len(jsd))
        summary[name] = {
            "jsd_mean": float(jsd.mean()),
            "jsd_se": float(se),
            **{k: v for k, v in r.items() if k != "jsd"},
        }
        fmt = lambda key, spec: format(r[key], spec) if key in r else "-"  # noqa: E731
        print(
            f"{name:16s} {jsd.mean():9.4f} {se:8.4f} {fmt('mode_sd', '8.3f'):>8s} "
            f"{fmt('mode_bias', '6.3f'):>6s} {fmt('between', '8.4f'):>8s} {fmt('val_elbo', '10.3f'):>10s} "
            f"{fmt('log_score', '10.4f'):>10s} {fmt('fit_s', '9.1f'):>9s} {fmt('forecast_s', '11.2f'):>11s}"
        )
    if "DDSSM" in summary and "DKF+VHP" in summary:
        ratio = summary["DDSSM"]["jsd_mean"] / summary["DKF+VHP"]["jsd_mean"]
        floor = summary["DDSSM"]["jsd_mean"] / summary["sampling floor"]["jsd_mean"]
        print(f"DDSSM / DKF JSD = {ratio:.3f} (target <= 0.3); DDSSM / floor = {floor:.2f} (target <= 3)")
        print(
            f"log score: mean log-density of the test series' x_32 under the 1-step predictive "
            f"({LOG_SCORE_DRAWS} latent draws; the floor's row: under the exact law given z_31)"
        )
        print(
            "mode sd: median within-mode sd of x_32 (exact 0.447); bias: median distance of the modes' "
            "means from 0.9 z_31 +- 4; between: share of draws within 2 of 0.9 z_31"
        )
    for name, parts in widths.items():
        print(f"{name} {format_decomposition(parts)}")
        summary[name]["width"] = parts
    if "DDSSM" in args.models:
        print(f"\nDDSSM forecast sampler: quality and time ({args.num_samples} draws x {study_series} series, 1 step)")
        print(f"{'sampler':8s} {'denoiser calls':>15s} {'JSD mean':>9s} {'s.e.':>8s} {'sampling s':>11s}")
        for sampler, calls, jsd_mean, jsd_se, seconds in samplers:
            print(f"{sampler:8s} {calls:15d} {jsd_mean:9.4f} {jsd_se:8.4f} {seconds:11.2f}")
        summary["DDSSM samplers"] = [
            dict(zip(("sampler", "denoiser_calls", "jsd_mean", "jsd_se", "sampling_s"), row)) for row in samplers
        ]
    summary["settings"] = {
        "profile": args.profile,
        "steps": steps,
        "num_test": args.num_test,
        "num_samples": args.num_samples,
        "device": args.device,
        "study_series": study_series,
        "models": {
            name: {**settings, "trainer": settings["trainer"].to_dict()}
            for name in args.models
            for settings in [fit_arguments(args.profile, name, steps[name], args.validate_every)]
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))

    jumps = {name: s - 0.9 * latent.values[None, :, ctx1 - 1] for name, s in one_step.items()}
    grid = np.linspace(-8, 8, 400)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    plot_predictive_density(
        jumps, grid=grid, ax=ax, pdf=lambda g: bimodal_transition_law(np.zeros(1)).pdf(g[:, None])[:, 0]
    )
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
