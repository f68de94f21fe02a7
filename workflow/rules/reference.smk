# Optional reference: ITS_LIVE velocity on the glacier grid (maps and point series), and a
# comparison figure per pair. Off unless `reference.source` is set (it reads over the network).


rule reference:
    input:
        grid="results/{glacier}/grid.json",
    output:
        vx="results/{glacier}/reference/itslive_vx.tif",
        vy="results/{glacier}/reference/itslive_vy.tif",
        v="results/{glacier}/reference/itslive_v.tif",
        points="results/{glacier}/reference/itslive_points.csv",
    params:
        reference=block("reference"),
        dates=lambda w: {k: GLACIERS[w.glacier][k] for k in ("start_date", "end_date")},
        points=lambda w: GLACIERS[w.glacier].get("points", ""),
    # Reads over the network: a transient failure (timeout, 5xx) is worth another try.
    retries: 2
    log:
        "logs/{glacier}/reference.log",
    benchmark:
        "benchmarks/{glacier}/reference.tsv"
    conda:
        "../../envs/io.yaml"
    script:
        "../../scripts/reference.py"


rule figure_reference:
    input:
        velocity="results/{glacier}/{pair}/velocity.nc",
        reference="results/{glacier}/reference/itslive_v.tif",
        masks="results/{glacier}/masks.tif",
    output:
        figure=report(
            "results/{glacier}/{pair}/reference_comparison.png",
            caption="../report/reference_comparison.rst",
            category="Reference (ITS_LIVE)",
            subcategory="{glacier}",
            labels={"glacier": "{glacier}", "pair": "{pair}"},
        ),
        stats="results/{glacier}/{pair}/reference_comparison.json",
    log:
        "logs/{glacier}/{pair}/figure_reference.log",
    benchmark:
        "benchmarks/{glacier}/{pair}/figure_reference.tsv"
    conda:
        "../../envs/outputs.yaml"
    script:
        "../../scripts/reference_figure.py"
