"""The Deep Kalman Filter preset (Krishnan et al., 2017; the DDSSM paper's DKF(+VHP) baseline)."""

from __future__ import annotations

from ..nn import check_architecture, check_summary
from ..validation import check_positive_int
from .emission import GaussianEmission
from .encoder import SmoothingEncoder
from .init import StandardNormalInit, VHPInit
from .ssm import StateSpaceModel, check_order_and_latent_dim
from .transition import GaussianTransition


class PresetModel(StateSpaceModel):
    """Base of the presets: :func:`shared_parts` (Table 1) around a given transition.

    :param transition: the preset's transition module (built by the subclass *before* the shared
        parts, which fixes the order in which parameters are initialised for a seed).
    :param dict config: the subclass's constructor arguments -- at least ``obs_dim``,
        ``latent_dim``, ``order``, ``covariate_dim``, ``init``, ``channels``, ``hidden_dim``,
        ``encoder_layers``, ``emission_layers``, ``activation``, ``architecture``,
        ``encoder_hidden_dim`` and ``summary`` -- kept as
        ``self.config`` (what :func:`pyrossm.load` rebuilds the model from).
    """

    def __init__(self, transition, config):
        c = config
        parts = shared_parts(
            c["obs_dim"],
            c["latent_dim"],
            c["order"],
            c["covariate_dim"],
            c["init"],
            c["channels"],
            c["hidden_dim"],
            c["encoder_layers"],
            c["emission_layers"],
            c["activation"],
            c["architecture"],
            c["encoder_hidden_dim"],
            c["summary"],
        )
        super().__init__(
            transition=transition,
            **parts,
            latent_dim=c["latent_dim"],
            order=c["order"],
            obs_dim=c["obs_dim"],
            covariate_dim=c["covariate_dim"],
        )
        self.config = dict(config)


class DKF(PresetModel):
    """Deep Kalman Filter: Gaussian transitions and emissions, structured smoothing guide.

    Architecture defaults follow Table 1 of the DDSSM paper (context channels 16, encoder and
    decoder 2 layers with conv(k=2) mixers, a 3-layer backward-GRU future summary, a 3-layer
    Gaussian transition with identity time mixer).  ``init="vhp"`` gives the paper's DKF+VHP
    baseline; ``init="normal"`` the classic ``N(0, I)`` initial state.

    :param int obs_dim: ``D``.  :param int latent_dim: ``M`` (default 2: on the six systems of
        ``benchmarks/defaults.py`` a 2-D latent beat a 1-D one on every system tried, 1-D
        observations included).
    :param int order: ``j``, the Markov order of the transition (default 2: on the six systems of
        ``benchmarks/defaults.py`` a second-order transition lowered the sum of the 1-step JSD
        ratios to the sampling floor from 205.7 to 159.6 at seed 0 and from 203.8 to 150.3 at
        seed 1; the paper's experiments use ``j = 1``).  Every series needs at least ``j``
        observed steps to be fitted, and a forecast's context more than ``j``.
    :param int covariate_dim: ``V``.  :param str init: ``"vhp"`` or ``"normal"``.
    :param int channels: context channels ``C``.  :param int hidden_dim: MLP / summary width.
    :param str activation: every network's activation, ``"relu"`` (default, the paper's) or
        ``"silu"``, whose units cannot die (whole ReLU layers died in some fits, see
        :class:`~pyrossm.nn.CSDIDenoiser`).  Fits saved before this option existed load with ReLU.
    :param str architecture: every network's shape: ``"compact"`` (default: MLPs over the
        flattened inputs with the same bounded log-variance and linear skip to the mean, and a
        one-layer future-summary GRU instead of three: about 10x cheaper to train and to sample,
        and no worse on the six systems of ``benchmarks/defaults.py``; see
        :mod:`pyrossm.nn.architecture`; ``hidden_dim`` is the MLPs' width and the ``*_layers``
        their depth, ``channels`` does not apply) or ``"paper"`` (the Context Producers of
        Table 1).  Fits saved before this option existed load as ``"paper"``, later ones as saved.
    :param encoder_hidden_dim: the width of the guide's network (the encoder's Context
        Producer, :class:`~pyrossm.models.encoder.SmoothingEncoder`); ``None`` (default):
        ``hidden_dim``.  Its future summary keeps ``hidden_dim``.
    :param str summary: the guide's future summary of ``x_{t:T}``: ``"decay"`` (default,
        :class:`~pyrossm.nn.DecaySummary`: averages of the future at learned rates, no step loop)
        or ``"gru"`` (the paper's backward GRU, :class:`~pyrossm.nn.FutureSummary`).  The
        loop-free summary makes a training step 13-17 % cheaper on a CPU (batch 128 x 32 steps,
        one thread: 17.3 against 19.9 ms in ``benchmarks/speed.py``); on the six systems of
        ``benchmarks/defaults.py`` the sums of the 1-step JSD ratios to the sampling floor were
        158.0 / 153.9 / 156.1 against the GRU's 159.6 / 150.3 / 151.0 (seeds 0 / 1 / 2; the
        walks 3-10 % higher, the others either way).  Fits saved before this option existed load
        with ``"gru"``, what they were trained with.
    """

    def __init__(
        self,
        obs_dim,
        latent_dim=2,
        order=2,
        covariate_dim=0,
        init="vhp",
        channels=16,
        hidden_dim=16,
        encoder_layers=2,
        emission_layers=2,
        transition_layers=3,
        activation="relu",
        architecture="compact",
        encoder_hidden_dim=None,
        summary="decay",
    ):
        check_order_and_latent_dim(order, latent_dim)  # before the parts are built from them
        check_architecture(architecture)
        # the transition is built first, then the shared parts: parameter initialisation order
        transition = GaussianTransition(
            latent_dim,
            order,
            covariate_dim,
            channels,
            transition_layers,
            hidden_dim,
            hidden_dim,
            activation=activation,
            architecture=architecture,
        )
        super().__init__(
            transition,
            dict(
                obs_dim=obs_dim,
                latent_dim=latent_dim,
                order=order,
                covariate_dim=covariate_dim,
                init=init,
                channels=channels,
                hidden_dim=hidden_dim,
                encoder_layers=encoder_layers,
                emission_layers=emission_layers,
                transition_layers=transition_layers,
                activation=activation,
                architecture=architecture,
                encoder_hidden_dim=encoder_hidden_dim,
                summary=summary,
            ),
        )


