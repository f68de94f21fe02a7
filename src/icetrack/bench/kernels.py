"""Tracking benchmark: icetrack's kernels against OpenCV and scikit-image, same chips, same process.

    python -m icetrack.bench [--seed 0] [--size 1024] [--threads 2] [--repeats 3] [--json bench.json]
    python -m icetrack.bench --memory [--scene-px 10980] [--method fft_ncc]

Cases (generated here, truth known exactly):

- ``uniform``: the whole image shifted by a random sub-pixel vector (Fourier shift, so
  no interpolation error), several pairs; Gaussian noise (1 % of the range) and 12-bit
  quantisation on both images.
- ``shear``: a smooth simple-shear flow, 0 px at the top to ~9 px east at the bottom.
- ``radiometric``: a uniform shift plus a gain (×1.3) and offset (−0.1) change between dates.

Every method gets the same 32-px reference chips and the same ±12-px search windows
(56 px) from the secondary image: ``fft_ncc`` and ``ampcor`` (icetrack's kernels,
batched, each batch split between ``--threads`` threads), ``opencv`` (``cv2.matchTemplate``
with ``TM_CCOEFF_NORMED``, one chip at a time as its API takes them, then a 3-point
Gaussian peak fit per axis, falling back to a parabola where the Gaussian is undefined)
and ``skimage`` (``phase_cross_correlation(upsample_factor=100)`` of the 32-px reference
chip against the secondary chip at the same place). OpenCV runs in a pool of
``--threads`` threads over the chips — its fastest fair use of the cores (field notes);
scikit-image runs in one (GIL-bound: a pool made it slower).

Figures per case and method: ``chips_per_s``, ``rmse_px`` (RMS of the vector error over
non-outliers), ``bias_px`` (length of the mean error vector over non-outliers) and
``outlier_frac`` (error > 1 px or no result). The table also shows each as a ratio to
OpenCV's. Timings include everything a method does per chip (for icetrack's kernels:
the batched FFTs, peak search, sub-pixel refinement, SNR and curvature).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from icetrack.demo.synthetic import fractal_noise

CHIP_PX = 32
SEARCH_PX = 12
STEP_PX = 24
OUTLIER_PX = 1.0
SHEAR_MAX_PX = 9.0


@dataclass
class Case:
    """Chips (B,N,N), windows (B,M,M) and the true offsets of each chip centre (px)."""

    chips: np.ndarray
    windows: np.ndarray
    true_dx: np.ndarray
    true_dy: np.ndarray
    sec_chips: np.ndarray  # the secondary image at the chip's own place (for phase correlation)


def texture(size: int, rng: np.random.Generator) -> np.ndarray:
    """Glacier-like texture in 0..1: fractal background plus fine grain."""
    t = 0.7 * fractal_noise((size, size), 2.2, rng) + 0.3 * fractal_noise((size, size), 1.0, rng)
    return 0.5 + 0.1 * t


def fourier_shift(image: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """``image`` moved by (dy, dx) px (features move by +d), exactly, as a periodic signal."""
    spectrum = ndimage.fourier_shift(np.fft.fft2(image), (dy, dx))
    return np.fft.ifft2(spectrum).real


def sensor(image: np.ndarray, rng: np.random.Generator, noise: float = 0.01) -> np.ndarray:
    """Gaussian noise then 12-bit quantisation of 0..1 reflectance."""
    noisy = image + noise * rng.standard_normal(image.shape)
    return (np.clip(np.rint(noisy * 4095), 0, 4095)).astype(np.float32)


def cut(ref: np.ndarray, sec: np.ndarray, true_dx: np.ndarray, true_dy: np.ndarray) -> Case:
    """Chips on a regular grid that keeps every search window inside the image."""
    m = CHIP_PX + 2 * SEARCH_PX
    starts = np.arange(SEARCH_PX, ref.shape[0] - CHIP_PX - SEARCH_PX + 1, STEP_PX)
    rows, cols = (a.ravel() for a in np.meshgrid(starts, starts, indexing="ij"))
    chips = sliding_window_view(ref, (CHIP_PX, CHIP_PX))[rows, cols]
    windows = sliding_window_view(sec, (m, m))[rows - SEARCH_PX, cols - SEARCH_PX]
    sec_chips = sliding_window_view(sec, (CHIP_PX, CHIP_PX))[rows, cols]
    # The true offset of a chip is the field at its centre (pixel-is-area: rows + N/2 − 0.5 in index terms).
    centre_r, centre_c = rows + CHIP_PX / 2 - 0.5, cols + CHIP_PX / 2 - 0.5
    tdx = ndimage.map_coordinates(true_dx, [centre_r, centre_c], order=1)
    tdy = ndimage.map_coordinates(true_dy, [centre_r, centre_c], order=1)
    return Case(np.ascontiguousarray(chips), np.ascontiguousarray(windows), tdx, tdy, np.ascontiguousarray(sec_chips))


def concat(cases: list[Case]) -> Case:
    return Case(*(np.concatenate([getattr(c, f) for c in cases]) for f in Case.__dataclass_fields__))


def uniform_case(size: int, rng: np.random.Generator, gain: float = 1.0, offset: float = 0.0, pairs: int = 4) -> Case:
    parts = []
    for _ in range(pairs):
        base = texture(size, rng)
        dy, dx = rng.uniform(-4, 4, 2)
        sec = fourier_shift(base, dy, dx) * gain + offset
        field = np.ones_like(base)
        parts.append(cut(sensor(base, rng), sensor(sec, rng), field * dx, field * dy))
    return concat(parts)


def shear_case(size: int, rng: np.random.Generator) -> Case:
    """Simple shear: dx grows smoothly from 0 (top) to SHEAR_MAX_PX (bottom), dy = 0.

    The secondary is the reference traced back along the (steady) flow with cubic
    B-splines on a smooth texture, so the interpolation error is far below 0.01 px."""
    base = texture(size, rng)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    dx = SHEAR_MAX_PX * 0.5 * (1 - np.cos(np.pi * rows / (size - 1)))
    sec = ndimage.map_coordinates(base, [rows, cols - dx], order=3, mode="reflect")
    return cut(sensor(base, rng), sensor(sec, rng), dx, np.zeros_like(dx))


def make_cases(size: int, seed: int) -> dict[str, Case]:
    rng = np.random.default_rng(seed)
    return {
        "uniform": uniform_case(size, rng),
        "shear": shear_case(size, rng),
        "radiometric": uniform_case(size, rng, gain=1.3, offset=-0.1, pairs=2),
    }


# --- methods: each maps a Case to (dx, dy) per chip --------------------------------------------


def icetrack_method(name: str, threads: int) -> Callable[[Case], tuple[np.ndarray, np.ndarray]]:
    from icetrack.track.api import BLOCK_POINTS as block  # chips per kernel call, as the workflow runs it
    from icetrack.track.api import KERNELS

    kernel = KERNELS[name]

    def run(case: Case) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = np.empty(len(case.chips)), np.empty(len(case.chips))
        for s in range(0, len(case.chips), block):
            out = kernel(case.chips[s:s + block], case.windows[s:s + block], workers=threads)
            dx[s:s + block], dy[s:s + block] = out["dx"], out["dy"]
        return dx, dy

    return run


def _three_point(left: float, centre: float, right: float) -> float:
    """Sub-pixel peak offset from 3 samples: Gaussian fit, parabola where the log is undefined."""
    if left > 0 and centre > 0 and right > 0:
        ll, lc, lr = np.log(left), np.log(centre), np.log(right)
        den = 2 * (ll - 2 * lc + lr)
        if den < 0:
            return (ll - lr) / den
    den = 2 * (left - 2 * centre + right)
    return (left - right) / den if den < 0 else 0.0


def pooled(per_chip: Callable[[Case, int], tuple[float, float]], threads: int) -> Callable[[Case], tuple[np.ndarray, np.ndarray]]:
    """A peer's fastest fair use of ``threads`` cores: a thread pool over contiguous slices
    of chips (OpenCV's ``matchTemplate`` and numpy's FFTs release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=threads)

    def run(case: Case) -> tuple[np.ndarray, np.ndarray]:
        n = len(case.chips)
        dx, dy = np.full(n, np.nan), np.full(n, np.nan)
        bounds = np.linspace(0, n, threads + 1).astype(int)

        def run_slice(k: int) -> None:
            for i in range(bounds[k], bounds[k + 1]):
                dx[i], dy[i] = per_chip(case, i)

        list(pool.map(run_slice, range(threads)))
        return dx, dy

    return run


