"""One progress bar for long work (training, backtests, tuning): tqdm, shown when asked or when
stderr is a terminal."""

from __future__ import annotations

import importlib.util
import sys


def progress_bar(show=None, **kwargs):
    """A ``tqdm`` bar; ``show=None`` shows it only when stderr is a terminal.

    Jupyter's widget bar (``tqdm.auto``) is used only when ``ipywidgets`` is installed, so that
    importing pyrossm in a kernel without it prints no "IProgress not found" warning.

    :param show: ``True``, ``False`` or ``None``.  :param kwargs: passed to ``tqdm``
        (``total``, ``initial``, ``desc``, ...).
    """
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    show = show if show is not None else sys.stderr.isatty()
    return tqdm(disable=not show, dynamic_ncols=True, **kwargs)
