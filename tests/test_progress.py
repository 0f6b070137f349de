"""The shared progress bar: shown when asked, hidden otherwise, and on a terminal by default."""

import io
import sys

import numpy as np
import pytest

from pyrossm.progress import progress_bar


def test_progress_bar_shows_when_asked(monkeypatch):
    stream = io.StringIO()
    for _ in progress_bar(True, iterable=range(3), desc="work", file=stream):
        pass
    assert "work" in stream.getvalue() and "3/3" in stream.getvalue()
    stream = io.StringIO()
    for _ in progress_bar(False, iterable=range(3), desc="work", file=stream):
        pass
    assert stream.getvalue() == ""


def test_progress_bar_default_follows_the_terminal(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert progress_bar(None, total=2).disable
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    bar = progress_bar(None, total=2, file=io.StringIO())
    assert not bar.disable
    bar.close()


def test_progress_bar_shows_in_a_jupyter_kernel_by_default(monkeypatch):
    import types

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    kernel = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: kernel))
    bar = progress_bar(None, total=2, file=io.StringIO())
    assert not bar.disable
    bar.close()
    terminal_ipython = types.SimpleNamespace(config={"TerminalInteractiveShell": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: terminal_ipython))
    assert progress_bar(None, total=2).disable  # (IPython in a terminal: stderr decides)


def test_the_training_bar_shows_a_smoothed_loss(series_ds, tiny):
    import pyrossm

    stream = io.StringIO()
    from tqdm import tqdm

    original = tqdm.__init__

    def to_stream(self, *args, **kwargs):
        kwargs["file"] = stream
        original(self, *args, **kwargs)

    import unittest.mock

    with unittest.mock.patch.object(tqdm, "__init__", to_stream):
        res = pyrossm.fit(data=series_ds, num_steps=20, **{**tiny, "progress": True})
    shown = float(stream.getvalue().rsplit("loss=", 1)[1].split("]")[0])
    losses = res.history["loss"].to_numpy()
    weights = 0.95 ** np.arange(19, -1, -1)
    assert shown == pytest.approx((weights * losses).sum() / weights.sum(), abs=2e-3)
    assert shown != pytest.approx(losses[-1], abs=1e-3)
