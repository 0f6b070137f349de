"""L2D-Diff: fits through ``pyrossm.fit`` in three stages, each stage trains only its groups, the
pretraining loss counts the hidden entries only, the latent's running moments, the masked
data-diffusion loss, sampling (shape, seed, DDIM), save/load, the ablations and option checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr

import pyrossm
from pyrossm.diffusion import denoising_loss
from pyrossm.inference import ObservedSites
from pyrossm.inference.config import ObjectiveSettings
from pyrossm.models import L2DDiff

SMALL = dict(
    length=8,
    latent_dim=4,
    hidden_dim=8,
    encoder_depth=2,
    latent_widths=[8, 4],
    channels=8,
    num_layers=2,
    latent_steps=10,
    data_steps=10,
)
FIT = dict(num_steps=3, batch_size=8, progress=False, seed=0)


@pytest.fixture(scope="module")
def data():
    """16 series x 10 steps, two channels (a random-level sine and a noisy copy); one value
    missing inside the window of series 1."""
    rng = np.random.default_rng(0)
    t = np.arange(10)
    a = rng.normal(size=(16, 1)) + np.sin(t / 2 + rng.uniform(0, 6, size=(16, 1)))
    b = a + 0.1 * rng.normal(size=a.shape)
    b[1, 3] = np.nan
    return xr.Dataset(
        {"a": (("series", "time"), a), "b": (("series", "time"), b)}, coords={"series": np.arange(16), "time": t}
    )


def _changed_groups(model, start, end):
    names = {id(p): n for n, p in model.named_parameters()}
    group_of = {names[id(p)]: g for g, ps in model.parameter_groups().items() for p in ps}
    return {g for n, g in group_of.items() if not torch.equal(start[n], end[n])}


def test_fits_three_stages_samples_and_round_trips(data, tmp_path):
    res = pyrossm.fit("l2d", data, **FIT, **SMALL)
    h = res.history
    assert list(h["stage"].unique()) == ["pretrain", "latent", "data"] and len(h) == 9
    assert np.isfinite(h["loss"]).all()
    gen = res.sample(num_series=3, length=8, num_samples=2, seed=0)
    assert dict(gen.sizes) == {"draw": 2, "series": 3, "time": 8} and set(gen.data_vars) == {"a", "b"}
    assert np.isfinite(gen["a"].values).all() and np.isfinite(gen["b"].values).all()
    assert gen.equals(res.sample(num_series=3, length=8, num_samples=2, seed=0))
    assert not gen.equals(res.sample(num_series=3, length=8, num_samples=2, seed=1))
    back = pyrossm.load(res.save(tmp_path / "fit.pyrossm"))
    assert type(back.model) is L2DDiff and back.model.config == res.model.config
    assert torch.equal(back.model.latent_mean, res.model.latent_mean)
    assert back.sample(3, 8, num_samples=2, seed=5).equals(res.sample(3, 8, num_samples=2, seed=5))
    assert res.capabilities == ()
    assert json.loads(json.dumps(res.model.config)) == res.model.config
    assert res.model.structure() == {"obs_dim": 2, "covariate_dim": 0, "length": 8, "latent_dim": 4}


def test_stages_train_only_their_groups(data):
    torch.manual_seed(0)
    model = L2DDiff(obs_dim=2, **SMALL)
    groups = model.parameter_groups()
    ids = [id(p) for ps in groups.values() for p in ps]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))  # every parameter exactly once
    stages = model.training_stages(ObjectiveSettings())
    assert [(s.name, s.groups) for s in stages] == [
        ("pretrain", ("encoder", "decoder")),
        ("latent", ("latent",)),
        ("data", ("condition", "data")),
    ]
    start = {k: v.clone() for k, v in model.state_dict().items()}
    res = pyrossm.fit(model, data, **FIT)
    assert _changed_groups(model, start, res.model.state_dict()) == set(groups)
    # one stage at a time: only its groups change (and the latent's moments only in "latent")
    for stage in stages:
        torch.manual_seed(0)
        model = L2DDiff(obs_dim=2, **SMALL)
        model.training_stages = lambda settings, name=stage.name, m=model: [
            s for s in L2DDiff.training_stages(m, settings) if s.name == name
        ]
        start = {k: v.clone() for k, v in model.state_dict().items()}
        end = pyrossm.fit(model, data, **FIT).model.state_dict()
        assert _changed_groups(model, start, end) == set(stage.groups), stage.name
        moments_changed = not torch.equal(start["latent_mean"], end["latent_mean"])
        assert moments_changed == (stage.name == "latent"), stage.name
        if stage.name == "latent":
            assert float(end["latent_count"]) == 3 * 8  # every minibatch of the stage


def _tensors(n=6, t=8, d=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, t, d, generator=g)
    mask = torch.rand(n, t, d, generator=g) > 0.2
    return torch.where(mask, x, torch.zeros(())), mask, torch.zeros(n, t, 0)


class _Fixed(torch.nn.Module):
    """A decoder that ignores ``r`` and returns a fixed reconstruction."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, r):
        return self.value


