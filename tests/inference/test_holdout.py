"""``holdout_last_step``: without validation data, ``fit`` trains on all but the last time step
and validates (the 1-step log score of that step) on the whole series."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pyrossm
from pyrossm.data import DataContract
from pyrossm.inference import Trainer, TrainerConfig
from tests.conftest import make_dataset

#: validated every 2 steps, kept at the best 1-step log score of the held-out step
HOLDOUT = dict(num_steps=5, validate_every=2, validation_metric="log_score", keep_best=True, holdout_last_step=True)


def params(result):
    return {k: v.detach().clone() for k, v in result.model.state_dict().items()}


def test_head_keeps_the_first_steps_and_recounts_lengths():
    ds = make_dataset(num_series=3, length=6, covariate=True)
    ds["x"][1, 4:] = np.nan  # series 1 ends at step 3
    ds["x"][2, 5] = np.nan  # series 2 ends at step 4
    _, data = DataContract.fit(ds, covariates=["u"])
    assert data.lengths.tolist() == [6, 4, 5]
    head = data.head(5)
    assert head.values.shape == (3, 5, 1) and head.covariates.shape == (3, 5, 1)
    assert head.lengths.tolist() == [5, 4, 5] and len(head.time) == 5
    assert torch.equal(head.mask, data.mask[:, :5])
    assert torch.equal(head.filled_values, data.filled_values[:, :5])
    assert torch.equal(head.covariates, data.covariates[:, :5])  # every kept step within a length
    assert data.head(6).lengths.tolist() == [6, 4, 5]
    # a series whose kept steps end on missing ones is shorter, its covariates zero beyond it
    ds["x"][0, 3:5] = np.nan  # series 0: observed at 0-2 and 5
    _, gappy = DataContract.fit(ds, covariates=["u"])
    cut = gappy.head(5)
    assert cut.lengths.tolist() == [3, 4, 5]
    assert bool((cut.covariates[0, 3:] == 0).all()) and bool((cut.covariates[0, :3] != 0).all())
    assert torch.equal(cut.covariates[1:], gappy.covariates[1:, :5])
    for bad in (0, 7, True, 2.0):
        with pytest.raises(ValueError, match="num_time must be an int in"):
            data.head(bad)


def test_training_sees_all_but_the_last_step_and_validation_the_whole(series_ds, tiny, monkeypatch):
    seen = {}
    original = Trainer.fit

    def spy(self, make_batch, num_series, *, val_batch=None, **kwargs):
        seen["train"], seen["val"] = make_batch(torch.arange(num_series)), val_batch
        return original(self, make_batch, num_series, val_batch=val_batch, **kwargs)

    monkeypatch.setattr(Trainer, "fit", spy)
    # 256 draws in the validation's log score as below: estimates of one value (with the default
    # 16 the estimate sits below it by log-mean-exp's bias, ~0.1 here, and spreads by ~0.2)
    res = pyrossm.fit(model="dkf", data=series_ds, trainer=dict(HOLDOUT, log_score_samples=256), seed=3, **tiny)
    _, full = DataContract.fit(series_ds)  # (the contract is fitted on all the data)
    assert seen["train"].values.shape == (6, 7, 1) and seen["val"].values.shape == (6, 8, 1)
    assert torch.equal(seen["train"].filled_values, full.filled_values[:, :7])
    assert torch.equal(seen["val"].filled_values, full.filled_values)
    # validated at steps 1 and 3; the fit ends with the better of them
    validated = res.history.dropna(subset=["val_log_score"])
    assert validated["step"].tolist() == [1, 3]
    best = validated.loc[validated["val_log_score"].idxmax()]
    assert res.config["kept"]["step"] == best["step"]
    assert res.config["kept"]["val_log_score"] == pytest.approx(best["val_log_score"])
    # the score is the kept model's 1-step log score of the held-out step (other draws)
    score = float(res.log_score(series_ds, num_samples=256, seed=0).mean())
    assert score == pytest.approx(best["val_log_score"], abs=0.2)


def test_validation_data_given_takes_the_place_of_the_holdout(series_ds, tiny):
    given = pyrossm.fit(model="dkf", data=series_ds, validation_data=series_ds, trainer=HOLDOUT, seed=3, **tiny)
    plain = pyrossm.fit(
        model="dkf",
        data=series_ds,
        validation_data=series_ds,
        trainer=dict(HOLDOUT, holdout_last_step=False),
        seed=3,
        **tiny,
    )
    a, b = params(given), params(plain)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "edit, why",
    [
        (lambda ds: ds.isel(time=slice(0, 1)), "the series have a single time step"),
        (lambda ds: ds.where(ds.time < 7), "no series is observed at the last time step"),
    ],
)
def test_data_too_short_to_hold_out_trains_on_everything_with_a_warning(series_ds, tiny, edit, why):
    ds = edit(series_ds)
    with pytest.warns(UserWarning, match=f"holdout_last_step: {why}"):  # order 1: one step is enough to fit
        res = pyrossm.fit(model="dkf", data=ds, trainer=HOLDOUT, order=1, seed=3, **tiny)
    assert not any(c.startswith("val_") for c in res.history.columns)
    assert "kept" not in res.config and len(res.history) == 5
    assert res.config["trainer"]["selection"]["holdout_last_step"] is False


def test_a_series_left_too_short_for_the_model_stops_the_holdout(series_ds, tiny):
    ds = series_ds.copy(deep=True)
    ds["x"][0, 1:7] = np.nan  # series 0: steps 0 and 7 only; without step 7 it has 1 < order 2
    with pytest.warns(UserWarning, match="fewer than the model's 2 observed steps"):
        res = pyrossm.fit(model="dkf", data=ds, trainer=HOLDOUT, order=2, seed=3, **tiny)
    assert "kept" not in res.config


def test_holdout_needs_validations():
    with pytest.raises(ValueError, match="holdout_last_step=True holds out the last time step"):
        TrainerConfig.from_dict({"holdout_last_step": True})
    with pytest.raises(TypeError, match="holdout_last_step"):
        TrainerConfig.from_dict({"holdout_last_step": 1, "validate_every": 2})
