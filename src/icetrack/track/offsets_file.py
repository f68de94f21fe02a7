"""The raw offsets file between the track and postprocess steps (NetCDF on the point grid)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from affine import Affine

from icetrack import __version__
from icetrack.common.rasters import dataset_on_grid, geotransform_text, parse_geotransform, transform_of, write_netcdf
from .result import OffsetField

OFFSET_VARS = {
    "dx": {"long_name": "offset along image columns (east), sec − ref", "units": "pixel"},
    "dy": {"long_name": "offset along image rows (south), sec − ref", "units": "pixel"},
    "peak": {"long_name": "normalised cross-correlation at the peak", "units": "1"},
    "snr": {"long_name": "correlation signal-to-noise ratio (ampcor definition)", "units": "1"},
    "sigma_x": {"long_name": "1-sigma error of dx from the correlation peak", "units": "pixel"},
    "sigma_y": {"long_name": "1-sigma error of dy from the correlation peak", "units": "pixel"},
}


@dataclass
class Offsets:
    """Raw offsets read back: arrays on the point grid plus what is needed to georeference them."""

    arrays: dict[str, np.ndarray]
    transform: Affine  # of the point grid
    image_transform: Affine
    crs: str
    kernel: dict
    chip_px: int
    step_px: int


def write_offsets(path: str | Path, field: OffsetField, image_transform: Affine, crs: str, kernel: dict) -> None:
    variables = {name: (getattr(field, name).astype(np.float32), attrs) for name, attrs in OFFSET_VARS.items()}
    ds = dataset_on_grid(variables, field.grid.transform(image_transform), crs, {
        "title": "icetrack raw offsets",
        "icetrack_version": __version__,
        "kernel_parameters": json.dumps(kernel, sort_keys=True),
        "image_geotransform": geotransform_text(image_transform),
    })
    write_netcdf(ds, path)


def read_offsets(path: str | Path) -> Offsets:
    with xr.open_dataset(path) as ds:
        arrays = {name: ds[name].values for name in OFFSET_VARS}
        kernel = json.loads(ds.attrs["kernel_parameters"])
        image_transform = parse_geotransform(ds.attrs["image_geotransform"])
        transform = transform_of(ds)
        crs = ds["mapping"].attrs["spatial_ref"]
    return Offsets(arrays, transform, image_transform, crs, kernel, kernel["chip_px"], kernel["step_px"])
