import json
import time

import numpy as np
import rasterio

from icetrack.track.params import kernel_options
from icetrack.track.offsets_file import write_offsets
from icetrack.postprocess.outcome import input_validity
from icetrack.common.rasters import read_band
from icetrack.common.logs import progress, start_logging
from icetrack.track import point_grid, track_pair
from icetrack.track.prior import prior_from_velocity

log = start_logging(snakemake)
k = json.loads(open(snakemake.input.kernel).read())


def read_image(path):
    """A filtered scene as float32 (rows, cols), or (bands, rows, cols) for orientation
    images (two bands, which the kernels correlate together); its transform and CRS."""
    with rasterio.open(path) as src:
        count = src.count
    bands = [read_band(path, band) for band in range(1, count + 1)]
    image = bands[0][0] if count == 1 else np.stack([b[0] for b in bands])  # no copy of a single band
    return image, bands[0][1], bands[0][2]


ref, transform, crs = read_image(snakemake.input.ref)
sec, _, _ = read_image(snakemake.input.sec)
grid = point_grid(ref.shape[-2:], k["chip_px"], k["step_px"])
prior_dx = prior_dy = None
if "prior" in k:  # a reference velocity map centres the searches
    prior_dx, prior_dy = prior_from_velocity(k["prior"]["reference_vx"], k["prior"]["reference_vy"], grid,
                                             transform, crs, k["dt_days"])
t0 = time.time()
with progress(grid.n_rows * grid.n_cols, f"track {snakemake.wildcards.pair}", "pt") as bar:
    field = track_pair(ref, sec, k["chip_px"], k["search_px"], k["step_px"], k["method"],
                       prior_dx=prior_dx, prior_dy=prior_dy, workers=snakemake.threads, progress=bar.update,
                       kernel_options=kernel_options(k),
                       coarse_prior=k.get("coarse_prior", False), prior_search_px=k.get("prior_search_px", 3))
k["inputs"] = input_validity(ref, sec)  # lets quality.json say why a map is empty
write_offsets(snakemake.output[0], field, transform, crs, k)
n = field.dx.size
log.info("tracked %d points in %.1f s (%.0f pt/s), %.1f %% matched", n, time.time() - t0,
         n / max(time.time() - t0, 1e-9), 100 * np.isfinite(field.dx).mean())
