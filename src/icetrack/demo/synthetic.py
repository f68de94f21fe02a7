"""A deterministic, offline demo: a fictional glacier seen by a small stack of scenes.

Everything a real run gets from a STAC catalogue is made here from a seed: single-band
"NIR" GeoTIFFs in UTM at 10 m with fractal texture and crevasse streaks advected by a
known, smooth velocity field; a radiometric change and sensor noise per date, 12-bit
quantisation; a cloud over part of one scene with an SCL-like classification band;
a static STAC catalogue (``catalog.json``) that the ordinary query code reads; the
glacier outline and a stable-rock outline (GeoJSON); and the true velocity field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from scipy import ndimage
from shapely.geometry import Polygon, mapping

from icetrack.common.grid import reproject_geometry

DEMO_CRS = "EPSG:32718"  # UTM 18S, Southern Patagonian Icefield
DEMO_ORIGIN = (600_000.0, 4_424_000.0)  # west edge, north edge, m
DEMO_DATES = (date(2024, 1, 5), date(2024, 2, 14), date(2024, 3, 25), date(2024, 5, 4))
CLOUDY_SCENE = 2  # index of the scene with a cloud over the glacier
SCL_CLOUD_HIGH = 9  # Sentinel-2 SCL class "cloud high probability"
SCL_SNOW_ICE = 11
SCL_BARE = 5


@dataclass(frozen=True)
class DemoGlacier:
    """An elongated glacier: an ellipse rotated by ``angle_deg`` (anticlockwise from east).

    Speed is ``v_max * (1 - r**2)`` inside (r = elliptical radius), zero outside, and
    flows along the major axis, so the field is continuous and smooth.
    """

    centre_m: tuple[float, float] = (3200.0, 3300.0)  # (x east, y north) from the grid's SW corner
    semi_major_m: float = 2000.0
    semi_minor_m: float = 850.0
    angle_deg: float = 20.0
    v_max_m_per_yr: float = 300.0

    def velocity(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(vx east, vy north) in m/yr at map offsets (x, y) in metres from the SW corner."""
        a = np.deg2rad(self.angle_deg)
        dx, dy = x - self.centre_m[0], y - self.centre_m[1]
        along = dx * np.cos(a) + dy * np.sin(a)
        across = -dx * np.sin(a) + dy * np.cos(a)
        r2 = (along / self.semi_major_m) ** 2 + (across / self.semi_minor_m) ** 2
        speed = self.v_max_m_per_yr * np.clip(1.0 - r2, 0.0, None)
        return speed * np.cos(a), speed * np.sin(a)

    def outline(self, n: int = 180) -> Polygon:
        """The ice edge (r = 1) as a polygon in map offsets from the SW corner."""
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        a = np.deg2rad(self.angle_deg)
        u, w = self.semi_major_m * np.cos(t), self.semi_minor_m * np.sin(t)
        xs = self.centre_m[0] + u * np.cos(a) - w * np.sin(a)
        ys = self.centre_m[1] + u * np.sin(a) + w * np.cos(a)
        return Polygon(zip(xs, ys))


def fractal_noise(shape: tuple[int, int], beta: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-std noise with a power spectrum ~ 1/f**beta."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0
    spectrum = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) / f ** (beta / 2)
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=shape)
    return (field - field.mean()) / field.std()


