"""Loss-aware importance sampling of the diffusion bound's noise levels."""

import pytest
import torch

from pyrossm.diffusion import LossAwareLevels, NoiseSchedule, check_level_sampling, diffusion_bound
from pyrossm.models import DDSSM
from pyrossm.models.transition import DiffusionDynamics


def _net(x_in, c_noise, context):
    """A fixed 'denoiser' whose error depends strongly on the level (large at fine levels)."""
    return x_in * (1.0 + 3.0 * torch.exp(-c_noise).unsqueeze(-1)) + 0.5


def test_uniform_until_every_level_is_recorded():
    levels = LossAwareLevels(4)
    assert not levels.warmed_up
    assert torch.equal(levels.probabilities(), torch.full((4,), 0.25))
    levels.record(torch.tensor([0, 1, 2]), torch.tensor([1.0, 2.0, 3.0]))
    assert not levels.warmed_up
    k, weight = levels.draw((3, 5))
    assert k.shape == (3, 5) and torch.equal(weight, torch.ones(3, 5))
    levels.record(torch.tensor([3]), torch.tensor([4.0]))
    assert levels.warmed_up


def test_probabilities_follow_the_root_mean_square_term():
    levels = LossAwareLevels(3, uniform_share=0.4, decay=0.5)
    # level 0: terms 1 and 3 -> mean square 5; level 1: 2 -> 4; level 2: 0 -> 0
    levels.record(torch.tensor([0, 0, 1, 2]), torch.tensor([1.0, 3.0, 2.0, 0.0]))
    assert torch.allclose(levels.second_moments, torch.tensor([5.0, 4.0, 0.0]))
    root = torch.tensor([5.0, 4.0, 0.0]).sqrt()
    expected = 0.6 * root / root.sum() + 0.4 / 3
    assert torch.allclose(levels.probabilities(), expected)
    # a later record blends with the decay; undrawn levels keep their value; NaN is ignored
    levels.record(torch.tensor([1, 2]), torch.tensor([4.0, float("nan")]))
    assert torch.allclose(levels.second_moments, torch.tensor([5.0, 0.5 * 4 + 0.5 * 16, 0.0]))


def test_draws_follow_p_and_weights_are_inverse():
    torch.manual_seed(0)
    levels = LossAwareLevels(4, uniform_share=0.2)
    levels.record(torch.arange(4), torch.tensor([1.0, 1.0, 1.0, 5.0]))
    p = levels.probabilities()
    k, weight = levels.draw((200_000,))
    freq = torch.bincount(k, minlength=4).double() / k.numel()
    assert torch.allclose(freq, p.double(), atol=0.005)
    assert torch.allclose(weight, 1.0 / (4 * p[k]))


def test_bound_is_unbiased_and_less_noisy_with_loss_aware_levels():
    torch.manual_seed(0)
    schedule = NoiseSchedule(32)
    z0 = torch.randn(256, 2)
    levels = LossAwareLevels(32)
    diffusion_bound(_net, schedule, z0, None, 2, levels=levels)  # records (gradients enabled)
    assert levels.warmed_up
    with torch.no_grad():
        uniform = torch.stack([diffusion_bound(_net, schedule, z0, None, 2).mean() for _ in range(400)])
        before = levels.second_moments.clone()
        weighted = torch.stack([diffusion_bound(_net, schedule, z0, None, 2, levels=levels).mean() for _ in range(400)])
        assert torch.equal(levels.second_moments, before)  # no recording without gradients
    # the same expectation (4 joint standard errors), with a smaller spread
    se = (uniform.var() / 400 + weighted.var() / 400).sqrt()
    assert abs(uniform.mean() - weighted.mean()) < 4 * se
    assert weighted.std() < 0.7 * uniform.std()


def test_state_is_not_saved_and_model_option_builds_it():
    model = DDSSM(obs_dim=1, level_sampling="loss-aware")
    assert isinstance(model.transition.levels, LossAwareLevels)
    assert not any("levels" in name for name in model.state_dict())
    assert DDSSM(obs_dim=1, level_sampling="uniform").transition.levels is None
    assert model.config["level_sampling"] == "loss-aware"


@pytest.mark.parametrize("bad", ["importance", None, 1])
def test_bad_level_sampling_is_a_value_error(bad):
    with pytest.raises(ValueError, match="level_sampling must be one of"):
        check_level_sampling(bad)
    with pytest.raises(ValueError, match="level_sampling"):
        DiffusionDynamics(2, level_sampling=bad)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_levels=0), "num_levels"),
        (dict(num_levels=4, uniform_share=0.0), "uniform_share"),
        (dict(num_levels=4, decay=1.0), "decay"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LossAwareLevels(**kwargs)
