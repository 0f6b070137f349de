"""``DataContract``: what a fitted model knows about its data, and the conversions it makes."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import torch
import xarray as xr

from ..validation import check_nonnegative_int
from .inputs import SERIES, TIME, as_dataset
from .series import SeriesData, series_lengths
from .timeaxis import _infer_freq, _median_step, _plain, _time_kind, extend_time

# ---------------------------------------------------------------------------------------------
# DataContract: what a fitted model knows about its data
# ---------------------------------------------------------------------------------------------


def _format_series(series: np.ndarray, bad: np.ndarray, limit: int = 5) -> str:
    labels = [_plain(s) for s in np.asarray(series)[bad][:limit]]
    more = f" (and {int(bad.sum()) - limit} more)" if bad.sum() > limit else ""
    return f"{labels}{more}"


def _check_covariate_names(covariates, available: list[str]) -> list[str]:
    if covariates is None:
        return []
    if isinstance(covariates, str) or not isinstance(covariates, (list, tuple)):
        raise TypeError(
            f"covariates must be a list of variable names (str); got {covariates!r}"
            + (f"; did you mean [{covariates!r}]?" if isinstance(covariates, str) else "")
        )
    bad = [c for c in covariates if not isinstance(c, str)]
    if bad:
        raise TypeError(f"covariates must be a list of str; got non-str entries {bad!r}")
    if len(set(covariates)) != len(covariates):
        raise ValueError(f"covariates {list(covariates)} contain duplicates")
    missing = [c for c in covariates if c not in available]
    if missing:
        raise ValueError(f"covariates {missing} are not variables of data; available variables: {available}")
    return list(covariates)


class DataContract:
    """
    What a fitted model knows about its data: target variables and channels, covariates,
    per-channel scaling and the kind of time coordinate.

    Build one with :meth:`fit` on training data; use :meth:`encode` for new data with the
    same variables (e.g. a forecast context), :meth:`encode_covariates` for future
    covariates, :meth:`decode` to turn scaled samples back into a Dataset, and
    :meth:`extend_time` to label forecast steps. :meth:`to_dict` / :meth:`from_dict` give a
    JSON-serialisable round trip.

    :param list target_vars: names of the modelled variables, in channel order.
    :param dict feature_dims: ``var -> (feature dim name, list of coordinate values)`` for
        every variable (target or covariate) that carries an extra dim.
    :param list covariate_names: names of the covariate variables, in column order.
    :param loc: ``(D,)`` per-channel target location.
    :param scale: ``(D,)`` per-channel target scale.
    :param cov_loc: ``(V,)`` per-column covariate location.
    :param cov_scale: ``(V,)`` per-column covariate scale.
    :param str time_kind: ``"datetime"``, ``"integer"`` or ``"other"``.
    :param time_step: the regular time step of the training data (``np.timedelta64`` or
        ``int``), or ``None``.
    :param str time_freq: a pandas frequency string inferred from a datetime coordinate,
        or ``None``.
    """

    def __init__(
        self,
        target_vars,
        feature_dims,
        covariate_names,
        loc,
        scale,
        cov_loc,
        cov_scale,
        time_kind="other",
        time_step=None,
        time_freq=None,
    ):
        self.target_vars = list(target_vars)
        self.feature_dims = {
            var: (str(dim), [_label(c) for c in coords]) for var, (dim, coords) in feature_dims.items()
        }
        #: feature dims whose coordinates are datetimes (kept as ISO strings, decoded back)
        self.datetime_features = sorted(
            var for var, (_, coords) in feature_dims.items() if coords and all(_is_datetime(c) for c in coords)
        )
        self.covariate_names = list(covariate_names)
        self.channels = self._channels_of(self.target_vars)
        self.covariate_channels = self._channels_of(self.covariate_names)
        self.loc = np.asarray(loc, dtype=np.float64).reshape(-1)
        self.scale = np.asarray(scale, dtype=np.float64).reshape(-1)
        self.cov_loc = np.asarray(cov_loc, dtype=np.float64).reshape(-1)
        self.cov_scale = np.asarray(cov_scale, dtype=np.float64).reshape(-1)
        if self.loc.shape != (self.num_channels,) or self.scale.shape != (self.num_channels,):
            raise ValueError(f"loc and scale must have shape ({self.num_channels},)")
        if self.cov_loc.shape != (self.num_covariates,) or self.cov_scale.shape != (self.num_covariates,):
            raise ValueError(f"cov_loc and cov_scale must have shape ({self.num_covariates},)")
        if time_kind not in ("datetime", "integer", "other"):
            raise ValueError(f"time_kind must be 'datetime', 'integer' or 'other'; got {time_kind!r}")
        self.time_kind = time_kind
        self.time_step = time_step
        self.time_freq = time_freq

    def _channels_of(self, names):
        channels = []
        for var in names:
            if var in self.feature_dims:
                channels.extend((var, c) for c in self.feature_dims[var][1])
            else:
                channels.append((var, None))
        return channels

    @property
    def num_channels(self) -> int:
        """Number of target channels ``D``."""
        return len(self.channels)

    @property
    def num_covariates(self) -> int:
        """Number of covariate columns ``V``."""
        return len(self.covariate_channels)

    def __repr__(self) -> str:
        step = self.time_step if self.time_freq is None else self.time_freq
        return (
            f"DataContract(targets={self.target_vars}, num_channels={self.num_channels}, "
            f"covariates={self.covariate_names}, num_covariates={self.num_covariates}, "
            f"time_kind={self.time_kind!r}, time_step={step!r})"
        )

    def _channel_label(self, channel) -> str:
        var, coord = channel
        if coord is None:
            return repr(var)
        return f"{var!r} ({self.feature_dims[var][0]}={coord!r})"

    # -- fitting ---------------------------------------------------------------------------

    @classmethod
    def fit(
        cls, data, covariates=None, min_length=1, *, min_length_name="min_length", data_name="data"
    ) -> tuple[DataContract, SeriesData]:
        """
        Fit a contract on training data and encode that data.

        :param data: anything :func:`as_dataset` accepts.
        :param list covariates: names of variables to use as covariates (observed, not
            modelled); all other variables are targets.
        :param int min_length: the minimum number of observed steps per series (e.g. the
            Markov order of a model).
        :param str min_length_name: what the error message calls ``min_length`` (e.g. ``"order"``
            when the caller enforces a Markov order).
        :param str data_name: what the error message calls ``data``.
        :returns: ``(contract, series_data)``.
        :raises ValueError: on empty data, an all-missing target channel, a too-short series,
            covariate ``NaN`` inside a series, or unknown covariate names.
        :raises TypeError: if ``covariates`` is not a list of str or a variable is not numeric.
        """
        ds = as_dataset(data)
        _check_reserved(ds)
        available = list(ds.data_vars)
        covariate_names = _check_covariate_names(covariates, available)
        target_vars = [v for v in available if v not in covariate_names]
        _check_nonempty(ds, target_vars)
        feature_dims = {}
        for var in available:
            extra = ds[var].dims[2:]
            if extra:
                feature_dims[var] = (extra[0], _coordinate_list(ds[extra[0]].values))
        time = ds[TIME].values
        num_cov = sum(len(feature_dims[v][1]) if v in feature_dims else 1 for v in covariate_names)
        num_ch = sum(len(feature_dims[v][1]) if v in feature_dims else 1 for v in target_vars)
        contract = cls(
            target_vars,
            feature_dims,
            covariate_names,
            loc=np.zeros(num_ch),
            scale=np.ones(num_ch),
            cov_loc=np.zeros(num_cov),
            cov_scale=np.ones(num_cov),
            time_kind=_time_kind(time),
            time_step=_median_step(time) if _time_kind(time) != "other" else None,
            time_freq=_infer_freq(time),
        )
        targets = contract._extract(ds, target_vars)
        observed = ~np.isnan(targets)
        empty = ~observed.any(axis=(0, 1))
        if empty.any():
            labels = [contract._channel_label(ch) for ch, e in zip(contract.channels, empty) if e]
            raise ValueError(
                f"target variable {labels[0]} has no observed values (all NaN); all-missing "
                f"target channels: {', '.join(labels)}"
            )
        lengths = series_lengths(observed)
        contract._check_lengths(lengths, ds[SERIES].values, min_length, min_length_name, data_name)
        covs = contract._extract(ds, covariate_names)
        within = np.arange(targets.shape[1])[None, :] < lengths[:, None]
        contract._check_covariates_inside(covs, within, ds[SERIES].values)

        contract._check_magnitudes(targets, np.where(within[..., None], covs, np.nan), scaled_too=False)
        contract.loc = np.nanmean(targets, axis=(0, 1))
        contract.scale = _safe_scale(np.nanstd(targets, axis=(0, 1)))
        if num_cov:
            used = covs[within]  # (num observed positions, V)
            if used.shape[0]:
                contract.cov_loc = used.mean(axis=0)
                contract.cov_scale = _safe_scale(used.std(axis=0))
        return contract, contract._to_series_data(targets, covs, lengths, within, ds)

    # -- encoding --------------------------------------------------------------------------

    def encode(
        self, data, *, min_length=1, require_covariates=True, min_length_name="min_length", data_name="data"
    ) -> SeriesData:
        """
        Encode new data with the same variables using this contract's scaling.

        :param data: anything :func:`as_dataset` accepts, holding every target variable (and
            the covariates, unless ``require_covariates=False``).
        :param int min_length: minimum number of observed steps per series.
        :param str min_length_name: what the error message calls ``min_length``.
        :param str data_name: what the error message calls ``data``.
        :param bool require_covariates: if ``False``, absent covariate variables are filled
            with 0 (their training mean after scaling).
        :returns: a :class:`SeriesData`.
        :raises ValueError: on unknown or missing variables, mismatched feature coordinates,
            empty data, a too-short series or covariate ``NaN`` inside a series.
        """
        ds = as_dataset(data)
        available = list(ds.data_vars)
        known = set(self.target_vars) | set(self.covariate_names)
        unknown = [v for v in available if v not in known]
        if unknown:
            raise ValueError(
                f"data has unknown variables {unknown}; this model knows targets "
                f"{self.target_vars} and covariates {self.covariate_names}"
            )
        missing = [v for v in self.target_vars if v not in available]
        if missing:
            raise ValueError(f"data is missing target variables {missing}; expected {self.target_vars}")
        missing_cov = [v for v in self.covariate_names if v not in available]
        if missing_cov and require_covariates:
            raise ValueError(f"data is missing covariate variables {missing_cov}; expected {self.covariate_names}")
        _check_nonempty(ds, self.target_vars)
        kind = _time_kind(ds[TIME].values)
        if (kind == "datetime") != (self.time_kind == "datetime") and ds.sizes[TIME] > 0:
            raise ValueError(
                f"{data_name} has a {kind} time coordinate; the model was fitted on {self.time_kind} times "
                "(a forecast would continue the wrong time axis)"
            )
        targets = self._extract(ds, self.target_vars)
        lengths = series_lengths(~np.isnan(targets))
        self._check_lengths(lengths, ds[SERIES].values, min_length, min_length_name, data_name)
        covs = self._extract(ds, self.covariate_names, fill_missing=True)
        within = np.arange(targets.shape[1])[None, :] < lengths[:, None]
        present = np.array([var not in missing_cov for var, _ in self.covariate_channels], dtype=bool)
        self._check_covariates_inside(covs, within, ds[SERIES].values, columns=present)
        return self._to_series_data(targets, covs, lengths, within, ds)

    def encode_covariates(self, data, horizon, *, series=None) -> torch.Tensor:
        """
        Encode future covariates for a forecast of ``horizon`` steps.

        :param data: a Dataset/DataFrame (anything :func:`as_dataset` accepts) holding every
            covariate variable with exactly ``horizon`` time steps; other variables are
            ignored. May be ``None`` when the model has no covariates.
        :param int horizon: the number of future steps.
        :param series: optional ``(N,)`` series coordinate values; the data is aligned to
            them (every one must be present).
        :returns: ``(N, horizon, V)`` float32 scaled covariates.
        :raises ValueError: on a wrong number of steps, missing variables or series, or NaN.
        """
        horizon = check_nonnegative_int("horizon", horizon)
        if data is None:
            if self.num_covariates:
                raise ValueError(f"future covariates {self.covariate_names} are required for a forecast; got None")
            if series is None:
                raise ValueError("encode_covariates(None, ...) needs `series` to know N")
            return torch.zeros(len(series), horizon, 0)
        ds = as_dataset(data)
        if series is not None:
            ds = _align_series(ds, series)
        missing = [v for v in self.covariate_names if v not in ds.data_vars]
        if missing:
            raise ValueError(f"future covariates are missing variables {missing}; expected {self.covariate_names}")
        if ds.sizes[TIME] != horizon:
            raise ValueError(f"future covariates have {ds.sizes[TIME]} time steps; expected exactly horizon={horizon}")
        covs = self._extract(ds, self.covariate_names)
        bad = np.isnan(covs).any(axis=(0, 1))
        if bad.any():
            label = self._channel_label(self.covariate_channels[int(np.argmax(bad))])
            raise ValueError(f"future covariate {label} contains NaN; future covariates must be complete")
        scaled = (covs - self.cov_loc) / self.cov_scale
        return torch.as_tensor(scaled, dtype=torch.float32)

    def _extract(self, ds: xr.Dataset, names, fill_missing=False) -> np.ndarray:
        """Stack variables to a float64 ``(N, T, C)`` array in channel order."""
        num_series, num_time = ds.sizes[SERIES], ds.sizes[TIME]
        columns = []
        for var in names:
            width = len(self.feature_dims[var][1]) if var in self.feature_dims else 1
            if var not in ds.data_vars:
                if not fill_missing:
                    raise ValueError(f"data has no variable {var!r}")
                columns.append(np.full((num_series, num_time, width), np.nan))
                continue
            da = ds[var]
            if var not in self.feature_dims:
                if da.ndim != 2:
                    raise ValueError(
                        f"variable {var!r} has dims {da.dims}; expected ('series', 'time') as in the training data"
                    )
                columns.append(da.values[..., None])
                continue
            dim, coords = self.feature_dims[var]
            if da.ndim != 3 or da.dims[2] != dim:
                raise ValueError(
                    f"variable {var!r} has dims {da.dims}; expected ('series', 'time', {dim!r}) as in the training data"
                )
            labels = [_label(c) for c in _coordinate_list(ds[dim].values)]
            position = {c: i for i, c in enumerate(labels)}
            absent = [c for c in coords if c not in position]
            if absent or len(labels) != len(coords):
                raise ValueError(f"variable {var!r} has {dim!r} coordinates {labels}; expected {coords}")
            columns.append(da.values[:, :, [position[c] for c in coords]])
        if not columns:
            return np.zeros((num_series, num_time, 0))
        return np.concatenate(columns, axis=-1).astype(np.float64)

    def _check_lengths(self, lengths, series, min_length, min_length_name="min_length", data_name="data"):
        check_nonnegative_int(min_length_name, min_length)
        short = lengths < min_length
        if short.any():
            raise ValueError(
                f"{data_name}: series {_format_series(series, short)} have fewer than "
                f"{min_length_name}={min_length} "
                f"observed time steps (lengths {lengths[short][:5].tolist()}); a series' length is "
                "1 + the index of its last observed step"
            )

    def _check_covariates_inside(self, covs, within, series, columns=None):
        if not covs.shape[-1]:
            return
        bad = np.isnan(covs) & within[..., None]  # (N, T, V)
        if columns is not None:
            bad &= columns  # skip absent (not required) covariates: they are filled with 0
        if bad.any():
            column = int(np.argmax(bad.any(axis=(0, 1))))
            rows = bad[..., column].any(axis=1)
            label = self._channel_label(self.covariate_channels[column])
            raise ValueError(
                f"covariate {label} is NaN inside the observed range of series "
                f"{_format_series(series, rows)}; covariates must be complete up to each series' "
                "length (NaN is allowed only after a series' last observed step)"
            )

    def _check_magnitudes(self, targets, covs, scaled_too=True) -> None:
        """Values that cannot be scaled (their square overflows) or whose scaled value leaves
        float32 are a ``ValueError`` naming the channel, before any model sees them."""
        for values, channels, loc, scale in (
            (targets, self.channels, self.loc, self.scale),
            (covs, self.covariate_channels, self.cov_loc, self.cov_scale),
        ):
            if not values.shape[-1]:
                continue
            with np.errstate(all="ignore"):
                largest = np.nanmax(np.abs(np.where(np.isnan(values), 0.0, values)), axis=(0, 1))
                scaled = np.nanmax(np.abs(np.where(np.isnan(values), 0.0, (values - loc) / scale)), axis=(0, 1))
            bad = (largest > MAX_ABS_VALUE) | (~(scaled < MAX_ABS_SCALED) if scaled_too else False)
            if bad.any():
                i = int(np.argmax(bad))
                raise ValueError(
                    f"variable {self._channel_label(channels[i])} has values up to {largest[i]:.3g}: beyond what "
                    f"pyrossm can scale (|x| <= {MAX_ABS_VALUE:.0e}, and within {MAX_ABS_SCALED:.0e} "
                    "standard deviations of the training data)"
                )

    def _to_series_data(self, targets, covs, lengths, within, ds) -> SeriesData:
        self._check_magnitudes(targets, np.where(within[..., None], covs, np.nan))
        scaled = (targets - self.loc) / self.scale
        cov_scaled = np.where(within[..., None], (covs - self.cov_loc) / self.cov_scale, 0.0)
        cov_scaled = np.nan_to_num(cov_scaled, nan=0.0)  # absent covariates (not required)
        return SeriesData(
            values=torch.as_tensor(scaled, dtype=torch.float32),
            mask=torch.as_tensor(~np.isnan(targets)),
            covariates=torch.as_tensor(cov_scaled, dtype=torch.float32),
            lengths=torch.as_tensor(lengths, dtype=torch.int64),
            series=ds[SERIES].values,
            time=ds[TIME].values,
        )

    # -- decoding --------------------------------------------------------------------------

    def decode(self, values, series, time, sample_dim="draw") -> xr.Dataset:
        """
        Turn scaled model output back into a Dataset in the user's units.

        :param values: ``(S, N, T, D)`` scaled values (torch tensor or numpy array); with
            ``sample_dim=None``, ``(N, T, D)``.
        :param series: ``(N,)`` series coordinate values.
        :param time: ``(T,)`` time coordinate values.
        :param str sample_dim: name of the leading sample dim (``"draw"``), or ``None``.
        :returns: a Dataset with one variable per target variable, dims
            ``(sample_dim, "series", "time")`` plus the variable's feature dim.
        """
        if isinstance(values, torch.Tensor):
            values = values.detach().cpu().numpy()
        values = np.asarray(values, dtype=np.float64)
        series, time = np.asarray(series), np.asarray(time)
        expected_ndim = 3 if sample_dim is None else 4
        names = "(N, T, D)" if sample_dim is None else "(S, N, T, D)"
        if values.ndim != expected_ndim:
            raise ValueError(f"values have shape {values.shape}; expected {names}")
        if values.shape[-1] != self.num_channels:
            raise ValueError(f"values have {values.shape[-1]} channels (last dim); expected D={self.num_channels}")
        if values.shape[-3] != len(series) or values.shape[-2] != len(time):
            raise ValueError(
                f"values have shape {values.shape}; expected N=len(series)={len(series)} and T=len(time)={len(time)}"
            )
        values = values * self.scale + self.loc
        lead = () if sample_dim is None else (sample_dim,)
        coords = {SERIES: series, TIME: time}
        if sample_dim is not None:
            coords[sample_dim] = np.arange(values.shape[0])
        variables = {}
        start = 0
        for var in self.target_vars:
            if var in self.feature_dims:
                dim, labels = self.feature_dims[var]
                stop = start + len(labels)
                variables[var] = (lead + (SERIES, TIME, dim), values[..., start:stop])
                mixed = len({type(label) for label in labels}) > 1
                if var in self.datetime_features:
                    coords[dim] = np.array(labels, dtype="datetime64[ns]")
                else:
                    coords[dim] = np.array(labels, dtype=object) if mixed else np.asarray(labels)
            else:
                stop = start + 1
                variables[var] = (lead + (SERIES, TIME), values[..., start])
            start = stop
        return xr.Dataset(variables, coords=coords)

    # -- time ------------------------------------------------------------------------------

    def extend_time(self, time: np.ndarray, horizon: int) -> np.ndarray:
        """The ``horizon`` time coordinate values following ``time[-1]``, ``(horizon,)``: see
        :func:`pyrossm.data.timeaxis.extend_time`, with the training coordinate's kind, step and
        frequency as the fallbacks for a ``time`` too short to show its own."""
        return extend_time(time, horizon, self.time_kind, self.time_step, self.time_freq)

    # -- serialisation ---------------------------------------------------------------------

    def to_dict(self) -> dict:
        """
        A JSON-serialisable description (plain lists, str, float, int, None).
        """
        step = self.time_step
        if isinstance(step, np.timedelta64):
            step = str(pd.Timedelta(step))
        elif step is not None:
            step = int(step)
        return {
            "version": 1,
            "target_vars": list(self.target_vars),
            "feature_dims": {var: [dim, list(coords)] for var, (dim, coords) in self.feature_dims.items()},
            "datetime_features": list(self.datetime_features),
            "covariate_names": list(self.covariate_names),
            "loc": self.loc.tolist(),
            "scale": self.scale.tolist(),
            "cov_loc": self.cov_loc.tolist(),
            "cov_scale": self.cov_scale.tolist(),
            "time_kind": self.time_kind,
            "time_step": step,
            "time_freq": self.time_freq,
        }

    @classmethod
    def from_dict(cls, d: dict) -> DataContract:
        """Rebuild a contract from :meth:`to_dict` output."""
        step = d.get("time_step")
        if d["time_kind"] == "datetime" and step is not None:
            step = pd.Timedelta(step).to_timedelta64()
        return cls(
            target_vars=d["target_vars"],
            feature_dims={
                var: (
                    dim,
                    [np.datetime64(c, "ns") for c in coords] if var in d.get("datetime_features", ()) else coords,
                )
                for var, (dim, coords) in d["feature_dims"].items()
            },
            covariate_names=d["covariate_names"],
            loc=d["loc"],
            scale=d["scale"],
            cov_loc=d["cov_loc"],
            cov_scale=d["cov_scale"],
            time_kind=d["time_kind"],
            time_step=step,
            time_freq=d.get("time_freq"),
        )


#: the largest magnitude accepted in data (its square, in a standard deviation, stays finite)
MAX_ABS_VALUE = 1e150
#: the largest scaled magnitude accepted (float32 holds 3.4e38; models square scaled values)
MAX_ABS_SCALED = 1e15
#: dims and variable names that pyrossm's outputs use
RESERVED_NAMES = ("draw", "chain")


def _check_reserved(ds) -> None:
    for name in [*ds.dims, *ds.data_vars]:
        if name in RESERVED_NAMES:
            raise ValueError(
                f"data has a dim or variable named {name!r}, which pyrossm's forecasts and samples use for "
                f"their own dims {RESERVED_NAMES}: rename it"
            )


def _coordinate_list(values) -> list:
    """A coordinate's values as python objects; datetimes as timestamps at any resolution
    (``datetime64[ns].tolist()`` gives plain ints)."""
    if values.dtype.kind == "M":
        return list(pd.DatetimeIndex(values))
    return values.tolist()


def _is_datetime(value) -> bool:
    return isinstance(value, (np.datetime64, datetime.datetime, pd.Timestamp))


def _label(value):
    """A feature coordinate as a JSON-able label: a python scalar, a datetime as an ISO string."""
    if _is_datetime(value):
        return pd.Timestamp(value).isoformat()
    return _plain(value)


def _safe_scale(scale: np.ndarray) -> np.ndarray:
    scale = np.asarray(scale, dtype=np.float64)
    return np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)


def _check_nonempty(ds: xr.Dataset, target_vars) -> None:
    if not target_vars:
        raise ValueError(
            f"data has no target variables (variables: {list(ds.data_vars)}); every variable was "
            "named as a covariate or the data is empty"
        )
    for dim in (SERIES, TIME):
        if ds.sizes.get(dim, 0) == 0:
            raise ValueError(f"data is empty: dim {dim!r} has size 0")


def _align_series(ds: xr.Dataset, series) -> xr.Dataset:
    labels = [_plain(s) for s in ds[SERIES].values.tolist()]
    position = {s: i for i, s in enumerate(labels)}
    wanted = [_plain(s) for s in np.asarray(series).tolist()]
    absent = [s for s in wanted if s not in position]
    if absent:
        raise ValueError(f"future covariates have no series {absent[:5]}; expected all of {wanted[:10]}")
    return ds.isel({SERIES: [position[s] for s in wanted]})
