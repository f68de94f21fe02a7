# Step 5: tracking, one rule whatever the kernel (tracking.method).


rule track:
    input:
        unpack(pair_dates),
        kernel="results/{glacier}/{pair}/kernel.json",
        # The optional reference velocity map that centres the searches (none by default).
        prior=reference_files("tracking", "prior"),
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