def test_pretraining_loss_counts_hidden_observed_entries_only():
    torch.manual_seed(0)
    model = L2DDiff(obs_dim=2, **SMALL)
    x, mask, cov = _tensors()
    n = x.shape[0]
    torch.manual_seed(3)
    hidden = model.pretraining_mask(n)  # the mask the program draws first under the same seed
    assert hidden.shape == (n, 8) and (hidden.sum(-1) == 4).all()  # 50% of the steps, per series
    counted = mask & hidden.unsqueeze(-1)

    def loss_with(reconstruction):
        model.decoder = _Fixed(reconstruction)
        torch.manual_seed(3)
        return ObservedSites(model.pretrain_model).loss((x, mask, cov), 0)

    # right on the hidden observed entries, wrong everywhere else: no loss
    loss, terms = loss_with(torch.where(counted, x, x + 100.0))
    assert float(loss) == 0.0 and set(terms) == {"objective", "site_reconstruction"}
    # off by one on the hidden observed entries: their count per series
    loss, _ = loss_with(torch.where(counted, x + 1.0, x - 7.0))
    assert torch.allclose(loss, counted.sum() / n)
    # the encoder never sees the hidden (or missing) entries
    torch.manual_seed(0)
    fresh = L2DDiff(obs_dim=2, **SMALL)
    changed = torch.where(hidden.unsqueeze(-1) | ~mask, x + 5.0, x)
    assert torch.equal(fresh.encoder(x, mask, hidden), fresh.encoder(changed, mask, hidden))
    assert not torch.equal(fresh.encoder(x, mask, ~hidden), fresh.encoder(changed, mask, ~hidden))


def test_latent_moments_standardise_the_encoder_output():
    torch.manual_seed(0)
    model = L2DDiff(obs_dim=2, **SMALL)
    x, mask, _ = _tensors(n=10)
    model.accumulate_latent_moments(x[:4], mask[:4], reset=True)
    model.accumulate_latent_moments(x[4:], mask[4:])
    r = model.encode(x, mask)
    assert float(model.latent_count) == 10
    assert torch.allclose(model.latent_mean, r.mean(0), atol=1e-6)
    assert torch.allclose(model.latent_var, r.var(0, unbiased=False), rtol=1e-4)
    standard = model.standardise(r)
    assert torch.allclose(standard.mean(0), torch.zeros(4), atol=1e-4)
    assert torch.allclose(standard.std(0, unbiased=False), torch.ones(4), atol=1e-3)
    assert torch.allclose(model.destandardise(standard), r, atol=1e-5)
    model.accumulate_latent_moments(x[:3], mask[:3], reset=True)  # a new stage starts afresh
    assert float(model.latent_count) == 3 and torch.allclose(model.latent_mean, r[:3].mean(0), atol=1e-6)


def test_masked_data_loss_is_denoising_loss_when_complete():
    torch.manual_seed(0)
    model = L2DDiff(obs_dim=2, **SMALL)
    z0 = torch.randn(5, 16)
    guidance = model.condition_network(torch.randn(5, 4))
    torch.manual_seed(1)
    expected = denoising_loss(model.data_network, model.data_schedule, z0, guidance)
    torch.manual_seed(1)
    got = denoising_loss(model.data_network, model.data_schedule, z0, guidance, mask=torch.ones_like(z0))
    assert torch.allclose(got, expected)
    none = denoising_loss(model.data_network, model.data_schedule, z0, guidance, mask=torch.zeros_like(z0))
    assert torch.equal(none, torch.zeros(5))
    assert (model.data_schedule.num_steps, model.data_schedule.kind) == (10, "linear")
    assert (model.latent_schedule.num_steps, model.latent_schedule.kind) == (10, "linear")


