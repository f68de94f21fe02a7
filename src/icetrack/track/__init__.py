"""Steps 3 and 5: the kernel parameters of a pair (:mod:`.params`) and feature tracking.

``track_pair(ref, sec, ...)`` returns a :class:`~icetrack.track.result.OffsetField`
whatever the kernel: sub-pixel offsets (px), correlation peak, SNR and a 1-sigma
error per grid point, with the point grid's georeferencing at chip centres. The raw
offsets travel to the post-processing step in one NetCDF file (:mod:`.offsets_file`).

The kernels are compiled with numba; they are imported on first use (PEP 562), so that
``icetrack.track.params`` (read by the config checks before any job) stays light.
"""

from __future__ import annotations

import importlib

_LAZY = {"KERNELS": "api", "track_pair": "api", "OffsetField": "result", "point_grid": "result"}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"icetrack.track.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'icetrack.track' has no attribute {name!r}")
