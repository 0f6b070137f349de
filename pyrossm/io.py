"""The saved-fit file format and its migrations.

A fit file is a ``torch.save`` zip of plain data only (read back with ``weights_only=True``)::

    {"format": "pyrossm-fit", "version": 2,
     "config": JSON str,    # model name and options, trainer settings (nested), covariates, structure
     "contract": JSON str,  # DataContract.to_dict()
     "history": JSON str,   # column -> list
     "state_dict": {name: tensor},
     "checksum": str}       # SHA-256 of all of the above (torch.load does not check the zip's CRCs)

Version 1 (before the nested trainer settings, without a checksum) is read through
:func:`migrate_v1`; trainer settings that pyrossm has removed since are dropped from any file's
config (:func:`without_removed_settings`).  Reading checks, before anything is allocated for the
model: the checksum, the types and shapes of every entry, and the saved tensors' shapes against a
model built from the saved options on the ``meta`` device; any mismatch is a ``ValueError``
naming it.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import torch

from .data import DataContract
from .draws import resolve_device
from .inference import TrainerConfig, atomic_torch_save, safe_torch_load
from .inference.config import REMOVED_SETTINGS, SECTIONS
from .models import GenerativeModel, get_spec
from .result import FitResult

FORMAT = "pyrossm-fit"
FORMAT_VERSION = 2


#: the JSON entries of a file, and what each must decode to
JSON_ENTRIES = {"config": dict, "contract": dict, "history": dict}


def checksum(payload: dict) -> str:
    """SHA-256 over the format, version, JSON entries and every tensor (name, dtype, shape, bytes)."""
    digest = hashlib.sha256()
    for key in ("format", "version", *JSON_ENTRIES):
        digest.update(f"{key}={payload[key]}\n".encode())
    for name in sorted(payload["state_dict"]):
        tensor = payload["state_dict"][name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def save_fit(result: FitResult, path) -> Path:
    """Writes ``result`` to ``path`` atomically (a temporary file renamed into place)."""
    history = {col: result.history[col].tolist() for col in result.history.columns}  # keeps int "step"
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": json.dumps(result.config),
        "contract": json.dumps(result.contract.to_dict()),
        "history": json.dumps(history),
        "state_dict": {k: v.detach().cpu() for k, v in result.model.state_dict().items()},
    }
    payload["checksum"] = checksum(payload)
    path = Path(path)
    atomic_torch_save(payload, path)
    return path


def migrate_v1(payload: dict) -> dict:
    """Version 1 -> 2: the trainer settings were one flat dict (the same names as today's flat
    form); version 2 stores them nested by section.  (Version 2 files also carry a checksum, which
    :func:`read_fit` verifies before any migration; a migrated payload is not checked again.)"""
    config = without_removed_settings(_decode(payload, "config"))
    trainer = config.get("trainer")
    if isinstance(trainer, dict):
        try:
            config["trainer"] = TrainerConfig.from_dict(trainer).to_dict()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"cannot read the trainer settings of this version-1 file: {exc}") from exc
    return {**payload, "config": json.dumps(config), "version": 2}


#: version -> the function that brings a payload of that version to the next one
MIGRATIONS = {1: migrate_v1}


def without_removed_settings(config: dict) -> dict:
    """A saved config whose trainer settings lack those pyrossm removed since
    (:data:`~pyrossm.inference.config.REMOVED_SETTINGS`, e.g. ``lr_restarts`` or ``batch_schedule``,
    which the former ``"ddssm-bimodal-cpu"`` preset set): a fit trained with them still loads,
    and its ``config["trainer"]`` is again a valid ``TrainerConfig`` dict (the history keeps what
    they did, e.g. its ``batch_size`` column).  Flat (version 1) and nested (version 2) settings
    alike; not a version change, as the format itself is the same."""
    trainer = config.get("trainer")
    if not isinstance(trainer, dict):
        return config
    kept = {}
    for name, value in trainer.items():
        if name in SECTIONS and isinstance(value, dict):
            kept[name] = {key: v for key, v in value.items() if key not in REMOVED_SETTINGS}
        elif name not in REMOVED_SETTINGS:
            kept[name] = value
    return {**config, "trainer": kept}


def _decode(payload, key):
    """The JSON entry ``key`` of a payload, decoded and of the expected type, or a ``ValueError``."""
    text = payload.get(key)
    if not isinstance(text, str):
        raise ValueError(f"the fit file's {key!r} entry is missing or not JSON text")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"the fit file's {key!r} entry is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(value, JSON_ENTRIES[key]):
        raise ValueError(f"the fit file's {key!r} entry must be a JSON object, got {type(value).__name__}")
    return value


def _check_config(config: dict) -> None:
    """The config entries ``load`` reads: a model name (or ``None`` for a user-built model), its
    options, the structure and the kept step."""
    name = config.get("model")
    if name is not None and not isinstance(name, str):
        raise ValueError(f"the fit file's config: 'model' must be a name or null, got {name!r}"[:200])
    for key, required in (("model_config", name is not None), ("structure", False), ("kept", False)):
        value = config.get(key)
        if (value is not None or required) and not isinstance(value, dict):
            raise ValueError(f"the fit file's config: {key!r} must be a JSON object")
    structure = config.get("structure") or {}
    if any(isinstance(v, bool) or not isinstance(v, int) for v in structure.values()):
        raise ValueError("the fit file's config: 'structure' must map names to ints")
    kept = config.get("kept")
    if kept is not None:
        metric = kept.get("metric", "elbo")
        numbers = [kept.get("step"), kept.get(f"val_{metric}") if isinstance(metric, str) else None]
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers):
            raise ValueError("the fit file's config: 'kept' must hold the kept step and its validation value")


def _check_contract(d: dict) -> DataContract:
    for name in ("loc", "scale", "cov_loc", "cov_scale"):
        values = d.get(name)
        if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
        ):
            raise ValueError(f"the fit file's data contract: {name!r} must be a list of finite numbers")
    for name in ("scale", "cov_scale"):
        if any(v <= 0 for v in d[name]):
            raise ValueError(f"the fit file's data contract: {name!r} must be positive, got {d[name]}")
    try:
        return DataContract.from_dict(d)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"the fit file's data contract is malformed: {exc!r}") from None


def _check_history(history: dict) -> pd.DataFrame:
    lengths = {len(v) if isinstance(v, list) else -1 for v in history.values()}
    if -1 in lengths or len(lengths) > 1:
        raise ValueError("the fit file's history must map each column to a list, all of one length")
    return pd.DataFrame(history)


def read_fit(path) -> dict:
    """The payload of a fit file at the current version (plain data only; nothing is unpickled).

    :returns: dict with ``config`` (dict), ``contract`` (:class:`DataContract`), ``history``
        (DataFrame) and ``state_dict``.
    :raises ValueError: if the file is not a pyrossm fit, is of a newer version, is corrupted
        (checksum) or malformed.
    """
    payload = safe_torch_load(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a pyrossm fit file")
    version = payload.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} has format version {version!r}, this pyrossm reads versions 1 to {FORMAT_VERSION}"
        )
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(f"{str(path)!r}: the 'state_dict' entry must map names to tensors")
    if version >= 2:
        for key in JSON_ENTRIES:
            if not isinstance(payload.get(key), str):
                raise ValueError(f"{str(path)!r}: the {key!r} entry is missing or not JSON text")
        if payload.get("checksum") != checksum(payload):
            raise ValueError(f"{str(path)!r} is corrupted: its checksum does not match its contents")
    while payload["version"] < FORMAT_VERSION:
        payload = MIGRATIONS[payload["version"]](payload)
    config = without_removed_settings(_decode(payload, "config"))
    _check_config(config)
    return {
        "config": config,
        "contract": _check_contract(_decode(payload, "contract")),
        "history": _check_history(_decode(payload, "history")),
        "state_dict": state,
    }


def _check_shapes(model, state_dict, what):
    """The saved tensors must be exactly the model's (names and shapes)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    saved = {k: tuple(v.shape) for k, v in state_dict.items()}
    missing, unexpected = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
    differ = [
        f"{k} {saved[k]} (the model has {expected[k]})"
        for k in sorted(expected)
        if k in saved and saved[k] != expected[k]
    ]
    if missing or unexpected or differ:
        detail = "; ".join(
            filter(
                None,
                [
                    f"missing {missing[:5]}" if missing else "",
                    f"unexpected {unexpected[:5]}" if unexpected else "",
                    f"shapes {differ[:3]}" if differ else "",
                ],
            )
        )
        raise ValueError(f"the saved parameters do not match {what}: {detail}")


