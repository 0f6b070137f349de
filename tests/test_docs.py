"""The Sphinx documentation builds with warnings as errors: every public docstring is valid
reStructuredText, and the tutorials render from their stored outputs."""

import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_docs_build_without_warnings(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    fitting = (tmp_path / "html" / "api" / "fitting.html").read_text()
    assert "pyrossm.fit" in fitting and "trainer" in fitting
    for name in ("bimodal_forecasting", "custom_ssm_with_diffusion_transitions", "geyser"):
        assert (tmp_path / "html" / "tutorials" / f"{name}.html").stat().st_size > 10_000
