from datetime import date

from icetrack.common.atomic import atomic_path
from icetrack.common.grid import load_outline
from icetrack.query.scenes import query_scenes
from icetrack.common.logs import network_settings, start_logging

log = start_logging(snakemake)
g, source = snakemake.params.glacier, dict(snakemake.params.source)
if "catalog" in snakemake.input.keys():
    source["catalog"] = snakemake.input.catalog
outline = load_outline(g["outline"], g["bbox"] or None)
scenes = query_scenes(source, outline, date.fromisoformat(g["start_date"]), date.fromisoformat(g["end_date"]),
                      network_settings(snakemake))
with atomic_path(snakemake.output[0]) as tmp:
    scenes.to_csv(tmp, index=False)
log.info("%d scenes found from %s %s", len(scenes), source.get("url") or source.get("catalog", ""),
         source.get("collections") or "")
for s in scenes.itertuples():
    log.info("%s %s orbit %s: cloud %.1f %% of the tile, %.1f %% of the glacier (%.0f %% of it observed)",
             s.date, s.id, s.orbit, s.cloud_cover_tile_pct, 100 * s.cloud_fraction_glacier,
             100 * s.glacier_observed_fraction)
