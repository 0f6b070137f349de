"""The 1-step predictive log score: the model's estimator, ``FitResult.log_score`` and
``fit(validation_metric="log_score")``."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyro.distributions as dist
import pytest
import torch
from scipy.stats import norm

import pyrossm
import pyrossm.inference
from pyrossm import draws
from pyrossm.api import LOG_SCORE_SAMPLES
from pyrossm.data.series import SeriesData
from pyrossm.models import DKF


def history_without_seconds(history):
    return history.drop(columns=["seconds"])


class SumOfHistory(torch.nn.Module):
    def forward(self, history, covariates):  # (B, j, M) -> N(sum, 1)
        return dist.Normal(history.sum(-2), 1.0).to_event(1)


class NoisyCopy(torch.nn.Module):
    def forward(self, window, covariates, pad):  # (..., j, M) -> N(z_t, 0.5^2)
        return dist.Normal(window[..., -1, :], 0.5)


class KnownPredictive(DKF):
    """A DKF whose guide is replaced by a fixed latent trajectory and whose transition and
    emission are fixed Gaussians, so that the 1-step predictive is known in closed form:
    ``z_T ~ N(z_{T-1} + z_{T-2}, 1)`` (order 2), ``x_T ~ N(z_T, 0.5^2)``."""

    def __init__(self, trajectory):
        super().__init__(
            obs_dim=1,
            latent_dim=1,
            order=2,
            channels=4,
            hidden_dim=4,
            encoder_layers=1,
            emission_layers=1,
            transition_layers=1,
        )
        self.trajectory = trajectory  # (T - 1,)
        self.transition, self.emission = SumOfHistory(), NoisyCopy()

    def sample_posterior(self, x, mask, covariates, num_samples):
        assert x.shape[1] == len(self.trajectory)  # the guide sees the first T - 1 steps only
        z = self.trajectory.reshape(1, 1, -1, 1)
        return z.expand(num_samples, x.shape[0], -1, 1)


def test_the_estimate_converges_to_the_exact_predictive_density():
    torch.manual_seed(0)
    model = KnownPredictive(torch.tensor([9.0, -4.0, 0.3, 0.5]))
    x = torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.7], [0.0, 0.0, 0.0, 0.0, -1.0], [0.0] * 5]).unsqueeze(-1)
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[2, -1] = False
    score = model.one_step_log_score(x, mask, torch.zeros(3, 5, 0), num_samples=40000)
    exact = norm(0.8, math.sqrt(1.25)).logpdf([1.7, -1.0])  # z_T ~ N(0.3 + 0.5, 1): the last two states
    assert score.shape == (3,)
    np.testing.assert_allclose(score[:2].numpy(), exact, atol=0.02)
    assert score[2] == 0.0  # nothing observed at T: log 1


def test_few_draws_are_biased_low_as_jensen_says():
    model = KnownPredictive(torch.tensor([0.0, 0.0]))
    x = torch.full((2000, 3, 1), 2.5)
    torch.manual_seed(1)
    few = model.one_step_log_score(x, torch.ones_like(x, dtype=torch.bool), torch.zeros(2000, 3, 0), 2)
    exact = norm(0.0, math.sqrt(1.25)).logpdf(2.5)
    assert few.mean() < exact - 0.05  # E[log mean] < log E[mean]


def test_the_model_needs_a_step_after_the_context():
    model = KnownPredictive(torch.tensor([0.0]))
    x = torch.zeros(2, 2, 1)
    with pytest.raises(ValueError, match="longer than the Markov order 2"):
        model.one_step_log_score(x, x.bool(), torch.zeros(2, 2, 0), 4)


@pytest.fixture(scope="module")
def fitted(make_ds, tiny):
    return pyrossm.fit(data=make_ds(), num_steps=4, seed=1, **tiny)


def test_fit_result_log_score(fitted, make_ds):
    data = make_ds(num_series=5, length=7, seed=4)
    data["x"][3, -1] = np.nan
    score = fitted.log_score(data, num_samples=50, seed=0)
    assert score.dims == ("series",) and score.shape == (5,) and score.name == "log_score"
    assert np.isnan(score.values[3]) and np.isfinite(np.delete(score.values, 3)).all()
    np.testing.assert_array_equal(score.values, fitted.log_score(data, num_samples=50, seed=0).values)
    # far from where the model puts its mass, the last step scores much lower
    shifted = data.copy(deep=True)
    shifted["x"][:, -1] = shifted["x"][:, -1] + 20 * float(fitted.contract.scale[0])
    assert (fitted.log_score(shifted, num_samples=50, seed=0) < score - 5).sum() == 4


def test_the_log_score_is_in_the_units_of_the_data(make_ds, tiny):
    data = make_ds(seed=2)
    wide = data.copy(deep=True)
    wide["x"] = 10 * wide["x"] + 3  # the same data after standardising
    a = pyrossm.fit(data=data, num_steps=3, seed=1, **tiny)
    b = pyrossm.fit(data=wide, num_steps=3, seed=1, **tiny)
    sa = a.log_score(data, num_samples=20, seed=0).values
    sb = b.log_score(wide, num_samples=20, seed=0).values
    np.testing.assert_allclose(sb, sa - math.log(10), atol=1e-3)


def test_fit_result_log_score_errors(fitted, make_ds):
    with pytest.raises(ValueError, match="more than order=2"):
        fitted.log_score(make_ds(length=2))  # the default order 2: two steps fit, none is left to score
    with pytest.raises(ValueError, match="num_samples"):
        fitted.log_score(make_ds(), num_samples=0)


def test_keep_best_by_the_log_score(make_ds, tiny):
    kwargs = dict(
        data=make_ds(),
        seed=3,
        batch_size=4,
        learning_rate=0.05,
        num_steps=12,
        validation_data=make_ds(num_series=4, seed=5),
        **tiny,
    )
    selection = {"validate_every": 3, "validation_metric": "log_score", "keep_best": True}
    res = pyrossm.fit(trainer=selection, **kwargs)
    score = res.history["val_log_score"].dropna()
    assert list(score.index) == [2, 5, 8, 11]
    kept = res.config["kept"]
    assert kept["metric"] == "log_score" and kept["step"] == int(score.idxmax())
    assert kept["val_log_score"] == pytest.approx(score.max())
    assert kept["val_elbo"] == pytest.approx(res.history["val_elbo"][kept["step"]])
    assert f"kept step {kept['step']} (val log_score=" in repr(res)
    # the validation draws are seeded by the fit's seed: the kept model reproduces its score
    again = res.log_score(kwargs["validation_data"], num_samples=LOG_SCORE_SAMPLES, seed=3)
    assert float(again.mean()) == pytest.approx(kept["val_log_score"], abs=1e-5)
    # with log_score_samples draws instead of the default 16
    more = pyrossm.fit(trainer=dict(selection, log_score_samples=40), **kwargs)
    again = more.log_score(kwargs["validation_data"], num_samples=40, seed=3)
    assert float(again.mean()) == pytest.approx(more.config["kept"]["val_log_score"], abs=1e-5)
    assert more.config["kept"]["val_log_score"] != pytest.approx(kept["val_log_score"], abs=1e-5)
    # and scoring leaves the training untouched
    plain = pyrossm.fit(trainer={"validate_every": 3}, **kwargs)
    pd.testing.assert_frame_equal(
        history_without_seconds(res.history).drop(columns=["val_log_score"]), history_without_seconds(plain.history)
    )


@pytest.mark.parametrize(
    "trainer,validation_data,error,match",
    [
        ({"validation_metric": 3}, None, TypeError, "validation_metric must be a non-empty str"),
        ({"validation_metric": "crps"}, None, ValueError, r"validation_metric 'crps' is not among the validation"),
        (
            {"validation_metric": "crps", "keep_best": True, "validate_every": 2},
            "good",
            ValueError,
            r"validation_metric 'crps' is not among the validation values of stage 'svi': \['elbo'\]",
        ),
        ({"validation_metric": "log_score"}, None, ValueError, "give both"),
        ({"validation_metric": "log_score", "validate_every": 2}, None, ValueError, "give both"),
        ({"validation_metric": "log_score"}, "good", ValueError, "give both"),
        ({"validation_metric": "log_score", "validate_every": 2}, "short", ValueError, "more than order=2 time steps"),
        ({"validation_metric": "log_score", "validate_every": 2}, "unobserved", ValueError, "no observed value"),
    ],
)
def test_fit_refuses_a_bad_validation_metric_before_training(
    make_ds, tiny, monkeypatch, trainer, validation_data, error, match
):
    def no_step(*args, **kwargs):
        raise AssertionError("a training step was taken before the bad input was reported")

    monkeypatch.setattr(pyrossm.inference.Trainer, "_train_step", no_step)
    val = {"good": make_ds(num_series=3), "short": make_ds(length=2), "unobserved": make_ds(num_series=3), None: None}
    val["unobserved"]["x"][:, -1] = np.nan
    with pytest.raises(error, match=match):
        pyrossm.fit(data=make_ds(), num_steps=1, trainer=trainer, validation_data=val[validation_data], **tiny)


def test_passes_of_draws_are_combined_exactly(monkeypatch):
    """Pass ``k`` of a fake model has mean likelihood ``k``: the combination weighs each pass by
    its number of draws, ``log((4 * 1 + 4 * 2 + 2 * 3) / 10)``."""

    class PassNumber:
        min_length, min_length_name = 1, "order"

        def __init__(self):
            self.passes = []

        def one_step_log_score(self, x, mask, covariates, num_samples):
            self.passes.append(num_samples)
            return torch.full((x.shape[0],), math.log(len(self.passes)))

    monkeypatch.setattr(draws, "ROWS_PER_PASS", 20)  # 5 series -> 4 draws per pass
    x = torch.zeros(5, 3, 1)
    data = SeriesData(
        values=x,
        mask=torch.ones_like(x, dtype=torch.bool),
        covariates=torch.zeros(5, 3, 0),
        lengths=torch.full((5,), 3),
        series=np.arange(5),
        time=np.arange(3),
    )
    model = PassNumber()
    score = draws.one_step_log_score(model, SimpleNamespace(scale=np.array([2.0])), data, 10, torch.device("cpu"))
    assert model.passes == [4, 4, 2]
    np.testing.assert_allclose(score.numpy(), math.log(1.8) - math.log(2.0), rtol=1e-6)
