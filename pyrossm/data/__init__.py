"""
Conversion between user-facing ``xarray`` objects and model-facing tensors.

This package is the only place in pyrossm that converts data. Everything a user passes in
(an :class:`xarray.Dataset`, a long or wide :class:`pandas.DataFrame`, or an
:class:`xarray.DataArray`) is normalised by :func:`as_dataset` (:mod:`.inputs`), validated,
scaled and turned into a :class:`SeriesData` (:mod:`.series`) by a :class:`DataContract`
(:mod:`.contract`). Everything a model produces (scaled tensors of samples) is turned back into
an :class:`xarray.Dataset` by :meth:`DataContract.decode`; :mod:`.timeaxis` continues time
coordinates for forecasts.

Conventions:

- dims ``("series", "time")``; a variable may carry one extra feature dim;
- ``NaN`` in a target marks a missing observation (``mask`` is ``False`` there);
- a series' *length* is one plus the index of its last time step with any observed target;
  shorter series are padded at the end (ragged data);
- targets and covariates are scaled per channel with a location and scale fitted on the
  observed values of the training data only.
"""

from .contract import DataContract
from .inputs import SERIES, TIME, as_dataset
from .series import SeriesData
from .shuffle import shuffle_time
from .windows import windows

__all__ = ["DataContract", "SeriesData", "as_dataset", "shuffle_time", "windows", "SERIES", "TIME"]
