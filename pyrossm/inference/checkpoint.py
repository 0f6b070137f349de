"""Atomic writes of any file, and safe reads of torch files (data only: ``weights_only=True``)."""

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


def atomic_write(path, write) -> Path:
    """Calls ``write(tmp)`` on a temporary file in ``path``'s folder, then renames it to ``path``.

    A crash mid-write leaves any previous file at ``path`` intact and no partial file behind.  The
    file gets the user's normal permissions (:func:`default_file_mode`).

    :param write: ``write(tmp: str)`` writes the whole content to the path ``tmp``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, default_file_mode())
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_torch_save(obj, path) -> None:
    """Saves ``obj`` with ``torch.save`` by :func:`atomic_write`, flushed to the disk before the rename."""

    def write(tmp):
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)


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
