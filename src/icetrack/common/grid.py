"""The common grid every scene of a glacier is reprojected onto.

A grid is the glacier's outline (or bbox) projected into its UTM zone, buffered,
snapped outward to whole pixels of the configured resolution. Pixel-is-area: the
transform's origin is the outer corner of the top-left pixel.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from affine import Affine
from pyproj import CRS, Transformer
import shapely
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry

from icetrack.common.atomic import write_text_atomic


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: CRS, pixel size (m) and extent."""

    crs: str  # e.g. "EPSG:32718"
    x_min: float  # west edge of the first column, m
    y_max: float  # north edge of the first row, m
    resolution_m: float
    width: int
    height: int

    @property
    def transform(self) -> Affine:
        return Affine(self.resolution_m, 0.0, self.x_min, 0.0, -self.resolution_m, self.y_max)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in the grid CRS, metres."""
        r = self.resolution_m
        return (self.x_min, self.y_max - self.height * r, self.x_min + self.width * r, self.y_max)

    def to_json(self, path: str | Path) -> None:
        write_text_atomic(path, json.dumps(asdict(self), indent=2))

    @classmethod
    def from_json(cls, path: str | Path) -> "Grid":
        return cls(**json.loads(Path(path).read_text()))


def utm_crs_for(lon: float, lat: float) -> CRS:
    """The WGS 84 / UTM zone CRS containing (lon, lat)."""
    zone = int(math.floor((lon + 180.0) / 6.0)) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def load_outline(outline: str | None, bbox: list[float] | None) -> BaseGeometry:
    """The glacier outline in WGS 84 lon/lat, from a GeoJSON file or a bbox.

    GeoJSON is WGS 84 by definition (RFC 7946); all features are unioned.
    """
    if outline:
        data = json.loads(Path(outline).read_text())
        features = data["features"] if data.get("type") == "FeatureCollection" else [data]
        geoms = [shape(f["geometry"] if "geometry" in f else f) for f in features]
        geom = geoms[0]
        for g in geoms[1:]:
            geom = geom.union(g)
        return geom
    if bbox:
        return box(*bbox)
    raise ValueError("glacier needs an 'outline' file or a 'bbox' [min_lon, min_lat, max_lon, max_lat]")


def reproject_geometry(geom: BaseGeometry, src_crs: str | CRS, dst_crs: str | CRS) -> BaseGeometry:
    """``geom`` transformed from ``src_crs`` to ``dst_crs`` (always_xy axis order)."""
    tr = Transformer.from_crs(CRS.from_user_input(src_crs), CRS.from_user_input(dst_crs), always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def grid_for_outline(
    outline_lonlat: BaseGeometry, resolution_m: float, buffer_m: float, crs: str | None = None
) -> Grid:
    """The common grid covering the outline plus ``buffer_m``, snapped to ``resolution_m``."""
    if resolution_m <= 0:
        raise ValueError(f"grid.resolution_m must be > 0, got {resolution_m}")
    c = outline_lonlat.centroid
    target = CRS.from_user_input(crs) if crs else utm_crs_for(c.x, c.y)
    projected = reproject_geometry(outline_lonlat, "EPSG:4326", target).buffer(buffer_m)
    w, s, e, n = projected.bounds
    r = resolution_m
    x_min, y_max = math.floor(w / r) * r, math.ceil(n / r) * r
    width = int(math.ceil((e - x_min) / r))
    height = int(math.ceil((y_max - s) / r))
    return Grid(crs=target.to_string(), x_min=x_min, y_max=y_max, resolution_m=r, width=width, height=height)


def rasterize_lonlat(geom: BaseGeometry | None, grid: Grid) -> np.ndarray:
    """Boolean mask of the grid pixels whose centre falls inside ``geom`` (WGS 84)."""
    from rasterio.features import rasterize

    if geom is None or geom.is_empty:
        return np.zeros((grid.height, grid.width), dtype=bool)
    projected = reproject_geometry(geom, "EPSG:4326", grid.crs)
    return rasterize(
        [(mapping(projected), 1)], out_shape=(grid.height, grid.width), transform=grid.transform, fill=0, dtype="uint8"
    ).astype(bool)
