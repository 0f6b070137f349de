"""Atomic writes and safe reads of torch files (data only: ``weights_only=True``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch


def default_file_mode() -> int:
    """The mode a newly created file gets under the process's umask (``0o666 & ~umask``):
    ``tempfile.mkstemp`` creates owner-only files, which the rename would otherwise keep."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_torch_save(obj, path) -> None:
    """Saves ``obj`` with ``torch.save`` to a temporary file in the target folder, then renames it.

    A crash mid-write leaves any previous file at ``path`` intact and no partial file behind.  The
    file gets the user's normal permissions (:func:`default_file_mode`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, default_file_mode())
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def safe_torch_load(path, map_location="cpu"):
    """Loads a file written by :func:`atomic_torch_save` without unpickling arbitrary code.

    :raises FileNotFoundError: if ``path`` does not exist.
    :raises ValueError: if the file is not a plain-data torch file (e.g. a pickle of objects).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, zip errors ...
        raise ValueError(f"{str(path)!r} is not a valid pyrossm file (only plain data is accepted): {exc}") from exc
