"""Latent Markov-chain distributions of order ``j`` whose densities are evaluated in one batched call.

A *conditional* is any callable ``conditional(history, covariates) -> Distribution`` taking
``history`` of shape ``(B, j, M)`` (``z_{t-j:t-1}``) and ``covariates`` of shape ``(B, j+1, V)``
(``u_{t-j:t}``) and returning a distribution with ``batch_shape == (B,)`` and
``event_shape == (M,)`` -- e.g. :class:`~pyrossm.models.transition.GaussianTransition`.

Given a trajectory, every transition log-density is computed from sliding windows with a single
call of the conditional (Eq. 1 of the DDSSM paper, vectorised over time); only *sampling* is
sequential.
"""

from __future__ import annotations

import torch
from pyro.distributions import TorchDistribution, constraints

from .windows import flatten_batch, sliding_windows


def _broadcast_batch(*shapes):
    return torch.broadcast_shapes(*shapes)


def window_log_prob(conditional, trajectory, covariates, order):
    """Sum over ``t >= j`` of ``log p(z_t | z_{t-j:t-1}, u_{t-j:t})``, all windows in one call.

    :param conditional: see the module docstring.
    :param trajectory: ``(..., L, M)`` with ``L > order``.
    :param covariates: ``(..., L, V)`` aligned with ``trajectory``.
    :param int order: ``j``.
    :returns: ``(...)`` log-density of steps ``j .. L-1`` given the first ``j``.
    """
    length = trajectory.shape[-2]
    steps = length - order
    if steps <= 0:
        return trajectory.new_zeros(trajectory.shape[:-2])
    history = sliding_windows(trajectory[..., :-1, :], order)  # (..., steps, j, M)
    cov = sliding_windows(covariates, order + 1)  # (..., steps, j+1, V)
    target = trajectory[..., order:, :]  # (..., steps, M)
    batch = _broadcast_batch(history.shape[:-2], cov.shape[:-2], target.shape[:-1])
    h, c, z = flatten_batch(history, cov, target, batch_shape=batch, keep_dims=(2, 2, 1))
    log_p = conditional(h, c).log_prob(z)
    return log_p.reshape(batch).sum(-1)


def rollout(conditional, history, covariates, steps, reparameterized=True):
    """Samples ``steps`` new states autoregressively.

    :param history: ``(..., j, M)`` the last ``j`` states.
    :param covariates: ``(..., j + steps, V)`` covariates aligned with ``[history, new states]``.
    :returns: ``(..., steps, M)``.
    """
    order = history.shape[-2]
    batch = _broadcast_batch(history.shape[:-2], covariates.shape[:-2])
    if steps == 0:  # e.g. a trajectory exactly as long as the Markov order
        return history.new_zeros(batch + (0, history.shape[-1]))
    window = history.expand(batch + history.shape[-2:])
    cov = covariates.expand(batch + covariates.shape[-2:])
    new = []
    for t in range(steps):
        h, c = flatten_batch(window, cov[..., t : t + order + 1, :], batch_shape=batch, keep_dims=(2, 2))
        d = conditional(h, c)
        z_t = d.rsample() if (reparameterized and d.has_rsample) else d.sample()
        z_t = z_t.reshape(batch + z_t.shape[-1:])
        new.append(z_t)
        window = torch.cat([window[..., 1:, :], z_t.unsqueeze(-2)], dim=-2)
    return torch.stack(new, dim=-2)


class MarkovChain(TorchDistribution):
    r"""``p(z_{1:L} | z_{1-j:0}, u) = \prod_t p(z_t | z_{t-j:t-1}, u_{t-j:t})`` given a fixed history.

    Used by the variational hierarchical prior (the first ``j`` states given ``j`` auxiliary
    latents) and by forecasting.

    :param conditional: see the module docstring.
    :param history: ``(..., j, M)`` the given states ``z_{1-j:0}``.
    :param covariates: ``(..., j + L, V)`` covariates aligned with ``[history, z_{1:L}]``.
    :param int length: ``L``.
    """

    arg_constraints = {}
    support = constraints.independent(constraints.real, 2)

    def __init__(self, conditional, history, covariates, length, batch_shape=None, validate_args=None):
        self.conditional, self.history, self.covariates = conditional, history, covariates
        self.order, self.length = history.shape[-2], length
        if batch_shape is None:
            batch_shape = _broadcast_batch(history.shape[:-2], covariates.shape[:-2])
        super().__init__(torch.Size(batch_shape), torch.Size((length, history.shape[-1])), validate_args=validate_args)

    @property
    def has_rsample(self):
        return True

    def expand(self, batch_shape, _instance=None):
        return MarkovChain(
            self.conditional, self.history, self.covariates, self.length, batch_shape=torch.Size(batch_shape)
        )

    def log_prob(self, value):
        # broadcast value and history against each other (either may have more batch dims)
        batch = _broadcast_batch(value.shape[:-2], self.history.shape[:-2])
        history = self.history.expand(batch + self.history.shape[-2:])
        full = torch.cat([history, value.expand(batch + value.shape[-2:])], dim=-2)
        return window_log_prob(self.conditional, full, self.covariates, self.order)

    def rsample(self, sample_shape=torch.Size()):
        shape = torch.Size(sample_shape) + self.batch_shape
        history = self.history.expand(shape + self.history.shape[-2:])
        return rollout(self.conditional, history, self.covariates, self.length)

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            return self.rsample(sample_shape)


class StateSpacePrior(TorchDistribution):
    r"""The latent prior of a state-space model over ``z_{1:T}`` (Eq. 1 of the DDSSM paper).

    ``p(z_{1:T} | u) = p(z_{1:j} | u_{1:j}) \prod_{t=j+1}^T p(z_t | z_{t-j:t-1}, u_{t-j:t})``:
    ``init`` is a distribution over the first ``j`` states (event ``(j, M)``), ``transition`` a
    conditional (module docstring).  ``log_prob`` evaluates all ``T - j`` transitions in one
    batched call; ``sample`` rolls the chain forward.

    :param init: distribution with event shape ``(j, M)``.
    :param transition: conditional.
    :param covariates: ``(..., T, V)``.
    :param int length: ``T``.
    """

    arg_constraints = {}
    support = constraints.independent(constraints.real, 2)

    def __init__(self, init, transition, covariates, length, batch_shape=None, validate_args=None):
        self.init, self.transition, self.covariates, self.length = init, transition, covariates, length
        self.order, latent_dim = init.event_shape
        if length < self.order:
            raise ValueError(f"length {length} is shorter than the Markov order {self.order}")
        if batch_shape is None:
            batch_shape = _broadcast_batch(init.batch_shape, covariates.shape[:-2])
        super().__init__(torch.Size(batch_shape), torch.Size((length, latent_dim)), validate_args=validate_args)

    @property
    def has_rsample(self):
        return self.init.has_rsample

    def expand(self, batch_shape, _instance=None):
        return StateSpacePrior(
            self.init, self.transition, self.covariates, self.length, batch_shape=torch.Size(batch_shape)
        )

    def log_prob(self, value):
        j = self.order
        return self.init.log_prob(value[..., :j, :]) + window_log_prob(self.transition, value, self.covariates, j)

    def rsample(self, sample_shape=torch.Size()):
        shape = torch.Size(sample_shape) + self.batch_shape
        first = self.init.expand(shape) if self.init.batch_shape != shape else self.init
        z_init = first.rsample() if first.has_rsample else first.sample()
        rest = rollout(self.transition, z_init, self.covariates, self.length - self.order)
        return torch.cat([z_init, rest], dim=-2)

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            return self.rsample(sample_shape)
