"""Network architectures by name: what the model parts build for ``architecture="paper"`` or
``"compact"``, so that configurations stay plain JSON and no part is written twice.

- ``"paper"``: the DDSSM paper's networks (Appendix H): :class:`~pyrossm.nn.ContextGaussian`
  (a Context Producer and a Gaussian head) and :class:`~pyrossm.nn.CSDIDenoiser`.
- ``"compact"``: MLPs over the flattened inputs with the same call signatures and the same
  output constraints: :class:`~pyrossm.nn.MLPGaussian` and :class:`~pyrossm.nn.MLPDenoiser`
  (:mod:`pyrossm.nn.compact`); the encoder's backward-GRU future summary keeps its width but has
  one layer instead of three (:data:`SUMMARY_LAYERS`).
"""

from __future__ import annotations

from .compact import MLPDenoiser, MLPGaussian
from .context_gaussian import ContextGaussian
from .denoiser import CSDIDenoiser

ARCHITECTURES = ("paper", "compact")
#: layers of the encoder's backward-GRU future summary (:class:`~pyrossm.nn.FutureSummary`) by
#: architecture: the paper's 3 (Table 1); 1 in the compact architecture, where the 3-layer GRU
#: was the largest single cost of a DKF training step (about 35 of 100 ms at batch 128, T = 32,
#: one thread; 1 layer saved about 20 % of the step)
SUMMARY_LAYERS = {"paper": 3, "compact": 1}


def check_architecture(architecture) -> str:
    """Returns ``architecture`` if it is a known name; raises ``ValueError`` naming the choices."""
    if not isinstance(architecture, str) or architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {list(ARCHITECTURES)}, got {architecture!r}")
    return architecture


def gaussian_network(
    architecture,
    in_dim,
    seq_len,
    out_dim,
    side_dim=0,
    extra_dim=0,
    *,
    seq_dim=16,
    channels=16,
    num_layers=2,
    hidden_dim=16,
    time_mixer="conv",
    feature_mixer="conv",
    activation="relu",
):
    """A ``(seq (B, L, in_dim), side (B, L, E), extra (B, extra_dim)) -> (mean, scale)`` network.

    ``"paper"``: :class:`~pyrossm.nn.ContextGaussian` with all the arguments; ``"compact"``:
    :class:`~pyrossm.nn.MLPGaussian` with ``num_layers`` hidden layers of width ``hidden_dim``
    (``seq_dim``, ``channels`` and the mixers do not apply).
    """
    if check_architecture(architecture) == "compact":
        return MLPGaussian(in_dim, seq_len, out_dim, side_dim, extra_dim, hidden_dim, num_layers, activation)
    return ContextGaussian(
        in_dim,
        seq_len,
        out_dim,
        side_dim=side_dim,
        extra_dim=extra_dim,
        seq_dim=seq_dim,
        channels=channels,
        num_layers=num_layers,
        hidden_dim=hidden_dim,
        time_mixer=time_mixer,
        feature_mixer=feature_mixer,
        activation=activation,
    )


def denoiser_network(
    architecture,
    latent_dim,
    order=1,
    covariate_dim=0,
    channels=16,
    num_layers=3,
    time_mixer="conv",
    feature_mixer="conv",
    activation="relu",
):
    """The conditional denoiser ``F(x_in, c_noise, (history, covariates))`` of a diffusion
    transition: ``"paper"``: :class:`~pyrossm.nn.CSDIDenoiser`; ``"compact"``:
    :class:`~pyrossm.nn.MLPDenoiser` with ``num_layers`` hidden layers of width ``channels``
    (the mixers do not apply)."""
    if check_architecture(architecture) == "compact":
        return MLPDenoiser(latent_dim, order, covariate_dim, channels, num_layers, activation)
    return CSDIDenoiser(
        latent_dim, order, covariate_dim, channels, num_layers, time_mixer, feature_mixer, activation=activation
    )
