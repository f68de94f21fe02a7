"""icetrack: glacier surface velocity from optical image pairs by feature tracking.

The science lives here; the Snakemake rule scripts in ``scripts/`` only read their
inputs, call these functions and write outputs.
"""

__version__ = "0.1.0"
