"""The README's quick start runs as written (with fewer steps, series and draws)."""

import re
from pathlib import Path

import matplotlib
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def quick_start_code():
    text = README.read_text()
    section = text[text.index("## Quick start") :]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match, "the README's quick start has no python block"
    return match.group(1)


def test_quick_start_runs(tmp_path, monkeypatch):
    code = quick_start_code()
    fast = {
        "num_steps=1000": "num_steps=2",
        "num_samples=500": "num_samples=20",
        "num_samples=200": "num_samples=10",
        "num_samples=100": "num_samples=10",
        # arviz-plots overlays 50 replicates by default: as many as the 10 drawn here
        "plot_ppc_dist(dt, ": "plot_ppc_dist(dt, num_samples=10, ",
        # a small network with 8 diffusion steps (the README's runs the paper's K = 128)
        "pyrossm.fit(": "pyrossm.fit(num_diffusion_steps=8, channels=4, hidden_dim=4, ",
    }
    for slow, quick in fast.items():
        assert code.count(slow) == 1, slow
        code = code.replace(slow, quick)
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102  (our own README)
    assert (tmp_path / "quickstart.png").stat().st_size > 10_000
    assert (tmp_path / "quickstart.pyrossm").is_file()
    fc = namespace["fc"]
    assert fc["x"].dims == ("draw", "series", "time") and fc["x"].shape == (20, 64, 8)
    table = namespace["pyrossm"].metrics.evaluate(fc, namespace["test"])
    assert table.index.tolist() == ["x"] and (table["crps"] > 0).all()
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.parametrize("name", ["bimodal_forecasting", "custom_ssm_with_diffusion_transitions", "geyser"])
def test_readme_links_each_tutorial(name):
    assert f"tutorials/{name}.ipynb" in README.read_text()
