import json
from datetime import datetime

from icetrack.common.atomic import write_text_atomic
from icetrack.common.grid import Grid
from icetrack.track.params import kernel_parameters
from icetrack.common.logs import start_logging

log = start_logging(snakemake)
ref, sec = (datetime.strptime(d, "%Y%m%d") for d in snakemake.wildcards.pair.split("_"))
grid = Grid.from_json(snakemake.input.grid)
params = kernel_parameters(snakemake.params.tracking, (sec - ref).days, grid.resolution_m)
params["pair"] = snakemake.wildcards.pair
write_text_atomic(snakemake.output[0], json.dumps(params, indent=2))
log.info("kernel parameters: %s", params)
