"""Rule demo_data: the offline demo glacier (scenes, outline, stable ground, STAC catalogue)."""

from pathlib import Path

from icetrack.demo.synthetic import make_demo
from icetrack.common.logs import start_logging

log = start_logging(snakemake)
catalog = make_demo(Path(snakemake.output.catalog).parent.parent, seed=snakemake.params.seed)
log.info("demo scenes and catalogue written: %s", catalog)