def opencv_method(threads: int) -> Callable[[Case], tuple[np.ndarray, np.ndarray]]:
    """``cv2.matchTemplate(TM_CCOEFF_NORMED)`` + 3-point Gaussian fit, in a ``threads`` pool
    (OpenCV's own threading, ``cv2.setNumThreads``, adds nothing on 32-px chips — field notes)."""
    import cv2

    cv2.setNumThreads(1)

    def per_chip(case: Case, i: int) -> tuple[float, float]:
        surface = cv2.matchTemplate(case.windows[i], case.chips[i], cv2.TM_CCOEFF_NORMED)
        _, _, _, (px, py) = cv2.minMaxLoc(surface)
        if 0 < px < surface.shape[1] - 1 and 0 < py < surface.shape[0] - 1:
            sx = _three_point(surface[py, px - 1], surface[py, px], surface[py, px + 1])
            sy = _three_point(surface[py - 1, px], surface[py, px], surface[py + 1, px])
            return px + sx - SEARCH_PX, py + sy - SEARCH_PX
        return np.nan, np.nan

    return pooled(per_chip, threads)


def skimage_method(threads: int) -> Callable[[Case], tuple[np.ndarray, np.ndarray]]:
    """``phase_cross_correlation(upsample_factor=100)`` of the reference chip against the
    secondary chip at the same place, one thread: it is GIL-bound (many small numpy
    calls), and a 2-thread pool ran it 30 % slower (135 vs 97 chips/s, 300 chips)."""
    from skimage.registration import phase_cross_correlation

    def per_chip(case: Case, i: int) -> tuple[float, float]:
        # The shift that registers the secondary onto the reference is −(motion).
        shift, _, _ = phase_cross_correlation(case.chips[i], case.sec_chips[i], upsample_factor=100)
        return -shift[1], -shift[0]

    return pooled(per_chip, 1)


