"""Feature tracking: one entry point, swappable kernels, one output contract.

``track_pair(ref, sec, ...)`` returns a :class:`~icetrack.track.result.OffsetField`
whatever the kernel: sub-pixel offsets (px), correlation peak, SNR and a 1-sigma
error per grid point, with the point grid's georeferencing at chip centres.
"""

from .api import KERNELS, track_pair
from .result import OffsetField, point_grid

__all__ = ["KERNELS", "OffsetField", "point_grid", "track_pair"]
