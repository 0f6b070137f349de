"""Sphinx configuration: the API reference from the docstrings, the tutorials with their stored
outputs (not executed).  ``make docs`` builds it with warnings as errors."""

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

project = "pyrossm"
author = "the pyrossm developers"
copyright = "2026, the pyrossm developers"
release = version = "0.1.0"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode", "myst_nb"]
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {"members": True, "show-inheritance": True}
nb_execution_mode = "off"  # the notebooks' stored outputs; the test suite executes them
exclude_patterns = ["_build", "experiments", "design.md", "Thumbs.db", ".DS_Store"]
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]
html_theme = "alabaster"


def _copy_tutorials(app):
    """The tutorials live at the repository's root; Sphinx reads them from a copy in docs/."""
    target = Path(app.srcdir) / "tutorials"
    target.mkdir(exist_ok=True)
    for notebook in sorted((ROOT / "tutorials").glob("*.ipynb")):
        shutil.copy2(notebook, target / notebook.name)


def setup(app):
    app.connect("builder-inited", _copy_tutorials)
