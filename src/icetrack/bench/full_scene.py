"""Benchmark: the whole workflow on one full-size Sentinel-2-like pair (10 980 × 10 980 px).

Not a test (it is heavy: ~1 GB of scenes, minutes of CPU). It writes two uint16 GeoTIFFs
at 10 m in UTM 18S with band-limited texture, the second warped by a known field (still
left third = "rock", a smooth ramp to 3 px east / 1 px south on the "glacier"), a glacier
outline covering the scene and a stable-ground polygon, then runs the ordinary workflow
(`local_files` source) on them with ``--cores 2`` and reports, per job, the peak RSS and
wall time from the rules' ``benchmark:`` files — and, for rules without one, from
``getrusage`` of a separate ``--forcerun`` of that rule — plus points/s of tracking.

    python -m icetrack.bench.full_scene --workdir /tmp/bench_scene [--size 10980] [--mem-limit-gb 8]

``--mem-limit-gb`` caps each job's address space (RLIMIT_AS) so that a step that would
need more fails with MemoryError instead of starving the machine; the report says which.
The figures go into docs/scaling.md; icetrack.cluster.resources is calibrated from them.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]  # the repository: src/icetrack/bench/full_scene.py
WORKFLOW_FILES = ["Snakefile", "workflow", "config", "scripts", "src", "envs", "profiles"]
CRS = "EPSG:32718"
ORIGIN = (500_000.0, 4_500_000.0)  # west, north edge (m)
RES_M = 10.0
DATES = ("2024-01-05", "2024-02-14")  # 40 days
SHIFT_PX = (3.0, -1.0)  # (east, north) displacement on the moving part, px over the pair
BLOCK_ROWS = 1024


def displacement(cols: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(dx east, dy north) in px at columns ``cols``: 0 on the left third, smooth ramp to SHIFT_PX."""
    t = np.clip((cols / width - 1 / 3) / (1 / 3), 0, 1)
    ramp = t * t * (3 - 2 * t)
    return SHIFT_PX[0] * ramp, SHIFT_PX[1] * ramp


def write_scenes(out: Path, size: int, seed: int = 0) -> list[Path]:
    """Two scenes, written block by block (peak memory ~1.5 GB for 10 980²)."""
    import rasterio
    from affine import Affine
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    texture = rng.standard_normal((size, size), dtype=np.float32)
    texture = ndimage.gaussian_filter(texture, 1.2, output=np.float32)
    texture /= texture.std()
    transform = Affine(RES_M, 0, ORIGIN[0], 0, -RES_M, ORIGIN[1])
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint16", crs=CRS, transform=transform,
                   nodata=0, tiled=True, blockxsize=512, blockysize=512, compress="deflate")
    paths = []
    halo = 8
    for k, day in enumerate(DATES):
        path = out / f"S2_FULL_{day.replace('-', '')}.tif"
        with rasterio.open(path, "w", **profile) as dst:
            for r0 in range(0, size, BLOCK_ROWS):
                r1 = min(size, r0 + BLOCK_ROWS)
                rows, cols = np.mgrid[r0:r1, 0:size].astype(np.float32)
                if k:  # the second date: content moved by (dx east, dy north) → sample upstream
                    dx, dy = displacement(cols, size)
                    rows, cols = rows + dy, cols - dx  # north = −rows
                lo, hi = max(0, r0 - halo), min(size, r1 + halo)
                block = ndimage.map_coordinates(texture[lo:hi], [rows - lo, cols], order=3, mode="nearest")
                noise = 0.02 * rng.standard_normal(block.shape)
                dn = np.clip(np.round((0.5 + 0.08 * block + noise) * 4000 + 1000), 1, 4095).astype(np.uint16)
                dst.write(dn, 1, window=((r0, r1), (0, size)))
        paths.append(path)
    return paths


def write_geometry(out: Path, size: int) -> tuple[Path, Path]:
    """Outline: the scene less the 1.5 km grid buffer (so the grid ≈ the scene); stable ground: left 30 %."""
    from shapely.geometry import box, mapping

    from icetrack.common.grid import reproject_geometry

    west, north = ORIGIN
    east, south = west + size * RES_M, north - size * RES_M
    buffer_m = 1500
    outline = reproject_geometry(box(west + buffer_m, south + buffer_m, east - buffer_m, north - buffer_m), CRS,
                                 "EPSG:4326")
    rock = reproject_geometry(box(west + 500, south + 500, west + 0.3 * size * RES_M, north - 500), CRS, "EPSG:4326")
    paths = []
    for name, geom in (("outline", outline), ("stable_ground", rock)):
        p = out / f"{name}.geojson"
        p.write_text(json.dumps({"type": "FeatureCollection",
                                 "features": [{"type": "Feature", "properties": {}, "geometry": mapping(geom)}]}))
        paths.append(p)
    return tuple(paths)


