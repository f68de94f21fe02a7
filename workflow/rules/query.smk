# Step 1: scenes over the glacier from a STAC catalogue, then the pair choice.


rule demo_data:
    """The offline demo: scenes, a static STAC catalogue, outlines and the true field."""
    output:
        catalog="resources/demo/stac/catalog.json",
        outline="resources/demo/outline.geojson",
        stable="resources/demo/stable_ground.geojson",
        truth_vx="resources/demo/truth_vx.tif",
        truth_vy="resources/demo/truth_vy.tif",
    params:
        seed=config["sources"].get("demo", {}).get("seed", 0),
    log:
        "logs/demo_data.log",
    benchmark:
        "benchmarks/demo_data.tsv"
    resources:
        mem_mb=mem_mb("glacier"),
        runtime=runtime("glacier"),
    conda:
        "../../envs/io.yaml"
    script:
        "../../scripts/make_demo.py"


rule local_catalog:
    """A static STAC catalogue of a glacier's local GeoTIFFs, so they go through the same query."""
    output:
        "results/{glacier}/local_catalog/catalog.json",
    params:
        source=glacier_source,
    log:
        "logs/{glacier}/local_catalog.log",
    benchmark:
        "benchmarks/{glacier}/local_catalog.tsv"
    resources:
        mem_mb=mem_mb("glacier"),
        runtime=runtime("glacier"),
    conda:
        "../../envs/io.yaml"
    script:
        "../../scripts/local_catalog.py"


rule query:
    input:
        unpack(query_inputs),
    output:
        "results/{glacier}/scenes.csv",
    params:
        source=glacier_source,
        glacier=glacier_geometry,
    log:
        "logs/{glacier}/query.log",
    benchmark:
        "benchmarks/{glacier}/query.tsv"
    resources:
        mem_mb=mem_mb("glacier"),
        runtime=runtime("glacier"),
    conda:
        "../../envs/io.yaml"
    script:
        "../../scripts/query.py"


checkpoint select_pairs:
    input:
        "results/{glacier}/scenes.csv",
    output:
        "results/{glacier}/pairs.csv",
    params:
        pairs=block("pairs"),
    log:
        "logs/{glacier}/select_pairs.log",
    benchmark:
        "benchmarks/{glacier}/select_pairs.tsv"
    resources:
        mem_mb=mem_mb("glacier"),
        runtime=runtime("glacier"),
    conda:
        "../../envs/io.yaml"
    script:
        "../../scripts/select_pairs.py"
