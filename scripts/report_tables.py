"""Rule report_tables: the scene, pair and quality tables of the Snakemake report (HTML, CSV)."""

import pandas as pd

from icetrack.common.atomic import atomic_path, write_text_atomic
from icetrack.report.tables import html_table, quality_summary, scenes_table, summary_line
from icetrack.common.logs import start_logging

log = start_logging(snakemake)
g = snakemake.wildcards.glacier
quality = quality_summary(list(snakemake.input.quality))
with atomic_path(snakemake.output.quality_csv) as tmp:
    quality.to_csv(tmp, index=False)
write_text_atomic(snakemake.output.scenes, html_table(
    scenes_table(snakemake.input.scenes), f"{g}: scenes found",
    "Every scene the query returned; cloud_fraction_glacier is the cloudy share of the glacier outline (0–1), "
    "cloud_cover_tile_pct the provider's whole-tile cloud cover (%)."))
write_text_atomic(snakemake.output.pairs, html_table(
    pd.read_csv(snakemake.input.pairs, dtype=str), f"{g}: chosen pairs",
    "Image pairs selected for tracking: dates, separation (days), scene ids and the larger glacier cloud fraction."))
write_text_atomic(snakemake.output.quality, html_table(
    quality, f"{g}: quality metrics across pairs",
    "Per pair: points tracked and valid (%), share masked by each reason (%), and the residual bias and NMAD "
    "of vx, vy over stable ground (m/yr; the truth there is 0)."))
log.info(summary_line(g, quality))
