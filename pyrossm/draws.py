"""Drawing many samples in bounded passes, reproducibly, on any device (used by :class:`FitResult`)."""

from __future__ import annotations

import math

import numpy as np
import torch

from .inference.rng import seeded

#: rows (draws x series) per vectorised pass of the guide and the transition when drawing many
#: samples on a CPU: bounds the memory of the networks' activations (a few kB per row) and keeps
#: them cache-sized.  Measured on the bimodal benchmark's DDSSM (256 series x 1024 draws, one
#: core): 8192 rows per pass 100 s, 16384 110 s, 65536 230-240 s.  The draws are the same for a
#: given seed, device, number of draws and series.
ROWS_PER_PASS = 8192
#: the same on a GPU, where larger passes fill the device (not measured here: no GPU was lent)
CUDA_ROWS_PER_PASS = 65536


def resolve_device(device) -> torch.device:
    """``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:<i>"`` or a ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):  # e.g. FitResult.device
        device = str(device)
    if device not in ("cpu", "cuda") and not (isinstance(device, str) and device.startswith("cuda:")):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:  # e.g. 'cuda:x'
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got {device!r}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available")
    return resolved


def draw_chunks(num_samples, num_series, device=None):
    """Splits ``num_samples`` draws into passes of at most ``ROWS_PER_PASS // num_series`` draws
    (``CUDA_ROWS_PER_PASS`` on a CUDA ``device``)."""
    rows = CUDA_ROWS_PER_PASS if device is not None and torch.device(device).type == "cuda" else ROWS_PER_PASS
    per_pass = max(1, rows // max(num_series, 1))
    return [min(per_pass, num_samples - start) for start in range(0, num_samples, per_pass)]


def seeded_on(seed, device):
    """Runs the block with torch's RNG seeded (and restores the global RNG state afterwards)."""
    return seeded(seed, [device] if device.type == "cuda" else [])


def check_longer_than(data, min_length, name, what="order"):
    """The 1-step log score scores each series' last step given the steps before it: a
    :class:`SeriesData` ``data`` (called ``name`` in the error) needs more than ``min_length`` steps."""
    if data.values.shape[1] <= min_length:
        raise ValueError(
            f"the 1-step log score scores the last step of each series given the steps "
            f"before it: {name} needs more than {what}={min_length} time steps, "
            f"got {data.values.shape[1]}"
        )


def one_step_log_score(model, contract, data, num_samples, device):
    """``model.one_step_log_score`` of :class:`SeriesData` ``data`` over passes of
    :func:`draw_chunks` draws, combined exactly, in the units of the data (the model scores
    scaled targets: each observed channel's density is divided by its scale).

    :returns: ``(N,)``; NaN for a series whose last time step has no observed target.
    """
    check_longer_than(data, model.min_length, "the data", model.min_length_name)
    parts, counts = [], []
    for chunk in draw_chunks(num_samples, len(data), device):
        parts.append(model.one_step_log_score(data.filled_values, data.mask, data.covariates, chunk))
        counts.append(chunk)
    weights = torch.tensor(counts, dtype=parts[0].dtype, device=parts[0].device).log()
    score = torch.logsumexp(torch.stack(parts) + weights[:, None], dim=0) - math.log(num_samples)
    last = data.mask[:, -1, :]  # (N, D)
    log_scale = torch.as_tensor(np.log(contract.scale), dtype=score.dtype, device=score.device)
    score = score - (last * log_scale).sum(-1)
    return torch.where(last.any(-1), score, torch.full_like(score, math.nan))
