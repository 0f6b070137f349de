""":class:`FitResult`: a fitted model with its data contract -- sample, forecast, smooth, check, save.

What a result can do follows the model's capabilities (:mod:`pyrossm.models.base`): every model
samples; forecasting models forecast and score; smoothing models give latent trajectories and
posterior predictive checks.  A call the model cannot serve raises a ``TypeError`` naming the
missing capability.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import xarray as xr

from . import draws
from .datatree import fit_datatree, history_dataset
from .models.base import capabilities, require
from .validation import check_positive_int


class FitResult:
    """A fitted model with its data contract.

    :ivar model: the fitted :class:`~pyrossm.models.GenerativeModel`.
    :ivar contract: the :class:`~pyrossm.data.DataContract` (variables, scaling, time).
    :ivar history: pandas DataFrame, one row per training step (step, stage, loss, the
        objective's terms, learning rates, validation values).
    :ivar dict config: model name and options, trainer settings, covariates, structure and, with
        ``keep_best``, the kept step.
    """

    def __init__(self, model, contract, history, config, device):
        self.model, self.contract, self.history, self.config = model, contract, history, config
        self.device = device
        self.model.eval()

    @property
    def world_size(self) -> int:
        """How many processes trained the fit (data-parallel under torchrun; 1 otherwise)."""
        return int(self.config.get("world_size", 1))

    @property
    def capabilities(self) -> tuple:
        """What the model can do besides sampling, e.g. ``("forecasting", "smoothing")``."""
        return capabilities(self.model)

    def __repr__(self):
        name = self.config.get("model") or type(self.model).__name__
        structure = {k: v for k, v in self.model.structure().items() if k not in ("obs_dim", "covariate_dim")}
        steps = len(self.history)
        last = ""
        if steps:
            row = self.history.iloc[-1]
            column = "elbo" if "elbo" in row.index and row["elbo"] == row["elbo"] else "loss"  # not NaN
            several = "stage" in row.index and self.history["stage"].nunique() > 1
            where = f" ({row['stage']} stage)" if several else ""
            last = f", final {column}/series={row[column]:.4g}{where}"
        if "kept" in self.config:
            kept = self.config["kept"]
            metric = kept.get("metric", "elbo")
            last += f", kept step {kept['step']} (val {metric}={kept['val_' + metric]:.4g})"
        dims = "".join(f"{k}={v}, " for k, v in structure.items())
        return (
            f"FitResult(model={name!r}, {dims}targets={self.contract.target_vars}, "
            f"covariates={self.contract.covariate_names}, steps={steps}{last}, "
            f"capabilities={list(self.capabilities)}, device={str(self.device)!r})"
        )

    # ------------------------------------------------------------------ helpers
    def _encode(self, data):
        return self.contract.encode(
            data, min_length=self.model.min_length, min_length_name=self.model.min_length_name
        ).to(self.device)

    def _covariates(
        self, covariates, num_series, length, series=None, what="future_covariates", expected="the context has {n}"
    ):
        """Encoded covariates ``(N, length, V)`` (``V = 0`` without covariates)."""
        if self.contract.num_covariates == 0:
            if covariates is not None:
                raise ValueError(f"{what} given but the model was fitted without covariates")
            return torch.zeros(num_series, length, 0, device=self.device)
        if covariates is None:
            raise ValueError(
                f"this model uses covariates {self.contract.covariate_names}: "
                f"{what} with {length} time steps are required"
            )
        # aligned to the context's series by coordinate, not by position
        cov = self.contract.encode_covariates(covariates, length, series=series).to(self.device)
        if cov.shape[0] != num_series:
            raise ValueError(f"{what} has {cov.shape[0]} series, {expected.format(n=num_series)}")
        return cov

    # ------------------------------------------------------------------ every model
    def sample(self, num_series, length, num_samples=1, covariates=None, seed=None):
        """Unconditional generation: ``xr.Dataset`` with dims ``(draw, series, time)``.

        :param int num_series: ``N``.  :param int length: ``T`` (at least the model's
            ``min_length``).  :param int num_samples: draws per series.
        :param covariates: covariate data with ``length`` time steps and ``num_series`` series
            (required iff the model has covariates).
        :param seed: seed for reproducible draws.
        """
        check_positive_int("num_series", num_series)
        check_positive_int("length", length)
        check_positive_int("num_samples", num_samples)
        if length < self.model.min_length:
            raise ValueError(
                f"length must be >= the model's {self.model.min_length_name} {self.model.min_length}, got {length}"
            )
        cov = self._covariates(covariates, num_series, length, what="covariates", expected="num_series is {n}")
        with draws.seeded_on(seed, self.device):
            x = self.model.generate(num_series, length, cov.expand((num_samples,) + cov.shape))
        return self.contract.decode(x, np.arange(num_series), np.arange(length))

    # ------------------------------------------------------------------ forecasting
    def forecast(self, context, horizon, num_samples=100, future_covariates=None, seed=None):
        """Samples the predictive of the ``horizon`` steps after the end of ``context``.

        For a state-space model the latent state at the end of the context comes from the guide
        (smoothing posterior); transition and emission are then rolled forward, vectorised over
        samples and series (in passes of at most :data:`~pyrossm.draws.ROWS_PER_PASS` draws x
        series, to bound memory and stay in cache).

        :param context: data with the training variables, dims ``(series, time)``.
        :param int horizon: steps to forecast.  :param int num_samples: draws ``S``.
        :param future_covariates: covariate data with ``horizon`` time steps (required iff the
            model has covariates).
        :param seed: seed for reproducible draws.
        :returns: ``xr.Dataset`` with dims ``(draw, series, time)``; ``time`` continues the context's.
        :raises TypeError: if the model cannot forecast.
        """
        require(self.model, "forecasting", "forecast()")
        check_positive_int("horizon", horizon)
        check_positive_int("num_samples", num_samples)
        ctx = self._encode(context)
        fut = self._covariates(future_covariates, len(ctx), horizon, series=ctx.series)
        parts = []
        with draws.seeded_on(seed, self.device):
            for chunk in draws.draw_chunks(num_samples, len(ctx), self.device):
                parts.append(self.model.predict(ctx.filled_values, ctx.mask, ctx.covariates, fut, horizon, chunk))
        time = self.contract.extend_time(ctx.time, horizon)
        return self.contract.decode(torch.cat(parts), ctx.series, time)

    def log_score(self, data, num_samples=100, seed=None):
        r"""The 1-step predictive log-density of each series' last time step given the steps
        before it, ``log p(x_T | x_{1:T-1})``, estimated by ``log (1/S) sum_s p(x_T | z^s)``
        with ``S = num_samples`` latent draws (see
        :meth:`~pyrossm.models.StateSpaceModel.one_step_log_score`): the logarithmic scoring
        rule of the forecast :meth:`forecast` ``(data up to T-1, horizon=1)`` would sample,
        higher is better, biased low by ``O(1/S)``.  Only the observed targets of step ``T`` count.

        :param data: data with the training variables, dims ``(series, time)``, longer than the
            model's ``min_length`` (covariates at ``T`` included).
        :param int num_samples: draws ``S``.  :param seed: seed for reproducible draws.
        :returns: ``xr.DataArray`` ``"log_score"`` with dim ``series``, in nats per the data's
            units; NaN for a series whose last time step has no observed target.
        :raises TypeError: if the model cannot forecast.
        """
        require(self.model, "forecasting", "log_score()")
        check_positive_int("num_samples", num_samples)
        enc = self._encode(data)
        with draws.seeded_on(seed, self.device):
            score = draws.one_step_log_score(self.model, self.contract, enc, num_samples, self.device)
        return xr.DataArray(
            score.cpu().numpy().astype(np.float64), dims=("series",), coords={"series": enc.series}, name="log_score"
        )

    # ------------------------------------------------------------------ smoothing
    def _draw_posterior(self, data, num_samples, seed, replicate):
        """``z ~ q(z | data)`` (and with ``replicate``, ``x_rep ~ p(x | z)``) in one seeded block.

        :returns: ``(latents, groups)``: the ``z`` Dataset ``(draw, series, time, latent)`` and,
            with ``replicate``, the arviz groups ``posterior_predictive`` ``(chain, draw, series,
            time)`` and ``observed_data`` ``(series, time)`` (else ``None``).
        """
        check_positive_int("num_samples", num_samples)
        enc = self._encode(data)
        zs, xs = [], []
        with draws.seeded_on(seed, self.device):
            for chunk in draws.draw_chunks(num_samples, len(enc), self.device):
                zs.append(self.model.sample_posterior(enc.filled_values, enc.mask, enc.covariates, chunk))
                if replicate:
                    xs.append(self.model.replicate(zs[-1], enc.covariates))
        z = torch.cat(zs)
        latents = xr.Dataset(
            {"z": (("draw", "series", "time", "latent"), z.cpu().numpy())},
            coords={
                "draw": np.arange(num_samples),
                "series": enc.series,
                "time": enc.time,
                "latent": np.arange(z.shape[-1]),
            },
        )
        if not replicate:
            return latents, None
        groups = {
            "posterior_predictive": self.contract.decode(torch.cat(xs), enc.series, enc.time).expand_dims(chain=[0]),
            "observed_data": self.contract.decode(
                torch.where(enc.mask, enc.values, torch.nan)[None], enc.series, enc.time
            ).isel(draw=0, drop=True),
        }
        return latents, groups

    def smooth(self, data, num_samples=100, seed=None):
        """Latent trajectories ``z ~ q(z | data)``: ``xr.Dataset`` with ``z``
        ``(draw, series, time, latent)``.

        :raises TypeError: if the model has no smoothing posterior.
        """
        require(self.model, "smoothing", "smooth()")
        return self._draw_posterior(data, num_samples, seed, replicate=False)[0]

    def posterior_predictive(self, data, num_samples=100, seed=None):
        """Replicated data ``x_rep ~ p(x | z)``, ``z ~ q(z | data)``, as an arviz-style ``xr.DataTree``.

        :returns: ``DataTree`` with groups ``posterior_predictive`` (dims ``chain, draw, series,
            time``) and ``observed_data`` (the data as given, scaled back).
        :raises TypeError: if the model has no smoothing posterior.
        """
        require(self.model, "smoothing", "posterior_predictive()")
        return xr.DataTree.from_dict(self._draw_posterior(data, num_samples, seed, replicate=True)[1])

    def to_datatree(self, data=None, num_samples=100, seed=None):
        """The fit as an arviz-style ``xr.DataTree``: posterior, predictive, data, training history.

        Groups (arviz names where arviz has one):

        - ``posterior``: latent trajectories ``z ~ q(z | data)``, dims
          ``(chain, draw, series, time, latent)`` (one chain), as :meth:`smooth`;
        - ``posterior_predictive``: ``x_rep ~ p(x | z)`` from those same ``z``, dims
          ``(chain, draw, series, time)`` (+ a feature dim where the data has one);
        - ``observed_data``: the data as given (NaN where missing), ``(series, time)`` (+ feature dim);
        - ``training_history``: :attr:`history` as a Dataset over dim ``step`` (one variable per
          column; ``val_elbo`` is NaN on steps without validation).  arviz has no group for
          this; its plots ignore it.

        With ``data=None`` only ``training_history`` is returned (nothing is sampled; any model).
        With the same ``seed``, ``posterior`` equals ``smooth(data, num_samples, seed)`` and the
        ``posterior_predictive`` / ``observed_data`` groups equal those of
        ``posterior_predictive(data, num_samples, seed)``.  The root's attrs name the inference
        library and the model.

        :param data: data with the training variables, dims ``(series, time)``, or None.
        :param int num_samples: draws ``S``.  :param seed: seed for reproducible draws.
        :returns: ``xr.DataTree``.
        :raises TypeError: with ``data`` and a model without a smoothing posterior.
        """
        check_positive_int("num_samples", num_samples)
        groups = {}
        if data is not None:  # the same draws as smooth() / posterior_predictive()
            require(self.model, "smoothing", "to_datatree(data)")
            latents, replicated = self._draw_posterior(data, num_samples, seed, replicate=True)
            groups = {"posterior": latents.expand_dims(chain=[0]), **replicated}
        groups["training_history"] = history_dataset(self.history)
        return fit_datatree(groups, self.config.get("model") or type(self.model).__name__)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """Writes config (JSON), parameters, data contract and history to ``path``, atomically
        (see :mod:`pyrossm.io`)."""
        from .io import save_fit

        return save_fit(self, path)
