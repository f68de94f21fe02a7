# Step 3: the kernel and its parameters for one pair.


rule kernel_params:
    input:
        grid="results/{glacier}/grid.json",
    output:
        "results/{glacier}/{pair}/kernel.json",
    params:
        tracking=block("tracking"),
    log:
        "logs/{glacier}/{pair}/kernel_params.log",
    benchmark:
        "benchmarks/{glacier}/{pair}/kernel_params.tsv"
    resources:
        mem_mb=mem_mb("glacier"),
        runtime=runtime("glacier"),
    group:
        "pair"
    conda:
        "../../envs/tracking.yaml"
    script:
        "../../scripts/kernel_params.py"
