"""``DiffusionPrior``: an unconditional diffusion model as a Pyro distribution over latent vectors."""

from __future__ import annotations

import torch
from pyro.distributions import TorchDistribution, constraints

from ..diffusion import ddpm_sample, denoise, diffusion_bound


class DiffusionPrior(TorchDistribution):
    r"""``p_prior(z)`` of a latent diffusion model (Li & van der Schaar, 2024, Eq. 3-6): a
    diffusion model over vectors ``z`` of width ``d``, the intermediate ``z^{1:L}`` marginalised.

    ``log_prob(z)`` is the negative of the Monte-Carlo diffusion bound
    (:func:`~pyrossm.diffusion.diffusion_bound`, one draw of ``(k, eps)`` per vector, the
    schedule constant included): a stochastic lower bound on ``log p(z)``; maximising it is the
    diffusion loss ``L_DM``.  ``sample()`` runs the ancestral reverse process; with
    ``max_stop > 0`` each draw stops at a step ``i ~ U{0, ..., max_stop}`` and returns ``z^i``
    (the collapse-simulation framework samples its latent from the early steps, Algorithm 2).

    :param network: ``F(x_in (B, d), c_noise (B,), None) -> (B, d)``, e.g.
        :class:`~pyrossm.nn.VectorDenoiser`.
    :param schedule: :class:`~pyrossm.diffusion.NoiseSchedule` (``L`` steps).
    :param int dim: ``d``.  :param batch_shape: the distribution's batch shape.
    :param int max_stop: ``N`` of Algorithm 2 (0: plain sampling of ``z^0``).
    """

    arg_constraints = {}
    support = constraints.independent(constraints.real, 1)
    has_rsample = False

    def __init__(self, network, schedule, dim, batch_shape=torch.Size(), max_stop=0, validate_args=None):
        self.network, self.schedule, self.dim, self.max_stop = network, schedule, int(dim), int(max_stop)
        super().__init__(torch.Size(batch_shape), torch.Size([self.dim]), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return DiffusionPrior(self.network, self.schedule, self.dim, batch_shape, self.max_stop)

    def log_prob(self, value):
        flat = value.reshape(-1, self.dim)
        return -diffusion_bound(self.network, self.schedule, flat, None).reshape(value.shape[:-1])

    def denoiser(self, z_hat, k_index):
        """The preconditioned denoiser ``D(z^, sigma_k)`` at 0-based step ``k_index``."""
        flat = z_hat.reshape(-1, self.dim)
        sigma = self.schedule.sigmas[k_index].expand(flat.shape[0])
        return denoise(self.network, flat, sigma, None)[0].reshape(z_hat.shape)

    @torch.no_grad()
    def sample(self, sample_shape=torch.Size(), generator=None):
        shape = self._extended_shape(sample_shape)
        device = self.schedule.betas.device
        stop = None
        if self.max_stop > 0:
            stop = torch.randint(0, self.max_stop + 1, shape[:-1], device=device, generator=generator)
        return ddpm_sample(self.denoiser, self.schedule, shape, device=device, generator=generator, stop_index=stop)
