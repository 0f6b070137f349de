"""``DiffusionTransition``: a transition density ``p(z_t | c_t)`` that is a conditional diffusion model."""

from __future__ import annotations

import torch
from pyro.distributions import TorchDistribution, constraints

from ..diffusion import ddim_sample, ddpm_sample, diffusion_bound, heun_sample, level_denoiser
from ..diffusion.samplers import _check_steps
from .windows import flatten_batch

#: the reverse-process samplers of :class:`DiffusionTransition` (see :mod:`pyrossm.diffusion.samplers`)
SAMPLERS = ("ddpm", "ddim", "heun")


def check_diffusion_arguments(schedule, num_noise_draws, sampler, num_sampling_steps):
    """Raises ``ValueError`` for a bad ``num_noise_draws``, ``sampler`` or ``num_sampling_steps``."""
    if isinstance(num_noise_draws, bool) or not isinstance(num_noise_draws, int) or num_noise_draws < 1:
        raise ValueError(f"num_noise_draws must be a positive int, got {num_noise_draws!r}")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    _check_steps(schedule, num_sampling_steps)


class DiffusionTransition(TorchDistribution):
    r"""The DDSSM transition density (Eq. 2): ``z_t^0`` from a reverse diffusion conditioned on
    ``c_t = (z_{t-j:t-1}, u_{t-j:t})``, the intermediate ``z_t^{1:K}`` marginalised.

    ``log_prob(z)`` is **not** the exact log-density (which is intractable): it returns
    ``-(L_forward(z) + K E_k[w~_k ||F(c_in z^k, c_noise, c) - y(z, k)||^2] + C)``, the negative of
    the bound of Eq. 29 / 52 estimated with ``num_noise_draws`` (``S_k``) draws of ``(k, eps)``
    plus the schedule constant ``C`` of Eq. 33 -- a *stochastic lower bound* on
    ``log p(z | c)`` (exactly Eq. 29's negative when ``include_constant=False``).  Used as the
    ``"z"`` site's transition, Pyro's ``Trace_ELBO`` of the model/guide pair is the paper's ELBO
    (Eq. 4-5, 46).  ``sample()`` runs the reverse diffusion: ``"ddpm"`` ancestral over all ``K``
    steps (or, with ``num_sampling_steps``, over that many evenly spaced ones, each drawing from
    the forward posterior: DDIM's ``eta = 1``), or deterministically on ``num_sampling_steps``
    by ``"ddim"`` (Euler steps of the probability-flow ODE) or ``"heun"`` (second-order steps,
    about twice the calls per step, far more accurate per call); sampling is not
    reparameterised (``has_rsample = False``).

    With a ``shift`` ``m(c_t)`` the diffusion runs on ``delta = z_t - m(c_t)``, still conditioned
    on all of ``c_t``: ``log_prob(z)`` is the bound for ``delta`` and ``sample()`` returns
    ``m(c_t) + delta``.  The shift has unit Jacobian, so this is the same transition family and
    the same bound on ``log p(z | c)``; what changes is what the denoiser must output.  It no
    longer has to carry ``z_{t-1}`` through to ``z_t``, which is hard to do to high relative
    precision over a wide range of states.  ``residual=True`` is the shift by the last history
    state, ``m(c_t) = z_{t-1}``; :class:`~pyrossm.models.transition.DiffusionDynamics` also offers
    a learned linear shift.  (pyrossm's option, not the paper's; see the DDSSM preset.)

    :param network: denoiser ``F(x_in (B, M), c_noise (B,), (history, covariates)) -> (B, M)``.
    :param schedule: :class:`~pyrossm.diffusion.NoiseSchedule`.
    :param history: ``(..., j, M)``.  :param covariates: ``(..., j+1, V)``.
    :param int num_noise_draws: ``S_k``.
    :param str sampler: ``"ddpm"``, ``"ddim"`` or ``"heun"``.
    :param num_sampling_steps: the reverse steps used (``None``: all ``K``).
    :param bool residual: diffuse the increment from ``z_{t-1}`` instead of ``z_t``.
    :param shift: ``m(history (B, j, M), covariates (B, j+1, V)) -> (B, M)``, a callable (e.g. an
        ``nn.Module``) on the flattened context; not together with ``residual=True``.
    :param levels: ``None`` (the bound's noise levels drawn uniformly) or a
        :class:`~pyrossm.diffusion.LossAwareLevels` (drawn by importance; the same expectation).
    """

    arg_constraints = {}
    support = constraints.independent(constraints.real, 1)
    has_rsample = False

    def __init__(
        self,
        network,
        schedule,
        history,
        covariates,
        num_noise_draws=1,
        sampler="ddpm",
        num_sampling_steps=None,
        include_constant=True,
        batch_shape=None,
        validate_args=None,
        residual=False,
        shift=None,
        levels=None,
    ):
        check_diffusion_arguments(schedule, num_noise_draws, sampler, num_sampling_steps)
        if residual and shift is not None:
            raise ValueError("give either residual=True or a shift, not both")
        if shift is not None and not callable(shift):
            raise TypeError(f"shift must be a callable (history, covariates) -> (B, M), got {type(shift).__name__}")
        self.network, self.schedule = network, schedule
        self.history, self.covariates = history, covariates
        self.num_noise_draws, self.sampler = num_noise_draws, sampler
        self.num_sampling_steps, self.include_constant = num_sampling_steps, include_constant
        self.residual, self.shift, self.levels = bool(residual), shift, levels
        if batch_shape is None:
            batch_shape = torch.broadcast_shapes(history.shape[:-2], covariates.shape[:-2])
        super().__init__(torch.Size(batch_shape), torch.Size(history.shape[-1:]), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return DiffusionTransition(
            self.network,
            self.schedule,
            self.history,
            self.covariates,
            self.num_noise_draws,
            self.sampler,
            self.num_sampling_steps,
            self.include_constant,
            batch_shape=torch.Size(batch_shape),
            residual=self.residual,
            shift=self.shift,
            levels=self.levels,
        )

    def _offset(self, history, covariates):
        """``m(c_t)`` for the flattened context, ``(B, M)``; ``None`` without a shift."""
        if self.residual:
            return history[:, -1, :]
        if self.shift is not None:
            return self.shift(history, covariates)
        return None

    def offset(self):
        """The mean ``m(c_t)`` that the diffusion's departure is taken from, ``batch_shape +
        event_shape``: the last latent with ``residual=True``, ``shift(history, covariates)``
        with a shift; ``None`` when the diffusion models ``z_t`` itself."""
        history, covariates = self._flat_context(self.batch_shape)
        offset = self._offset(history, covariates)
        return None if offset is None else offset.reshape(self.batch_shape + self.event_shape)

    def _flat_context(self, batch):
        return flatten_batch(self.history, self.covariates, batch_shape=batch, keep_dims=(2, 2))

    def log_prob(self, value):
        batch = torch.broadcast_shapes(self.batch_shape, value.shape[:-1])
        history, covariates = self._flat_context(batch)
        (z,) = flatten_batch(value, batch_shape=batch, keep_dims=(1,))
        offset = self._offset(history, covariates)
        if offset is not None:
            z = z - offset
        bound = diffusion_bound(
            self.network,
            self.schedule,
            z,
            (history, covariates),
            self.num_noise_draws,
            self.include_constant,
            levels=self.levels,
        )
        return -bound.reshape(batch)

    def sample(self, sample_shape=torch.Size()):
        shape = torch.Size(sample_shape) + self.batch_shape
        history, covariates = self._flat_context(shape)
        denoiser = level_denoiser(self.network, self.schedule.sigmas, (history, covariates))

        flat_shape = (history.shape[0], self.event_shape[0])
        with torch.no_grad():
            if self.sampler == "ddpm" and self.num_sampling_steps is None:
                z = ddpm_sample(denoiser, self.schedule, flat_shape, device=history.device)
            else:  # Heun; DDIM, or DDPM on the shortened chain (DDIM's eta = 1)
                sample = heun_sample if self.sampler == "heun" else ddim_sample
                options = {} if self.sampler == "heun" else {"eta": 1.0 if self.sampler == "ddpm" else 0.0}
                z = sample(
                    denoiser,
                    self.schedule,
                    flat_shape,
                    device=history.device,
                    num_sampling_steps=self.num_sampling_steps,
                    **options,
                )
            offset = self._offset(history, covariates)
        if offset is not None:
            z = z + offset
        return z.reshape(shape + self.event_shape)
