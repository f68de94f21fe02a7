"""``python -m icetrack.bench``: the kernel benchmark (:mod:`icetrack.bench.kernels`)."""

from icetrack.bench.kernels import main

main()
