# Step 2: the common grid of a glacier, and each date's window reprojected onto it.


rule define_grid:
    input:
        glacier_files,
    output:
        grid="results/{glacier}/grid.json",
        masks="results/{glacier}/masks.tif",
    params:
        grid=block("grid"),
        glacier=glacier_geometry,
    log:
        "logs/{glacier}/define_grid.log",
    benchmark:
        "benchmarks/{glacier}/define_grid.tsv"
    resources:
        mem_mb=mem_mb("glacier"),
        runtime=runtime("glacier"),
    conda:
        "../../envs/io.yaml"
    script:
        "../../scripts/define_grid.py"


rule fetch:
    input:
        grid="results/{glacier}/grid.json",
        # The scene list comes from the pairs checkpoint (params below); naming it lets a date be
        # fetched on its own (snakemake results/g/scenes/D.tif). ancient(): a new pair choice
        # must not re-fetch every date — the params trigger sees a changed scene list.
        pairs=ancient("results/{glacier}/pairs.csv"),
    output:
        "results/{glacier}/scenes/{date}.tif",
    params:
        scenes=scenes_of_date,
        source=glacier_source,
        grid=block("grid"),
    log:
        "logs/{glacier}/fetch/{date}.log",
    benchmark:
        "benchmarks/{glacier}/fetch/{date}.tsv"
    resources:
        mem_mb=mem_mb("fetch"),
        runtime=runtime("fetch"),
        http_connections=1,
    group:
        "scene"
    conda:
        "../../envs/io.yaml"
    script:
        "../../scripts/fetch.py"
