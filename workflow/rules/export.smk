# Outputs people use: Cloud-Optimised GeoTIFFs of vx, vy, v, figures per pair (speed map,
# quality panel), the glacier's velocity cube, point time series and the report tables.


rule export_geotiff:
    input:
        "results/{glacier}/{pair}/velocity.nc",
    output:
        vx="results/{glacier}/{pair}/vx.tif",
        vy="results/{glacier}/{pair}/vy.tif",
        v="results/{glacier}/{pair}/v.tif",
    log:
        "logs/{glacier}/{pair}/export_geotiff.log",
    benchmark:
        "benchmarks/{glacier}/{pair}/export_geotiff.tsv"
    resources:
        mem_mb=mem_mb("export"),
        runtime=runtime("export"),
    group:
        "pair"
    conda:
        "../../envs/outputs.yaml"
    script:
        "../../scripts/export_geotiff.py"


rule figure_speed:
    input:
        velocity="results/{glacier}/{pair}/velocity.nc",
        ref=lambda w: f"results/{w.glacier}/scenes/{w.pair.split('_')[0]}.tif",
    output:
        report(
            "results/{glacier}/{pair}/speed.png",
            caption="../report/speed.rst",
            category="Velocity maps",
            subcategory="{glacier}",
            labels={"glacier": "{glacier}", "pair": "{pair}"},
        ),
    log:
        "logs/{glacier}/{pair}/figure_speed.log",
    benchmark:
        "benchmarks/{glacier}/{pair}/figure_speed.tsv"
    resources:
        mem_mb=mem_mb("export"),
        runtime=runtime("export"),
    group:
        "pair"
    conda:
        "../../envs/outputs.yaml"
    script:
        "../../scripts/figure_speed.py"


rule figure_quality:
    input:
        velocity="results/{glacier}/{pair}/velocity.nc",
        masks="results/{glacier}/masks.tif",
    output:
        report(
            "results/{glacier}/{pair}/quality.png",
            caption="../report/quality_figure.rst",
            category="Quality",
            subcategory="{glacier}",
            labels={"glacier": "{glacier}", "pair": "{pair}"},
        ),
    log:
        "logs/{glacier}/{pair}/figure_quality.log",
    benchmark:
        "benchmarks/{glacier}/{pair}/figure_quality.tsv"
    resources:
        mem_mb=mem_mb("export"),
        runtime=runtime("export"),
    group:
        "pair"
    conda:
        "../../envs/outputs.yaml"
    script:
        "../../scripts/figure_quality.py"


# Glacier-level rules take one file per chosen pair (known after the select_pairs checkpoint).
rule cube:
    input:
        lambda w: [f"results/{w.glacier}/{pair}/velocity.nc" for pair in pairs_table(w.glacier)["pair"]],
    output:
        "results/{glacier}/cube.nc",
    log:
        "logs/{glacier}/cube.log",
    benchmark:
        "benchmarks/{glacier}/cube.tsv"
    resources:
        mem_mb=mem_mb("glacier"),
        runtime=runtime("glacier"),
    group:
        "glacier_summary"
    conda:
        "../../envs/outputs.yaml"
    script:
        "../../scripts/cube.py"


rule timeseries:
    input:
        # optional reference series: ITS_LIVE (reference: block) or the glacier table's `reference` column
        unpack(timeseries_reference),
        cube="results/{glacier}/cube.nc",
    output:
        csv="results/{glacier}/timeseries.csv",
        plot=report(
            "results/{glacier}/timeseries.png",
            caption="../report/timeseries.rst",
            category="Time series",
            labels={"glacier": "{glacier}"},
        ),
    params:
        points=lambda w: GLACIERS[w.glacier].get("points", ""),
    log:
        "logs/{glacier}/timeseries.log",
    benchmark:
        "benchmarks/{glacier}/timeseries.tsv"
    resources:
        mem_mb=mem_mb("glacier"),
        runtime=runtime("glacier"),
    group:
        "glacier_summary"
    conda:
        "../../envs/outputs.yaml"
    script:
        "../../scripts/timeseries.py"


rule report_tables:
    input:
        scenes="results/{glacier}/scenes.csv",
        pairs="results/{glacier}/pairs.csv",
        quality=lambda w: [f"results/{w.glacier}/{pair}/quality.json" for pair in pairs_table(w.glacier)["pair"]],
    output:
        quality_csv="results/{glacier}/quality_summary.csv",
        scenes=report("results/{glacier}/report/scenes.html", caption="../report/scenes.rst", category="Tables",
                      labels={"glacier": "{glacier}", "table": "scenes"}),
        pairs=report("results/{glacier}/report/pairs.html", caption="../report/pairs.rst", category="Tables",
                     labels={"glacier": "{glacier}", "table": "pairs"}),
        quality=report("results/{glacier}/report/quality.html", caption="../report/quality_table.rst",
                       category="Tables", labels={"glacier": "{glacier}", "table": "quality"}),
    log:
        "logs/{glacier}/report_tables.log",
    benchmark:
        "benchmarks/{glacier}/report_tables.tsv"
    resources:
        mem_mb=mem_mb("glacier"),
        runtime=runtime("glacier"),
    group:
        "glacier_summary"
    conda:
        "../../envs/outputs.yaml"
    script:
        "../../scripts/report_tables.py"
