"""The model registry: one :class:`ModelSpec` per family, the one place to add a family.

``pyrossm.fit(model=name)`` builds ``spec.factory(obs_dim=D, covariate_dim=V, **options)``;
``pyrossm.load`` rebuilds it from the saved ``config`` after ``spec.migrate`` brought an older
file's options up to date.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from .base import CAPABILITIES, capabilities
from .ddssm import DDSSM
from .dkf import DKF
from .l2d import L2DDiff
from .latent_diffusion import CollapseSimulation, LatentDiffusion

#: arguments filled from the data, not by the user
DATA_ARGUMENTS = ("obs_dim", "covariate_dim")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model family.

    :param str name: what ``fit(model=...)`` takes (matched case-insensitively).
    :param factory: ``factory(obs_dim=..., covariate_dim=..., **options) -> GenerativeModel``.
    :param str summary: one line for listings.
    :param migrate: ``migrate(options: dict) -> dict``: the saved options of an older file made
        valid for today's factory (default: unchanged).
    :param dict trainer_defaults: flat trainer settings that replace the library-wide
        :class:`~pyrossm.inference.TrainerConfig` defaults for this family (``fit``'s ``trainer``
        given as ``None`` or a dict is read on top of them; a ``TrainerConfig`` or a preset is
        taken as it is).
    """

    name: str
    factory: object
    summary: str = ""
    migrate: object = None
    trainer_defaults: dict | None = None

    def options(self) -> set:
        """The keyword arguments a user may give (the factory's, less the data's)."""
        params = inspect.signature(self.factory).parameters
        return {p for p in params if p not in DATA_ARGUMENTS}

    def capabilities(self) -> tuple:
        """The capability names of the family's models (from the factory's class)."""
        factory = self.factory
        if isinstance(factory, type):
            return tuple(name for name, cls in CAPABILITIES.items() if issubclass(factory, cls))
        return ()

    def build(self, **kwargs):
        return self.factory(**kwargs)

    def migrated(self, options: dict) -> dict:
        return dict(options) if self.migrate is None else self.migrate(dict(options))


#: options of the state-space presets added after fits were first saved -> what fits saved
#: before them were trained with
FORMER_DEFAULTS = {"activation": "relu", "architecture": "paper", "summary": "gru"}


def _former_defaults(options):
    """Fits saved before the ``activation`` option used ReLU, before ``architecture`` the paper's
    networks, before ``summary`` the backward GRU."""
    for name, value in FORMER_DEFAULTS.items():
        options.setdefault(name, value)
    return options


#: DDSSM options whose default changed -> what fits saved before the option existed were trained with
FORMER_DDSSM_DEFAULTS = {"residual_transition": False, "level_sampling": "uniform", "encoder_hidden_dim": None}


def _former_ddssm_defaults(options):
    """As :func:`_former_defaults`; and DDSSM fits saved before ``residual_transition`` diffused
    ``z_t`` itself, those saved before ``level_sampling`` drew the bound's levels uniformly."""
    return _former_defaults({**FORMER_DDSSM_DEFAULTS, **options})


MODELS: dict[str, ModelSpec] = {}

