"""The built wheel carries pyrossm's package data (the real data sets and their README)."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA_FILES = ("geyser.csv", "stock_goog.csv", "energy_data.csv.gz", "basic_motions.csv", "README.md")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    if not (REPO / "pyproject.toml").is_file():
        pytest.skip("not a source checkout")
    pytest.importorskip("setuptools")
    # build from a copy, so that setuptools' build/ and egg-info never land in the checkout
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(
        REPO / "pyrossm", src / "pyrossm", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    )
    out = tmp_path_factory.mktemp("wheel")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--disable-pip-version-check",
        "-q",
        "-w",
        str(out),
        str(src),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheels = list(out.glob("pyrossm-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_contains_package_data(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for name in DATA_FILES:
            assert f"pyrossm/datasets/data/{name}" in names, sorted(n for n in names if "datasets" in n)
        for module in ("__init__.py", "synthetic.py", "real.py"):
            assert f"pyrossm/datasets/{module}" in names
        assert not any(n.startswith("data/") for n in names)  # nothing outside the package
        for name in DATA_FILES:  # byte for byte
            assert (REPO / "pyrossm" / "datasets" / "data" / name).read_bytes() == zf.read(
                f"pyrossm/datasets/data/{name}"
            ), name


def test_installed_wheel_loads_data(wheel, tmp_path):
    # unpack the wheel as an installation would and load the data from another directory,
    # with the checkout off sys.path
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    code = (
        "import sys; sys.path = [p for p in sys.path if p not in ('', '.')]; "
        f"sys.path.insert(0, {str(site)!r}); "
        "import pyrossm.datasets as d; "
        f"assert d.__file__.startswith({str(site)!r}), d.__file__; "
        "print(d.geyser()['waiting'].shape, d.stock()['Close'].shape, "
        "d.energy()['Appliances'].shape, d.basic_motions()['gyro_z'].shape)"
    )
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    proc = subprocess.run([sys.executable, "-I", "-c", code], cwd=run_dir, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["(1,", "299)", "(1,", "3685)", "(1,", "19735)", "(80,", "100)"]