def methods(threads: int) -> dict[str, Callable[[Case], tuple[np.ndarray, np.ndarray]]]:
    from icetrack.track.api import KERNELS

    out = {name: icetrack_method(name, threads) for name in ("fft_ncc", "ampcor") if name in KERNELS}
    out["opencv"] = opencv_method(threads)
    out["skimage"] = skimage_method(threads)
    return out


def score(case: Case, dx: np.ndarray, dy: np.ndarray, seconds: float) -> dict[str, float]:
    ex, ey = dx - case.true_dx, dy - case.true_dy
    err = np.hypot(ex, ey)
    inlier = np.isfinite(err) & (err <= OUTLIER_PX)
    return {
        "chips_per_s": len(err) / seconds,
        "rmse_px": float(np.sqrt(np.mean(err[inlier] ** 2))) if inlier.any() else float("nan"),
        "bias_px": float(np.hypot(ex[inlier].mean(), ey[inlier].mean())) if inlier.any() else float("nan"),
        "outlier_frac": float(1 - inlier.mean()),
    }


SINGLE_RUN_METHODS = ("skimage",)  # ~100× slower than the rest: one timed run is enough to place it


def run_benchmark(size: int = 1024, seed: int = 0, threads: int = 2, repeats: int = 3) -> dict[str, dict[str, dict[str, float]]]:
    """All cases × all methods: ``{case: {method: {chips_per_s, rmse_px, bias_px, outlier_frac}}}``.

    Each (case, method) is timed ``repeats`` times, interleaved (repeat → method → case,
    so a burst of load from other processes hits every method alike), and its fastest
    run counts — except SINGLE_RUN_METHODS, timed once. Results are deterministic, so the
    accuracy figures are those of any run."""
    import threadpoolctl

    cases = make_cases(size, seed)
    seconds: dict[tuple[str, str], float] = {}
    offsets: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    with threadpoolctl.threadpool_limits(threads):
        runners = methods(threads)
        for method in runners.values():
            method(Case(*(getattr(cases["uniform"], f)[:8] for f in Case.__dataclass_fields__)))  # warm-up
        for repeat in range(repeats):
            for method_name, method in runners.items():
                if repeat and method_name in SINGLE_RUN_METHODS:
                    continue
                for case_name, case in cases.items():
                    start = time.perf_counter()
                    offsets[case_name, method_name] = method(case)
                    elapsed = time.perf_counter() - start
                    seconds[case_name, method_name] = min(elapsed, seconds.get((case_name, method_name), np.inf))
    results: dict[str, dict[str, dict[str, float]]] = {}
    for case_name, case in cases.items():
        for method_name in runners:
            dx, dy = offsets[case_name, method_name]
            results.setdefault(case_name, {})[method_name] = score(case, dx, dy, seconds[case_name, method_name])
    return results


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """The results as a text table, each figure followed by its ratio to OpenCV's."""
    lines = [f"{'case':<12} {'method':<8} {'chips/s':>16} {'rmse px':>16} {'|bias| px':>16} {'outliers':>16}"]
    for case_name, by_method in results.items():
        ref = by_method["opencv"]
        for method_name, m in by_method.items():
            cells = []
            for key, fmt in (("chips_per_s", "{:8.0f}"), ("rmse_px", "{:8.4f}"), ("bias_px", "{:8.4f}"),
                             ("outlier_frac", "{:8.4f}")):
                ratio = m[key] / ref[key] if ref[key] else float("nan")
                cells.append(f"{fmt.format(m[key])} ({ratio:4.2f}x)")
            lines.append(f"{case_name:<12} {method_name:<8} " + " ".join(cells))
    return "\n".join(lines)


