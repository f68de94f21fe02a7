"""The per-pair velocity product: CF-1.8 NetCDF laid out like an ITS_LIVE image-pair granule.

Layout (after ASFHyP3/hyp3-autorift ``netcdf_output.py`` and the ITS_LIVE CF-1.8
granule fixes): ``vx``, ``vy``, ``v``, ``v_error`` on ``(y, x)`` with
``grid_mapping = "mapping"``; a scalar ``mapping`` variable holding the CF grid mapping
plus ``spatial_ref``/``spatial_epsg``/``GeoTransform`` for GDAL and QGIS; a scalar
``img_pair_info`` whose attributes describe the pair (``acquisition_date_img1/2``,
``date_center``, ``date_dt``, ``roi_valid_percentage``, ``latitude``/``longitude``);
``interp_mask`` with ``flag_values``/``flag_meanings``; stable-ground shift and error
attributes on ``vx``/``vy``. Differences: values stay float32 with NaN fill (ITS_LIVE
packs int16 with −32767), the per-pixel ``vx_error``/``vy_error`` are variables, and
``reject_reason``, ``chip_correlation`` and ``snr`` are added. Units: m/yr (UDUNITS
``m/yr`` = ITS_LIVE's ``meter/year``); dates UTC.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer

from icetrack import __version__
from icetrack.postprocess.velocity import REASONS
from icetrack.common.provenance import provenance_attrs
from icetrack.common.rasters import dataset_on_grid

VELOCITY_ATTRS = {
    "vx": {"standard_name": "land_ice_surface_x_velocity", "long_name": "velocity component in x direction (east)",
           "description": "velocity component in x direction", "units": "m/yr"},
    "vy": {"standard_name": "land_ice_surface_y_velocity", "long_name": "velocity component in y direction (north)",
           "description": "velocity component in y direction", "units": "m/yr"},
    # CF has no standard name for the horizontal speed of land ice: long_name only.
    "v": {"long_name": "velocity magnitude", "description": "velocity magnitude", "units": "m/yr"},
    "v_error": {"long_name": "velocity magnitude error (1 sigma)", "description": "velocity magnitude error", "units": "m/yr"},
    "vx_error": {"long_name": "error of vx (1 sigma)", "units": "m/yr"},
    "vy_error": {"long_name": "error of vy (1 sigma)", "units": "m/yr"},
    "chip_correlation": {"long_name": "normalised cross-correlation peak", "units": "1"},
    "snr": {"long_name": "correlation signal-to-noise ratio", "units": "1"},
    "interp_mask": {"long_name": "light interpolation mask", "description": "1 where the value was interpolated into a small gap",
                    "flag_values": np.array([0, 1], np.uint8), "flag_meanings": "measured interpolated"},
    "reject_reason": {"long_name": "why a point was masked (bit flags)",
                      "flag_masks": np.array(list(REASONS.values()), np.uint8), "flag_meanings": " ".join(REASONS)},
}

GLOBAL_ATTRS = {
    "title": "icetrack glacier surface velocity (image pair)",
    "institution": "produced with icetrack (open-source workflow)",
    "scene_pair_type": "optical",
    "motion_coordinates": "map",
    "references": "Layout follows the ITS_LIVE image-pair granules (NASA MEaSUREs ITS_LIVE, "
                  "https://its-live.jpl.nasa.gov; Lei et al. 2021, doi:10.3390/rs13040749).",
}

FLAG_STABLE_SHIFT = ("flag for applying velocity bias correction: 0 = no correction; "
                     "1 = correction from the stable-ground (rock) mask")


def _centre_lonlat(transform: Affine, shape: tuple[int, int], crs: str) -> tuple[float, float]:
    x = transform.c + transform.a * shape[1] / 2
    y = transform.f + transform.e * shape[0] / 2
    lon, lat = Transformer.from_crs(CRS.from_user_input(crs), "EPSG:4326", always_xy=True).transform(x, y)
    return float(lon), float(lat)


def _stable_attrs(stats: dict, axis: int, name: str) -> dict:
    """ITS_LIVE's per-component stable-ground attributes (m/yr), from the postprocess stats."""
    sg = stats.get("stable_ground", {})
    applied = int(sg.get("points", 0) > 0 and np.isfinite(sg.get("nmad_px", [np.nan, np.nan])[axis]))
    shift = float(sg["median_offset_m_per_yr"][axis]) if applied else float("nan")
    err = float(sg["nmad_m_per_yr"][axis]) if applied else float("nan")
    return {"stable_shift": shift, "stable_shift_mask": shift, "stable_count_mask": int(sg.get("points", 0)),
            f"{name}_error_mask": err, f"{name}_error_mask_description": "NMAD over stable ground (rock mask), m/yr",
            "flag_stable_shift": applied, "flag_stable_shift_description": FLAG_STABLE_SHIFT}


