r"""Time-series latent diffusion and the collapse-simulation framework (Li & van der Schaar, 2024,
"A Study of Posterior Stability for Time-Series Latent Diffusion").

Both families compose the same parts: a sequence encoder ``X -> v``
(:class:`~pyrossm.nn.sequence.SequenceEncoder`), an autoregressive decoder ``p_gen(X | z)``
(:class:`~pyrossm.nn.sequence.AutoregressiveDecoder`, ``z`` entering as ``x_0``) and a
diffusion prior over ``z`` (:class:`~pyrossm.distributions.latent_prior.DiffusionPrior` on the
one diffusion core).  They differ in how the autoencoder is trained:

- :class:`LatentDiffusion` (Sec. 2): a VAE, ``z ~ q(z | X) = N(mu(v), diag sigma(v)^2)`` (Eq. 1)
  with the KL to ``N(0, I)`` (Eq. 2), optionally with a posterior-collapse remedy: KL annealing,
  variable masking (decoder input dropout) or skip connections of ``z`` into every step;
- :class:`CollapseSimulation` (Sec. 4.2, Algorithm 1-2): no KL; ``z = z^j`` from an early
  forward-diffusion step ``j ~ U{0..N}`` of ``z^0 = v`` scores ``X`` with weight
  ``abar_{gamma j}`` (``L_VI``, Eq. 14), and a late step ``k ~ U{M..L}`` -- a simulated collapsed
  posterior -- is penalised for explaining ``X`` with weight ``1 - abar_{ceil(k / eta)}``
  (``L_CS``, Eq. 15).

Then (stage ``"prior"``) the diffusion prior is fitted to the encoder's latents (``L_DM``, the
encoder and decoder fixed).  Sampling draws ``z`` from the prior (for the framework: the reverse
process stopped at ``i ~ U{0..N}``, Algorithm 2) and runs the decoder.
"""

from __future__ import annotations

from contextlib import contextmanager

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn

from ..diffusion import NoiseSchedule
from ..distributions.latent_prior import DiffusionPrior
from ..inference.config import ObjectiveSettings
from ..inference.objectives import AnnealedELBO, ObservedSites
from ..inference.schedules import AnnealingSchedule
from ..nn.sequence import AutoregressiveDecoder, SequenceEncoder, check_backbone
from ..nn.vector_denoiser import VectorDenoiser
from ..validation import check_nonnegative_int, check_positive_int
from .base import GenerativeModel, Stage, refuse_covariates

REMEDIES = (None, "kl_annealing", "variable_masking", "skip_connections")
#: the decoder input dropout of the variable-masking remedy
VARIABLE_MASKING_RATE = 0.25


@contextmanager
def evaluating(*modules):
    """Puts ``modules`` in eval mode (no dropout) inside the block, restoring their modes after."""
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


