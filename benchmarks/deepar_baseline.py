"""GluonTS DeepAR as a baseline of the benchmarks: importing it (an optional dependency), and the
1-step forecast that ``benchmarks/defaults.py`` scores (``benchmarks/speed.py`` times it).

DeepAR is ``gluonts.torch.DeepAREstimator`` with GluonTS's defaults (Student-t output, the lags
and time features of the frequency :data:`FREQ` -- daily, as in ``speed.py``: lags 1-8, 13-15,
20-22, 27-31, 56, 84, 363-365, 727-729, 1091-1093, the past beyond a series' start padded and
marked unobserved --, two LSTM layers of 40, its own mean scaling, 50 batches an epoch, 100
epochs, the best epoch's weights by training loss) except: batch size 128 (pyrossm's), prediction
length 1, context length ``T - 1``, the covariates as dynamic real features (known at the
forecast step) and, when a number of training batches is given, that many batches.  GluonTS is
imported lazily: nothing here needs it until a fit.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import warnings

import numpy as np
import pandas as pd

#: the GluonTS frequency the series are given (it sets DeepAR's lags and time features)
FREQ = "D"
#: every series starts here (the time features depend on it, alike for train and test)
START = "2000-01-01"
#: series per training batch (pyrossm's ``fit`` default; GluonTS's own is 32)
BATCH_SIZE = 128
#: GluonTS DeepAR's default training budget: ``num_batches_per_epoch`` x ``max_epochs``
BATCHES_PER_EPOCH, MAX_EPOCHS = 50, 100


def load_gluonts():
    """``(DeepAREstimator, ListDataset, lightning.pytorch)``; raises :class:`ImportError` saying why
    when GluonTS (or its torch part) is not importable.  Quietens their loggers' info lines."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import lightning.pytorch as pl
            from gluonts.dataset.common import ListDataset
            from gluonts.torch import DeepAREstimator
    except Exception as exc:  # noqa: BLE001  (not installed, or broken)
        raise ImportError(f"GluonTS is not importable ({type(exc).__name__}: {exc})") from exc
    for name in ("lightning.pytorch", "lightning.fabric", "gluonts"):  # their info lines (set at import)
        logging.getLogger(name).setLevel(logging.WARNING)
    return DeepAREstimator, ListDataset, pl


def import_gluonts():
    """``(DeepAREstimator, ListDataset, lightning)`` or ``None`` with the reason printed."""
    try:
        return load_gluonts()
    except ImportError as exc:
        print(f"  {exc}: the DeepAR rows are skipped")
        return None