def velocity_product(arrays: dict[str, np.ndarray], transform: Affine, crs: str, pair: str, dt_days: float,
                     stats: dict, kernel: dict, provenance: dict | None = None) -> xr.Dataset:
    """The per-pair dataset.

    ``arrays`` holds the layers of :data:`VELOCITY_ATTRS` on the point grid (m/yr,
    x east, y north); ``transform``/``crs`` georeference that grid; ``pair`` is
    ``YYYYMMDD_YYYYMMDD``; ``stats`` the postprocess statistics; ``provenance`` a
    :func:`icetrack.common.provenance.provenance_record` (None: version and kernel only).
    """
    ref, sec = (datetime.strptime(d, "%Y%m%d") for d in pair.split("_"))
    center = ref + (sec - ref) / 2
    variables = {name: (arrays[name], dict(attrs)) for name, attrs in VELOCITY_ATTRS.items() if name in arrays}
    variables["vx"][1].update(_stable_attrs(stats, 0, "vx"))
    variables["vy"][1].update(_stable_attrs(stats, 1, "vy"))
    shape = arrays["vx"].shape
    lon, lat = _centre_lonlat(transform, shape, crs)
    valid = stats.get("valid_fraction_glacier", stats.get("valid_fraction", float("nan")))
    prov = provenance_attrs(provenance) if provenance else {"icetrack_version": __version__}
    pair_info = {
        "acquisition_date_img1": ref.strftime("%Y-%m-%dT%H:%M:%S"),
        "acquisition_date_img2": sec.strftime("%Y-%m-%dT%H:%M:%S"),
        "time_standard_img1": "UTC", "time_standard_img2": "UTC",
        "date_center": center.strftime("%Y-%m-%dT%H:%M:%S"),
        "date_dt": float(dt_days), "date_dt_units": "days",
        "latitude": round(lat, 4), "longitude": round(lon, 4),
        "roi_valid_percentage": round(100 * float(valid), 2),
    }
    if provenance:
        pair_info["id_img1"] = prov["scene_ids_img1"]
        pair_info["id_img2"] = prov["scene_ids_img2"]
    attrs = {
        **GLOBAL_ATTRS,
        "source": f"icetrack {__version__}",
        "motion_detection_method": str(kernel.get("method", "")),
        # Kept as global attributes too: the older icetrack readers and GDAL show them directly.
        "acquisition_date_img1": ref.strftime("%Y-%m-%d"),
        "acquisition_date_img2": sec.strftime("%Y-%m-%d"),
        "date_center": pair_info["date_center"],
        "date_dt_days": float(dt_days),
        "kernel_parameters": prov.get("kernel_parameters") or _json(kernel),
        **prov,
    }
    ds = dataset_on_grid(variables, transform, crs, attrs)
    ds["img_pair_info"] = ((), np.int32(0), {"long_name": "image pair information", **pair_info})
    m = ds["mapping"].attrs
    epsg = CRS.from_user_input(crs).to_epsg()
    if epsg:
        m["spatial_epsg"] = np.int32(epsg)
    return ds


def _json(value: dict) -> str:
    import json

    return json.dumps(value, sort_keys=True)
