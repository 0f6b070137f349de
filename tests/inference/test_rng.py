import torch

from pyrossm.inference.rng import seeded


def test_seeded_block_is_reproducible_and_leaves_the_outer_stream_alone():
    torch.manual_seed(123)
    expected_outer = torch.rand(3)
    torch.manual_seed(123)
    with seeded(7):
        first = torch.rand(4)
    with seeded(7):
        second = torch.rand(4)
    assert torch.equal(first, second)
    torch.manual_seed(7)
    assert torch.equal(first, torch.rand(4))
    # the outer stream continues exactly as if the blocks had not run
    torch.manual_seed(123)
    with seeded(7):
        torch.rand(100)
    assert torch.equal(torch.rand(3), expected_outer)


def test_seed_none_draws_from_the_global_stream():
    torch.manual_seed(5)
    expected = torch.rand(6)
    torch.manual_seed(5)
    with seeded(None):
        inside = torch.rand(2)
    assert torch.equal(torch.cat([inside, torch.rand(4)]), expected)
