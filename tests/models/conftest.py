"""Fixtures shared by the model tests."""

import pytest
import torch


def _random_batch(num_series, length, obs_dim, covariate_dim, seed=1):
    """Model arguments ``(x, mask, covariates)``: standard-normal ``x`` with about a quarter of
    the entries missing (never at ``t = 0``), zero-filled, and standard-normal covariates."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(num_series, length, obs_dim, generator=gen) > 0.25
    mask[:, 0, :] = True
    x = torch.where(mask, torch.randn(num_series, length, obs_dim, generator=gen), torch.zeros(()))
    covariates = torch.randn(num_series, length, covariate_dim, generator=gen)
    return x, mask, covariates


@pytest.fixture
def random_batch():
    """``random_batch(num_series, length, obs_dim, covariate_dim, seed=1) -> (x, mask, covariates)``."""
    return _random_batch
