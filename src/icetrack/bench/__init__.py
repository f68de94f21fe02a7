"""Benchmarks and accuracy against known answers: the tracking kernels against OpenCV and
scikit-image (:mod:`.kernels`, ``python -m icetrack.bench``), the whole workflow on a full
Sentinel-2-size pair (:mod:`.full_scene`, ``python -m icetrack.bench.full_scene``) and
scores of a map against a true field (:mod:`.evaluate`)."""