def shared_parts(
    obs_dim,
    latent_dim,
    order,
    covariate_dim,
    init,
    channels,
    hidden_dim,
    encoder_layers,
    emission_layers,
    activation="relu",
    architecture="paper",
    encoder_hidden_dim=None,
    summary="gru",
) -> dict:
    """The emission, encoder and init shared by the DKF and DDSSM presets (Table 1).

    Validates ``order``, ``latent_dim``, ``init``, ``encoder_hidden_dim`` and ``summary`` first.
    The encoder's network is ``encoder_hidden_dim`` wide (``None``: ``hidden_dim``); its future
    summary (``summary``, see :class:`~pyrossm.models.encoder.SmoothingEncoder`), the emission and
    the init are ``hidden_dim`` wide.  :returns: ``dict(emission=...,
    encoder=..., init=...)`` for :class:`StateSpaceModel`.
    """
    check_order_and_latent_dim(order, latent_dim)  # before the parts are built from them
    if init not in ("vhp", "normal"):
        raise ValueError(f"init must be 'vhp' or 'normal', got {init!r}")
    check_architecture(architecture)
    if encoder_hidden_dim is None:
        encoder_hidden_dim = hidden_dim
    encoder_hidden_dim = check_positive_int("encoder_hidden_dim", encoder_hidden_dim)
    check_summary(summary)
    kw = dict(
        channels=channels, seq_dim=hidden_dim, hidden_dim=hidden_dim, activation=activation, architecture=architecture
    )
    return dict(
        emission=GaussianEmission(obs_dim, latent_dim, order, covariate_dim, num_layers=emission_layers, **kw),
        encoder=SmoothingEncoder(
            obs_dim,
            latent_dim,
            order,
            covariate_dim,
            summary_dim=hidden_dim,
            summary=summary,
            num_layers=encoder_layers,
            **dict(kw, seq_dim=encoder_hidden_dim, hidden_dim=encoder_hidden_dim),
        ),
        init=(
            VHPInit(latent_dim, order, covariate_dim, **kw) if init == "vhp" else StandardNormalInit(latent_dim, order)
        ),
    )
