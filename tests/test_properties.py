"""Property-based tests (bounded examples, in the default suite): any Dataset either converts and
round-trips through the data contract or raises ``ValueError`` / ``TypeError``; any corruption or
mutation of a saved fit raises ``ValueError`` or loads the very same model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyrossm
from pyrossm.data import DataContract
from pyrossm.inference import atomic_torch_save, safe_torch_load
from pyrossm.io import checksum

DTYPES = ["float64", "float32", "int64", "int8", "bool", "object", "str", "datetime64[ns]"]
TIMES = ["int", "datetime", "str", "float", "duplicate"]


@st.composite
def datasets(draw):
    """A Dataset of 1-3 variables over (series, time), some with a feature dim, of assorted dtypes,
    NaN patterns and coordinates."""
    num_series, length = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    time_kind = draw(st.sampled_from(TIMES))
    time = {
        "int": np.arange(length) * draw(st.integers(1, 3)),
        "datetime": pd.date_range("2021-01-01", periods=length, freq=draw(st.sampled_from(["D", "h", "MS"]))),
        "str": np.array([f"t{i}" for i in range(length)]),
        "float": np.arange(length) / 2.0,
        "duplicate": np.zeros(length, dtype=int),
    }[time_kind]
    variables, coords = {}, {"series": np.arange(num_series), "time": time}
    for v in range(draw(st.integers(1, 3))):
        dtype = draw(st.sampled_from(DTYPES))
        width = draw(st.sampled_from([None, 1, 2]))
        shape = (num_series, length) if width is None else (num_series, length, width)
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        if dtype == "str":
            values = np.full(shape, "a", dtype=object)
        elif dtype.startswith("datetime"):
            values = np.full(shape, np.datetime64("2020-01-01"), dtype=dtype)
        else:
            values = (rng.normal(size=shape) * draw(st.sampled_from([1e-3, 1.0, 1e6]))).astype(
                "float64" if dtype == "object" else dtype
            )
            if dtype == "object":
                values = values.astype(object)
        if values.dtype.kind == "f" and draw(st.booleans()):
            values[rng.random(shape) < draw(st.floats(0, 1))] = np.nan
        dims = ("series", "time") if width is None else ("series", "time", f"f{v}")
        if width is not None:
            coords[f"f{v}"] = np.arange(width)
        variables[f"v{v}"] = (dims, values)
    return xr.Dataset(variables, coords=coords)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(ds=datasets())
def test_any_dataset_converts_and_round_trips_or_raises_a_clear_error(ds):
    try:
        contract, sd = DataContract.fit(ds)
    except (ValueError, TypeError):
        return
    # the contract is JSON and comes back the same
    again = DataContract.from_dict(json.loads(json.dumps(contract.to_dict())))
    assert again.to_dict() == contract.to_dict()
    # observed values decode back to the data (float32 round-off relative to the scale)
    decoded = contract.decode(sd.values[None], sd.series, sd.time).isel(draw=0)
    for var in contract.target_vars:
        original = ds[var].values.astype(np.float64)
        back = decoded[var].values.astype(np.float64)
        observed = ~np.isnan(original)
        scale = np.nanmax(np.abs(original)) + 1.0
        np.testing.assert_allclose(back[observed], original[observed], atol=1e-5 * scale, rtol=1e-5)
    # encoding the same data with the fitted contract gives the same tensors
    encoded = contract.encode(ds)
    assert torch.equal(encoded.mask, sd.mask)
    torch.testing.assert_close(encoded.values, sd.values, equal_nan=True)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, make_ds, tiny):
    res = pyrossm.fit(data=make_ds(), num_steps=2, **tiny)
    return res, res.save(tmp_path_factory.mktemp("props") / "fit.pyrossm")  # (a path: readable failures)


def same_model(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa) and a.config == b.config


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=4))
def test_corrupted_bytes_never_load_a_silently_different_model(saved, tmp_path, flips):
    res, path = saved
    data = bytearray(path.read_bytes())
    for where, mask in flips:
        data[int(where * len(data))] ^= mask
    corrupt = tmp_path / "corrupt.pyrossm"
    corrupt.write_bytes(bytes(data))
    try:
        loaded = pyrossm.load(corrupt)
    except ValueError:
        return
    assert same_model(loaded, res)  # e.g. a flip in zip padding the reader never uses


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    entry=st.sampled_from(["config", "contract", "history"]),
    where=st.lists(st.integers(0, 20), min_size=1, max_size=3),
    value=JSON_VALUES,
    delete=st.booleans(),
)
def test_mutated_content_with_a_valid_checksum_is_a_value_error_or_loads(saved, tmp_path, entry, where, value, delete):
    """A tampered file (valid checksum) with any JSON value put in, or a key deleted, somewhere in
    its config, contract or history: ``ValueError``, never another exception."""
    res, source = saved
    payload = safe_torch_load(source)
    document = json.loads(payload[entry])
    node = document
    for step in where[:-1]:  # walk down by positions among the keys / items
        if isinstance(node, dict) and node:
            node = node[list(node)[step % len(node)]]
        elif isinstance(node, list) and node:
            node = node[step % len(node)]
    if isinstance(node, dict) and node:
        key = list(node)[where[-1] % len(node)]
        node.pop(key) if delete else node.__setitem__(key, value)
    elif isinstance(node, list) and node:
        node[where[-1] % len(node)] = value
    payload[entry] = json.dumps(document)
    payload["checksum"] = checksum(payload)
    atomic_torch_save(payload, tmp_path / "mutated.pyrossm")
    try:
        loaded = pyrossm.load(tmp_path / "mutated.pyrossm")
    except ValueError:
        return
    # what loads has the file's parameters
    for key, tensor in res.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], tensor)
