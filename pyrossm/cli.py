"""The ``pyrossm`` command line: ``fit``, ``forecast`` and ``demo``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _existing(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    return path


def _read_data(path, args=None):
    """Reads NetCDF (``.nc``) as a Dataset or CSV (long or wide) as a Dataset through
    :func:`pyrossm.data.as_dataset`, with the ``--series-column`` / ``--time-column`` names."""
    import pandas as pd
    import xarray as xr

    from .data import as_dataset

    path = _existing(path)
    if path.suffix in (".nc", ".netcdf", ".nc4"):
        return xr.load_dataset(path)
    if path.suffix == ".csv":
        names = {k: getattr(args, k + "_column", None) for k in ("series", "time")} if args is not None else {}
        return as_dataset(pd.read_csv(path), **{k: v for k, v in names.items() if v})
    raise ValueError(f"{str(path)!r}: expected a .nc or .csv file")


#: output formats by file extension
OUTPUT_FORMATS = {".nc": "netcdf", ".nc4": "netcdf", ".netcdf": "netcdf", ".csv": "csv", ".parquet": "parquet"}


def _write_dataset(ds, path):
    """Writes a Dataset atomically (temporary file + rename) in the format of ``path``'s
    extension: NetCDF (``.nc``), CSV or Parquet (one row per draw, series and time, one column
    per variable; Parquet needs pyarrow)."""
    import importlib.util

    from .inference.checkpoint import atomic_write

    path = Path(path)
    kind = OUTPUT_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{str(path)!r}: the output format follows the extension, one of {sorted(OUTPUT_FORMATS)}")
    if kind == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ValueError("writing .parquet needs pyarrow: pip install pyarrow (or write .nc or .csv)")

    def write(tmp):
        if kind == "netcdf":
            ds.to_netcdf(tmp)
            return
        table = ds.to_dataframe().reset_index()
        table.to_csv(tmp, index=False) if kind == "csv" else table.to_parquet(tmp, index=False)

    atomic_write(path, write)


def _trainer_settings(args) -> dict | str | None:
    """``--trainer-config`` (a JSON file of trainer settings, flat or nested, or a preset name)
    with the validation flags on top."""
    trainer = None
    if args.trainer_config:
        path = Path(args.trainer_config)
        if path.suffix == ".json" or path.is_file():
            try:
                trainer = json.loads(_existing(path).read_text())
            except json.JSONDecodeError as exc:
                raise ValueError(f"--trainer-config {str(path)!r} is not valid JSON: {exc}") from None
            if not isinstance(trainer, dict):
                raise ValueError("--trainer-config must hold a JSON object")
        else:
            trainer = args.trainer_config  # a preset name
    flags = {
        "validate_every": args.validate_every,
        "validation_metric": args.validation_metric,
        "keep_best": args.keep_best or None,
    }
    flags = {k: v for k, v in flags.items() if v is not None}
    if flags:
        from .inference import TrainerConfig

        if isinstance(trainer, str):  # a preset: stretched to --num-steps as fit() would
            config = TrainerConfig.from_preset(trainer, args.num_steps)
        else:
            config = TrainerConfig.resolve(trainer)
        trainer = config.updated(**flags)
    return trainer


def _cmd_fit(args):
    import pyrossm

    data = _read_data(args.data, args)
    try:
        extra = json.loads(args.model_args) if args.model_args else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"--model-args: not valid JSON: {exc}") from None
    if not isinstance(extra, dict):
        raise ValueError("--model-args must be a JSON object")
    validation = _read_data(args.validation_data, args) if args.validation_data else None
    if validation is None and (args.validate_every or args.keep_best or args.validation_metric):
        raise ValueError("--validate-every, --validation-metric and --keep-best need --validation-data")
    trainer = _trainer_settings(args)
    validate_every = args.validate_every or pyrossm.TrainerConfig.resolve(trainer).selection.validate_every
    if validation is not None and not validate_every:
        raise ValueError("--validation-data needs --validate-every N (N > 0)")
    given = {
        name: getattr(args, name)
        for name in ("num_steps", "batch_size", "learning_rate", "seed", "latent_dim", "order")
        if getattr(args, name) is not None
    }
    res = pyrossm.fit(
        model=args.model,
        data=data,
        covariates=args.covariates or None,
        validation_data=validation,
        trainer=trainer,
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        device=args.device,
        progress=not args.quiet,
        **given,
        **extra,
    )
    from .inference.distributed import is_main

    if is_main():  # under torchrun: rank 0 writes the fit
        res.save(args.out)
        print(res)
        print(f"saved to {args.out}")


def _cmd_forecast(args):
    import pyrossm

    res = pyrossm.load(args.model_file, device=args.device)
    context = _read_data(args.context, args)
    future = _read_data(args.future_covariates, args) if args.future_covariates else None
    fc = res.forecast(
        context, horizon=args.horizon, num_samples=args.num_samples, future_covariates=future, seed=args.seed
    )
    _write_dataset(fc, args.out)
    print(f"wrote forecast {dict(fc.sizes)} to {args.out}")


def _cmd_sample(args):
    import pyrossm

    res = pyrossm.load(args.model_file, device=args.device)
    covariates = _read_data(args.covariates_file, args) if args.covariates_file else None
    gen = res.sample(args.num_series, args.length, num_samples=args.num_samples, covariates=covariates, seed=args.seed)
    _write_dataset(gen, args.out)
    print(f"wrote samples {dict(gen.sizes)} to {args.out}")


def _cmd_smooth(args):
    import pyrossm

    res = pyrossm.load(args.model_file, device=args.device)
    zs = res.smooth(_read_data(args.data, args), num_samples=args.num_samples, seed=args.seed)
    _write_dataset(zs, args.out)
    print(f"wrote latent trajectories {dict(zs.sizes)} to {args.out}")


def _cmd_evaluate(args):
    from .evaluation import evaluate

    forecast, truth = _read_forecast(args.forecast), _read_data(args.truth, args)
    table = evaluate(forecast, truth, level=args.level)
    print(table.to_string())
    if args.out:
        _write_table(table, args.out)
        print(f"wrote {args.out}")


def _cmd_backtest(args):
    import pyrossm

    from .evaluation import backtest

    res = pyrossm.load(args.model_file, device=args.device)
    table = backtest(
        res,
        _read_data(args.data, args),
        test_window=args.test_window,
        train_window=args.train_window,
        min_train_window=args.min_train_window,
        stride=args.stride,
        num_samples=args.num_samples,
        seed=args.seed,
        progress=False,
    )
    print(table.to_string())
    if args.out:
        _write_table(table, args.out)
        print(f"wrote {args.out}")


def _read_forecast(path):
    """A forecast written by ``pyrossm forecast`` (.nc, or .csv with a ``draw`` column)."""
    import pandas as pd
    import xarray as xr

    path = _existing(path)
    if path.suffix == ".csv":
        table = pd.read_csv(path)
        if "time" in table and table["time"].dtype == object:
            table["time"] = pd.to_datetime(table["time"])
        return xr.Dataset.from_dataframe(table.set_index(["draw", "series", "time"]))
    return xr.load_dataset(path)


def _write_table(table, path):
    """A metrics table as CSV (atomically)."""
    from .inference.checkpoint import atomic_write

    atomic_write(path, table.to_csv)


def _cmd_demo(args):
    from .demo import run_demo

    run_demo(Path(args.out), num_steps=args.num_steps, seed=args.seed, progress=not args.quiet)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyrossm",
        description="Deep state-space models with diffusion dynamics: fit, forecast, sample, smooth, evaluate, "
        "backtest, demo.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"pyrossm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fit", help="fit a model to a NetCDF or CSV data set and save it")
    p.add_argument("--data", required=True, help=".nc (dims series, time) or .csv (long or wide)")
    p.add_argument("--out", required=True, help="output file for the fitted model")
    p.add_argument("--model", default="dkf", help="registered model name (default: dkf)")
    p.add_argument("--covariates", nargs="*", default=[], help="variables used as covariates")
    p.add_argument("--series-column", default=None, help="a CSV's series column, if not 'series'")
    p.add_argument("--time-column", default=None, help="a CSV's time column, if not 'time' (dates are parsed)")
    p.add_argument("--latent-dim", type=int, default=None, help="latent dimension (default: the model's)")
    p.add_argument("--order", type=int, default=None, help="Markov order (default: the model's)")
    p.add_argument("--num-steps", type=int, default=None, help="training steps (default: the model family's)")
    p.add_argument("--batch-size", type=int, default=None, help="series per step (default: the model family's)")
    p.add_argument("--learning-rate", type=float, default=None, help="default: the model family's")
    p.add_argument(
        "--trainer-config",
        default=None,
        help="a JSON file of trainer settings (flat or nested by section, as "
        "TrainerConfig.to_dict() writes them) or a preset name, e.g. ddssm-table3",
    )
    p.add_argument("--model-args", default="", help='JSON object of model arguments, e.g. \'{"init": "normal"}\'')
    p.add_argument("--validation-data", default=None, help=".nc or .csv data for the validation ELBO")
    p.add_argument("--validate-every", type=int, default=None, help="validation ELBO every N steps")
    p.add_argument(
        "--validation-metric",
        choices=["elbo", "log_score"],
        default=None,
        help="what --keep-best maximises: the validation ELBO or the 1-step predictive "
        "log score of each validation series' last step",
    )
    p.add_argument(
        "--keep-best", action="store_true", help="save the parameters of the best validation instead of the last step's"
    )
    p.add_argument("--seed", type=int, default=None, help="default: the trainer's, 0")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--checkpoint-dir",
        default=None,
        help="folder for checkpoints (each stage's end, and every checkpoint_every steps of the trainer settings)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run whose checkpoint is in --checkpoint-dir")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("forecast", help="forecast from a saved model and a context data set")
    p.add_argument("--model-file", required=True, help="file written by `pyrossm fit`")
    p.add_argument("--context", required=True, help=".nc or .csv context data")
    p.add_argument("--series-column", default=None, help="a CSV's series column, if not 'series'")
    p.add_argument("--time-column", default=None, help="a CSV's time column, if not 'time' (dates are parsed)")
    p.add_argument("--horizon", type=int, required=True)
    p.add_argument("--num-samples", type=int, default=100)
    p.add_argument("--future-covariates", default=None, help=".nc/.csv with the covariates over the horizon")
    p.add_argument(
        "--out",
        required=True,
        help="output file: .nc (dims draw, series, time), .csv or .parquet (one row per draw, series, time)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_forecast)

    def model_and_seed(p):
        p.add_argument("--model-file", required=True, help="file written by `pyrossm fit`")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="cpu")

    def columns(p):
        p.add_argument("--series-column", default=None, help="a CSV's series column, if not 'series'")
        p.add_argument("--time-column", default=None, help="a CSV's time column, if not 'time' (dates are parsed)")

    p = sub.add_parser("sample", help="unconditional samples from a saved model")
    model_and_seed(p)
    p.add_argument("--num-series", type=int, required=True)
    p.add_argument("--length", type=int, required=True)
    p.add_argument("--num-samples", type=int, default=1)
    p.add_argument("--covariates-file", default=None, help=".nc/.csv covariates over the length (if the model has any)")
    p.add_argument("--out", required=True, help="output file: .nc, .csv or .parquet")
    columns(p)
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("smooth", help="latent trajectories of data from a saved model's guide")
    model_and_seed(p)
    p.add_argument("--data", required=True, help=".nc or .csv data")
    p.add_argument("--num-samples", type=int, default=100)
    p.add_argument("--out", required=True, help="output file: .nc, .csv or .parquet")
    columns(p)
    p.set_defaults(func=_cmd_smooth)

    p = sub.add_parser("evaluate", help="score a forecast file against the realised data (CRPS, coverage, ...)")
    p.add_argument("--forecast", required=True, help="a file written by `pyrossm forecast` (.nc or .csv)")
    p.add_argument("--truth", required=True, help=".nc or .csv data covering the forecast's times")
    p.add_argument("--level", type=float, default=0.9, help="interval level of coverage and width")
    p.add_argument("--out", default=None, help="also write the table as CSV")
    columns(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("backtest", help="rolling-origin backtest of a saved model (reused for every window)")
    model_and_seed(p)
    p.add_argument("--data", required=True, help=".nc or .csv data")
    p.add_argument("--test-window", type=int, required=True)
    p.add_argument("--train-window", type=int, default=None)
    p.add_argument("--min-train-window", type=int, default=1)
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--num-samples", type=int, default=100)
    p.add_argument("--out", default=None, help="also write the table as CSV")
    columns(p)
    p.set_defaults(func=_cmd_backtest)

    p = sub.add_parser("demo", help="fit DDSSM and DKF on the built-in bimodal data set, print figures, write plots")
    p.add_argument("--out", default="demo_output", help="folder for the plots and the saved model")
    p.add_argument("--num-steps", type=int, default=None, help="SVI steps (default: the demo's setting)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv=None) -> int:
    """Runs a command; returns 0, or 2 for any user error (argparse's code too), printed as one line."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:  # user errors: one line, exit code 2
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
