"""Network blocks shared by every pyrossm model."""

from .activations import ACTIVATIONS, activation_function, activation_module, check_activation
from .architecture import ARCHITECTURES, SUMMARY_LAYERS, check_architecture, denoiser_network, gaussian_network
from .blocks import ContextProducer, ResidualBlock, ResidualStack
from .compact import MLPDenoiser, MLPGaussian
from .context_gaussian import ContextGaussian
from .denoiser import CSDIDenoiser, DiffusionEmbedding
from .heads import GaussianHead, mlp
from .mixers import make_mixer
from .sequence import AutoregressiveDecoder, SequenceEncoder
from .summary import SUMMARIES, DecaySummary, FutureSummary, check_summary, future_summary, sinusoidal_embedding
from .vector_denoiser import VectorDenoiser

__all__ = [
    "ACTIVATIONS",
    "activation_function",
    "activation_module",
    "check_activation",
    "ARCHITECTURES",
    "SUMMARY_LAYERS",
    "check_architecture",
    "gaussian_network",
    "denoiser_network",
    "MLPGaussian",
    "MLPDenoiser",
    "ContextProducer",
    "ContextGaussian",
    "CSDIDenoiser",
    "DiffusionEmbedding",
    "ResidualBlock",
    "ResidualStack",
    "GaussianHead",
    "mlp",
    "make_mixer",
    "FutureSummary",
    "DecaySummary",
    "SUMMARIES",
    "check_summary",
    "future_summary",
    "sinusoidal_embedding",
    "SequenceEncoder",
    "AutoregressiveDecoder",
    "VectorDenoiser",
]
