# Step 5: tracking, one rule whatever the kernel (tracking.method).


def pair_dates(w):
    ref, sec = w.pair.split("_")
    return {"ref": f"results/{w.glacier}/filtered/{ref}.tif", "sec": f"results/{w.glacier}/filtered/{sec}.tif"}


rule track:
    input:
        unpack(pair_dates),
        kernel="results/{glacier}/{pair}/kernel.json",
    output:
        "results/{glacier}/{pair}/offsets.nc",
    threads: 2
    log:
        "logs/{glacier}/{pair}/track.log",
    benchmark:
        "benchmarks/{glacier}/{pair}/track.tsv"
    resources:
        mem_mb=mem_mb("track"),
        runtime=runtime("track"),
    group:
        "pair"
    conda:
        "../../envs/tracking.yaml"
    script:
        "../../scripts/track.py"