def write_config(work: Path, scenes: list[Path], outline: Path, stable: Path) -> Path:
    import yaml

    table = work / "config" / "bench_glaciers.tsv"
    header = "glacier_id\tname\tsource\tstart_date\tend_date\toutline\tbbox\tstable_ground\tcrs\toverrides\tpoints\n"
    table.write_text(header + f"full\tFull scene\tfull_scene\t2024-01-01\t2024-03-01\t{outline}\t\t{stable}\t{CRS}\t\t\n")
    cfg = {"glaciers_table": str(table), "glaciers": "all",
           "sources": {"full_scene": {"type": "local_files",
                                      "files": [{"path": str(p), "date": d} for p, d in zip(scenes, DATES)]}}}
    path = work / "config" / "bench.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def limit_memory(gb: float):
    def apply():
        limit = int(gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


# Runs a command and prints the peak RSS (KiB) of its largest descendant: a fresh process
# per measurement, since getrusage(RUSAGE_CHILDREN) keeps the maximum of all earlier children.
PEAK_RSS = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]).returncode; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r)")


def snakemake(work: Path, configfile: Path, mem_limit_gb: float, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run the workflow; returns the process and the peak RSS (MB) of its largest descendant."""
    cmd = [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "snakemake", "--cores", "2",
           "--configfile", str(configfile), *args]
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, preexec_fn=limit_memory(mem_limit_gb))
    return proc, int(proc.stderr.strip().splitlines()[-1]) / 1024


def read_benchmarks(work: Path) -> dict[str, dict]:
    rows = {}
    for tsv in sorted((work / "benchmarks").rglob("*.tsv")):
        header, values = tsv.read_text().splitlines()[:2]
        rec = dict(zip(header.split("\t"), values.split("\t")))
        rows[str(tsv.relative_to(work / "benchmarks"))] = {"s": float(rec["s"]), "max_rss_mb": float(rec["max_rss"])}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m icetrack.bench.full_scene", description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--size", type=int, default=10980)
    ap.add_argument("--mem-limit-gb", type=float, default=8.0)
    ap.add_argument("--forceall", action="store_true", help="re-run every job (e.g. after changing the package)")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "src"))

    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "Snakefile").exists():  # a prepared workdir (e.g. another branch's tree) is used as is
        for name in WORKFLOW_FILES:
            src = REPO / name
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, work / name)
    data = work / "bench_data"
    data.mkdir(exist_ok=True)
    t0 = time.time()
    scenes = sorted(data.glob("S2_FULL_*.tif"))
    if len(scenes) != 2:
        scenes = write_scenes(data, args.size)
    outline, stable = write_geometry(data, args.size)
    configfile = write_config(work, scenes, outline, stable)
    print(f"scenes ready in {time.time() - t0:.0f} s: {[p.name for p in scenes]}", flush=True)

    t0 = time.time()
    proc, _ = snakemake(work, configfile, args.mem_limit_gb, "--keep-going", *(["--forceall"] if args.forceall else []))
    wall = time.time() - t0
    (work / "bench_run.log").write_text(proc.stdout + proc.stderr)
    print(f"workflow: exit {proc.returncode} in {wall:.0f} s (log: {work / 'bench_run.log'})", flush=True)

    report = {"size_px": args.size, "workflow_wall_s": round(wall, 1), "exit_code": proc.returncode,
              "mem_limit_gb": args.mem_limit_gb, "benchmarks": read_benchmarks(work), "rusage": {}}
    # Rules without a benchmark: directive: peak RSS of a separate forced run of each.
    if proc.returncode == 0:
        # Downstream rules first, each with --until: forcing a rule makes its outputs newer than
        # what follows, so measuring upstream first would re-run everything after it.
        for rule in ("report_tables", "cube", "figure_quality", "figure_speed", "export_geotiff", "kernel_params",
                     "define_grid"):
            t1 = time.time()
            p, rss = snakemake(work, configfile, args.mem_limit_gb, "--forcerun", rule, "--until", rule)
            report["rusage"][rule] = {"s": round(time.time() - t1, 1), "max_rss_mb": round(rss, 1),
                                      "exit_code": p.returncode}
    offsets = list((work / "results" / "full").glob("*/offsets.nc"))
    if offsets:
        import xarray as xr

        with xr.open_dataset(offsets[0]) as ds:
            n_points = int(ds.sizes["y"] * ds.sizes["x"])
        track = [v for k, v in report["benchmarks"].items() if k.endswith("track.tsv")]
        report["points"] = n_points
        if track:
            report["track_points_per_s"] = round(n_points / track[0]["s"], 1)
    grid = work / "results" / "full" / "grid.json"
    if grid.exists():
        report["grid"] = json.loads(grid.read_text())
    (work / "bench_report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
