"""The Snakemake report's tables (:mod:`.tables`)."""
