r"""L2D-Diff: cascaded latent-to-data diffusion for unconditional generation of fixed-length
windows (ICLR 2026, "Latent-to-Data Cascaded Diffusion Models for Unconditional Time Series
Generation").

Three parts are trained one after the other (three :class:`~pyrossm.models.base.Stage`\ s):

1. ``"pretrain"``: masked pretraining of an encoder ``E`` (a TS2Vec-style dilated CNN,
   max-pooled over time, then a linear map to ``r`` in ``R^d``) and a decoder ``D: r -> x``;
2. ``"latent"``: a diffusion model over ``r = E(x)`` (``E`` frozen), the x0-prediction loss;
3. ``"data"``: a data-space diffusion model over the whole window, conditioned on ``r`` through a
   5-layer CNN condition network ``F`` whose output enters every block of the denoiser.

Sampling runs the latent diffusion, then the data diffusion given the sampled latent.  Both
diffusions use the one diffusion core (:mod:`pyrossm.diffusion`): a linear schedule, Karras
preconditioning and the x0-prediction loss :func:`~pyrossm.diffusion.denoising_loss`.
"""

from __future__ import annotations

import pyro
import torch
import torch.nn.functional as F
from torch import nn

from ..diffusion import NoiseSchedule, ddim_sample, ddpm_sample, denoising_loss, level_denoiser
from ..diffusion.preconditioning import LOSS_WEIGHTINGS
from ..distributions.latent_prior import DiffusionPrior
from ..inference.objectives import AnnealedELBO, ObservedSites
from ..nn.denoiser import DiffusionEmbedding
from ..nn.ts2vec import DilatedBlock, TS2VecEncoder
from ..nn.vector_denoiser import VectorDenoiser
from ..validation import check_positive_int
from .base import GenerativeModel, Stage, refuse_covariates
from .latent_diffusion import evaluating

SAMPLERS = ("ddpm", "ddim")
#: the floor of the latent's standard deviation when it is standardised
MIN_LATENT_VARIANCE = 1e-8


class WindowEncoder(nn.Module):
    """``E``: a window ``(B, T, D)`` to ``r`` ``(B, d)``.

    The input channels are the window with the hidden and the missing entries zeroed, the
    pretraining mask (one channel, 1 where the step is hidden) and the observed mask (``D``
    channels); a :class:`~pyrossm.nn.ts2vec.TS2VecEncoder` (its own timestamp masking unused)
    gives per-step representations, max-pooled over time and mapped linearly to ``d``.
    """

    def __init__(self, obs_dim, latent_dim, hidden_dim, depth):
        super().__init__()
        self.net = TS2VecEncoder(2 * obs_dim + 1, hidden_dim, hidden_dim, depth, kernel_size=3, mask_prob=0.0)
        self.output = nn.Linear(hidden_dim, latent_dim)

    def forward(self, x, observed, hidden):
        """:param x: ``(B, T, D)`` zero-filled.  :param observed: ``(B, T, D)`` bool.
        :param hidden: ``(B, T)`` bool, the steps hidden from the encoder.  :returns: ``(B, d)``."""
        visible = observed & ~hidden.unsqueeze(-1)
        inputs = torch.cat([x * visible, hidden.unsqueeze(-1).to(x.dtype), observed.to(x.dtype)], dim=-1)
        return self.output(self.net(inputs).amax(dim=1))


class WindowDecoder(nn.Module):
    """``D``: ``r`` ``(B, d)`` to a window ``(B, T, D)`` -- an MLP ``d -> H -> H -> T * D`` (GELU)."""

    def __init__(self, obs_dim, latent_dim, hidden_dim, length):
        super().__init__()
        self.obs_dim, self.length = obs_dim, length
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, length * obs_dim),
        )

    def forward(self, r):
        return self.net(r).reshape(r.shape[:-1] + (self.length, self.obs_dim))


