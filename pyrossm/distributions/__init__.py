"""Custom Pyro distributions over latent trajectories."""

from .markov import MarkovChain, StateSpacePrior, rollout, window_log_prob
from .posterior import SmoothingPosterior

__all__ = ["MarkovChain", "StateSpacePrior", "SmoothingPosterior", "rollout", "window_log_prob"]
