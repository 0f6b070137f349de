"""Normalising what users pass in (Dataset, long or wide DataFrame, DataArray) to one Dataset."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

SERIES = "series"
TIME = "time"
_LONG_COLUMNS = ("series", "time", "variable", "value")


# ---------------------------------------------------------------------------------------------
# as_dataset: every accepted input form -> a clean Dataset
# ---------------------------------------------------------------------------------------------


def as_dataset(data, time_format=None, *, series=None, time=None, series_columns=False) -> xr.Dataset:
    """
    Normalise user data to an :class:`xarray.Dataset` with dims ``("series", "time")``.

    Accepted forms:

    - :class:`xarray.Dataset` whose data variables have dims ``("series", "time")`` plus at
      most one extra feature dim each (in any order; they are transposed to
      ``("series", "time", feature)``);
    - :class:`xarray.DataArray` with dims ``("series", "time", feature)``: one variable per
      feature coordinate value, named ``str(value)``; a 2-D ``("series", "time")`` DataArray
      becomes a single variable named after the array (``"x"`` if it has no name);
    - :class:`pandas.DataFrame` in long form (columns exactly ``series, time, variable,
      value``) or wide form (columns ``series``, ``time`` and one numeric column per variable,
      one row per ``(series, time)``). ``series``/``time`` may also be index levels. Missing
      ``(series, time)`` combinations become ``NaN``; series and time are sorted.  A ``time``
      column of strings is parsed as dates (``time_format``, e.g. ``"%m/%d/%Y"``, or pandas'
      inference) and sorted as dates; strings that are not dates keep their order of first
      appearance (never sorted as text).

    - a long or wide DataFrame whose series and time columns have other names: give them as
      ``series="item", time="date"``;
    - a pivoted DataFrame with ``series_columns=True``: the index is the time (e.g. a
      DatetimeIndex), each column one series of a single variable ``"x"``;
    - a :class:`pandas.Series` indexed by ``(series, time)`` levels (one variable, named after
      the Series or ``"x"``), or by time alone (one series);
    - a numpy array ``(N, T)`` (variable ``"x"``) or ``(N, T, D)`` (variables ``"x0"`` ..
      ``"x{D-1}"``);
    - a DataArray with default dim names (``dim_0, dim_1[, dim_2]``), read as
      ``(series, time[, feature])``.

    Missing ``series``/``time`` coordinates are filled with integer positions; a numeric or
    datetime time coordinate that is not increasing is sorted. Boolean variables are cast to
    float.

    :param data: the data, in one of the forms above.
    :param str time_format: the ``strftime`` format of a DataFrame's string ``time`` column
        (default: inferred by pandas).
    :param str series: a DataFrame's series column, if not ``"series"``.
    :param str time: a DataFrame's time column, if not ``"time"``.
    :param bool series_columns: a DataFrame is pivoted: time index, one column per series.
    :returns: a new Dataset, float variables, dims ``("series", "time"[, feature])``.
    :raises TypeError: if ``data`` is of another type or a variable is not numeric.
    :raises ValueError: if dims or columns are wrong, a variable holds ``+-inf``, or
        coordinates are duplicated.
    """
    if (series is not None or time is not None or series_columns) and not isinstance(data, pd.DataFrame):
        raise TypeError(f"series=, time= and series_columns= apply to a DataFrame, got {type(data).__name__}")
    if isinstance(data, pd.Series):
        data = _series_to_frame(data)
    elif isinstance(data, np.ndarray):
        data = _array_to_dataarray(data)
    if isinstance(data, xr.Dataset):
        ds = data
    elif isinstance(data, xr.DataArray):
        ds = _dataarray_to_dataset(data)
    elif isinstance(data, pd.DataFrame):
        if series_columns:
            data = _pivoted_to_long(data)
        data = _renamed_columns(data, series, time)
        ds = _dataframe_to_dataset(data, time_format)
    else:
        raise TypeError(
            "data must be an xarray.Dataset with dims ('series', 'time'), an xarray.DataArray "
            "with dims ('series', 'time', feature), a pandas.DataFrame in long "
            "(series, time, variable, value) or wide (series, time, <variables>) form, a pandas.Series "
            f"or a numpy array (N, T[, D]); got {type(data).__name__}"
        )
    return _clean_dataset(ds)


def _check_variable(name, da: xr.DataArray) -> xr.DataArray:
    """Validate one data variable's dims and values; return it as float, dims ordered."""
    dims = tuple(da.dims)
    if SERIES not in dims or TIME not in dims:
        raise ValueError(
            f"variable {name!r} has dims {dims}; expected ('series', 'time') plus at most one extra feature dim"
        )
    extra = [d for d in dims if d not in (SERIES, TIME)]
    if len(extra) > 1:
        raise ValueError(
            f"variable {name!r} has extra dims {tuple(extra)}; expected ('series', 'time') plus "
            "at most one extra feature dim"
        )
    kind = da.dtype.kind
    if kind == "b":
        da = da.astype(np.float64)
    elif kind not in "iuf":
        raise TypeError(
            f"variable {name!r} has non-numeric dtype {da.dtype}; expected a numeric or bool "
            "variable (use NaN for missing values)"
        )
    elif kind in "iu":
        da = da.astype(np.float64)
    if np.isinf(da.values).any():
        raise ValueError(f"variable {name!r} contains +-inf; only finite values or NaN are allowed")
    return da.transpose(SERIES, TIME, *extra)


