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
    resources:
        mem_mb=mem_mb("filter"),
        runtime=runtime("filter"),
    group:
        "scene"
    conda:
        "../../envs/tracking.yaml"
    script:
        "../../scripts/filter.py"