@pytest.mark.parametrize(
    "options", [dict(), dict(sampler="ddim", num_sampling_steps=3), dict(latent_only=True), dict(data_only=True)]
)
def test_generate_batches_draws_and_series(options):
    torch.manual_seed(0)
    model = L2DDiff(obs_dim=2, **SMALL, **options)
    x = model.generate(3, 8, torch.zeros(2, 3, 8, 0))  # (S, N, T, V): S = 2 draws of N = 3 series
    assert x.shape == (2, 3, 8, 2) and torch.isfinite(x).all()
    assert model.generate(3, 8).shape == (1, 3, 8, 2)
    ablations = {k for k in ("latent_only", "data_only") if options.get(k)}
    assert {k for k in model.structure() if k in ("latent_only", "data_only")} == ablations


@pytest.mark.parametrize(
    "options,stages,groups",
    [
        (dict(latent_only=True), ["pretrain", "latent"], {"encoder", "decoder", "latent"}),
        (dict(data_only=True, sampler="ddim", num_sampling_steps=4), ["data"], {"condition", "data"}),
    ],
)
def test_ablations_fit_and_sample(data, options, stages, groups):
    res = pyrossm.fit("l2d", data, **FIT, **SMALL, **options)
    assert list(res.history["stage"].unique()) == stages and np.isfinite(res.history["loss"]).all()
    assert set(res.model.parameter_groups()) == groups
    gen = res.sample(num_series=2, length=8, num_samples=2, seed=0)
    assert dict(gen.sizes) == {"draw": 2, "series": 2, "time": 8} and np.isfinite(gen["a"].values).all()
    assert gen.equals(res.sample(num_series=2, length=8, num_samples=2, seed=0))
    if options.get("data_only"):
        assert not hasattr(res.model, "encoder") and not res.model.condition(num=3).any()


def test_options_are_checked(data):
    with pytest.raises(ValueError, match="latent_only and data_only"):
        L2DDiff(obs_dim=1, latent_only=True, data_only=True)
    with pytest.raises(ValueError, match="covariates"):
        L2DDiff(obs_dim=1, covariate_dim=2)
    with pytest.raises(ValueError, match="sampler"):
        L2DDiff(obs_dim=1, sampler="euler")
    with pytest.raises(ValueError, match="num_sampling_steps applies to sampler='ddim'"):
        L2DDiff(obs_dim=1, num_sampling_steps=10)
    with pytest.raises(ValueError, match="num_sampling_steps"):
        L2DDiff(obs_dim=1, sampler="ddim", num_sampling_steps=101)
    with pytest.raises(ValueError, match="mask_rate"):
        L2DDiff(obs_dim=1, mask_rate=1.0)
    with pytest.raises(ValueError, match="length"):
        L2DDiff(obs_dim=1, length=0)
    model = L2DDiff(obs_dim=2, **SMALL)
    with pytest.raises(ValueError, match="length=8"):
        model.generate(2, 9)
    with pytest.raises(ValueError, match="length=12"):  # every series needs a full window
        pyrossm.fit("l2d", data, **FIT, **dict(SMALL, length=12))


def test_loss_weighting_option_is_checked_recorded_and_older_fits_load_uniform():
    from pyrossm.models.registry import get_spec

    assert L2DDiff(obs_dim=1, **SMALL).config["loss_weighting"] == "edm"
    assert L2DDiff(obs_dim=1, **SMALL, loss_weighting="uniform").loss_weighting == "uniform"
    with pytest.raises(ValueError, match="loss_weighting must be one of"):
        L2DDiff(obs_dim=1, **SMALL, loss_weighting="snr")
    old = {k: v for k, v in L2DDiff(obs_dim=1, **SMALL).config.items() if k != "loss_weighting"}
    assert get_spec("l2d").migrated(old)["loss_weighting"] == "uniform"