def _clean_dataset(ds: xr.Dataset) -> xr.Dataset:
    variables = {}
    for name, da in ds.data_vars.items():
        if not isinstance(name, str):
            raise TypeError(f"variable name {name!r} must be a str")
        variables[name] = _check_variable(name, da).variable
    out = xr.Dataset(variables)
    for dim in out.dims:
        if dim in ds.coords and dim in ds.indexes:
            out = out.assign_coords({dim: ds[dim].values})
    for dim in (SERIES, TIME):
        if dim not in out.dims:
            # no variables: keep sizes so emptiness is reported precisely later
            size = ds.sizes.get(dim, 0)
            values = ds[dim].values if dim in ds.coords else np.arange(size)
            out = out.assign_coords({dim: values})
        elif dim not in out.coords:
            out = out.assign_coords({dim: np.arange(out.sizes[dim])})
    for dim in (SERIES, TIME):
        index = pd.Index(out[dim].values)
        if index.has_duplicates:
            dup = index[index.duplicated()].unique()[:5].tolist()
            raise ValueError(f"coordinate {dim!r} has duplicate values {dup}; expected unique values")
    time = out[TIME].values
    if time.dtype.kind == "M" and np.isnat(time).any():
        raise ValueError("coordinate 'time' contains NaT; expected valid datetimes")
    if time.dtype.kind in "iufM" and not pd.Index(time).is_monotonic_increasing:
        out = out.sortby(TIME)
    out.attrs = dict(ds.attrs)
    return out


def _renamed_columns(df: pd.DataFrame, series, time) -> pd.DataFrame:
    mapping = {}
    for given, target in ((series, SERIES), (time, TIME)):
        if given is None:
            continue
        if given not in df.columns and given not in df.index.names:
            raise ValueError(f"DataFrame has no column {given!r} (given as {target}=); columns: {list(df.columns)}")
        mapping[given] = target
    if not mapping:
        return df
    df = df.reset_index(level=[n for n in df.index.names if n in mapping]) if set(mapping) & set(df.index.names) else df
    return df.rename(columns=mapping)


def _pivoted_to_long(df: pd.DataFrame) -> pd.DataFrame:
    """Time index x one column per series -> a wide frame with one variable ``x``."""
    frame = df.copy()
    frame.index.name, frame.columns.name = TIME, SERIES
    return frame.stack(future_stack=True).rename("x").reset_index()


def _series_to_frame(series: pd.Series) -> pd.DataFrame:
    name = series.name if isinstance(series.name, str) else "x"
    if set(series.index.names) >= {SERIES, TIME}:
        return series.rename(name).reset_index()
    if series.index.nlevels == 1:  # one series over its index
        return pd.DataFrame({SERIES: 0, TIME: series.index, name: series.to_numpy()})
    raise ValueError(
        f"a pandas Series needs index levels ('series', 'time') or one time index; got {series.index.names}"
    )


def _array_to_dataarray(array: np.ndarray) -> xr.DataArray:
    if array.ndim == 2:
        return xr.DataArray(array, dims=(SERIES, TIME), name="x")
    if array.ndim == 3:
        return xr.DataArray(
            array, dims=(SERIES, TIME, "feature"), coords={"feature": [f"x{d}" for d in range(array.shape[2])]}
        )
    raise ValueError(f"a numpy array must be (N, T) or (N, T, D), got shape {array.shape}")