class SequenceLatentModel(GenerativeModel):
    """The parts and behaviour both families share (see the module docstring).

    :param int obs_dim: ``D``.  :param int covariate_dim: must be 0 (no covariates).
    :param str backbone: ``"lstm"`` or ``"transformer"`` (encoder and decoder).
    :param int hidden_dim: encoder/decoder width (Appendix G: 128).
    :param int latent_dim: width of ``z`` (128).  :param int num_layers: encoder/decoder layers.
    :param float dropout: dropout rate (0.1).  :param int diffusion_steps: ``L`` (1000).
    :param prior_widths: widths of the prior's denoiser (the U-net's ``{128, 64, 32}``).
    """

    def __init__(
        self,
        obs_dim,
        covariate_dim=0,
        backbone="lstm",
        hidden_dim=128,
        latent_dim=128,
        num_layers=1,
        dropout=0.1,
        diffusion_steps=1000,
        prior_widths=(128, 64, 32),
        skip=False,
        input_dropout=0.0,
        encoder_out=None,
    ):
        super().__init__()
        refuse_covariates(type(self).__name__, covariate_dim)
        check_backbone(backbone)
        for name, value in (("hidden_dim", hidden_dim), ("latent_dim", latent_dim), ("num_layers", num_layers)):
            check_positive_int(name, value)
        check_positive_int("diffusion_steps", diffusion_steps)
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.obs_dim, self.covariate_dim = obs_dim, 0
        self.backbone, self.hidden_dim, self.latent_dim = backbone, hidden_dim, latent_dim
        self.encoder = SequenceEncoder(obs_dim, hidden_dim, encoder_out or latent_dim, backbone, num_layers, dropout)
        self.decoder = AutoregressiveDecoder(
            obs_dim, latent_dim, hidden_dim, backbone, skip, num_layers, dropout, input_dropout
        )
        self.schedule = NoiseSchedule(diffusion_steps, "linear")
        self.prior_network = VectorDenoiser(latent_dim, tuple(prior_widths))
        #: the largest reverse step at which sampling may stop (Algorithm 2's N; 0 = plain sampling)
        self.max_stop = 0
        #: the options both families share; each family adds its own
        self.config = dict(
            obs_dim=obs_dim,
            covariate_dim=0,
            backbone=backbone,
            hidden_dim=hidden_dim,
            latent_dim=latent_dim,
            num_layers=num_layers,
            dropout=dropout,
            diffusion_steps=diffusion_steps,
            prior_widths=list(prior_widths),
        )

    def structure(self):
        return {**super().structure(), "latent_dim": self.latent_dim, "hidden_dim": self.hidden_dim}

    def parameter_groups(self):
        return {
            "encoder": [
                p for name, p in self.named_parameters() if not name.startswith(("decoder.", "prior_network."))
            ],
            "decoder": list(self.decoder.parameters()),
            "prior": list(self.prior_network.parameters()),
        }

    # ------------------------------------------------------------------ parts
    def prior(self, batch_shape=()):
        """The diffusion prior ``p_prior(z)`` with the given batch shape."""
        return DiffusionPrior(self.prior_network, self.schedule, self.latent_dim, batch_shape, self.max_stop)

    def decode(self, z, x):
        """``(loc, scale)`` of ``p_gen(x_t | z, x_{1:t-1})`` for every step, each ``z.shape[:-1] + (T, D)``,
        teacher-forced on ``x`` ``(N, T, D)`` (zero-filled); ``z`` is ``(..., N, M)``."""
        batch = z.shape[:-1]
        xs = x.expand(batch + x.shape[-2:]).reshape((-1,) + x.shape[-2:])
        loc, scale = self.decoder(z.reshape(-1, self.latent_dim), xs)
        shape = batch + x.shape[-2:]
        return loc.reshape(shape), scale.reshape(shape)

    @staticmethod
    def gaussian(loc, scale, mask):
        """The masked diagonal Gaussian over ``(T, D)`` events."""
        return dist.Normal(loc, scale).mask(mask).to_event(2)

    def likelihood(self, z, x, mask):
        """``p_gen(X | z)`` teacher-forced on ``x``: batch shape ``z.shape[:-1]``, event ``(T, D)``.

        :param z: ``(..., N, M)``.  :param x: ``(N, T, D)`` zero-filled.  :param mask: ``(N, T, D)``.
        """
        return self.gaussian(*self.decode(z, x), mask)

    def latent_target(self, x, mask):
        """The latent the prior is fitted to, ``(N, M)`` (no gradient)."""
        raise NotImplementedError

    def prior_model(self, x, mask, covariates):
        """Stage ``"prior"``: the encoder's latents observed under the diffusion prior (``L_DM``)."""
        with torch.no_grad(), evaluating(self.encoder):
            z0 = self.latent_target(x, mask)
        with pyro.plate("series", x.shape[0], dim=-1):
            pyro.sample("latent", self.prior((x.shape[0],)), obs=z0)

    def autoencoder_stage(self, settings) -> Stage:
        raise NotImplementedError

    def training_stages(self, settings):
        return [self.autoencoder_stage(settings), Stage("prior", ObservedSites(self.prior_model), ("prior",))]

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def generate(self, num_series, length, covariates=None):
        draws = covariates.shape[0] if covariates is not None and covariates.dim() == 4 else 1
        with evaluating(self):
            z = self.prior().sample((draws * num_series,))
            x = self.decoder.sample(z, length)
        return x.reshape(draws, num_series, length, self.obs_dim)

    # ------------------------------------------------------------------ dependency-measure protocol
    def representation(self, z, x):
        """The decoder protocol of :func:`~pyrossm.evaluation.dependency_measures`: ``h``
        ``(B, T, H)`` with ``h[:, t-1] = h_t`` a function of ``z`` ``(B, M)`` and ``x[:, :t-1]``."""
        return self.decoder.representation(z, x)

    @torch.no_grad()
    def dependency_inputs(self, num_samples, length, x=None, mask=None):
        """``(z, x)`` to measure dependencies at: ``num_samples`` generated pairs (``z`` from the
        prior, ``x ~ p_gen(X | z)`` of ``length`` steps) or, given data ``x`` ``(N, T, D)``
        (zero-filled) and ``mask``, the encoder's latent of each series and the series."""
        with evaluating(self):
            if x is None:
                z = self.prior().sample((num_samples,))
                return z, self.decoder.sample(z, length)
            return self.latent_target(x, mask), x * mask


