"""``SeriesData``: the model-facing tensors of a data set (values, observed mask, covariates)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch


def series_lengths(mask: np.ndarray) -> np.ndarray:
    """(N, T, D) observed mask -> (N,) 1 + index of the last step with any observed value."""
    any_observed = mask.any(axis=-1)
    num_time = any_observed.shape[1]
    last = num_time - np.argmax(any_observed[:, ::-1], axis=1)
    return np.where(any_observed.any(axis=1), last, 0).astype(np.int64)


@dataclass
class SeriesData:
    """
    A batch of (possibly ragged, possibly incomplete) multichannel series as tensors.

    Built by :meth:`DataContract.fit` / :meth:`DataContract.encode`; models never build it
    from raw data themselves.

    :param torch.Tensor values: ``(N, T, D)`` float32 scaled targets, ``NaN`` where missing.
    :param torch.Tensor mask: ``(N, T, D)`` bool, ``True`` where observed.
    :param torch.Tensor covariates: ``(N, T, V)`` float32 scaled covariates (``V`` may be 0),
        zero at positions beyond a series' length.
    :param torch.Tensor lengths: ``(N,)`` int64, one plus the index of the last time step
        with any observed target (0 for an empty series).
    :param numpy.ndarray series: ``(N,)`` series coordinate values.
    :param numpy.ndarray time: ``(T,)`` time coordinate values (datetime64 kept).
    """

    values: torch.Tensor
    mask: torch.Tensor
    covariates: torch.Tensor
    lengths: torch.Tensor
    series: np.ndarray
    time: np.ndarray

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def num_series(self) -> int:
        """Number of series ``N``."""
        return self.values.shape[0]

    @property
    def num_time(self) -> int:
        """Number of time steps ``T`` (the longest series' span)."""
        return self.values.shape[1]

    @property
    def num_channels(self) -> int:
        """Number of target channels ``D``."""
        return self.values.shape[2]

    @property
    def num_covariates(self) -> int:
        """Number of covariate channels ``V``."""
        return self.covariates.shape[2]

    @property
    def device(self) -> torch.device:
        return self.values.device

    @property
    def filled_values(self) -> torch.Tensor:
        """
        ``(N, T, D)`` values with missing entries replaced by ``0.0`` (the scaled mean), for
        network inputs; the mask keeps those entries out of the likelihood.
        """
        return torch.where(self.mask, self.values, torch.zeros_like(self.values))

    def select(self, index) -> SeriesData:
        """
        Select a subset of series.

        :param index: an int, a slice, or an integer/bool array or tensor of series indices.
        :returns: a new :class:`SeriesData` with the selected series (time is kept whole).
        """
        if isinstance(index, torch.Tensor):
            index = index.detach().cpu().numpy()
        if isinstance(index, (int, np.integer)):
            index = np.array([index])
        if isinstance(index, slice):
            np_index = t_index = index
        else:
            np_index = np.asarray(index)
            if np_index.size == 0:
                np_index = np_index.astype(np.int64)
            if np_index.dtype == bool:
                if np_index.shape != (self.num_series,):
                    raise ValueError(f"boolean index has shape {np_index.shape}; expected ({self.num_series},)")
                np_index = np.flatnonzero(np_index)
            elif np_index.dtype.kind not in "iu":
                raise TypeError(f"index must hold integers or bools; got dtype {np_index.dtype}")
            t_index = torch.as_tensor(np_index, dtype=torch.long, device=self.device)
        return SeriesData(
            values=self.values[t_index],
            mask=self.mask[t_index],
            covariates=self.covariates[t_index],
            lengths=self.lengths[t_index],
            series=np.asarray(self.series)[np_index],
            time=self.time,
        )

    def head(self, num_time: int) -> SeriesData:
        """
        The first ``num_time`` time steps of every series (e.g. all but the last, held out).

        :param int num_time: time steps kept, ``1 <= num_time <= T``.
        :returns: a new :class:`SeriesData` of shape ``(N, num_time, .)`` whose ``lengths``
            count only the kept steps (covariates beyond them zero, as :class:`DataContract`
            encodes them).
        """
        is_int = isinstance(num_time, (int, np.integer)) and not isinstance(num_time, bool)
        if not is_int or not 1 <= num_time <= self.num_time:
            raise ValueError(f"num_time must be an int in [1, {self.num_time}], got {num_time!r}")
        mask = self.mask[:, :num_time]
        lengths = torch.as_tensor(series_lengths(mask.cpu().numpy()), device=self.device)
        within = torch.arange(num_time, device=self.device) < lengths[:, None]  # (N, num_time)
        covariates = self.covariates[:, :num_time]
        return SeriesData(
            values=self.values[:, :num_time],
            mask=mask,
            covariates=torch.where(within[..., None], covariates, torch.zeros_like(covariates)),
            lengths=lengths.to(self.lengths.dtype),
            series=self.series,
            time=self.time[:num_time],
        )

    def to(self, device) -> SeriesData:
        """Return a copy with every tensor moved to ``device``."""
        return replace(
            self,
            values=self.values.to(device),
            mask=self.mask.to(device),
            covariates=self.covariates.to(device),
            lengths=self.lengths.to(device),
        )

    def __repr__(self) -> str:
        observed = self.mask.float().mean().item() if self.mask.numel() else float("nan")
        span = f"[{self.time[0]} .. {self.time[-1]}]" if len(self.time) else "[]"
        return (
            f"SeriesData(num_series={self.num_series}, num_time={self.num_time}, "
            f"num_channels={self.num_channels}, num_covariates={self.num_covariates}, "
            f"observed={observed:.1%}, time={span}, device={self.device})"
        )