def _dataarray_to_dataset(da: xr.DataArray) -> xr.Dataset:
    defaults = [f"dim_{i}" for i in range(da.ndim)]
    if list(da.dims) == defaults and da.ndim in (2, 3):  # xarray's default names: (series, time[, feature])
        da = da.rename(dict(zip(defaults, (SERIES, TIME, "feature"))))
    dims = tuple(da.dims)
    if da.ndim == 2 and set(dims) == {SERIES, TIME}:
        name = da.name if isinstance(da.name, str) else "x"
        return da.to_dataset(name=name)
    if da.ndim != 3 or SERIES not in dims or TIME not in dims:
        raise ValueError(f"DataArray has dims {dims}; expected ('series', 'time', feature) or ('series', 'time')")
    feature = next(d for d in dims if d not in (SERIES, TIME))
    labels = da[feature].values
    names = [str(v) for v in labels]
    if len(set(names)) != len(names):
        raise ValueError(f"DataArray feature dim {feature!r} has duplicate labels {names}")
    variables = {name: da.isel({feature: i}, drop=True) for i, name in enumerate(names)}
    return xr.Dataset(variables, attrs=dict(da.attrs))


def _numeric_column(df: pd.DataFrame, column) -> np.ndarray:
    col = df[column]
    if pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype):
        if pd.api.types.is_complex_dtype(col.dtype):
            raise TypeError(f"column {column!r} is complex; expected a real numeric column")
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    raise TypeError(f"column {column!r} has non-numeric dtype {col.dtype}; expected a numeric or bool column")


def _factorize(df: pd.DataFrame, column, sort: bool = True):
    try:
        codes, uniques = pd.factorize(df[column], sort=sort)
    except TypeError:  # unorderable mixed types
        codes, uniques = pd.factorize(df[column], sort=False)
    if (codes < 0).any():
        raise ValueError(f"column {column!r} contains missing values; expected a label in every row")
    return codes, np.asarray(uniques.to_numpy() if hasattr(uniques, "to_numpy") else uniques)


def _parse_time(df: pd.DataFrame, time_format) -> tuple[pd.DataFrame, bool]:
    """A string ``time`` column as datetimes where it parses as dates.

    :returns: ``(df, sortable)``: ``sortable`` is False for strings that are not dates (kept in
        their order of first appearance: text order would scramble e.g. ``12/31/2023`` and
        ``01/01/2024``).
    """
    column = df[TIME]
    if not (pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column.dtype)):
        return df, True
    if not all(isinstance(v, str) for v in column):
        return df, True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pandas' "could not infer format"
            parsed = pd.to_datetime(column, format=time_format)
    except (ValueError, TypeError) as exc:
        if time_format is not None:
            raise ValueError(f"column 'time' does not match time_format={time_format!r}: {exc}") from None
        return df, False
    if time_format is None and not parsed.dt.year.between(1000, 3000).all():
        return df, False  # e.g. "t1", "t2" read by dateutil as days of year 1: not dates
    return df.assign(**{TIME: parsed}), True


def _dataframe_to_dataset(df: pd.DataFrame, time_format=None) -> xr.Dataset:
    index_names = [n for n in df.index.names if n in (SERIES, TIME)]
    if index_names:
        df = df.reset_index(level=index_names)
    columns = list(df.columns)
    for required in (SERIES, TIME):
        if required not in columns:
            raise ValueError(
                f"DataFrame has no {required!r} column (columns: {columns}); expected columns "
                "'series', 'time' and either 'variable', 'value' (long form) or one column per "
                "variable (wide form)"
            )
    long_form = "variable" in columns and "value" in columns
    if long_form:
        extra = [c for c in columns if c not in _LONG_COLUMNS]
        if extra:
            raise ValueError(f"long-form DataFrame has extra columns {extra}; expected exactly {list(_LONG_COLUMNS)}")
        keys = [SERIES, TIME, "variable"]
    else:
        keys = [SERIES, TIME]
    duplicated = df.duplicated(subset=keys)
    if duplicated.any():
        row = df.loc[duplicated, keys].iloc[0].tolist()
        raise ValueError(
            f"DataFrame has {int(duplicated.sum())} duplicate {tuple(keys)} rows, e.g. {row}; "
            "expected one row per combination"
        )
    df, sortable = _parse_time(df, time_format)
    s_codes, s_values = _factorize(df, SERIES)
    t_codes, t_values = _factorize(df, TIME, sort=sortable)
    shape = (len(s_values), len(t_values))
    coords = {SERIES: s_values, TIME: t_values}
    variables = {}
    if long_form:
        v_codes, v_values = _factorize(df, "variable", sort=False)
        values = _numeric_column(df, "value")
        for k, name in enumerate(v_values):
            rows = v_codes == k
            array = np.full(shape, np.nan)
            array[s_codes[rows], t_codes[rows]] = values[rows]
            variables[str(name)] = ((SERIES, TIME), array)
    else:
        for column in columns:
            if column in (SERIES, TIME):
                continue
            array = np.full(shape, np.nan)
            array[s_codes, t_codes] = _numeric_column(df, column)
            variables[str(column)] = ((SERIES, TIME), array)
    return xr.Dataset(variables, coords=coords)
