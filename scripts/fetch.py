import time

import numpy as np

from icetrack.access import sources
from icetrack.fetch.window import fetch_date
from icetrack.common.grid import Grid
from icetrack.query.scenes import resolved_source
from icetrack.common.rasters import write_geotiff
from icetrack.common.logs import network_settings, progress, start_logging

log = start_logging(snakemake)
grid = Grid.from_json(snakemake.input.grid)
scenes, source = snakemake.params.scenes, resolved_source(snakemake.params.source)
fetch = network_settings(snakemake)
t0 = time.time()
# Signed (Planetary Computer) or /vsis3/ (requester-pays) paths are made here, at read time.
hrefs = [sources.gdal_href(h, source) for h in scenes["hrefs"]]
cloud_hrefs = [sources.gdal_href(h, source) for h in scenes["cloud_hrefs"]]
with sources.reading(source, fetch), progress(len(hrefs), f"fetch {snakemake.wildcards.date}", "scene") as bar:
    image = fetch_date(hrefs, cloud_hrefs, grid, sources.cloud_rule(source),
                       snakemake.params.grid["resampling"], source.get("scale", 1.0), source.get("offset", 0.0),
                       progress=bar.update, fetch=fetch, sizes_bytes=scenes.get("sizes_bytes"),
                       checksums=scenes.get("checksums"), scales=scenes.get("scales"), offsets=scenes.get("offsets"))
write_geotiff(snakemake.output[0], image, grid.transform, grid.crs, descriptions=[source.get("band_asset", "band")],
              units="reflectance", tags={"scene_ids": ",".join(scenes["ids"])})
log.info("date %s from %s: %.1f %% of the grid valid, %.1f s", snakemake.wildcards.date, scenes["ids"],
         100 * np.isfinite(image).mean(), time.time() - t0)
