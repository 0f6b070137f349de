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
        "num_samples=500": "num_samples=20",
        "num_samples=200": "num_samples=10",
        "num_samples=100": "num_samples=10",
        # arviz-plots overlays 50 replicates by default: as many as the 10 drawn here
        "plot_ppc_dist(dt, ": "plot_ppc_dist(dt, num_samples=10, ",
        # 2 steps of a small network with 8 diffusion steps (the README's: the defaults, K = 128)
        "pyrossm.fit(": "pyrossm.fit(num_steps=2, num_diffusion_steps=8, hidden_dim=4, ",
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


@pytest.mark.parametrize(
    "name",
    ["bimodal_forecasting", "custom_ssm_with_diffusion_transitions", "generation", "geyser", "posterior_collapse"],
)
def test_readme_links_each_tutorial(name):
    assert f"tutorials/{name}.ipynb" in README.read_text()


def test_the_your_data_block_runs(monkeypatch):
    """The README's data-forms block, on small stand-ins for the names it uses."""
    import numpy as np
    import pandas as pd

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Your data", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    dates = pd.date_range("2024-01-01", periods=70)
    namespace = {
        "df": pd.DataFrame(
            {
                "series": 0,
                "time": dates.strftime("%Y-%m-%d"),
                "item": "a",
                "date": dates.strftime("%d.%m.%Y"),
                "x": np.arange(70.0),
            }
        ).drop(columns=["item", "date"]),
        "pivot": pd.DataFrame({"a": np.arange(70.0)}, index=dates),
        "sales_series": pd.Series(np.arange(70.0), index=dates),
        "array": np.zeros((2, 70, 3)),
    }
    lines = []
    for line in block.splitlines():  # each call on its own frame where the block's df differs
        if 'series="item"' in line:
            line = line.replace("as_dataset(df,", "as_dataset(df.rename(columns={'series': 'item', 'time': 'date'}),")
        if "time_format" in line:
            line = line.replace("as_dataset(df,", "as_dataset(df.assign(time=dates.strftime('%d.%m.%Y')),")
        if line.startswith("windows("):
            line = line.replace("windows(ds,", "windows(as_dataset(df),")
        lines.append(line)
    exec("\n".join(lines), {**namespace, "dates": dates})