def _build(spec, options):
    """The registered model from saved options: first on the ``meta`` device (nothing allocated)
    to check, then for real."""
    try:
        with torch.device("meta"):
            return spec.build(**options)
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError, RuntimeError, OverflowError) as exc:
        raise ValueError(f"the fit file's model options are not valid for {spec.name!r}: {exc}") from None


def load(path, model=None, device="cpu") -> FitResult:
    """Loads a :meth:`FitResult.save` file (plain data only; nothing is unpickled).

    :param model: for fits of a user-built model, an instance with the same architecture.
    :param device: where the model goes (``"cpu"``, ``"cuda"``, ``"auto"``).
    :raises ValueError: if the file is not a pyrossm fit or does not match ``model``.
    """
    fit = read_fit(path)
    config, contract = fit["config"], fit["contract"]
    if model is None:
        if config.get("model") is None:
            raise ValueError(
                "this file holds a user-built model: pass an instance with the same "
                "architecture as load(path, model=...)"
            )
        spec = get_spec(config["model"])
        options = spec.migrated(config["model_config"] or {})
        _check_shapes(_build(spec, options), fit["state_dict"], f"a {spec.name!r} model with the saved options")
        model = spec.build(**options)
    elif not isinstance(model, GenerativeModel):
        raise TypeError(f"model must be a GenerativeModel, got {type(model).__name__}")
    # matching parameter shapes need not mean a matching structure: compare the dimensions with
    # the saved structure (older files lack it) and with the data contract
    saved = dict(config.get("structure") or {})
    saved.setdefault("obs_dim", contract.num_channels)
    saved.setdefault("covariate_dim", contract.num_covariates)
    structure = model.structure()
    mismatch = {name: (structure.get(name), value) for name, value in saved.items() if structure.get(name) != value}
    if mismatch:
        detail = ", ".join(f"{name}={got} (the fit has {want})" for name, (got, want) in mismatch.items())
        raise ValueError(f"model does not match the saved fit: {detail}")
    _check_shapes(model, fit["state_dict"], "the model")
    model.load_state_dict(fit["state_dict"])
    dev = resolve_device(device)
    return FitResult(model.to(dev), contract, fit["history"], config, dev)