#: the DKF's default training recipe, chosen on the six systems of ``pyrossm.datasets.systems``
#: (``benchmarks/defaults.py``): 3000 steps at a rate of 3e-3 decayed by a cosine to 3 % of it; the
#: rest are the :class:`~pyrossm.inference.TrainerConfig` defaults (batches of 128 series, lambda
#: warmed up from 0.01 to 1 over the first third)
SSM_TRAINER_DEFAULTS = {"num_steps": 3000, "learning_rate": 3e-3, "lr_schedule": "cosine", "lr_end_factor": 0.03}
#: the DDSSM's: the same over 12000 steps (its diffusion transition kept improving: the sum of the
#: six systems' 1-step JSD ratios to the sampling floor fell from 33.5 / 38.9 at 6000 steps to
#: 25.3 / 26.1 at 12000, seeds 0 / 1, no system worse; a fit of 1024 series x 32 steps took
#: 374-447 s with another fit on the other core of a 2-core CPU)
#: (Holding out each series' last step and keeping the best validated 1-step log score did not
#: help on the suite: the JSD kept improving to the last step; docs/experiments.)
#: Its lambda warms up to 1 by step 600 and holds 1.25 over steps 1200-6000 before returning to 1
#: by 6600: the heavier rate term widens the guide, so the transition pulls the latent off a noisy
#: copy of the data (the walks' forecasts followed their last observation's noise).  Against lambda
#: 1 after a warm-up over the first third, the suite's sum of ratios fell from 17.6 / 19.6 to
#: 13.5 / 15.2 (seeds 0 / 1), the bimodal walk from 5.1 / 6.2x to 2.8 / 3.6x, the trimodal from
#: 4.3 / 4.8x to 2.3 / 2.2x; the seasonal system rose from 2.2 / 2.3x to 2.5 / 3.3x and the 2-D
#: latent from 1.9 / 2.4x to 2.4 / 2.4x.  A phase to step 3000 gave 14.2 / 15.4, one to step 9000
#: better walks but the seasonal system at 3.9x (docs/experiments).
DDSSM_ANNEALING = {
    "kind": "piecewise",
    "points": [[0, 0.01], [600, 1.0], [1000, 1.0], [1200, 1.25], [6000, 1.25], [6600, 1.0]],
}
DDSSM_TRAINER_DEFAULTS = dict(SSM_TRAINER_DEFAULTS, num_steps=12000, annealing=DDSSM_ANNEALING)


def register_model(name: str, factory, summary: str = "", migrate=None, trainer_defaults=None) -> ModelSpec:
    """Registers a family under ``name`` (lower case); returns its :class:`ModelSpec`."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"model name must be a non-empty str, got {name!r}")
    if trainer_defaults is not None:
        from ..inference.config import TrainerConfig

        TrainerConfig.from_dict(trainer_defaults)  # unknown or invalid settings fail here
        trainer_defaults = dict(trainer_defaults)
    spec = ModelSpec(name.lower(), factory, summary, migrate, trainer_defaults)
    MODELS[spec.name] = spec
    return spec


def get_spec(name) -> ModelSpec:
    """The spec of a registered name (any case), or a ``ValueError`` naming the closest."""
    from ..inference.config import closest

    if not isinstance(name, str) or name.lower() not in MODELS:
        raise ValueError(
            f"model must be one of {sorted(MODELS)} or a GenerativeModel instance, "
            f"got {name!r}{closest(name, MODELS) if isinstance(name, str) else ''}"
        )
    return MODELS[name.lower()]


def spec_of(model) -> ModelSpec | None:
    """The spec of a model instance's family (the registered factory that is its class), or
    ``None`` for a model no family builds (e.g. a ``StateSpaceModel`` made of parts)."""
    for spec in MODELS.values():
        if isinstance(spec.factory, type) and type(model) is spec.factory:
            return spec
    return None


def model_arguments(name: str) -> set:
    """Names of the keyword arguments the registered model ``name`` accepts from users."""
    return get_spec(name).options()


def build_model(name: str, **kwargs):
    """Instantiates the registered model ``name``; unknown names raise ``ValueError``."""
    return get_spec(name).build(**kwargs)


register_model(
    "dkf",
    DKF,
    "Deep Kalman Filter: Gaussian transition, structured smoothing guide",
    migrate=_former_defaults,
    trainer_defaults=SSM_TRAINER_DEFAULTS,
)
register_model(
    "ddssm",
    DDSSM,
    "Diffusion-driven SSM: a conditional diffusion transition",
    migrate=_former_ddssm_defaults,
    trainer_defaults=DDSSM_TRAINER_DEFAULTS,
)
register_model(
    "latent_diffusion",
    LatentDiffusion,
    "Time-series latent diffusion: a sequence VAE (optionally with a collapse remedy), then a diffusion prior",
)
register_model(
    "collapse_simulation",
    CollapseSimulation,
    "Diffusion as variational inference with a collapse-simulation penalty, then a diffusion prior",
)


def _uniform_loss_before_weighting(options):
    """L2D fits saved before the ``loss_weighting`` option were trained with the plain x0 loss."""
    options.setdefault("loss_weighting", "uniform")
    return options


register_model(
    "l2d",
    L2DDiff,
    "L2D-Diff: cascaded latent-to-data diffusion for unconditional generation",
    migrate=_uniform_loss_before_weighting,
)

__all__ = ["ModelSpec", "MODELS", "register_model", "get_spec", "model_arguments", "build_model", "capabilities"]
