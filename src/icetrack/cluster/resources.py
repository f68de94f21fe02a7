"""Cluster resources of each job (memory in MB, run time in minutes), from the data size.

A scheduler (Slurm, Kubernetes, AWS Batch) needs each job's memory and time before it
starts. Guessing one figure per rule in a profile either wastes the cluster on small
glaciers or kills jobs on big ones, so the rules ask this module, which sizes each job
from what it will read: the common grid (``grid.json`` or a raster header) and the
kernel's step (``kernel.json``). The per-pixel and per-point figures below are the
measured peak RSS and speed of each step on a full 10 980 × 10 980 Sentinel-2 pair
(``python -m icetrack.bench.full_scene``, docs/scaling.md) with headroom; a job that still runs out
is retried with ``attempt``× the memory and time (``retries`` in the profile).

Each function reads only files that are inputs of the job: while they do not exist yet
(before the upstream job ran) the ``FileNotFoundError`` tells Snakemake to evaluate the
resource later, once they do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class StepCost:
    """Peak memory and run time of one step as a function of its data size.

    ``base_mb`` is the interpreter with numpy/rasterio/xarray loaded; ``bytes_per_pixel``
    scales with the grid (pixels of the common grid), ``bytes_per_point`` with the tracked
    points. ``pixels_per_s`` / ``points_per_s`` are single-thread throughputs.
    """

    base_mb: float
    bytes_per_pixel: float = 0.0
    bytes_per_point: float = 0.0
    pixels_per_s: float = math.inf
    points_per_s: float = math.inf
    base_min: float = 2.0


# Measured figures (docs/scaling.md), rounded up; memory ×1.5 and time ×3 headroom are
# applied in job_memory_mb / job_runtime_min.
COSTS: dict[str, StepCost] = {
    "fetch": StepCost(base_mb=250, bytes_per_pixel=14, pixels_per_s=2e6),
    "filter": StepCost(base_mb=250, bytes_per_pixel=14, pixels_per_s=1e6),
    "track": StepCost(base_mb=400, bytes_per_pixel=10, bytes_per_point=320, points_per_s=4e3),
    "postprocess": StepCost(base_mb=300, bytes_per_pixel=2, bytes_per_point=450, points_per_s=2e4),
    "export": StepCost(base_mb=300, bytes_per_point=200, points_per_s=5e4),
    "glacier": StepCost(base_mb=500, base_min=5.0),  # small per-glacier jobs: tables, cube, report
}
MEMORY_HEADROOM = 1.5
TIME_HEADROOM = 3.0


@dataclass(frozen=True)
class JobSize:
    """What a job reads: grid pixels and tracked points (either may be 0)."""

    pixels: int = 0
    points: int = 0


def grid_pixels(grid_json: str | Path) -> int:
    """Pixels of the common grid described by ``grid.json`` (raises FileNotFoundError until it exists)."""
    with open(grid_json) as f:
        grid = json.load(f)
    return int(grid["width"]) * int(grid["height"])


def raster_pixels(path: str | Path) -> int:
    """Pixels of a GeoTIFF, from its header only."""
    Path(path).stat()  # FileNotFoundError (with the path) until the upstream job wrote it
    import rasterio

    with rasterio.open(path) as src:
        return src.width * src.height


def netcdf_points(path: str | Path) -> int:
    """Points (y × x) of an offsets/velocity NetCDF, from its header only."""
    Path(path).stat()
    import netCDF4

    with netCDF4.Dataset(path) as ds:
        return len(ds.dimensions["y"]) * len(ds.dimensions["x"])


def tracked_points(pixels: int, kernel_json: str | Path) -> int:
    """Points the tracking grid will have: one every ``step_px`` pixels in each direction."""
    with open(kernel_json) as f:
        step = int(json.load(f)["step_px"])
    return math.ceil(pixels / step**2)


def job_memory_mb(step: str, size: JobSize, attempt: int = 1) -> int:
    """Memory (MB) to request for ``step`` on data of ``size``, scaled by the attempt number."""
    c = COSTS[step]
    peak = c.base_mb + (c.bytes_per_pixel * size.pixels + c.bytes_per_point * size.points) / 1e6
    return int(math.ceil(MEMORY_HEADROOM * peak * attempt / 100.0) * 100)


def job_runtime_min(step: str, size: JobSize, attempt: int = 1, threads: int = 1) -> int:
    """Wall time (minutes) to request for ``step``, scaled by the attempt number."""
    c = COSTS[step]
    seconds = size.pixels / c.pixels_per_s + size.points / (c.points_per_s * max(threads, 1))
    return int(math.ceil(TIME_HEADROOM * (c.base_min + seconds / 60.0) * attempt))


# ---- the callables the rules use: (wildcards, input, threads, attempt) -> int --------------------

def _size_of(step: str, input) -> JobSize:
    if step == "fetch":
        return JobSize(pixels=grid_pixels(input.grid))
    if step == "filter":
        return JobSize(pixels=raster_pixels(input[0]))
    if step == "track":
        pixels = raster_pixels(input.ref)
        return JobSize(pixels=pixels, points=tracked_points(pixels, input.kernel))
    if step == "postprocess":
        return JobSize(pixels=raster_pixels(input.masks), points=netcdf_points(input.offsets))
    if step == "export":
        velocity = input.velocity if hasattr(input, "velocity") else input[0]
        return JobSize(points=netcdf_points(velocity))
    return JobSize()


def mem_mb(step: str) -> Callable:
    """``resources: mem_mb=mem_mb("track")`` — memory from the job's input sizes and attempt."""

    def memory(wildcards, input, attempt) -> int:
        return job_memory_mb(step, _size_of(step, input), attempt)

    return memory


def runtime(step: str) -> Callable:
    """``resources: runtime=runtime("track")`` — minutes from the job's input sizes, threads, attempt."""

    def minutes(wildcards, input, threads, attempt) -> int:
        return job_runtime_min(step, _size_of(step, input), attempt, threads)

    return minutes
