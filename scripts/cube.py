import time

from icetrack.outputs.cube import build_cube, write_cube
from icetrack.common.logs import progress, start_logging

log = start_logging(snakemake)
t0 = time.time()
with progress(len(snakemake.input), f"cube {snakemake.wildcards.glacier}", "pair") as bar:
    cube = build_cube(list(snakemake.input), snakemake.wildcards.glacier, progress=bar.update)
write_cube(cube, snakemake.output[0])
log.info("cube %s: %d pairs on a %d x %d grid, %.1f %% of values valid, %.1f s", snakemake.wildcards.glacier,
         cube.sizes["mid_date"], cube.sizes["y"], cube.sizes["x"], 100 * float(cube["v"].notnull().mean()),
         time.time() - t0)
