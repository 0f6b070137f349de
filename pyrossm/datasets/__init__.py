"""
Synthetic systems with known truth, and loaders for the small real data sets shipped as package
data in ``pyrossm/datasets/data/``.

Synthetic systems (:mod:`pyrossm.datasets.synthetic`):

- :func:`bimodal_random_walk` — the one-dimensional system of Sec. 4 of the DDSSM paper, whose
  transition law is an exact two-component Gaussian mixture (:func:`bimodal_transition_law`);
- :func:`linear_gaussian` — a linear Gaussian state-space model, whose exact filtering and
  predictive distributions are given by :func:`kalman_filter` / :func:`kalman_predictive`.

A suite of synthetic systems with exact one-step laws (:mod:`pyrossm.datasets.systems`): each a
:class:`System` (simulator, exact Gaussian-mixture law of ``x_t`` given the state at ``t - 1``,
covariates) in the registry :data:`SYSTEMS` / :func:`systems.systems` -- :func:`bimodal_walk`,
:func:`trimodal_walk`, :func:`state_dependent_modes`, :func:`covariate_gated`,
:func:`two_dim_latent`, :func:`regime_switching_seasonal`.  ``System.predictive_law`` gives the
exact 1-step predictive given the observed past (:mod:`pyrossm.datasets.filtering`, a particle
filter): what a perfect model forecasts, where the latent-state law is narrower than any forecast.

Real data (:mod:`pyrossm.datasets.real`; see ``pyrossm/datasets/data/README.md`` for provenance
and licences):

- :func:`geyser` — Old Faithful waiting times and durations (299 consecutive eruptions);
- :func:`stock` — Google daily stock prices 2004-2019 (3685 trading days);
- :func:`energy` — UCI appliances energy use and house/weather sensors, 10-minute readings
  (19735 steps, 28 variables);
- :func:`basic_motions` — UEA BasicMotions, smartwatch accelerometer and gyroscope during four
  activities (80 labelled series of 100 steps, 6 channels).

All functions return :class:`xarray.Dataset` objects following the pyrossm data contract:
dims ``("series", "time")`` (+ a ``feature`` dim for multivariate observations).
"""

from .filtering import ParticleModel, predictive_law
from .real import (  # noqa: F401  (DATA_DIR, STOCK_COLUMNS, BASIC_MOTIONS_CHANNELS: for users)
    BASIC_MOTIONS_CHANNELS,
    DATA_DIR,
    STOCK_COLUMNS,
    basic_motions,
    energy,
    geyser,
    stock,
)
from .synthetic import (
    GaussianMixture1D,
    bimodal_random_walk,
    bimodal_transition_law,
    kalman_filter,
    kalman_predictive,
    linear_gaussian,
)
from .systems import (
    SYSTEMS,
    System,
    bimodal_walk,
    covariate_gated,
    get_system,
    regime_switching_seasonal,
    state_dependent_modes,
    trimodal_walk,
    two_dim_latent,
)

__all__ = [
    "GaussianMixture1D",
    "ParticleModel",
    "SYSTEMS",
    "System",
    "basic_motions",
    "bimodal_random_walk",
    "bimodal_transition_law",
    "bimodal_walk",
    "covariate_gated",
    "energy",
    "get_system",
    "geyser",
    "kalman_filter",
    "kalman_predictive",
    "linear_gaussian",
    "predictive_law",
    "regime_switching_seasonal",
    "state_dependent_modes",
    "stock",
    "trimodal_walk",
    "two_dim_latent",
]
