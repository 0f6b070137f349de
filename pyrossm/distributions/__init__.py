"""Custom Pyro distributions over latent trajectories."""

from .diffusion import DiffusionTransition
from .markov import MarkovChain, StateSpacePrior, rollout, window_log_prob
from .posterior import SmoothingPosterior

__all__ = ["DiffusionTransition", "MarkovChain", "StateSpacePrior", "SmoothingPosterior", "rollout", "window_log_prob"]
