# Outputs people use: GeoTIFFs of vx, vy, v and a speed map figure.


rule export_geotiff:
    input:
        "results/{glacier}/{pair}/velocity.nc",
    output:
        vx="results/{glacier}/{pair}/vx.tif",
        vy="results/{glacier}/{pair}/vy.tif",
        v="results/{glacier}/{pair}/v.tif",
    log:
        "logs/{glacier}/{pair}/export_geotiff.log",
    conda:
        "../../envs/icetrack.yaml"
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
    conda:
        "../../envs/icetrack.yaml"
    script:
        "../../scripts/figure_speed.py"
