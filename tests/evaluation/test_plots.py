"""Plots of forecasts, latent trajectories, sample paths and training histories; arviz PPC plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import pyrossm  # noqa: E402
from pyrossm.evaluation import plots  # noqa: E402
from pyrossm.evaluation.plots import (  # noqa: E402
    plot_forecast,
    plot_history,
    plot_latent,
    plot_sample_paths,
    stack_observations,
)


@pytest.fixture(scope="module")
def fitted():
    """A 5-step DKF on 16 bimodal random walks (with a validation ELBO every 2 steps)."""
    ds, z = pyrossm.datasets.bimodal_random_walk(num_series=16, length=10, seed=0, return_latent=True)
    res = pyrossm.fit(
        model="dkf",
        data=ds,
        num_steps=5,
        batch_size=8,
        channels=4,
        hidden_dim=4,
        progress=False,
        seed=0,
        validation_data=ds.isel(series=slice(0, 4)),
        trainer={"validate_every": 2},
    )
    return res, ds, z


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _render(fig_or_ax, tmp_path, name):
    fig = getattr(fig_or_ax, "figure", fig_or_ax)
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.stat().st_size > 0


def _legend_labels(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_new_names_are_exported():
    for name in ["plot_latent", "plot_sample_paths", "plot_history", "stack_observations"]:
        assert name in plots.__all__
        assert getattr(pyrossm.evaluation, name) is getattr(plots, name)


# ---------------------------------------------------------------------- plot_forecast
def test_plot_forecast_fan_chart(fitted, tmp_path):
    res, ds, _ = fitted
    context = ds.isel(time=slice(0, 7))
    fc = res.forecast(context, horizon=3, num_samples=30, seed=0)
    ax = plot_forecast(context, fc, "x", series=2, truth=ds)
    _render(ax, tmp_path, "forecast")
    assert len(ax.collections) == 2  # 90% and 50% bands
    assert len(ax.lines) == 3  # observed, median, truth
    assert _legend_labels(ax) == ["observed", "90% interval", "50% interval", "median", "truth"]
    observed, median, truth = ax.lines
    np.testing.assert_allclose(observed.get_ydata(), context.x.sel(series=2).values)
    np.testing.assert_allclose(median.get_xdata(), [7, 8, 9])
    np.testing.assert_allclose(median.get_ydata(), np.median(fc.x.sel(series=2).values, axis=0))
    np.testing.assert_allclose(truth.get_ydata(), ds.x.sel(series=2, time=[7, 8, 9]).values)


def test_plot_forecast_bad_input(fitted):
    res, ds, _ = fitted
    fc = res.forecast(ds, horizon=2, num_samples=4, seed=0)
    with pytest.raises(ValueError, match="variable 'y'"):
        plot_forecast(ds, fc, "y", series=0)
    with pytest.raises(ValueError, match="series=99"):
        plot_forecast(ds, fc, "x", series=99)
    with pytest.raises(ValueError, match="forecast lacks dim"):
        plot_forecast(ds, fc.isel(draw=0), "x", series=0)
    with pytest.raises(ValueError, match="feature='a'"):
        plot_forecast(ds, fc, "x", series=0, feature="a")


def test_plot_forecast_feature_dim(tmp_path):
    rng = np.random.default_rng(0)
    coords = {"series": ["a", "b"], "time": np.arange(5), "channel": ["u", "v"]}
    ctx = xr.Dataset({"y": (("series", "time", "channel"), rng.normal(size=(2, 5, 2)))}, coords=coords)
    fc = xr.Dataset(
        {"y": (("draw", "series", "time", "channel"), rng.normal(size=(9, 2, 3, 2)))},
        coords={**coords, "draw": np.arange(9), "time": [5, 6, 7]},
    )
    with pytest.raises(ValueError, match="feature="):
        plot_forecast(ctx, fc, "y", series="b")
    ax = plot_forecast(ctx, fc, "y", series="b", feature="v")
    _render(ax, tmp_path, "feature")
    np.testing.assert_allclose(ax.lines[1].get_ydata(), np.median(fc.y.sel(series="b", channel="v").values, axis=0))


# ---------------------------------------------------------------------- plot_latent
def test_plot_latent_bands_median_and_truth(fitted, tmp_path):
    res, ds, z_true = fitted
    smoothed = res.smooth(ds, num_samples=25, seed=0)
    ax = plot_latent(smoothed, series=3, truth=z_true)
    _render(ax, tmp_path, "latent")
    assert len(ax.collections) == 2
    assert len(ax.lines) == 2
    assert _legend_labels(ax) == ["90% interval", "50% interval", "median", "true latent"]
    median, truth = ax.lines
    z = smoothed.z.sel(series=3, latent=0).values
    np.testing.assert_allclose(median.get_ydata(), np.median(z, axis=0), rtol=1e-6)
    np.testing.assert_allclose(truth.get_ydata(), z_true.sel(series=3).values)
    np.testing.assert_allclose(median.get_xdata(), ds.time.values)
    # the 90% band spans the 5% and 95% quantiles over draws
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    lo, hi = np.quantile(z, [0.05, 0.95], axis=0)
    assert band.min() == pytest.approx(lo.min(), rel=1e-5)
    assert band.max() == pytest.approx(hi.max(), rel=1e-5)
    assert ax.get_ylabel() == "z[0]"


def test_plot_latent_from_datatree_pools_chains(fitted):
    res, ds, _ = fitted
    dt = res.to_datatree(ds, num_samples=10, seed=1)
    ax = plot_latent(dt, series=0)
    expected = np.median(dt["posterior"]["z"].sel(series=0, latent=0).values.reshape(10, -1), axis=0)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), expected, rtol=1e-6)


def test_plot_latent_bad_input(fitted):
    res, ds, z_true = fitted
    smoothed = res.smooth(ds, num_samples=3, seed=0)
    with pytest.raises(ValueError, match="series=42"):
        plot_latent(smoothed, series=42)
    with pytest.raises(ValueError, match="latent=5"):
        plot_latent(smoothed, series=0, latent=5)
    with pytest.raises(ValueError, match="variable 'z' is not in smoothed"):
        plot_latent(smoothed.rename(z="w"), series=0)
    with pytest.raises(ValueError, match="smoothed lacks dim"):
        plot_latent(smoothed.z.isel(latent=0, drop=True), series=0)
    with pytest.raises(ValueError, match="series=0 is not a series of truth"):
        plot_latent(smoothed, series=0, truth=z_true.isel(series=[1, 2]))


# ---------------------------------------------------------------------- plot_sample_paths
def test_plot_sample_paths_of_generated_series(fitted, tmp_path):
    res, _, _ = fitted
    gen = res.sample(num_series=5, length=6, num_samples=2, seed=0)
    ax = plot_sample_paths(gen, "x", num_paths=3)
    _render(ax, tmp_path, "paths")
    assert len(ax.lines) == 3
    assert _legend_labels(ax) == ["sample paths"]
    for i, line in enumerate(ax.lines):  # the first paths in (draw, series) order
        np.testing.assert_allclose(line.get_ydata(), gen.x.isel(draw=0, series=i).values)
    assert len(plot_sample_paths(gen, "x", num_paths=50).lines) == 10  # all 2 x 5 paths


def test_plot_sample_paths_with_context(fitted, tmp_path):
    res, ds, _ = fitted
    fc = res.forecast(ds, horizon=4, num_samples=6, seed=0)
    ax = plot_sample_paths(fc, "x", series=7, num_paths=4, context=ds)
    _render(ax, tmp_path, "paths_context")
    assert len(ax.lines) == 5
    assert _legend_labels(ax) == ["sample paths", "observed"]
    np.testing.assert_allclose(ax.lines[2].get_ydata(), fc.x.sel(series=7).isel(draw=2).values)
    np.testing.assert_allclose(ax.lines[-1].get_ydata(), ds.x.sel(series=7).values)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [10, 11, 12, 13])


def test_plot_sample_paths_bad_input(fitted):
    res, ds, _ = fitted
    gen = res.sample(num_series=2, length=4, seed=0)
    with pytest.raises(ValueError, match="num_paths"):
        plot_sample_paths(gen, "x", num_paths=0)
    with pytest.raises(ValueError, match="variable 'nope'"):
        plot_sample_paths(gen, "nope")
    with pytest.raises(ValueError, match="series=5"):
        plot_sample_paths(gen, "x", series=5)
    with pytest.raises(ValueError, match="series="):
        plot_sample_paths(gen, "x", context=ds)
    with pytest.raises(ValueError, match="samples lacks dim"):
        plot_sample_paths(gen.isel(draw=0), "x")
    with pytest.raises(ValueError, match="samples must be an xarray Dataset"):
        plot_sample_paths(gen.x, "x")


# ---------------------------------------------------------------------- plot_history
def test_plot_history_panels_and_lambda(fitted, tmp_path):
    res, _, _ = fitted
    hist = res.history
    fig = plot_history(hist)
    _render(fig, tmp_path, "history")
    top, bottom, twin = fig.axes  # two panels and the lambda twin axis of the top one
    assert twin.get_shared_x_axes().joined(top, twin)
    loss, neg_elbo, val = top.lines
    np.testing.assert_allclose(loss.get_xdata(), hist["step"])
    np.testing.assert_allclose(loss.get_ydata(), hist["loss"])
    np.testing.assert_allclose(neg_elbo.get_ydata(), -hist["elbo"])
    observed = hist["val_elbo"].notna().to_numpy()
    assert observed.sum() == 2  # validation every 2 steps
    np.testing.assert_allclose(val.get_xdata(), hist["step"][observed])
    np.testing.assert_allclose(val.get_ydata(), -hist["val_elbo"][observed])
    (lam,) = twin.lines
    np.testing.assert_allclose(lam.get_ydata(), hist["annealing"])
    assert _legend_labels(top) == ["loss", "-ELBO", "-ELBO (validation)", "lambda (annealing)"]
    terms = [c for c in hist.columns if c.startswith("elbo_")]
    assert terms and [line.get_label() for line in bottom.lines] == terms
    for line, term in zip(bottom.lines, terms):
        np.testing.assert_allclose(line.get_ydata(), hist[term])


def test_plot_history_terms_window_and_axes(fitted):
    res, _, _ = fitted
    hist = res.history
    _, axes = plt.subplots(2, 1)
    fig = plot_history(hist, terms="elbo_x", ax=axes, window=2)
    assert fig is axes[0].figure
    top, bottom = axes
    assert [line.get_label() for line in bottom.lines] == ["elbo_x"]
    np.testing.assert_allclose(bottom.lines[0].get_ydata(), hist["elbo_x"].rolling(2, min_periods=1).mean())
    smoothed = [line for line in top.lines if line.get_label() == "loss (running mean, 2)"]
    assert len(smoothed) == 1
    np.testing.assert_allclose(smoothed[0].get_ydata(), hist["loss"].rolling(2, min_periods=1).mean())


def test_plot_history_from_datatree_and_fitresult(fitted):
    res, _, _ = fitted
    for source in (res, res.to_datatree(), res.to_datatree()["training_history"].to_dataset()):
        fig = plot_history(source)
        np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), res.history["loss"])
        np.testing.assert_allclose(fig.axes[2].lines[0].get_ydata(), res.history["annealing"])


def test_plot_history_bad_input(fitted):
    res, _, _ = fitted
    with pytest.raises(ValueError, match="terms"):
        plot_history(res.history, terms=["elbo_nope"])
    with pytest.raises(ValueError, match="ax must be"):
        plot_history(res.history, ax=plt.subplots()[1])
    with pytest.raises(ValueError, match="window"):
        plot_history(res.history, window=0)
    with pytest.raises(ValueError, match="'loss'"):
        plot_history(res.history.drop(columns="loss"))
    with pytest.raises(ValueError, match="history must be"):
        plot_history([1, 2, 3])


# ---------------------------------------------------------------------- arviz
def test_arviz_ppc_plots_on_posterior_predictive(fitted, tmp_path):
    import arviz_plots

    res, ds, _ = fitted
    dt = res.posterior_predictive(ds, num_samples=20, seed=0)
    pc = arviz_plots.plot_ppc_dist(dt, num_samples=10, backend="matplotlib")
    pc.savefig(tmp_path / "ppc_dist.png")
    assert pc.viz["predictive_dist"]["x"].size == 10  # one density line per replicate
    assert "x" in pc.viz["observed_dist"]
    arviz_plots.plot_ppc_tstat(dt, t_stat="std", backend="matplotlib")
    arviz_plots.plot_ppc_interval(dt, coords={"series": 1}, backend="matplotlib")
    pc = arviz_plots.plot_ppc_pit(stack_observations(dt), backend="matplotlib")
    pc.savefig(tmp_path / "ppc_pit.png")
    assert (tmp_path / "ppc_pit.png").stat().st_size > 0


def test_stack_observations_drops_missing(fitted):
    res, ds, _ = fitted
    gappy = ds.copy(deep=True)
    gappy["x"][0, 3] = np.nan
    gappy["x"][5, 0] = np.nan
    dt = res.posterior_predictive(gappy, num_samples=4, seed=0)
    flat = stack_observations(dt)
    obs, pp = flat["observed_data"]["x"], flat["posterior_predictive"]["x"]
    assert obs.dims == ("obs",) and obs.size == 16 * 10 - 2
    assert pp.dims == ("chain", "draw", "obs") and pp.shape == (1, 4, 158)
    assert np.isfinite(obs.values).all()
    # series and time stay as coordinates along obs
    i = int(np.flatnonzero((obs["series"].values == 5) & (obs["time"].values == 4))[0])
    assert obs.values[i] == pytest.approx(ds.x.sel(series=5, time=4).item(), rel=1e-6)
    assert pp.values[0, :, i] == pytest.approx(dt["posterior_predictive"]["x"].sel(series=5, time=4).values[0])
    assert stack_observations(dt, dropna=False)["observed_data"]["x"].size == 160
    with pytest.raises(ValueError, match="dt"):
        stack_observations(res.to_datatree())
