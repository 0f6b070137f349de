"""The saved-fit file format and its migrations.

A fit file is a ``torch.save`` zip of plain data only (read back with ``weights_only=True``)::

    {"format": "pyrossm-fit", "version": 2,
     "config": JSON str,    # model name and options, trainer settings (nested), covariates, structure
     "contract": JSON str,  # DataContract.to_dict()
     "history": JSON str,   # column -> list
     "state_dict": {name: tensor}}

Version 1 (before the nested trainer settings) is read through :func:`migrate_v1`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .data import DataContract
from .draws import resolve_device
from .inference import TrainerConfig, atomic_torch_save, safe_torch_load
from .models import GenerativeModel, get_spec
from .result import FitResult

FORMAT = "pyrossm-fit"
FORMAT_VERSION = 2


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
    path = Path(path)
    atomic_torch_save(payload, path)
    return path


def migrate_v1(payload: dict) -> dict:
    """Version 1 -> 2: the trainer settings were one flat dict (the same names as today's flat
    form); version 2 stores them nested by section."""
    config = json.loads(payload["config"])
    trainer = config.get("trainer")
    if isinstance(trainer, dict):
        try:
            config["trainer"] = TrainerConfig.from_dict(trainer).to_dict()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"cannot read the trainer settings of this version-1 file: {exc}") from exc
    return {**payload, "config": json.dumps(config), "version": 2}


#: version -> the function that brings a payload of that version to the next one
MIGRATIONS = {1: migrate_v1}


def read_fit(path) -> dict:
    """The payload of a fit file at the current version (plain data only; nothing is unpickled).

    :returns: dict with ``config`` (dict), ``contract`` (:class:`DataContract`), ``history``
        (DataFrame) and ``state_dict``.
    :raises ValueError: if the file is not a pyrossm fit, or of a newer version.
    """
    payload = safe_torch_load(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a pyrossm fit file")
    version = payload.get("version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} has format version {version!r}, this pyrossm reads versions 1 to {FORMAT_VERSION}"
        )
    while payload["version"] < FORMAT_VERSION:
        payload = MIGRATIONS[payload["version"]](payload)
    return {
        "config": json.loads(payload["config"]),
        "contract": DataContract.from_dict(json.loads(payload["contract"])),
        "history": pd.DataFrame(json.loads(payload["history"])),
        "state_dict": payload["state_dict"],
    }


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
        model = spec.build(**spec.migrated(config["model_config"]))
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
    try:
        model.load_state_dict(fit["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"the saved parameters do not match the model: {exc}") from exc
    dev = resolve_device(device)
    return FitResult(model.to(dev), contract, fit["history"], config, dev)
