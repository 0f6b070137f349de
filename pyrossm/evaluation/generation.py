"""Scores of unconditional generators against real windows (the TimeGAN / Diffusion-TS protocol).

Every function takes ``real`` and ``generated`` windows in one of two forms:

- an :class:`xarray.Dataset` with dims ``("series", "time")``, one data variable per channel (a
  variable may carry one extra feature dim, flattened into channels); an optional ``draw`` dim is
  stacked into the series.  ``generated`` must have the variables of ``real`` (matched by name);
- a numpy array or torch tensor of shape ``(N, T, D)`` (channels in the order of ``real``'s).

``real`` and ``generated`` must share ``T`` and ``D`` (not ``N``) and contain no NaN.  The neural
scores first min-max scale both sets by ``real``'s per-channel range (the protocol's data are in
``[0, 1]``), draw all their randomness from generators seeded by ``seed`` (never torch's or
numpy's global state) and so return the same value for the same inputs and seed (bit for bit
under the same number of torch threads: CPU kernels may sum in another order on another count).

- :func:`discriminative_score`: ``|accuracy - 0.5|`` of a post-hoc GRU classifier (0 is best);
- :func:`predictive_score`: train on generated, test on real, next-step MAE (lower is better);
- :func:`correlational_score`: mean absolute difference of the channel cross-correlations;
- :func:`context_fid`: Fréchet distance of TS2Vec embeddings (:func:`fit_ts2vec`), 0 is best.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import scipy.linalg
import torch
import xarray as xr
from torch import nn

from ..nn.ts2vec import TS2VecEncoder, hierarchical_contrastive_loss, overlapping_crops, seeded_init_
from ..validation import check_nonnegative_int, check_positive_int

__all__ = [
    "discriminative_score",
    "predictive_score",
    "correlational_score",
    "context_fid",
    "fit_ts2vec",
    "frechet_distance",
    "FittedTS2Vec",
]

_DIMS = ("series", "time")


# ------------------------------------------------------------------ inputs
def _dataset_windows(ds, name, variables=None):
    """``(N, T, D)`` float64 of a Dataset, and its variable names."""
    names = list(ds.data_vars)
    if variables is not None:
        if set(names) != set(variables):
            raise ValueError(f"{name} has variables {sorted(names)}; expected {sorted(variables)}")
        names = list(variables)
    if not names:
        raise ValueError(f"{name} has no data variables; expected one per channel")
    parts = []
    for var in names:
        da = ds[var]
        missing = [d for d in _DIMS if d not in da.dims]
        if missing:
            raise ValueError(f"{name} variable {var!r} has dims {da.dims}; expected ('series', 'time')")
        lead = ("draw",) if "draw" in da.dims else ()
        extra = [d for d in da.dims if d not in _DIMS + lead]
        if len(extra) > 1:
            raise ValueError(f"{name} variable {var!r} has dims {da.dims}; at most one dim besides draw, series, time")
        values = da.transpose(*lead, *_DIMS, *extra).values.astype(np.float64)
        parts.append(values.reshape(-1, da.sizes["time"], 1 if not extra else da.sizes[extra[0]]))
        if len(parts[-1]) != len(parts[0]):
            raise ValueError(f"{name} variable {var!r} has {len(parts[-1])} windows; {names[0]!r} has {len(parts[0])}")
    return np.concatenate(parts, axis=-1), names


def _windows(x, name, variables=None):
    """``(array (N, T, D) float64, variable names or None)``, validated."""
    if isinstance(x, xr.Dataset):
        a, names = _dataset_windows(x, name, variables)
    elif isinstance(x, xr.DataArray):
        raise TypeError(f"{name} must be an xarray.Dataset (one variable per channel) or an (N, T, D) array")
    else:
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        try:
            a = np.array(x, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"{name} must be an xarray.Dataset or an (N, T, D) array or tensor; got {type(x).__name__}"
            ) from err
        if a.ndim != 3:
            raise ValueError(f"{name} must have shape (N, T, D) (windows, time, channels); got shape {a.shape}")
        names = None
    if a.shape[0] == 0 or a.shape[1] == 0 or a.shape[2] == 0:
        raise ValueError(f"{name} has shape (N, T, D) = {a.shape}; expected at least one window, step and channel")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a, names


def _pair(real, generated, min_windows=1, min_length=1, variables=None):
    r, names = _windows(real, "real", variables)
    g, _ = _windows(generated, "generated", names)
    if g.shape[1:] != r.shape[1:]:
        raise ValueError(
            f"generated windows have (T, D) = {g.shape[1:]}; expected those of real {r.shape[1:]} (N may differ)"
        )
    for name, a in (("real", r), ("generated", g)):
        if a.shape[0] < min_windows:
            raise ValueError(f"{name} has {a.shape[0]} windows; this score needs at least {min_windows}")
    if r.shape[1] < min_length:
        raise ValueError(f"real and generated windows have {r.shape[1]} time steps; this score needs {min_length}")
    return r, g


def _minmax(reference):
    """``(low, scale)`` per channel of ``reference`` ``(N, T, D)``: ``(x - low) / scale`` is in [0, 1]."""
    low = reference.min(axis=(0, 1))
    span = reference.max(axis=(0, 1)) - low
    return low, np.where(span > 0, span, 1.0)


def _scaled(r, g):
    low, scale = _minmax(r)
    return (torch.as_tensor((a - low) / scale, dtype=torch.float32) for a in (r, g))


def _check_training(seed, learning_rate, **sizes):
    """Validated ``(seed, learning_rate)``; every entry of ``sizes`` must be a positive int."""
    for arg, value in sizes.items():
        check_positive_int(arg, value)
    if not isinstance(learning_rate, (int, float)) or isinstance(learning_rate, bool) or not learning_rate > 0:
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
    return check_nonnegative_int("seed", seed), float(learning_rate)


# ------------------------------------------------------------------ post-hoc GRU networks
class _GRUHead(nn.Module):
    def __init__(self, input_dim, hidden_size, output_dim, num_layers):
        super().__init__()
        self.gru = nn.GRU(input_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, output_dim)

    def forward(self, x, last_only):
        h, _ = self.gru(x)
        return self.head(h[:, -1] if last_only else h)


def _train(net, batch_loss, num_steps, learning_rate):
    """Adam on ``batch_loss()`` (which draws its own minibatch) for ``num_steps`` steps."""
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate)
    for _ in range(num_steps):
        optimizer.zero_grad(set_to_none=True)
        batch_loss().backward()
        optimizer.step()
    net.eval()
    return net


def _batch(num_items, batch_size, generator):
    """``min(batch_size, num_items)`` distinct indices."""
    return torch.randperm(num_items, generator=generator)[:batch_size]


def _network(generator, *args):
    with torch.device("meta"):
        net = _GRUHead(*args)
    return seeded_init_(net, generator)


def _split(n, rng, train_fraction=0.8):
    order = rng.permutation(n)
    cut = min(max(int(round(train_fraction * n)), 1), n - 1)
    return order[:cut], order[cut:]


def discriminative_score(
    real, generated, seed=0, num_steps=300, hidden_size=16, num_layers=1, batch_size=128, learning_rate=1e-2
):
    """``|accuracy - 0.5|`` of a GRU classifier trained to tell real from generated windows.

    Each set is split 80/20 at random; a ``num_layers``-layer GRU with a linear head on its last
    state (TimeGAN's post-hoc classifier, there with ``hidden_size = D // 2`` and 2000 steps) is
    trained on the 80% parts with Adam (each step takes ``batch_size`` windows of each set) and its
    accuracy is measured on the pooled 20% parts.
    0 is best (indistinguishable); 0.5 means perfectly separable.  With ``n`` held-out windows the
    score of a perfect generator is still about ``0.4 / sqrt(n)`` (sampling noise).
    """
    seed, learning_rate = _check_training(
        seed, learning_rate, num_steps=num_steps, hidden_size=hidden_size, num_layers=num_layers, batch_size=batch_size
    )
    r, g = _scaled(*_pair(real, generated, min_windows=5))
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    (r_train, r_test), (g_train, g_test) = _split(len(r), rng), _split(len(g), rng)
    x_train = torch.cat([r[r_train], g[g_train]])
    y_train = torch.cat([torch.ones(len(r_train)), torch.zeros(len(g_train))])
    net = _network(gen, r.shape[-1], hidden_size, 1, num_layers)
    bce = nn.BCEWithLogitsLoss()

    def loss():  # batch_size windows of each set
        idx = torch.cat([_batch(len(r_train), batch_size, gen), len(r_train) + _batch(len(g_train), batch_size, gen)])
        return bce(net(x_train[idx], last_only=True).squeeze(-1), y_train[idx])

    _train(net, loss, num_steps, learning_rate)
    with torch.no_grad():
        x_test = torch.cat([r[r_test], g[g_test]])
        y_test = torch.cat([torch.ones(len(r_test)), torch.zeros(len(g_test))])
        accuracy = ((net(x_test, last_only=True).squeeze(-1) > 0).float() == y_test).float().mean()
    return abs(float(accuracy) - 0.5)


def predictive_score(
    real, generated, seed=0, target="all", num_steps=300, hidden_size=16, batch_size=128, learning_rate=1e-2
):
    """Train on generated, test on real: MAE of a GRU's one-step-ahead predictions.

    ``target="all"`` (the default) predicts every channel at ``t + 1`` from all channels up to
    ``t``; ``target="last"`` is TimeGAN's original task, the last channel at ``t + 1`` from the
    other channels up to ``t`` (needs ``D >= 2``).  The GRU (linear head, no output squashing) is
    trained with an L1 loss on all generated windows and the MAE is taken over all real windows,
    steps and predicted channels, on the min-max scale of ``real``.  Lower is better; compare it
    with the score of held-out real windows in place of ``generated``.
    """
    if target not in ("all", "last"):
        raise ValueError(f"target must be 'all' or 'last', got {target!r}")
    seed, learning_rate = _check_training(
        seed, learning_rate, num_steps=num_steps, hidden_size=hidden_size, batch_size=batch_size
    )
    r, g = _scaled(*_pair(real, generated, min_length=2))
    dim = r.shape[-1]
    if target == "last" and dim < 2:
        raise ValueError("target='last' predicts the last channel from the others: needs D >= 2 channels")

    def task(x):
        if target == "all":
            return x[:, :-1], x[:, 1:]
        return x[:, :-1, :-1], x[:, 1:, -1:]

    (g_in, g_out), (r_in, r_out) = task(g), task(r)
    gen = torch.Generator().manual_seed(seed)
    net = _network(gen, g_in.shape[-1], hidden_size, g_out.shape[-1], 1)

    def loss():
        index = _batch(len(g_in), batch_size, gen)
        return (net(g_in[index], last_only=False) - g_out[index]).abs().mean()

    _train(net, loss, num_steps, learning_rate)
    with torch.no_grad():
        return float((net(r_in, last_only=False) - r_out).abs().mean())


# ------------------------------------------------------------------ correlations
def _cross_correlations(x, max_lag):
    """Lag-0 correlations of the channel pairs ``i < j``, then, for each lag ``1..max_lag``, all
    ``D x D`` correlations of channel ``i`` at ``t + lag`` with channel ``j`` at ``t``."""
    z = x - x.mean(axis=(0, 1))
    std = z.std(axis=(0, 1))
    z = z / np.where(std > 0, std, np.inf)  # a constant channel is uncorrelated with everything
    upper = np.triu_indices(x.shape[-1], k=1)
    values = [np.einsum("ntd,nte->de", z, z)[upper] / (z.shape[0] * z.shape[1])]
    for lag in range(1, max_lag + 1):
        values.append(np.einsum("ntd,nte->de", z[:, lag:], z[:, :-lag]).ravel() / (z.shape[0] * (z.shape[1] - lag)))
    return np.concatenate(values)


def correlational_score(real, generated, max_lag=0):
    """Mean absolute difference between the channel cross-correlations of real and generated.

    Each channel is standardised over all its windows and steps, and the correlation of channels
    ``i`` and ``j`` is the mean of their products over windows and steps, as in Diffusion-TS /
    COSCI-GAN; the score is the mean of the absolute differences over the ``D (D - 1) / 2`` pairs
    ``i < j`` (Diffusion-TS reports the sum over the pairs divided by 10).  ``max_lag > 0`` adds,
    for each lag ``1..max_lag``, the ``D x D`` lagged correlations (auto-correlations included) to
    the entries averaged; with ``max_lag=0`` the score ignores the order of the time steps.
    Deterministic; 0 is best; a constant channel counts as uncorrelated.
    """
    max_lag = check_nonnegative_int("max_lag", max_lag)
    r, g = _pair(real, generated, min_length=max_lag + 1)
    if r.shape[-1] < 2 and max_lag == 0:
        raise ValueError("correlational_score needs D >= 2 channels with max_lag=0 (no channel pairs otherwise)")
    if r.shape[0] * r.shape[1] < 2 or g.shape[0] * g.shape[1] < 2:
        raise ValueError("real and generated need at least 2 values per channel (windows x steps)")
    return float(np.abs(_cross_correlations(r, max_lag) - _cross_correlations(g, max_lag)).mean())


# ------------------------------------------------------------------ Context-FID
class FittedTS2Vec:
    """A :class:`~pyrossm.nn.ts2vec.TS2VecEncoder` trained on real windows, with their scaling.

    :meth:`encode` takes windows in any form the scores accept (a Dataset's variables matched to
    the training data's), scales them as the training windows were and returns the max-pooled
    instance representations ``(N, repr_dim)`` (float64).  Shared through the cache of
    :func:`fit_ts2vec`: treat it as read-only.
    """

    def __init__(self, network, low, scale, variables, settings, losses):
        self.network, self.low, self.scale = network, low, scale
        self.variables, self.settings, self.losses = variables, settings, losses

    @property
    def repr_dim(self):
        return self.settings["repr_dim"]

    def encode(self, windows, batch_size=1024):
        x, _ = _windows(windows, "windows", self.variables)
        if x.shape[-1] != len(self.low):
            raise ValueError(f"windows have D = {x.shape[-1]} channels; the encoder was trained on {len(self.low)}")
        x = torch.as_tensor((x - self.low) / self.scale, dtype=torch.float32)
        with torch.no_grad():
            parts = [self.network.instance(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return torch.cat(parts).double().numpy()


_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 8


def fit_ts2vec(
    real, seed=0, num_steps=200, repr_dim=32, hidden_size=32, depth=3, batch_size=32, learning_rate=1e-3, cache=True
):
    """Trains a :class:`~pyrossm.nn.ts2vec.TS2VecEncoder` on ``real`` windows (TS2Vec's
    hierarchical contrastive loss on two overlapping random crops, with timestamp masking).

    The windows are min-max scaled per channel first.  With ``cache`` (the default) the fitted
    encoder is kept in process, keyed by a hash of ``real``'s values, ``seed`` and the settings
    (the last 8 are kept), so scoring several generators against the same real data trains once.

    :returns: a :class:`FittedTS2Vec` (``encode(windows) -> (N, repr_dim)``).
    """
    settings = dict(num_steps=num_steps, repr_dim=repr_dim, hidden_size=hidden_size, depth=depth, batch_size=batch_size)
    seed, learning_rate = _check_training(seed, learning_rate, **settings)
    settings["learning_rate"] = learning_rate
    x, variables = _windows(real, "real")
    if x.shape[0] < 2:
        raise ValueError(f"real has {x.shape[0]} windows; fit_ts2vec needs at least 2")
    digest = hashlib.sha256(repr((x.shape, variables)).encode() + x.tobytes()).hexdigest()
    key = (digest, seed, tuple(sorted(settings.items())))
    if cache and key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    low, scale = _minmax(x)
    data = torch.as_tensor((x - low) / scale, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        net = TS2VecEncoder(x.shape[-1], hidden_size=hidden_size, repr_dim=repr_dim, depth=depth)
    seeded_init_(net, gen)
    losses = []

    def loss():
        crop1, crop2, overlap = overlapping_crops(data[_batch(len(data), batch_size, gen)], gen)
        z1 = net(crop1, generator=gen)[:, -overlap:]
        z2 = net(crop2, generator=gen)[:, :overlap]
        value = hierarchical_contrastive_loss(z1, z2)
        losses.append(float(value.detach()))
        return value

    _train(net, loss, num_steps, learning_rate)
    net.requires_grad_(False)
    fitted = FittedTS2Vec(net, low, scale, variables, settings, np.array(losses))
    if cache:
        _CACHE[key] = fitted
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return fitted


def frechet_distance(mean1, cov1, mean2, cov2):
    """Fréchet (2-Wasserstein squared) distance between ``N(mean1, cov1)`` and ``N(mean2, cov2)``:
    ``|mean1 - mean2|^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2))``, the matrix square root by
    :func:`scipy.linalg.sqrtm` (real part, as FID does; a tiny ridge if it is not finite)."""
    mean1, mean2 = np.atleast_1d(np.asarray(mean1, float)), np.atleast_1d(np.asarray(mean2, float))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, float)), np.atleast_2d(np.asarray(cov2, float))
    if mean1.shape != mean2.shape or cov1.shape != cov2.shape or cov1.shape != mean1.shape * 2:
        raise ValueError(f"means {mean1.shape}, {mean2.shape} and covariances {cov1.shape}, {cov2.shape} disagree")
    root = scipy.linalg.sqrtm(cov1 @ cov2)
    if not np.all(np.isfinite(root)):
        ridge = 1e-6 * np.eye(len(cov1))
        root = scipy.linalg.sqrtm((cov1 + ridge) @ (cov2 + ridge))
    value = np.sum((mean1 - mean2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(np.real(root))
    return max(float(value), 0.0)


def context_fid(real, generated, seed=0, encoder=None, **fit_options):
    """Context-FID (Jeha et al., 2022): the Fréchet distance between Gaussian fits (mean,
    covariance) of the TS2Vec embeddings of the real and of the generated windows.

    The embedding is ``encoder`` (anything with ``encode((N, T, D) array) -> (N, R)``, the array
    unscaled and in ``real``'s channel order) or, by default, ``fit_ts2vec(real, seed,
    **fit_options)`` (cached).  0 is best; values are comparable only under the same encoder.
    """
    seed = check_nonnegative_int("seed", seed)
    # a Dataset's variables in the order the given encoder was trained on
    r, g = _pair(real, generated, min_windows=2, variables=getattr(encoder, "variables", None))
    if encoder is None:
        encoder = fit_ts2vec(real, seed=seed, **fit_options)
    elif fit_options:
        raise TypeError(f"context_fid got fit options {sorted(fit_options)} with a given encoder")
    elif not callable(getattr(encoder, "encode", None)):
        raise TypeError(f"encoder must have an encode(windows) method; got {type(encoder).__name__}")
    fits = []
    for a in (r, g):
        e = np.asarray(encoder.encode(a), dtype=np.float64)
        if e.ndim != 2 or e.shape[0] != a.shape[0]:
            raise ValueError(f"encoder.encode returned shape {e.shape}; expected ({a.shape[0]}, repr_dim)")
        fits.append((e.mean(axis=0), np.cov(e, rowvar=False)))
    return frechet_distance(*fits[0], *fits[1])
