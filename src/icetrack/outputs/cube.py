"""The velocity cube of a glacier: every pair on one grid along a ``mid_date`` dimension.

Laid out like the ITS_LIVE Zarr cubes (``mid_date``, ``vx``, ``vy``, ``v``, ``v_error``,
``date_dt``, ``acquisition_date_img1/2``) but written as one NetCDF-4 file whose chunks
hold the whole time axis for a small block of pixels, so that a point's time series is
one chunk read: ``xr.open_dataset("cube.nc")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import xarray as xr

from icetrack import __version__
from icetrack.common.atomic import atomic_path
from icetrack.common.provenance import canonical_json

CUBE_VARS = ("vx", "vy", "v", "v_error", "vx_error", "vy_error")
CHUNK_XY = 32  # pixels per chunk side: a time series reads one chunk of 32×32×n_dates values


def _layer(path: str | Path) -> tuple[xr.Dataset, xr.DataArray, dict]:
    """(one pair's velocity layers with its per-layer metadata, its mapping variable, its attributes)."""
    with xr.open_dataset(path) as ds:
        info = ds["img_pair_info"].attrs if "img_pair_info" in ds else {}
        date1 = pd.Timestamp(ds.attrs["acquisition_date_img1"])
        date2 = pd.Timestamp(ds.attrs["acquisition_date_img2"])
        layer = ds[[v for v in CUBE_VARS if v in ds]].load()
        layer = layer.drop_vars([c for c in layer.coords if c not in ("x", "y")])
        for v in layer.data_vars:
            layer[v].attrs.pop("grid_mapping", None)
        layer["acquisition_date_img1"] = ((), np.datetime64(date1, "ns"))
        layer["acquisition_date_img2"] = ((), np.datetime64(date2, "ns"))
        layer["date_dt"] = ((), np.float32((date2 - date1) / pd.Timedelta(days=1)))
        layer["pair"] = ((), f"{date1:%Y%m%d}_{date2:%Y%m%d}")
        layer["scene_ids_img1"] = ((), str(ds.attrs.get("scene_ids_img1", info.get("id_img1", ""))))
        layer["scene_ids_img2"] = ((), str(ds.attrs.get("scene_ids_img2", info.get("id_img2", ""))))
        layer["config_sha256"] = ((), str(ds.attrs.get("config_sha256", "")))
        layer["roi_valid_percentage"] = ((), np.float32(info.get("roi_valid_percentage", np.nan)))
        mid = date1 + (date2 - date1) / 2
        layer = layer.expand_dims(mid_date=[np.datetime64(mid, "ns")])
        mapping = ds["mapping"].copy()
        return layer, mapping, dict(ds.attrs)


def build_cube(paths: Iterable[str | Path], glacier: str, progress: Callable[[int], None] | None = None) -> xr.Dataset:
    """All pairs of ``paths`` stacked along ``mid_date`` (sorted; pixels missing in a pair are NaN)."""
    layers, mapping, attrs = [], None, {}
    for path in paths:
        layer, mapping, attrs = _layer(path)
        layers.append(layer)
        if progress:
            progress(1)
    if not layers:
        raise ValueError(f"glacier {glacier!r}: no pair NetCDF files to stack into a cube")
    cube = xr.concat(layers, dim="mid_date", join="outer", data_vars="all", coords="minimal", compat="override")
    cube = cube.sortby(["mid_date", "date_dt"])
    for v in CUBE_VARS:
        if v in cube:
            cube[v].attrs["grid_mapping"] = "mapping"
    cube["mapping"] = mapping
    cube["mid_date"].attrs.update({"standard_name": "time", "long_name": "centre date of the image pair",
                                   "axis": "T"})
    cube["acquisition_date_img1"].attrs["long_name"] = "acquisition date of the first (reference) image"
    cube["acquisition_date_img2"].attrs["long_name"] = "acquisition date of the second (secondary) image"
    cube["date_dt"].attrs.update({"long_name": "time separation between the images", "units": "days"})
    cube["roi_valid_percentage"].attrs.update({"long_name": "share of valid glacier points", "units": "percent"})
    cube["pair"].attrs["long_name"] = "pair id (YYYYMMDD_YYYYMMDD)"
    cube["scene_ids_img1"].attrs["long_name"] = "input scene ids of the first image"
    cube["scene_ids_img2"].attrs["long_name"] = "input scene ids of the second image"
    cube["config_sha256"].attrs["long_name"] = "SHA-256 of the effective configuration of the pair"
    hashes = sorted(set(cube["config_sha256"].values.tolist()) - {""})
    cube.attrs = {
        "Conventions": "CF-1.8",
        "title": f"icetrack velocity cube of glacier {glacier}",
        "source": f"icetrack {__version__}",
        "icetrack_version": __version__,
        "glacier_id": glacier,
        "config_sha256": ",".join(hashes),
        "processing_parameters": attrs.get("processing_parameters", ""),
        "pairs": canonical_json(cube["pair"].values.tolist()),
    }
    return cube


def write_cube(cube: xr.Dataset, path: str | Path) -> None:
    """NetCDF-4, compressed, chunked (all dates × 32 × 32 px) for fast time series; atomic."""
    n = cube.sizes["mid_date"]
    encoding = {}
    for v in cube.data_vars:
        if cube[v].dims == ("mid_date", "y", "x"):
            encoding[v] = {"zlib": True, "complevel": 4, "_FillValue": np.float32(np.nan), "dtype": "float32",
                           "chunksizes": (n, min(CHUNK_XY, cube.sizes["y"]), min(CHUNK_XY, cube.sizes["x"]))}
        elif cube[v].dtype.kind in "US":  # fixed-width char arrays: CF checkers reject NetCDF-4 vlen strings
            encoding[v] = {"dtype": "S1"}
    for v in ("mid_date", "acquisition_date_img1", "acquisition_date_img2"):
        encoding[v] = {"units": "days since 1970-01-01", "calendar": "standard", "dtype": "float64"}
    with atomic_path(path) as tmp:
        cube.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