class LatentDiffusion(SequenceLatentModel):
    r"""Time-series latent diffusion (Li & van der Schaar, 2024, Sec. 2): a sequence VAE, then a
    diffusion prior on its latent.

    Generative process (stage ``"autoencoder"``, a Pyro model/guide pair, the ELBO of Eq. 2)::

        z ~ N(0, I_M)                               (scaled by the KL weight)
        x_t ~ N(mu(h_t), diag sigma(h_t)^2),  h_t = f_dec(z, x_{1:t-1}),  t = 1..T
        guide: z ~ N(W_mu v, diag exp(W_sigma v)^2),  v = f_enc(X)     (Eq. 1)

    then (stage ``"prior"``) ``p_prior(z)`` is fitted to draws of ``q(z | X)`` and replaces
    ``N(0, I)`` for sampling.

    :param remedy: ``None`` or a posterior-collapse remedy: ``"kl_annealing"`` (the KL weight
        rises linearly from 0.001 to 1 over the first third of the stage; Bowman et al., 2016),
        ``"variable_masking"`` (each decoder input ``x_{t-1}`` is zeroed with probability 0.25
        while training; Bowman et al.'s word dropout) or ``"skip_connections"`` (``z`` is fed to
        every decoder step; Dieng et al., 2019).  The KL weight is 1 throughout without
        ``"kl_annealing"`` (the library's default annealing of the ELBO is not applied); an
        ``annealing`` schedule set in the trainer settings overrides both.
    :param others: see :class:`SequenceLatentModel`.
    """

    def __init__(
        self,
        obs_dim,
        covariate_dim=0,
        backbone="lstm",
        remedy=None,
        hidden_dim=128,
        latent_dim=128,
        num_layers=1,
        dropout=0.1,
        diffusion_steps=1000,
        prior_widths=(128, 64, 32),
    ):
        if remedy not in REMEDIES:
            raise ValueError(f"remedy must be one of {REMEDIES}, got {remedy!r}")
        super().__init__(
            obs_dim,
            covariate_dim,
            backbone,
            hidden_dim,
            latent_dim,
            num_layers,
            dropout,
            diffusion_steps,
            prior_widths,
            skip=remedy == "skip_connections",
            input_dropout=VARIABLE_MASKING_RATE if remedy == "variable_masking" else 0.0,
            encoder_out=hidden_dim,
        )
        self.remedy = remedy
        self.to_loc = nn.Linear(hidden_dim, latent_dim)
        self.to_log_scale = nn.Linear(hidden_dim, latent_dim)
        self.config.update(remedy=remedy)

    def posterior(self, x, mask):
        """``q(z | X)``: ``(loc, scale)``, each ``(N, M)`` (Eq. 1)."""
        v = self.encoder(x, mask)
        return self.to_loc(v), self.to_log_scale(v).clamp(-9.0, 5.0).exp()

    def model(self, x, mask, covariates, annealing=1.0):
        n = x.shape[0]
        with pyro.plate("series", n, dim=-1):
            with poutine.scale(scale=annealing):
                z = pyro.sample("z", dist.Normal(x.new_zeros(self.latent_dim), 1.0).to_event(1))
            pyro.sample("x", self.likelihood(z, x, mask), obs=x)

    def guide(self, x, mask, covariates, annealing=1.0):
        loc, scale = self.posterior(x, mask)
        with pyro.plate("series", x.shape[0], dim=-1), poutine.scale(scale=annealing):
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def autoencoder_stage(self, settings):
        if settings.annealing != ObjectiveSettings().annealing:
            annealing = settings.annealing  # a schedule the user chose in the trainer settings
        elif self.remedy == "kl_annealing":
            annealing = AnnealingSchedule(kind="linear", start=1e-3, end=1.0, warmup_steps=None)
        else:
            annealing = AnnealingSchedule(kind="constant")  # the plain VAE: KL weight 1
        objective = AnnealedELBO(self.model, self.guide, annealing, settings.num_particles)
        return Stage("autoencoder", objective, ("encoder", "decoder"))

    def latent_target(self, x, mask):
        loc, scale = self.posterior(x, mask)
        return loc + scale * torch.randn_like(loc)

    @torch.no_grad()
    def dependency_inputs(self, num_samples, length, x=None, mask=None):
        if x is None:
            return super().dependency_inputs(num_samples, length)
        with evaluating(self):
            return self.posterior(x, mask)[0], x * mask