def profile_stages(size: int = 512, seed: int = 0, threads: int = 2, batch: int = 256, repeats: int = 20) -> dict[str, dict[str, float]]:
    """Where each kernel's time goes: µs per chip of each stage on one batch of the
    uniform case (best of ``repeats``, wall clock, one thread: the stages run serially,
    the batch is split between threads), the whole kernel on one and on ``threads``
    threads, and OpenCV's per-chip cost in its ``threads`` pool for scale."""
    import threadpoolctl

    from icetrack.track import ampcor, fft_ncc
    from icetrack.track.api import KERNELS
    from icetrack.track.direct import hill_climb_ncc
    from icetrack.track.ncc import as_banded, ncc_surfaces
    from icetrack.track.subpixel import lucas_kanade_refine, quadratic_fit_3x3
    from icetrack.track.upsampled_ncc import fine_ncc_surfaces

    case = make_cases(size, seed)["uniform"]
    chips, windows = as_banded(case.chips[:batch]), as_banded(case.windows[:batch])
    n = len(chips)

    def best(f: Callable[[], object]) -> float:
        f()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            f()
            times.append(time.perf_counter() - start)
        return min(times) / n * 1e6

    with threadpoolctl.threadpool_limits(threads):
        small_c, small_w = fft_ncc.downsample2(chips), fft_ncc.downsample2(windows)
        _, cy, cx, _, _ = ncc_surfaces(small_c, small_w, 1)
        iy, ix, z, _ = hill_climb_ncc(chips, windows, 2 * cy, 2 * cx)
        oy, ox, _, _ = quadratic_fit_3x3(np.log(np.clip(z, 1e-3, None)))
        r = ampcor.OVERSAMPLED_SEARCH_PX
        corner = np.full(n, SEARCH_PX - r)
        surfaces = fine_ncc_surfaces(chips, windows, corner, corner, CHIP_PX + 2 * r, 2)
        sy, sx = np.unravel_index(surfaces.reshape(n, -1).argmax(axis=1), surfaces.shape[1:])
        stages = {
            "fft_ncc": {
                "2x downsample": best(lambda: (fft_ncc.downsample2(chips), fft_ncc.downsample2(windows))),
                "coarse FFT NCC (13x13 lags)": best(lambda: ncc_surfaces(small_c, small_w, 1)),
                "full-res climb (direct NCC, ~3x3 lags)": best(lambda: hill_climb_ncc(chips, windows, 2 * cy, 2 * cx)),
                "Gaussian 3x3 fit": best(lambda: quadratic_fit_3x3(np.log(np.clip(z, 1e-3, None)))),
                "one Lucas-Kanade step": best(lambda: lucas_kanade_refine(chips, windows, iy + oy, ix + ox, 1)),
                "whole kernel (one thread)": best(lambda: fft_ncc.track_batch(chips, windows, 1)),
                f"whole kernel, {threads} threads": best(lambda: KERNELS["fft_ncc"](chips, windows, workers=threads)),
                "(full-search FFT NCC, 25x25 lags)": best(lambda: ncc_surfaces(chips, windows, 1)),
            },
            "ampcor": {
                "integer peak (as fft_ncc)": best(lambda: fft_ncc.integer_peak(chips, windows, 1)),
                "level-2 NCC, 0.5-px lags from spectra": best(lambda: fine_ncc_surfaces(chips, windows, corner, corner,
                                                                        CHIP_PX + 2 * r, 2)),
                "x16 sinc zoom + fit": best(lambda: ampcor.zoom_peak(surfaces, sy, sx, 16)),
                "whole kernel (one thread)": best(lambda: ampcor.track_batch(chips, windows, 1)),
                f"whole kernel, {threads} threads": best(lambda: KERNELS["ampcor"](chips, windows, workers=threads)),
            },
        }
        subset = Case(*(getattr(case, f)[:batch] for f in Case.__dataclass_fields__))
        opencv = opencv_method(threads)
        stages["opencv"] = {f"matchTemplate + Gaussian fit, {threads}-thread pool": best(lambda: opencv(subset))}
    return stages


