# Step 4: texture filters on the common grid.


rule filter_scene:
    input:
        "results/{glacier}/scenes/{date}.tif",
    output:
        "results/{glacier}/filtered/{date}.tif",
    params:
        filter=block("filter"),
    log:
        "logs/{glacier}/filter/{date}.log",
    benchmark:
        "benchmarks/{glacier}/filter/{date}.tsv"
    conda:
        "../../envs/icetrack.yaml"
    script:
        "../../scripts/filter.py"
