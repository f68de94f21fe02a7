"""Feature tracking: one entry point, swappable kernels, one output contract.

``track_pair(ref, sec, ...)`` returns a :class:`~icetrack.track.result.OffsetField`
whatever the kernel: sub-pixel offsets (px), correlation peak, SNR and a 1-sigma
error per grid point, with the point grid's georeferencing at chip centres.
"""

import os

# numba's OpenMP layer busy-waits between parallel regions and fights scipy.fft's and
# OpenCV's threads for the 2 cores: the batch kernel ran 2–4× slower than with the
# workqueue layer (measured, bench --size 512). Respect an explicit user choice.
if "NUMBA_THREADING_LAYER" not in os.environ:
    import numba

    numba.config.THREADING_LAYER = "workqueue"

from .api import KERNELS, track_pair
from .result import OffsetField, point_grid

__all__ = ["KERNELS", "OffsetField", "point_grid", "track_pair"]