MEMORY_STEP_PX = 16


def memory_child(scene_px: int, method: str, threads: int) -> dict[str, float]:
    """Run in a fresh process: track a scene_px² pair (32-px chips every 16 px); peak RSS.

    The images are synthetic float32 texture (the secondary shifted by (3, −2) px), made
    in strips so their making does not inflate the peak. Returns the RSS with only the
    images in memory, the peak RSS over the whole run (MB) and the median offsets."""
    import resource

    from icetrack.track import track_pair

    rng = np.random.default_rng(0)
    ref = np.empty((scene_px, scene_px), np.float32)
    for r in range(0, scene_px, 1024):
        block = rng.standard_normal((min(1024, scene_px - r) + 8, scene_px)).astype(np.float32)
        ref[r:r + 1024] = ndimage.uniform_filter(block, 3)[4:4 + min(1024, scene_px - r)]
    sec = np.empty_like(ref)
    sec[3:, :-2] = ref[:-3, 2:]  # features move 3 px down, 2 px left
    sec[:3], sec[:, -2:] = ref[:3], ref[:, -2:]
    images_mb = _rss_mb()
    start = time.perf_counter()
    field = track_pair(ref, sec, CHIP_PX, SEARCH_PX, MEMORY_STEP_PX, method, workers=threads)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"scene_px": scene_px, "method": method, "points": int(field.dx.size), "seconds": seconds,
            "images_mb": 2 * ref.nbytes / 2**20, "rss_with_images_mb": images_mb, "peak_rss_mb": peak_mb,
            "median_dx_px": float(np.nanmedian(field.dx)), "median_dy_px": float(np.nanmedian(field.dy))}


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure_memory(scene_px: int, method: str, threads: int) -> dict[str, float]:
    """:func:`memory_child` in a child process, so its peak RSS is the tracking's alone."""
    import subprocess
    import sys

    code = (f"import json; from icetrack.bench.kernels import memory_child; "
            f"print(json.dumps(memory_child({scene_px}, {method!r}, {threads})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m icetrack.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="random seed of the generated cases")
    parser.add_argument("--size", type=int, default=1024, help="side of the generated images (px)")
    parser.add_argument("--threads", type=int, default=2, help="threads per method (default: 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case and method; the fastest counts")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    parser.add_argument("--memory", action="store_true",
                        help="instead: peak RSS of tracking a --scene-px² pair (32-px chips every 16 px) in a child process")
    parser.add_argument("--scene-px", type=int, default=10980, help="scene side for --memory (default: a Sentinel-2 tile)")
    parser.add_argument("--method", default="fft_ncc", help="kernel for --memory")
    parser.add_argument("--profile", action="store_true", help="instead: µs per chip of each kernel stage")
    args = parser.parse_args(argv)
    if args.profile:
        stages = profile_stages(min(args.size, 512), args.seed, args.threads)
        for method, by_stage in stages.items():
            for stage, us in by_stage.items():
                print(f"{method:<8} {stage:<42} {us:7.2f} µs/chip")
        if args.json:
            from icetrack.common.atomic import write_text_atomic

            write_text_atomic(args.json, json.dumps(stages, indent=2))
        return
    if args.memory:
        figures = measure_memory(args.scene_px, args.method, args.threads)
        print(f"{figures['method']}: {figures['scene_px']}² px pair, {figures['points']} points in "
              f"{figures['seconds']:.1f} s; images {figures['images_mb']:.0f} MB, RSS with images "
              f"{figures['rss_with_images_mb']:.0f} MB, peak RSS {figures['peak_rss_mb']:.0f} MB; "
              f"median offset ({figures['median_dx_px']:.3f}, {figures['median_dy_px']:.3f}) px (true (-2, 3))")
        if args.json:
            from icetrack.common.atomic import write_text_atomic

            write_text_atomic(args.json, json.dumps(figures, indent=2))
        return
    if args.size < CHIP_PX + 2 * SEARCH_PX:
        parser.error(f"--size must be ≥ {CHIP_PX + 2 * SEARCH_PX} px (one chip plus its search window)")
    results = run_benchmark(args.size, args.seed, args.threads, args.repeats)
    print(f"chip {CHIP_PX} px, search ±{SEARCH_PX} px, {args.threads} threads, size {args.size}, seed {args.seed}, "
          f"fastest of {args.repeats} interleaved runs; (ratio to opencv)")
    print(table(results))
    if args.json:
        from icetrack.common.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
