"""The shared progress bar: shown when asked, hidden otherwise, and on a terminal by default."""

import io
import sys

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
