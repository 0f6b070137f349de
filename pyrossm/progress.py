"""One progress bar for long work (training, backtests, tuning): tqdm, shown when asked or when
stderr is a terminal."""

from __future__ import annotations

import importlib.util
import sys


def progress_bar(show=None, **kwargs):
    """A ``tqdm`` bar; ``show=None`` shows it on a terminal and in a Jupyter kernel (off only
    when asked with ``show=False``).

    Jupyter's widget bar (``tqdm.auto``) is used only when ``ipywidgets`` is installed, so that
    importing pyrossm in a kernel without it prints no "IProgress not found" warning.

    :param show: ``True``, ``False`` or ``None``.  :param kwargs: passed to ``tqdm``
        (``total``, ``initial``, ``desc``, ...).
    """
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    show = show if show is not None else (sys.stderr.isatty() or in_notebook())
    return tqdm(disable=not show, dynamic_ncols=True, **kwargs)


def in_notebook() -> bool:
    """Whether this runs in a Jupyter (IPython kernel) session."""
    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell is not None and hasattr(shell, "get_ipython") else None
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})
