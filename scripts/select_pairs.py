import pandas as pd

from icetrack.common.atomic import atomic_path
from icetrack.query.pairs import select_pairs
from icetrack.common.logs import start_logging

log = start_logging(snakemake)
scenes = pd.read_csv(snakemake.input[0], dtype={"date": str, "orbit": str, "id": str}, keep_default_na=False)
scenes["cloud_fraction_glacier"] = scenes["cloud_fraction_glacier"].astype(float)
scenes["glacier_observed_fraction"] = scenes["glacier_observed_fraction"].astype(float)
pairs = select_pairs(scenes, **snakemake.params.pairs)
with atomic_path(snakemake.output[0]) as tmp:
    pairs.to_csv(tmp, index=False)
log.info("%d pairs chosen from %d scenes: %s", len(pairs), len(scenes), pairs["pair"].tolist())
