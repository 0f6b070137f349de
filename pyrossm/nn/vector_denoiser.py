"""An unconditional denoiser for vectors: the network of a diffusion prior over latent variables."""

from __future__ import annotations

from torch import nn

from .denoiser import DiffusionEmbedding


class VectorDenoiser(nn.Module):
    r"""``F(x_in, c_noise)`` for vectors ``(B, d)``: an MLP with a U-net's shape.

    Down path ``d -> widths[0] -> widths[1] -> ...``, up path back through the same widths with
    each level's down activation added (U-net skips), then ``-> d``; the noise-level embedding
    modulates every level by a scale and a shift (FiLM, as the adaptive normalisation of image
    U-nets): at low noise the target ``y`` of the preconditioned loss is about ``-eps``, which the
    network can only read off its input ``z^ = z^0 + sigma eps`` scaled by ``1 / sigma``, a
    product of input and noise level that an added embedding hardly expresses (on a ring in a
    2-plane of ``R^32``, 3000 steps: the off-plane spread of the samples was 0.375 with added
    embeddings against the data's 0.11).  This is the vector analogue of the U-net with hidden dimensions
    ``{128, 64, 32}`` of Li & van der Schaar (2024, Appendix G).  The output layer starts at zero,
    so an untrained network's denoiser returns ``c_skip z^``.

    :param int dim: ``d``.  :param tuple widths: hidden widths, outermost first.
    :param int embedding_dim: width of the noise-level embedding.
    """

    def __init__(self, dim, widths=(128, 64, 32), embedding_dim=64):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if not widths or min(widths) < 1:
            raise ValueError(f"widths must be a non-empty tuple of positive ints, got {widths!r}")
        self.dim, self.widths = dim, widths
        self.embedding = DiffusionEmbedding(embedding_dim, widths[0])
        self.input = nn.Linear(dim, widths[0])
        self.down = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.up = nn.ModuleList(nn.Linear(b, a) for a, b in zip(widths[:-1], widths[1:]))
        self.noise = nn.ModuleList(nn.Linear(widths[0], 2 * w) for w in widths)
        self.output = nn.Linear(widths[0], dim)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, x_in, c_noise, context=None):
        """
        :param x_in: ``(B, d)`` preconditioned noisy input.  :param c_noise: ``(B,)``.
        :param context: unused (the prior is unconditional); kept for the denoiser signature.
        :returns: ``(B, d)``.
        """
        emb = self.embedding(c_noise)
        act = nn.functional.silu

        def film(h, level):
            scale, shift = self.noise[level](emb).chunk(2, dim=-1)
            return act(h * (1 + scale) + shift)

        h = film(self.input(x_in), 0)
        skips = [h]
        for level, layer in enumerate(self.down, start=1):
            h = film(layer(h), level)
            skips.append(h)
        skips.pop()
        for level in reversed(range(len(self.up))):
            h = film(self.up[level](h) + skips.pop(), level)
        return self.output(h)
