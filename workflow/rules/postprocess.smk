# Step 6: outlier masks, stable-ground correction, small-gap filling, errors, quality metrics.


rule postprocess:
    input:
        offsets="results/{glacier}/{pair}/offsets.nc",
        masks="results/{glacier}/masks.tif",
        # The optional reference flow GeoTIFFs of the direction test (none by default).
        reference=reference_files("postprocess", "direction"),
    output:
        velocity="results/{glacier}/{pair}/velocity.nc",
        quality="results/{glacier}/{pair}/quality.json",
        quality_html=report(
            "results/{glacier}/{pair}/quality.html",
            caption="../report/quality.rst",
            category="Quality",
            subcategory="{glacier}",
            labels={"glacier": "{glacier}", "pair": "{pair}"},
        ),
    params:
        postprocess=block("postprocess"),
        provenance=pair_provenance,
    log:
        "logs/{glacier}/{pair}/postprocess.log",
    benchmark:
        "benchmarks/{glacier}/{pair}/postprocess.tsv"
    resources:
        mem_mb=mem_mb("postprocess"),
        runtime=runtime("postprocess"),
    group:
        "pair"
    conda:
        "../../envs/tracking.yaml"
    script:
        "../../scripts/postprocess.py"
