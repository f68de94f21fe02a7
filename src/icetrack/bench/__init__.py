"""Benchmarks and accuracy against known answers: the tracking kernels against OpenCV and
scikit-image (:mod:`.kernels`, ``python -m icetrack.bench``) and scores of a map against a
true field (:mod:`.evaluate`)."""
