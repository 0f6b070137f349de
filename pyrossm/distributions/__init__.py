"""Custom Pyro distributions over latent trajectories."""

from .diffusion import DiffusionTransition
from .latent_prior import DiffusionPrior
from .markov import MarkovChain, StateSpacePrior, rollout, window_log_prob
from .posterior import SmoothingPosterior

__all__ = [
    "DiffusionTransition",
    "DiffusionPrior",
    "MarkovChain",
    "StateSpacePrior",
    "SmoothingPosterior",
    "rollout",
    "window_log_prob",
]