@contextlib.contextmanager
def quiet():
    """Lightning's and GluonTS's warnings (few workers, no validation set, ...) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def entries(data, covariates=(), target_length=None):
    """GluonTS dataset entries of ``data`` (an ``xr.Dataset`` with ``x`` and the covariates over
    ``("series", "time")``): per series ``{"start", "target", ["feat_dynamic_real"]}``, the target
    ``x`` over its first ``target_length`` steps (all of them when ``None``), the covariates
    ``(C, T)`` over every step of ``data`` -- for a forecast input, those of the forecast steps
    too (DeepAR needs the dynamic features of ``target_length + prediction_length`` steps)."""
    x = np.asarray(data["x"].transpose("series", "time").values, dtype=np.float32)
    if target_length is not None:
        x = x[:, :target_length]
    start = pd.Period(START, freq=FREQ)
    rows = [{"start": start, "target": row} for row in x]
    if covariates:
        feats = np.stack(
            [np.asarray(data[c].transpose("series", "time").values, dtype=np.float32) for c in covariates], axis=1
        )
        for row, feat in zip(rows, feats):
            row["feat_dynamic_real"] = feat
    return rows


def budget(num_batches=None):
    """``(num_batches_per_epoch, trainer_kwargs)``: GluonTS's default 100 epochs of 50 batches, or
    exactly ``num_batches`` batches in epochs of 50 (the last one cut by ``max_steps``), so the
    learning-rate schedule and the best-epoch checkpoint work as they do by default."""
    if num_batches is None:
        return BATCHES_PER_EPOCH, {"max_epochs": MAX_EPOCHS}
    if num_batches < 1:
        raise ValueError(f"num_batches must be >= 1, got {num_batches}")
    return BATCHES_PER_EPOCH, {"max_epochs": math.ceil(num_batches / BATCHES_PER_EPOCH), "max_steps": num_batches}


class OneStepDeepAR:
    """DeepAR trained on ``train`` (``x`` and ``covariates``, every series of length ``T``) to
    forecast the last step of a series from its first ``T - 1`` (``context_length = T - 1``,
    ``prediction_length = 1``).  :meth:`fit` trains it, :meth:`draws` samples the forecasts."""

    def __init__(self, covariates=(), num_batches=None, seed=0, progress=False, gluonts=None):
        self.gluonts = gluonts or load_gluonts()
        self.covariates = tuple(covariates)
        self.num_batches, self.seed, self.progress = num_batches, seed, progress
        self.predictor = self.trainer = self.estimator = None
        #: the ``ListDataset``s given to DeepAR: the training series, the forecasts' inputs
        self.train_data = self.forecast_data = None

    def fit(self, train):
        DeepAREstimator, ListDataset, pl = self.gluonts
        length = train.sizes["time"]
        per_epoch, trainer_kwargs = budget(self.num_batches)
        with tempfile.TemporaryDirectory(prefix="pyrossm-deepar-") as workdir, quiet():
            self.estimator = DeepAREstimator(
                freq=FREQ,
                prediction_length=1,
                context_length=length - 1,
                num_feat_dynamic_real=len(self.covariates),
                batch_size=BATCH_SIZE,
                num_batches_per_epoch=per_epoch,
                trainer_kwargs={
                    **trainer_kwargs,
                    "logger": False,  # the best-epoch checkpoint goes to workdir/checkpoints, then is read back
                    "default_root_dir": workdir,
                    "enable_progress_bar": self.progress,
                    "enable_model_summary": False,
                },
            )
            self.train_data = ListDataset(entries(train, self.covariates), freq=FREQ)
            pl.seed_everything(self.seed, verbose=False)
            out = self.estimator.train_model(self.train_data)
        self.predictor, self.trainer = out.predictor, out.trainer
        return self

    def draws(self, test, num_samples, seed=0):
        """``(num_samples, N)`` draws of ``x_T`` given ``x_{1:T-1}`` (and the covariates through
        ``T``) of each test series."""
        _, ListDataset, pl = self.gluonts
        length = test.sizes["time"]
        self.forecast_data = ListDataset(entries(test, self.covariates, target_length=length - 1), freq=FREQ)
        pl.seed_everything(seed, verbose=False)
        with quiet():
            forecasts = list(self.predictor.predict(self.forecast_data, num_samples=num_samples))
        return np.stack([f.samples[:, 0] for f in forecasts], axis=1).astype(np.float64)

    @property
    def config(self):
        """What the run record keeps of the model and its training."""
        est = self.estimator
        module = self.predictor.prediction_net.model if self.predictor is not None else None
        return {
            "model_config": {
                "freq": FREQ,
                "prediction_length": est.prediction_length,
                "context_length": est.context_length,
                "lags_seq": [lag + 1 for lag in module.lags_seq] if module is not None else None,
                "num_feat_dynamic_real": est.num_feat_dynamic_real,
                "distr_output": type(est.distr_output).__name__,
                "num_layers": est.num_layers,
                "hidden_size": est.hidden_size,
            },
            "trainer": {
                "batch_size": est.batch_size,
                "num_batches_per_epoch": est.num_batches_per_epoch,
                **{k: v for k, v in est.trainer_kwargs.items() if k != "default_root_dir"},
            },
        }

    @property
    def steps_trained(self):
        return int(self.trainer.global_step)

    @property
    def final_loss(self):
        """The last epoch's mean training loss (DeepAR's negative log-likelihood per step)."""
        loss = self.trainer.callback_metrics.get("train_loss")
        return None if loss is None else float(loss)
