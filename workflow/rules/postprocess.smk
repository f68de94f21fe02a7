# Step 6: outlier masks, stable-ground correction, small-gap filling, errors.


rule postprocess:
    input:
        offsets="results/{glacier}/{pair}/offsets.nc",
        masks="results/{glacier}/masks.tif",
    output:
        velocity="results/{glacier}/{pair}/velocity.nc",
        quality="results/{glacier}/{pair}/quality.json",
    params:
        postprocess=block("postprocess"),
        provenance=pair_provenance,
    log:
        "logs/{glacier}/{pair}/postprocess.log",
    benchmark:
        "benchmarks/{glacier}/{pair}/postprocess.tsv"
    conda:
        "../../envs/icetrack.yaml"
    script:
        "../../scripts/postprocess.py"