class ConditionNetwork(nn.Module):
    """``F``: the condition ``c`` ``(B, d)`` to a guidance signal ``(B, C, T)``, a 5-layer CNN.

    Layer 1 is a transposed convolution whose kernel spans the window, from ``c`` seen as one
    step of ``d`` channels to ``T`` steps of ``C`` channels (a linear map of ``c`` to every
    step); layers 2-5 are convolutions along time (kernel 3, "same" padding), GELU between layers.
    """

    def __init__(self, latent_dim, channels, length, num_layers=5):
        super().__init__()
        self.lift = nn.ConvTranspose1d(latent_dim, channels, kernel_size=length)
        self.convs = nn.ModuleList(nn.Conv1d(channels, channels, 3, padding=1) for _ in range(num_layers - 1))

    def forward(self, c):
        h = self.lift(c.unsqueeze(-1))
        for conv in self.convs:
            h = conv(F.gelu(h))
        return h


class DataDenoiser(nn.Module):
    r"""``F_theta(x_in, c_noise, g)`` for windows flattened to ``(B, T * D)``: a 1-D residual conv
    network over time with the ``D`` channels as input channels.

    A 1x1 convolution lifts ``D`` to ``C`` channels; block ``i`` adds the noise-level embedding
    (projected, the same at every step) and the guidance ``g`` (a 1x1 convolution of it) to its
    input, then applies a TS2Vec dilated block (GELU, dilated conv, GELU, dilated conv, plus the
    input; dilation ``2**i``, kernel 3); a 1x1 convolution back to ``D`` channels, zero at start
    (an untrained denoiser returns ``c_skip z^``).

    :param int obs_dim: ``D``.  :param int length: ``T``.  :param int channels: ``C`` (also the
        guidance's channels).  :param int num_layers: residual blocks.
    """

    def __init__(self, obs_dim, length, channels, num_layers, embedding_dim=64):
        super().__init__()
        self.obs_dim, self.length = obs_dim, length
        self.input = nn.Conv1d(obs_dim, channels, 1)
        self.embedding = DiffusionEmbedding(embedding_dim, channels)
        self.noise = nn.ModuleList(nn.Linear(channels, channels) for _ in range(num_layers))
        self.guidance = nn.ModuleList(nn.Conv1d(channels, channels, 1) for _ in range(num_layers))
        self.blocks = nn.ModuleList(DilatedBlock(channels, channels, 2**i, 3) for i in range(num_layers))
        self.output = nn.Conv1d(channels, obs_dim, 1)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, x_in, c_noise, guidance):
        """:param x_in: ``(B, T * D)``.  :param c_noise: ``(B,)``.  :param guidance: ``(B, C, T)``.
        :returns: ``(B, T * D)``."""
        b = x_in.shape[0]
        h = self.input(x_in.reshape(b, self.length, self.obs_dim).transpose(1, 2))
        emb = self.embedding(c_noise)
        for noise, cond, block in zip(self.noise, self.guidance, self.blocks):
            h = block(h + noise(emb).unsqueeze(-1) + cond(guidance))
        return self.output(h).transpose(1, 2).reshape(b, -1)


class _LatentStageObjective(ObservedSites):
    """The ``"latent"`` stage's :class:`ObservedSites` objective; before each training step it adds
    the minibatch's latents to the model's running moments (reset at the stage's step 0), which
    standardise the latent.  Validation leaves the moments alone."""

    def __init__(self, model):
        super().__init__(model.latent_model)
        self.owner = model

    def loss(self, batch, step):
        x, mask, _ = AnnealedELBO._args(batch)
        self.owner.accumulate_latent_moments(x, mask, reset=step == 0)
        return super().loss(batch, step)


