"""A composable deep state-space model as a Pyro model/guide pair (DDSSM paper, Eq. 1-5)."""

from __future__ import annotations

import math

import pyro
import torch
from pyro import poutine

from ..distributions import SmoothingPosterior, StateSpacePrior, rollout
from ..distributions.windows import left_pad, padding_mask, sliding_windows
from ..inference.objectives import AnnealedELBO
from .base import Forecasting, GenerativeModel, Smoothing, Stage
from .init import StandardNormalInit


def check_order_and_latent_dim(order, latent_dim) -> None:
    """Raises ``ValueError`` unless ``order`` (``j``) and ``latent_dim`` (``M``) are positive ints."""
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"order must be a positive int, got {order!r}")
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")


class StateSpaceModel(GenerativeModel, Forecasting, Smoothing):
    r"""A deep state-space model of Markov order ``j`` built from four parts.

    Generative process (Eq. 1 of the DDSSM paper), for each series::

        z_aux           ~ N(0, I)                                  (only with a VHP init)
        z_{1:j}         ~ init.prior(u_{1:j}, z_aux)
        z_t | z_{t-j:t-1} ~ transition(z_{t-j:t-1}, u_{t-j:t})         t = j+1..T
        x_t | z_{t-j+1:t} ~ emission(z_{t-j+1:t}, u_{t-j+1:t})         t = 1..T  (observed entries only)

    Guide (Eq. 3): ``z_{1:T} ~ q(z_t | z_{t-j:t-1}, h_t, u)`` from the :class:`SmoothingEncoder`,
    then ``z_aux ~ q_Phi(z_aux | z_{1:j})`` with a VHP.  The latent trajectory is one sample site
    ``"z"`` (event ``(T, M)``) whose prior density is evaluated for all ``t`` in one batched call;
    only the guide samples sequentially.  The annealing weight ``lambda`` (Appendix I.2) scales
    the rate sites ``"z"`` and ``"z_aux"`` in both programs via ``poutine.scale``; the
    reconstruction site ``"x"`` is masked where observations are missing.

    :param transition: conditional ``(history (B,j,M), covariates (B,j+1,V)) -> Distribution``
        with batch ``(B,)`` and event ``(M,)``.
    :param emission: ``(window (...,j,M), covariates (...,j,V), pad_mask (...,j)) -> Distribution``
        with batch ``(..., D)``, elementwise (see :class:`~pyrossm.models.emission.Emission`).
    :param encoder: e.g. :class:`~pyrossm.models.encoder.SmoothingEncoder`.
    :param init: :class:`StandardNormalInit` (default) or :class:`VHPInit`.
    :param int latent_dim: ``M``.  :param int order: ``j``.
    :param int obs_dim: ``D``.  :param int covariate_dim: ``V``.

    A :class:`~pyrossm.models.base.GenerativeModel` with both capabilities (forecasting and
    smoothing), trained in one stage ``"svi"`` by the :class:`~pyrossm.inference.AnnealedELBO`.
    """

    min_length_name = "order"

    def __init__(self, transition, emission, encoder, init=None, *, latent_dim, order=1, obs_dim, covariate_dim=0):
        super().__init__()
        check_order_and_latent_dim(order, latent_dim)
        self.transition, self.emission, self.encoder = transition, emission, encoder
        self.init = init if init is not None else StandardNormalInit(latent_dim, order)
        self.latent_dim, self.order = latent_dim, order
        self.obs_dim, self.covariate_dim = obs_dim, covariate_dim
        self.config = None  # set by presets: JSON-able constructor arguments

    @property
    def min_length(self) -> int:
        """Every series needs at least its first ``j`` states."""
        return self.order

    def structure(self) -> dict:
        return {name: int(getattr(self, name)) for name in ("latent_dim", "order", "obs_dim", "covariate_dim")}

    def training_stages(self, settings):
        """One stage, ``"svi"``: the annealed ELBO of :meth:`model` and :meth:`guide`."""
        return [Stage("svi", AnnealedELBO(self.model, self.guide, settings.annealing, settings.num_particles))]

    # ------------------------------------------------------------------ building blocks
    def parameter_groups(self):
        """Named parameter groups for per-group learning rates (Appendix I.1)."""
        return {
            "encoder": list(self.encoder.parameters()),
            "emission": list(self.emission.parameters()),
            "transition": list(self.transition.parameters()),
            "init": list(self.init.parameters()),
        }

    def latent_prior(self, covariates, length, aux=None):
        """The prior :class:`StateSpacePrior` over ``z_{1:length}``; ``covariates`` ``(..., length, V)``."""
        init = self.init.prior(covariates[..., : self.order, :], aux)
        return StateSpacePrior(init, self.transition, covariates, length)

    def latent_posterior(self, x, mask, covariates):
        """The guide's :class:`SmoothingPosterior` for data ``x`` ``(N, T, D)`` (zero-filled)."""
        summary = self.encoder.summarize(x, mask, covariates)
        return SmoothingPosterior(self.encoder, summary, covariates, self.order, self.latent_dim)

    def emission_dist(self, z, covariates):
        """Emission distribution for every step of a trajectory, in one batched call.

        :param z: ``(..., T, M)``.  :param covariates: ``(..., T, V)``.
        :returns: distribution with batch ``(..., T, D)``.
        """
        j, length = self.order, z.shape[-2]
        windows = sliding_windows(left_pad(z, j - 1), j)  # (..., T, j, M)
        cov = sliding_windows(left_pad(covariates, j - 1), j)  # (..., T, j, V)
        pad = padding_mask(length, j, device=z.device)  # (T, j)
        return self.emission(windows, cov, pad)

    # ------------------------------------------------------------------ Pyro programs
    def model(self, x, mask, covariates, annealing=1.0):
        """The generative program.

        :param x: ``(N, T, D)`` observations, missing entries zero-filled.
        :param mask: ``(N, T, D)`` bool, True where observed.
        :param covariates: ``(N, T, V)``.
        :param float annealing: weight ``lambda`` of the rate terms.
        """
        n, length, _ = x.shape
        with pyro.plate("series", n, dim=-1):
            with poutine.scale(scale=annealing):
                aux = None
                if self.init.auxiliary:
                    aux = pyro.sample("z_aux", self.init.aux_prior(covariates[..., : self.order, :]))
                z = pyro.sample("z", self.latent_prior(covariates, length, aux))
            pyro.sample("x", self.emission_dist(z, covariates).mask(mask).to_event(2), obs=x)
        return z

    def guide(self, x, mask, covariates, annealing=1.0):
        """The structured smoothing guide (same signature as :meth:`model`)."""
        n = x.shape[0]
        posterior = self.latent_posterior(x, mask, covariates)
        with pyro.plate("series", n, dim=-1), poutine.scale(scale=annealing):
            z = pyro.sample("z", posterior)
            if self.init.auxiliary:
                pyro.sample("z_aux", self.init.aux_posterior(z[..., : self.order, :], covariates[..., : self.order, :]))
        return z

    # ------------------------------------------------------------------ prediction
    @torch.no_grad()
    def sample_posterior(self, x, mask, covariates, num_samples):
        """``num_samples`` latent trajectories from the guide: ``(S, N, T, M)``."""
        posterior = self.latent_posterior(x, mask, covariates)
        return posterior.expand(torch.Size((num_samples,)) + posterior.batch_shape).sample()

    @torch.no_grad()
    def replicate(self, z, covariates):
        """Replicated data ``x ~ p(x | z)``: ``(S, N, T, D)`` from ``z`` ``(S, N, T, M)``."""
        return self.emission_dist(z, covariates).sample()

    @torch.no_grad()
    def predict(self, x, mask, covariates, future_covariates, horizon, num_samples):
        """``num_samples`` draws of the ``horizon`` steps after ``x``: the latent at the end of the
        context from the guide, then :meth:`forecast`.  :returns: ``(S, N, horizon, D)``."""
        z = self.sample_posterior(x, mask, covariates, num_samples)
        return self.forecast(z, covariates, future_covariates, horizon)[1]

    @torch.no_grad()
    def forecast(self, z, covariates, future_covariates, horizon):
        """Rolls the transition and emission forward from the end of given latent trajectories.

        :param z: ``(S, N, T, M)`` context latents (e.g. from :meth:`sample_posterior`).
        :param covariates: ``(N, T, V)`` context covariates.
        :param future_covariates: ``(N, horizon, V)``.
        :returns: ``(z_future, x_future)`` of shapes ``(S, N, horizon, M)``, ``(S, N, horizon, D)``.
        """
        j = self.order
        cov = torch.cat([covariates, future_covariates], dim=-2)
        z_future = rollout(
            self.transition, z[..., -j:, :], cov[..., -(j + horizon) :, :], horizon, reparameterized=False
        )
        window = torch.cat([z[..., z.shape[-2] - (j - 1) :, :], z_future], dim=-2)
        x_future = self.emission_dist(window, cov[..., -window.shape[-2] :, :]).sample()
        return z_future, x_future[..., j - 1 :, :]

    @torch.no_grad()
    def one_step_log_score(self, x, mask, covariates, num_samples):
        r"""Monte-Carlo estimate of the 1-step predictive log-density of each series' last step.

        ``log p(x_T | x_{1:T-1}) ~ log (1/S) sum_s p(x_T | z^s_{T-j+1:T})``: ``z^s_{1:T-1}`` are
        draws from the guide given the first ``T - 1`` steps only (as :meth:`forecast` conditions
        on a context), ``z^s_T`` one transition step from them.  Only the observed entries of
        ``x_T`` count, so a series whose last step is wholly missing scores exactly 0.  The
        estimate is biased low (Jensen) by about ``Var / (2 S)`` of the relative likelihood and
        is the proper logarithmic scoring rule of the model's forecast: it rewards a sharp
        predictive only where the data fall, unlike the ELBO, which also pays for the smoothing
        posterior of every step.

        :param x: ``(N, T, D)`` zero-filled observations, ``T > order``.
        :param mask: ``(N, T, D)`` bool.  :param covariates: ``(N, T, V)``.
        :param int num_samples: draws ``S``.
        :returns: ``(N,)`` log-densities (in the units of ``x``).
        """
        j, length = self.order, x.shape[-2]
        if length <= j:
            raise ValueError(
                f"the 1-step log score needs series longer than the Markov order "
                f"{j} (a context of {j} steps and a step to score), got {length} steps"
            )
        z = self.sample_posterior(x[:, :-1], mask[:, :-1], covariates[:, :-1], num_samples)  # (S,N,T-1,M)
        z_next = rollout(
            self.transition, z[..., -j:, :], covariates[..., -(j + 1) :, :], 1, reparameterized=False
        )  # (S,N,1,M)
        window = torch.cat([z[..., z.shape[-2] - (j - 1) :, :], z_next], dim=-2)  # (S,N,j,M)
        emission = self.emission_dist(window, covariates[..., -j:, :])  # (S,N,j,D)
        log_p = emission.log_prob(x[..., -j:, :])[..., -1, :]  # (S,N,D)
        log_p = torch.where(mask[:, -1, :], log_p, torch.zeros_like(log_p)).sum(-1)  # (S,N)
        return torch.logsumexp(log_p, dim=0) - math.log(num_samples)

    @torch.no_grad()
    def generate(self, num_series, length, covariates=None):
        """Unconditional samples ``x`` ``(..., N, T, D)`` (see :meth:`sample_prior`)."""
        return self.sample_prior(num_series, length, covariates)[1]

    @torch.no_grad()
    def sample_prior(self, num_series, length, covariates=None):
        """Unconditional samples: ``(z, x)`` of shapes ``(..., N, T, M)``, ``(..., N, T, D)``
        (leading dims from ``covariates`` ``(..., N, T, V)``)."""
        if covariates is None:
            covariates = torch.zeros(num_series, length, self.covariate_dim, device=next(self.parameters()).device)
        aux = None
        if self.init.auxiliary:
            aux = self.init.aux_prior(covariates[..., : self.order, :]).sample()
        z = self.latent_prior(covariates, length, aux).sample()
        return z, self.emission_dist(z, covariates).sample()
