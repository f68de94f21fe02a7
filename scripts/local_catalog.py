"""Rule local_catalog: a `local_files` source's GeoTIFFs written as a static STAC catalogue."""

from icetrack.access.local_files import write_local_catalog
from icetrack.common.logs import start_logging

log = start_logging(snakemake)
write_local_catalog(snakemake.params.source["files"], snakemake.output[0])
log.info("static catalogue of %d local files written", len(snakemake.params.source["files"]))