class L2DDiff(GenerativeModel):
    r"""L2D-Diff (ICLR 2026): cascaded latent-to-data diffusion for unconditional generation of
    windows of ``T = length`` steps and ``D`` channels, no covariates.

    Generative process (``d = latent_dim``, ``S`` draws of ``N`` series, batched as ``B = S N``)::

        r^ ~ p_phi(r)                       latent diffusion, K_r = latent_steps      (B, d)
        g = F(r^)                           5-layer CNN condition network             (B, C, T)
        x ~ p_theta(x | g)                  data diffusion, K_x = data_steps          (B, T, D)

    Both diffusions: linear schedule, the Karras-preconditioned denoiser
    ``D = c_skip z^ + c_out F(c_in z^, c_noise, context)`` predicting the clean sample, trained
    with the x0-prediction loss ``||D - z^0||^2``, sampled by ancestral DDPM steps (``sampler=
    "ddpm"``) or DDIM on ``num_sampling_steps`` steps (``sampler="ddim"``).

    Training stages (each a Pyro program under :class:`~pyrossm.inference.ObservedSites`, its loss
    a ``factor`` per series):

    - ``"pretrain"`` (groups ``encoder``, ``decoder``): per series, ``round(mask_rate * T)`` time
      steps (at least 1, at most ``T - 1``), drawn uniformly without replacement, are hidden
      (every channel of a hidden step, as TS2Vec's timestamp masking); the encoder sees the
      window with the hidden and missing entries zeroed plus the hidden-step and observed masks;
      ``factor = -sum_{t hidden, (t, j) observed} (x_tj - D(E(x_masked))_tj)^2``.
    - ``"latent"`` (group ``latent``): ``r = E(x)`` (nothing hidden, ``E`` frozen in eval mode,
      no gradient), standardised per dimension, ``factor = -denoising_loss(r_phi, r_std)``.  The
      mean and variance of ``r`` are running moments of every training minibatch of this stage
      (reset at its first step, kept in buffers and saved with the fit; under ``torchrun`` each
      rank keeps its own share's); the diffusion thus models ``E(x)`` up to a fixed affine map.
    - ``"data"`` (groups ``condition``, ``data``): ``c = r_std`` of the real window (``E`` frozen),
      ``factor = -sum_{observed} (D_theta(x^_k, k, F(c)) - x)^2`` (the x0-prediction loss over the
      flattened window ``T * D``, missing entries left out).

    Training windows are the first ``length`` steps of each series (the data contract's time
    axis); every series needs at least ``length`` steps (``min_length``), missing entries inside
    the window are masked out of every loss.

    Ablations (the paper's ablation study): ``latent_only=True`` drops the data diffusion (stages
    ``"pretrain"``, ``"latent"``; samples are ``D(r^)``, the pretraining decoder of the sampled
    latent, de-standardised); ``data_only=True`` drops the encoder, decoder and latent diffusion
    (stage ``"data"`` only; ``F``'s input is a zero vector, so the data diffusion is unconditional).

    :param int obs_dim: ``D``.  :param int covariate_dim: must be 0.
    :param int length: the window length ``T`` (24, the paper's Stock windows).
    :param int latent_dim: ``d`` (8).  :param float mask_rate: hidden fraction of steps (0.5).
    :param int hidden_dim: encoder and decoder width (64).
    :param int encoder_depth: hidden dilated blocks of the encoder (3).
    :param latent_widths: widths of the latent denoiser (:class:`~pyrossm.nn.VectorDenoiser`).
    :param int channels: channels of the data denoiser and of the condition network (64).
    :param int num_layers: residual blocks of the data denoiser (4).
    :param int latent_steps: ``K_r`` (100).  :param int data_steps: ``K_x`` (100).
    :param str sampler: ``"ddpm"`` or ``"ddim"``.
    :param num_sampling_steps: DDIM steps (``None`` = every step); only with ``sampler="ddim"``.
    :param bool latent_only: see above.  :param bool data_only: see above.
    :param str loss_weighting: ``"edm"`` (default) divides each draw's x0 error by
        ``c_out(sigma)^2`` (:func:`~pyrossm.diffusion.denoising_loss`), so that every noise level
        weighs alike; ``"uniform"`` is the paper's plain x0 loss.  Our decision: with the plain loss
        the errors at small noise levels (of order ``sigma^2``) hardly count, and the samples kept
        noise the data do not have (stock, 600 steps per stage, seed 0: mean absolute daily change
        28x the data's, C-FID 0.86; with ``"edm"`` 6x and 0.60; BasicMotions C-FID 0.23 -> 0.17).
        Fits saved before this option load with ``"uniform"``.
    """

    min_length_name = "length"

    def __init__(
        self,
        obs_dim,
        covariate_dim=0,
        length=24,
        latent_dim=8,
        mask_rate=0.5,
        hidden_dim=64,
        encoder_depth=3,
        latent_widths=(128, 64, 32),
        channels=64,
        num_layers=4,
        latent_steps=100,
        data_steps=100,
        sampler="ddpm",
        num_sampling_steps=None,
        latent_only=False,
        data_only=False,
        loss_weighting="edm",
    ):
        super().__init__()
        refuse_covariates(type(self).__name__, covariate_dim)
        for name, value in (
            ("obs_dim", obs_dim),
            ("length", length),
            ("latent_dim", latent_dim),
            ("hidden_dim", hidden_dim),
            ("encoder_depth", encoder_depth),
            ("channels", channels),
            ("num_layers", num_layers),
            ("latent_steps", latent_steps),
            ("data_steps", data_steps),
        ):
            check_positive_int(name, value)
        if isinstance(mask_rate, bool) or not isinstance(mask_rate, (int, float)) or not 0 < mask_rate < 1:
            raise ValueError(f"mask_rate must be a number in (0, 1), got {mask_rate!r}")
        if latent_only and data_only:
            raise ValueError("latent_only and data_only are exclusive ablations: set at most one of them")
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        if loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"loss_weighting must be one of {LOSS_WEIGHTINGS}, got {loss_weighting!r}")
        self.loss_weighting = loss_weighting
        if num_sampling_steps is not None:
            if sampler != "ddim":
                raise ValueError(f"num_sampling_steps applies to sampler='ddim', got sampler={sampler!r}")
            used = ([] if data_only else [latent_steps]) + ([] if latent_only else [data_steps])
            check_positive_int("num_sampling_steps", num_sampling_steps)
            if num_sampling_steps > min(used):
                raise ValueError(
                    f"num_sampling_steps must be at most the diffusion steps {min(used)}, got {num_sampling_steps}"
                )
        self.obs_dim, self.covariate_dim = obs_dim, 0
        self.length, self.latent_dim, self.mask_rate = length, latent_dim, float(mask_rate)
        self.sampler, self.num_sampling_steps = sampler, num_sampling_steps
        self.latent_only, self.data_only = bool(latent_only), bool(data_only)
        if not self.data_only:
            self.encoder = WindowEncoder(obs_dim, latent_dim, hidden_dim, encoder_depth)
            self.decoder = WindowDecoder(obs_dim, latent_dim, hidden_dim, length)
            self.latent_schedule = NoiseSchedule(latent_steps, "linear")
            self.latent_network = VectorDenoiser(latent_dim, tuple(latent_widths))
            self.register_buffer("latent_mean", torch.zeros(latent_dim))
            self.register_buffer("latent_var", torch.ones(latent_dim))
            self.register_buffer("latent_count", torch.zeros(()))
        if not self.latent_only:
            self.condition_network = ConditionNetwork(latent_dim, channels, length)
            self.data_schedule = NoiseSchedule(data_steps, "linear")
            self.data_network = DataDenoiser(obs_dim, length, channels, num_layers)
        self.config = dict(
            obs_dim=obs_dim,
            covariate_dim=0,
            length=length,
            latent_dim=latent_dim,
            mask_rate=self.mask_rate,
            hidden_dim=hidden_dim,
            encoder_depth=encoder_depth,
            latent_widths=list(latent_widths),
            channels=channels,
            num_layers=num_layers,
            latent_steps=latent_steps,
            data_steps=data_steps,
            sampler=sampler,
            num_sampling_steps=num_sampling_steps,
            latent_only=self.latent_only,
            data_only=self.data_only,
            loss_weighting=loss_weighting,
        )

    @property
    def min_length(self) -> int:
        return self.length

    def structure(self):
        structure = {**super().structure(), "length": self.length, "latent_dim": self.latent_dim}
        for ablation in ("latent_only", "data_only"):
            if getattr(self, ablation):  # shown in the fit's repr; absent (as in older files) when off
                structure[ablation] = True
        return structure

    def parameter_groups(self):
        parts = {
            "encoder": "encoder",
            "decoder": "decoder",
            "latent": "latent_network",
            "condition": "condition_network",
            "data": "data_network",
        }
        return {group: list(getattr(self, name).parameters()) for group, name in parts.items() if hasattr(self, name)}

    # ------------------------------------------------------------------ parts
    def window(self, x, mask):
        """The training window: the first ``length`` steps of ``x`` and ``mask`` ``(N, T, D)``."""
        if x.shape[-2] < self.length:
            raise ValueError(f"the data have {x.shape[-2]} time steps, fewer than the model's length={self.length}")
        return x[..., : self.length, :], mask[..., : self.length, :]

    @property
    def num_hidden(self) -> int:
        """Time steps hidden per series in pretraining: ``round(mask_rate * T)`` in ``[1, T - 1]``."""
        return min(max(1, round(self.mask_rate * self.length)), max(1, self.length - 1))

    def pretraining_mask(self, num_series, device=None):
        """``(N, T)`` bool, ``True`` at the :attr:`num_hidden` hidden steps of each series (uniform
        without replacement, from torch's global generator)."""
        scores = torch.rand(num_series, self.length, device=device)
        index = scores.topk(self.num_hidden, dim=-1).indices
        return torch.zeros(num_series, self.length, dtype=torch.bool, device=device).scatter(1, index, True)

    @staticmethod
    def pretraining_error(x, reconstruction, observed, hidden):
        """``(N,)``: the squared error of ``reconstruction`` summed over the hidden (``(N, T)``) and
        observed (``(N, T, D)``) entries only."""
        counted = (observed & hidden.unsqueeze(-1)).to(x.dtype)
        return (((reconstruction - x) ** 2) * counted).sum((-2, -1))

    def encode(self, x, mask):
        """``r = E(x)`` ``(N, d)`` of windows ``(N, T, D)`` with nothing hidden (no gradient, eval mode)."""
        with torch.no_grad(), evaluating(self.encoder):
            return self.encoder(x, mask, torch.zeros(x.shape[:-1], dtype=torch.bool, device=x.device))

    def _scale(self):
        return self.latent_var.clamp_min(MIN_LATENT_VARIANCE).sqrt()

    def standardise(self, r):
        """``(r - mean) / sd`` with the running moments of the ``"latent"`` stage."""
        return (r - self.latent_mean) / self._scale()

    def destandardise(self, r_std):
        return self.latent_mean + self._scale() * r_std

    @torch.no_grad()
    def accumulate_latent_moments(self, x, mask, reset=False):
        """Adds the latents of a minibatch to the running mean and variance (Chan et al.'s merge)."""
        if reset:
            self.latent_count.zero_()
            self.latent_mean.zero_()
            self.latent_var.fill_(1.0)
        r = self.encode(*self.window(x, mask))
        n_old, n_new = self.latent_count, float(r.shape[0])
        total = n_old + n_new
        mean_b = r.mean(0)
        m2_b = ((r - mean_b) ** 2).sum(0)
        delta = mean_b - self.latent_mean
        m2 = self.latent_var * n_old + m2_b + delta**2 * n_old * n_new / total
        self.latent_mean.add_(delta * n_new / total)
        self.latent_var.copy_(m2 / total)
        self.latent_count.copy_(total)

    # ------------------------------------------------------------------ stage programs
    def pretrain_model(self, x, mask, covariates):
        """Stage ``"pretrain"``: the masked reconstruction error as a factor per series."""
        x, mask = self.window(x, mask)
        hidden = self.pretraining_mask(x.shape[0], x.device)
        reconstruction = self.decoder(self.encoder(x, mask, hidden))
        with pyro.plate("series", x.shape[0], dim=-1):
            pyro.factor("reconstruction", -self.pretraining_error(x, reconstruction, mask, hidden))

    def latent_model(self, x, mask, covariates):
        """Stage ``"latent"``: the x0-prediction loss of the latent diffusion on ``E(x)``."""
        r = self.standardise(self.encode(*self.window(x, mask)))
        loss = denoising_loss(self.latent_network, self.latent_schedule, r, weighting=self.loss_weighting)
        with pyro.plate("series", x.shape[0], dim=-1):
            pyro.factor("latent", -loss)

    def condition(self, x=None, mask=None, num=None):
        """The condition ``c`` ``(N, d)``: ``r_std`` of the windows, or zeros (``data_only``)."""
        if self.data_only:
            n = x.shape[0] if x is not None else num
            return self.data_schedule.sigmas.new_zeros(n, self.latent_dim)
        return self.standardise(self.encode(x, mask))

    def data_model(self, x, mask, covariates):
        """Stage ``"data"``: the x0-prediction loss of the data diffusion given ``F(c)``."""
        x, mask = self.window(x, mask)
        guidance = self.condition_network(self.condition(x, mask))
        n = x.shape[0]
        loss = denoising_loss(
            self.data_network,
            self.data_schedule,
            x.reshape(n, -1),
            guidance,
            mask=mask.reshape(n, -1),
            weighting=self.loss_weighting,
        )
        with pyro.plate("series", n, dim=-1):
            pyro.factor("data", -loss)

    def training_stages(self, settings):
        stages = []
        if not self.data_only:
            stages.append(Stage("pretrain", ObservedSites(self.pretrain_model), ("encoder", "decoder")))
            stages.append(Stage("latent", _LatentStageObjective(self), ("latent",)))
        if not self.latent_only:
            stages.append(Stage("data", ObservedSites(self.data_model), ("condition", "data")))
        return stages

    # ------------------------------------------------------------------ sampling
    def _run_sampler(self, denoiser, schedule, shape, device):
        if self.sampler == "ddim":
            return ddim_sample(denoiser, schedule, shape, num_sampling_steps=self.num_sampling_steps, device=device)
        return ddpm_sample(denoiser, schedule, shape, device=device)

    def sample_latent(self, num):
        """``num`` standardised latents ``r^`` ``(num, d)`` from the latent diffusion."""
        schedule = self.latent_schedule
        prior = DiffusionPrior(self.latent_network, schedule, self.latent_dim)
        return self._run_sampler(prior.denoiser, schedule, (num, self.latent_dim), schedule.betas.device)

    def sample_data(self, c):
        """Windows ``(B, T, D)`` from the data diffusion given conditions ``c`` ``(B, d)``."""
        guidance = self.condition_network(c)  # computed once for every reverse step
        schedule, b = self.data_schedule, c.shape[0]
        denoiser = level_denoiser(self.data_network, schedule.sigmas, guidance)
        flat = self._run_sampler(denoiser, schedule, (b, self.length * self.obs_dim), schedule.betas.device)
        return flat.reshape(b, self.length, self.obs_dim)

    @torch.no_grad()
    def generate(self, num_series, length, covariates=None):
        """``(S, N, T, D)`` draws, ``S`` = ``covariates.shape[0]`` for 4-d covariates, else 1.

        :raises ValueError: unless ``length`` is the model's window ``length``.
        """
        if length != self.length:
            raise ValueError(f"L2DDiff generates windows of length={self.length} steps (its length), got {length}")
        draws = covariates.shape[0] if covariates is not None and covariates.dim() == 4 else 1
        b = draws * num_series
        with evaluating(self):
            if self.data_only:
                x = self.sample_data(self.condition(num=b))
            else:
                r = self.sample_latent(b)
                x = self.decoder(self.destandardise(r)) if self.latent_only else self.sample_data(r)
        return x.reshape(draws, num_series, self.length, self.obs_dim)