class CollapseSimulation(SequenceLatentModel):
    r"""The collapse-simulation framework (Li & van der Schaar, 2024, Sec. 4.2, Algorithm 1-2):
    diffusion as variational inference, no KL, and a penalty on a simulated collapsed posterior.

    Stage ``"autoencoder"`` is the Pyro program (objective: :class:`ObservedSites`)::

        j ~ U{0..N};  k ~ U{M..L}
        z ~ p_prior(z)                     guide: z = z^j ~ q_forw(z^j | z^0 = v)   (Eq. 13)
        z_c ~ N(0, I)  (a collapsed posterior, App. A)
                                           guide: z_c = z^k ~ q_forw(z^k | z^0 = v)
        x ~ p_gen(X | z)                   scaled by abar_{gamma j}                 (L_VI, Eq. 14)
        factor("collapse_penalty", -(1 - abar_{ceil(k / eta)}) max(log p_gen(X | z_c), log N(X; 0, I)))
                                                                                   (L_CS, Eq. 15)

    with ``v = LayerNorm(f_enc(X))`` (no affine), so that ``v`` has the forward noise's scale
    and ``z^i`` holds the fraction ``abar_i`` of its signal, as Sec. 4.2 reads Eq. 12 (an
    unnormalised encoder could outgrow the noise and make ``z^k`` informative at any ``k``).  The
    penalty's log-likelihood is floored at that of ``N(0, I)`` (the data contract standardises
    every channel): Eq. 15 alone is unbounded below, as a decoder could give a noisy ``z_c`` an
    arbitrarily small density; the floor stops rewarding it once it does worse than an
    uninformed guess.  Stage ``"prior"`` fits the diffusion prior to ``v``; sampling stops the
    reverse process at ``i ~ U{0..N}`` (Algorithm 2).

    :param int vi_steps: ``N`` (Appendix G: 50).  :param int collapse_from: ``M`` (100).
    :param int diffusion_steps: ``L`` (1000).  :param int gamma: ``gamma`` (2), ``gamma N <= L``.
    :param float eta: ``eta >= 1`` (1).  :param others: see :class:`SequenceLatentModel`.
    """

    def __init__(
        self,
        obs_dim,
        covariate_dim=0,
        backbone="lstm",
        hidden_dim=128,
        latent_dim=128,
        num_layers=1,
        dropout=0.1,
        diffusion_steps=1000,
        prior_widths=(128, 64, 32),
        vi_steps=50,
        collapse_from=100,
        gamma=2,
        eta=1.0,
    ):
        check_positive_int("diffusion_steps", diffusion_steps)
        check_nonnegative_int("vi_steps", vi_steps)
        check_positive_int("collapse_from", collapse_from)
        check_positive_int("gamma", gamma)
        if max(vi_steps, collapse_from) > diffusion_steps:
            raise ValueError(
                f"need vi_steps <= diffusion_steps and collapse_from <= diffusion_steps (N, M <= L), got "
                f"{vi_steps}, {collapse_from}, {diffusion_steps}"
            )
        if gamma * vi_steps > diffusion_steps:
            raise ValueError(f"need gamma * vi_steps <= diffusion_steps, got {gamma} * {vi_steps} > {diffusion_steps}")
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not eta >= 1:
            raise ValueError(f"eta must be a number >= 1, got {eta!r}")
        super().__init__(
            obs_dim, covariate_dim, backbone, hidden_dim, latent_dim, num_layers, dropout, diffusion_steps, prior_widths
        )
        self.vi_steps, self.collapse_from, self.gamma, self.eta = vi_steps, collapse_from, gamma, float(eta)
        self.normalise = nn.LayerNorm(latent_dim, elementwise_affine=False)
        self.max_stop = vi_steps
        self.config.update(vi_steps=vi_steps, collapse_from=collapse_from, gamma=gamma, eta=self.eta)

    def alpha_bar(self, step):
        """``abar_i`` for integer steps ``i`` (a long tensor; ``abar_0 = 1``)."""
        bars = torch.cat([self.schedule.alpha_bars.new_ones(1), self.schedule.alpha_bars])
        return bars[step.clamp(0, self.schedule.num_steps)]

    def forward_diffusion(self, v, step):
        """A draw of ``z^i ~ q_forw(z^i | z^0 = v) = N(sqrt(abar_i) v, (1 - abar_i) I)`` (Eq. 12)."""
        abar = self.alpha_bar(step).unsqueeze(-1)
        return abar.sqrt() * v + (1 - abar).sqrt() * torch.randn_like(v)

    def encode(self, x, mask):
        """``v = LayerNorm(f_enc(X))`` ``(N, M)``."""
        return self.normalise(self.encoder(x, mask))

    def _steps(self, n, x):
        """The uniform laws of ``j`` over ``0..N`` and of ``k - M`` over ``0..L-M``, batch ``(n,)``."""
        num_late = self.schedule.num_steps - self.collapse_from + 1
        return (
            dist.Categorical(logits=x.new_zeros(self.vi_steps + 1)).expand([n]),
            dist.Categorical(logits=x.new_zeros(num_late)).expand([n]),
        )

    def model(self, x, mask, covariates):
        n = x.shape[0]
        vi_law, late_law = self._steps(n, x)
        with pyro.plate("series", n, dim=-1):
            j = pyro.sample("vi_step", vi_law)
            k = self.collapse_from + pyro.sample("collapse_step", late_law)
            z = pyro.sample("z", self.prior((n,)))
            z_c = pyro.sample("z_collapsed", dist.Normal(x.new_zeros(self.latent_dim), 1.0).to_event(1))
            loc, scale = self.decode(torch.stack([z, z_c]), x)  # one decoder pass for both
            with poutine.scale(scale=self.alpha_bar(self.gamma * j)):
                pyro.sample("x", self.gaussian(loc[0], scale[0], mask), obs=x)
            log_collapsed = self.gaussian(loc[1], scale[1], mask).log_prob(x)
            floor = dist.Normal(0.0, 1.0).log_prob(x).mul(mask).sum((-2, -1))
            weight = 1 - self.alpha_bar(torch.ceil(k / self.eta).long())
            pyro.factor("collapse_penalty", -weight * torch.maximum(log_collapsed, floor))

    def guide(self, x, mask, covariates):
        n = x.shape[0]
        vi_law, late_law = self._steps(n, x)
        v = self.encode(x, mask)
        with pyro.plate("series", n, dim=-1):
            j = pyro.sample("vi_step", vi_law)
            k = self.collapse_from + pyro.sample("collapse_step", late_law)
            pyro.sample("z", dist.Delta(self.forward_diffusion(v, j), event_dim=1))
            pyro.sample("z_collapsed", dist.Delta(self.forward_diffusion(v, k), event_dim=1))

    def autoencoder_stage(self, settings):
        return Stage("autoencoder", ObservedSites(self.model, self.guide), ("encoder", "decoder"))

    def latent_target(self, x, mask):
        return self.encode(x, mask)
