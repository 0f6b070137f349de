r"""The structured smoothing posterior ``q(z_{1:T} | x_{1:T}, u_{1:T})`` as one Pyro distribution.

``q(z_{1:T}) = \prod_t q(z_t | z_{t-j:t-1}, h_t, u_{t-j:t})`` (Eq. 3 of the DDSSM paper; Krishnan
et al., 2017), where ``h_t`` summarises ``x_{t:T}``.  Sampling is sequential (each step needs the
previous ``j`` samples); the log-density of a given trajectory is evaluated for all ``t`` in one
batched (teacher-forced) call.  The log-density of the most recent sample is cached, so Pyro's
``log_prob`` after ``rsample`` costs nothing.
"""

from __future__ import annotations

import torch
from pyro.distributions import TorchDistribution, constraints

from .windows import flatten_batch, history_mask, left_pad, sliding_windows


class SmoothingPosterior(TorchDistribution):
    """Autoregressive Gaussian smoothing posterior over a latent trajectory.

    :param encoder: a module with ``step(history, pad_mask, summary, covariates) -> (loc, scale)``
        taking ``(B, j, M)``, ``(B, j)``, ``(B, C)``, ``(B, j+1, V)`` and returning ``(B, M)`` each
        (e.g. :class:`~pyrossm.models.encoder.SmoothingEncoder`), and optionally
        ``stepper(summary, covariates, pad_masks, batch_shape)``, the same per-step function
        with work shared across steps (see
        :meth:`~pyrossm.models.encoder.SmoothingEncoder.stepper`), used for sampling when it
        returns one; and optionally ``scan(summary, covariates, pad_masks, batch_shape, noise)``,
        the whole sampling loop at once (see :meth:`~pyrossm.models.encoder.SmoothingEncoder.scan`),
        used in its place when it returns one.
    :param summary: ``(..., T, C)`` future summaries ``h_{1:T}``.
    :param covariates: ``(..., T, V)``.
    :param int order: Markov order ``j``.
    :param int latent_dim: ``M``.
    """

    arg_constraints = {}
    support = constraints.independent(constraints.real, 2)
    has_rsample = True

    def __init__(self, encoder, summary, covariates, order, latent_dim, batch_shape=None, validate_args=None):
        self.encoder, self.summary, self.covariates = encoder, summary, covariates
        self.order, self.latent_dim = order, latent_dim
        self._cache = None
        if batch_shape is None:
            batch_shape = torch.broadcast_shapes(summary.shape[:-2], covariates.shape[:-2])
        super().__init__(
            torch.Size(batch_shape), torch.Size((summary.shape[-2], latent_dim)), validate_args=validate_args
        )

    def expand(self, batch_shape, _instance=None):
        return SmoothingPosterior(
            self.encoder,
            self.summary,
            self.covariates,
            self.order,
            self.latent_dim,
            batch_shape=torch.Size(batch_shape),
        )

    def _covariate_windows(self):
        return sliding_windows(left_pad(self.covariates, self.order), self.order + 1)  # (..., T, j+1, V)

    @staticmethod
    def _normal_log_prob(value, loc, scale):
        var = scale**2
        return (-0.5 * (value - loc) ** 2 / var - scale.log() - 0.9189385332046727).sum(-1)

    def _stepper(self, shape, pads):
        """``(t, history (B, j, M)) -> (loc, scale)`` for the batch ``shape`` (``B`` its size):
        the encoder's own ``stepper`` where it has one (see
        :meth:`~pyrossm.models.encoder.SmoothingEncoder.stepper`), else ``step`` at ``t``."""
        cov_windows = self._covariate_windows()
        stepper = getattr(self.encoder, "stepper", None)
        step = stepper(self.summary, cov_windows, pads, shape) if stepper is not None else None
        if step is not None:
            return step
        j = self.order
        summaries, covariates = self.summary.unbind(-2), cov_windows.unbind(-3)

        def step(t, history):
            h, c = flatten_batch(summaries[t], covariates[t], batch_shape=shape, keep_dims=(1, 2))
            return self.encoder.step(history, pads[t].expand(h.shape[0], j), h, c)

        return step

    def _sample_steps(self, shape, pads, noise):
        """The trajectory sampled step by step: ``(z, loc, scale)``, each ``(B, T, M)``, from
        ``noise`` ``(B, T, M)``."""
        j, m = self.order, self.latent_dim
        step = self._stepper(shape, pads)
        history = noise.new_zeros(noise.shape[0], j, m)
        samples, locs, scales = [], [], []
        for t, noise_t in enumerate(noise.unbind(-2)):
            loc, scale = step(t, history)
            z_t = loc + scale * noise_t
            samples.append(z_t)
            locs.append(loc)
            scales.append(scale)
            history = z_t.unsqueeze(-2) if j == 1 else torch.cat([history[:, 1:, :], z_t.unsqueeze(-2)], dim=-2)
        return torch.stack(samples, dim=-2), torch.stack(locs, dim=-2), torch.stack(scales, dim=-2)

    def _draw(self, sample_shape):
        """``(value, loc, scale)`` of a draw of ``sample_shape``, each ``(B, T, M)`` (``B`` the
        flattened ``sample_shape + batch_shape``)."""
        shape = torch.Size(sample_shape) + self.batch_shape
        m = self.latent_dim
        length = self.summary.shape[-2]
        summary = self.summary
        pads = history_mask(length, self.order, device=summary.device)
        noise = torch.randn(shape + (length, m), dtype=summary.dtype, device=summary.device)
        noise = noise.reshape(shape.numel(), length, m)
        # the whole loop as one autograd function where the encoder offers it, else step by step
        scan = getattr(self.encoder, "scan", None)
        fused = None if scan is None else scan(summary, self._covariate_windows(), pads, shape, noise.transpose(0, 1))
        if fused is not None:
            return tuple(x.transpose(0, 1) for x in fused)  # (B, T, M) each
        return self._sample_steps(shape, pads, noise)

    def rsample(self, sample_shape=torch.Size()):
        shape = torch.Size(sample_shape) + self.batch_shape
        value, loc, scale = self._draw(sample_shape)
        # log q of every step at once (the steps' densities only need their loc and scale)
        log_q = self._normal_log_prob(value, loc, scale).sum(-1)
        value, log_q = value.reshape(shape + value.shape[-2:]), log_q.reshape(shape)
        self._cache = (value, log_q)
        return value

    def sample(self, sample_shape=torch.Size()):
        """A draw without its density (``log_prob`` computes it when asked): what forecasts use."""
        shape = torch.Size(sample_shape) + self.batch_shape
        with torch.no_grad():
            value = self._draw(sample_shape)[0]
        return value.reshape(shape + value.shape[-2:])

    def log_prob(self, value):
        if self._cache is not None and value is self._cache[0]:
            return self._cache[1]
        j = self.order
        length = value.shape[-2]
        history = sliding_windows(left_pad(value, j)[..., :-1, :], j)  # (..., T, j, M)
        cov_windows = self._covariate_windows()
        batch = torch.broadcast_shapes(history.shape[:-3], self.summary.shape[:-2], cov_windows.shape[:-3])
        hist, summ, cov, target = flatten_batch(
            history, self.summary, cov_windows, value, batch_shape=batch + (length,), keep_dims=(2, 1, 2, 1)
        )
        pad = history_mask(length, j, device=value.device)
        pad = pad.expand(batch + pad.shape).reshape(-1, j)
        loc, scale = self.encoder.step(hist, pad, summ, cov)
        return self._normal_log_prob(target, loc, scale).reshape(batch + (length,)).sum(-1)