def _texture(shape: tuple[int, int], ice: np.ndarray, angle_deg: float, rng: np.random.Generator) -> np.ndarray:
    """Surface reflectance texture (0..1): snow/ice with crevasse streaks, darker rock."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    base = 0.55 * fractal_noise(shape, 2.2, rng) + 0.45 * fractal_noise(shape, 1.4, rng)
    a = np.deg2rad(angle_deg)
    # Crevasses run across the flow; their spacing wanders with low-frequency noise.
    phase = (cols * np.cos(a) - rows * np.sin(a)) * (2 * np.pi / 9.0) + 3.0 * fractal_noise(shape, 3.0, rng)
    crevasse = np.clip(np.sin(phase), 0.6, 1.0) - 0.6
    crevasse *= np.clip(fractal_noise(shape, 2.5, rng) + 0.5, 0, None)
    fine = fractal_noise(shape, 1.0, rng)  # snow grain, sastrugi: texture where no crevasse is
    ice_surface = 0.6 + 0.08 * base + 0.04 * fine - 0.45 * crevasse
    rock_surface = 0.25 + 0.08 * base
    soft_ice = ndimage.gaussian_filter(ice.astype(float), 3.0)
    return soft_ice * ice_surface + (1 - soft_ice) * rock_surface


def _advect(texture: np.ndarray, vx_px: np.ndarray, vy_px: np.ndarray, t_yr: float, substeps: int = 8) -> np.ndarray:
    """The texture after flowing for ``t_yr`` years along the steady field (px/yr).

    Each pixel is traced backwards along the flow with ``substeps`` Euler steps, so the
    displacement between two dates is the true particle path, not a first-order guess.
    """
    rows, cols = np.mgrid[0 : texture.shape[0], 0 : texture.shape[1]].astype(float)
    h = t_yr / substeps
    for _ in range(substeps):
        u = ndimage.map_coordinates(vx_px, [rows, cols], order=1, mode="nearest")
        v = ndimage.map_coordinates(vy_px, [rows, cols], order=1, mode="nearest")
        cols, rows = cols - u * h, rows - v * h
    return ndimage.map_coordinates(texture, [rows, cols], order=3, mode="reflect")


def _cloud(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Cloud opacity 0..1: a soft blob over part of the glacier."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    cy, cx = shape[0] * 0.42, shape[1] * 0.62
    blob = np.exp(-(((rows - cy) / (0.09 * shape[0])) ** 2 + ((cols - cx) / (0.12 * shape[1])) ** 2))
    blob *= 1 + 0.3 * fractal_noise(shape, 2.5, rng)
    return np.clip(1.6 * blob - 0.2, 0, 1)


def _write_tif(path: Path, data: np.ndarray, transform: Affine, nodata: float | int | None, description: str) -> None:
    profile = dict(
        driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=data.dtype, crs=DEMO_CRS,
        transform=transform, nodata=nodata, tiled=True, blockxsize=256, blockysize=256, compress="deflate",
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        dst.set_band_description(1, description)


def make_demo(out_dir: str | Path, seed: int = 0, size_px: int = 640, resolution_m: float = 10.0) -> Path:
    """Write the demo stack into ``out_dir`` and return the path of its ``catalog.json``."""
    import pystac

    out = Path(out_dir)
    (out / "scenes").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    transform = Affine(resolution_m, 0, DEMO_ORIGIN[0], 0, -resolution_m, DEMO_ORIGIN[1])
    glacier = DemoGlacier()
    shape = (size_px, size_px)
    rows, cols = np.mgrid[0:size_px, 0:size_px].astype(float)
    x_m = (cols + 0.5) * resolution_m
    y_m = (size_px - rows - 0.5) * resolution_m
    vx, vy = glacier.velocity(x_m, y_m)
    ice = np.hypot(vx, vy) > 0
    texture = _texture(shape, ice, glacier.angle_deg, rng)
    vx_px, vy_px = vx / resolution_m, -vy / resolution_m  # image rows grow southward

    t0 = DEMO_DATES[len(DEMO_DATES) // 2]  # texture reference mid-stack keeps warps small
    catalog = pystac.Catalog(id="icetrack-demo", description="icetrack offline demo scenes (synthetic)")
    origin = np.array(DEMO_ORIGIN)
    footprint_m = Polygon([(0, 0), (size_px * resolution_m, 0), (size_px * resolution_m, size_px * resolution_m),
                           (0, size_px * resolution_m)])
    sw = origin - np.array([0, size_px * resolution_m])
    to_map = lambda g: Polygon(np.asarray(g.exterior.coords) + sw)  # noqa: E731 - offsets → UTM
    footprint = reproject_geometry(to_map(footprint_m), DEMO_CRS, "EPSG:4326")

    for k, day in enumerate(DEMO_DATES):
        t_yr = (day - t0).days / 365.25
        surface = _advect(texture, vx_px, vy_px, t_yr)
        gain, offset = 1 + 0.15 * rng.standard_normal(), 0.03 * rng.standard_normal()
        illumination = 1 + 0.08 * (cols / size_px - 0.5) * rng.choice([-1, 1])
        reflectance = gain * surface * illumination + offset
        scl = np.where(ice, SCL_SNOW_ICE, SCL_BARE).astype(np.uint8)
        if k == CLOUDY_SCENE:
            opacity = _cloud(shape, rng)
            reflectance = (1 - opacity) * reflectance + opacity * 0.85
            scl[opacity > 0.3] = SCL_CLOUD_HIGH
        reflectance += 0.004 * rng.standard_normal(shape)  # sensor noise
        dn = np.clip(np.round(reflectance * 4000 + 1000), 1, 4095).astype(np.uint16)  # 12-bit
        scene_id = f"DEMO_{day:%Y%m%d}"
        nir, cls = out / "scenes" / f"{scene_id}_nir.tif", out / "scenes" / f"{scene_id}_scl.tif"
        _write_tif(nir, dn, transform, 0, "NIR reflectance (DN, scale 1/4000 offset -0.25)")
        _write_tif(cls, scl, transform, 0, "scene classification (SCL codes)")
        cloud_cover = float(np.mean(scl == SCL_CLOUD_HIGH) * 100)
        item = pystac.Item(
            id=scene_id, geometry=mapping(footprint), bbox=list(footprint.bounds),
            datetime=datetime(day.year, day.month, day.day, 14, 30, tzinfo=timezone.utc),
            properties={"eo:cloud_cover": round(cloud_cover, 2), "proj:epsg": 32718, "proj:code": DEMO_CRS,
                        "proj:shape": list(shape), "proj:transform": list(transform)[:6], "platform": "demo-sat",
                        "constellation": "icetrack-demo", "sat:relative_orbit": 1},
        )
        item.add_asset("nir", pystac.Asset(href=str(nir.resolve()), media_type=pystac.MediaType.COG, roles=["data"]))
        item.add_asset("scl", pystac.Asset(href=str(cls.resolve()), media_type=pystac.MediaType.COG, roles=["data"]))
        catalog.add_item(item)

    catalog.normalize_hrefs(str(out / "stac"))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)

    outline = reproject_geometry(to_map(glacier.outline()), DEMO_CRS, "EPSG:4326")
    rock = Polygon([(300, 300), (1500, 300), (1500, 1400), (300, 1400)])  # SW corner outcrop
    rock2 = Polygon([(4800, 5000), (6100, 5000), (6100, 6100), (4800, 6100)])  # NE corner outcrop
    stable = [reproject_geometry(to_map(p), DEMO_CRS, "EPSG:4326") for p in (rock, rock2)]
    _write_geojson(out / "outline.geojson", [outline], {"name": "Demo Glacier"})
    _write_geojson(out / "stable_ground.geojson", stable, {"surface": "rock"})
    _write_tif(out / "truth_vx.tif", vx.astype(np.float32), transform, None, "true vx (m/yr, east)")
    _write_tif(out / "truth_vy.tif", vy.astype(np.float32), transform, None, "true vy (m/yr, north)")
    return out / "stac" / "catalog.json"


def _write_geojson(path: Path, geoms: list, properties: dict) -> None:
    features = [{"type": "Feature", "properties": properties, "geometry": mapping(g)} for g in geoms]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
