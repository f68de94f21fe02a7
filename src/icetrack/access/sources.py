"""Image sources: presets for real STAC archives, the STAC API client, cloud rules, and
how an asset's href becomes a path GDAL can read (public HTTPS, S3 requester-pays,
Planetary Computer SAS signing).

A config names a preset (``type: stac_api``, ``preset: earth_search_s2``) and may
override any of its keys; :func:`resolve_source` fills in the rest. The presets follow
the services' own item layouts (asset keys, collections, ``raster:bands`` scale and
offset, QA encodings) as published by Earth Search v1, the USGS Landsat STAC server and
Microsoft Planetary Computer; docs/data_sources.md lists them with their sources.

Credentials never come from the config: S3 keys are read by GDAL from the environment
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN`` or
``AWS_PROFILE``), a Planetary Computer subscription key (optional) from
``PC_SDK_SUBSCRIPTION_KEY``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


from icetrack.access import http
from icetrack.access.clouds import cloud_rule, cloudy_pixels, fill_pixels  # noqa: F401 - part of a source's API

# Sentinel-2 Scene Classification (SCL): 0 no data, 1 saturated/defective, 3 cloud
# shadow, 8/9 cloud medium/high probability, 10 thin cirrus. 11 (snow/ice) is the
# glacier surface itself and is never masked.
S2_SCL_CLOUD_CLASSES = [0, 1, 3, 8, 9, 10]
# Landsat Collection 2 QA_PIXEL bit flags (not classes): bit 0 fill, 1 dilated cloud,
# 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow. Snow (bit 5) is never masked.
LANDSAT_QA_FILL_BITS = [0]
LANDSAT_QA_CLOUD_BITS = [1, 2, 3, 4]

PRESETS: dict[str, dict[str, Any]] = {
    # Sentinel-2 L2A, Collection 1 (ESA's reprocessing with one baseline ≥ 05.00 for the
    # whole archive): anonymous COGs on AWS, DN → reflectance = DN·1e-4 − 0.1 on every item.
    "earth_search_s2": {
        "url": "https://earth-search.aws.element84.com/v1",
        "collections": ["sentinel-2-c1-l2a"],
        "band_asset": "nir",  # B08, 10 m; "red" (B04, 10 m) also works
        "cloud_asset": "scl",  # 20 m classes
        "cloud_classes": S2_SCL_CLOUD_CLASSES,
        "scale": 0.0001,
        "offset": -0.1,
        "access": "https",
    },
    # The older Earth Search collection (all baselines). Its BOA offset metadata is wrong on
    # some 2022-2025 items (Element84/earth-search#66, #71); tracking (NCC) is insensitive
    # to a constant offset, but reflectance values are not to be trusted.
    "earth_search_s2_l2a": {
        "url": "https://earth-search.aws.element84.com/v1",
        "collections": ["sentinel-2-l2a"],
        "band_asset": "nir",
        "cloud_asset": "scl",
        "cloud_classes": S2_SCL_CLOUD_CLASSES,
        "scale": 0.0001,
        "offset": -0.1,
        "access": "https",
    },
    # Landsat 8/9 Collection 2 Level-1 panchromatic B8 (15 m, what ITS_LIVE tracks). The
    # data sit in the requester-pays bucket usgs-landsat: each asset's alternate.s3.href is
    # read through GDAL's /vsis3/ with AWS_REQUEST_PAYER=requester and keys from the environment.
    "usgs_landsat_c2l1": {
        "url": "https://landsatlook.usgs.gov/stac-server",
        "collections": ["landsat-c2l1"],
        "platforms": ["landsat-8", "landsat-9"],
        "band_asset": "pan",
        "cloud_asset": "qa_pixel",
        "cloud_bits": LANDSAT_QA_CLOUD_BITS,
        "fill_bits": LANDSAT_QA_FILL_BITS,
        "scale": 2.0e-5,  # OLI L1 REFLECTANCE_MULT_BAND_8 / ADD_BAND_8: TOA reflectance, no sun angle
        "offset": -0.1,
        "access": "s3_requester_pays",
        "aws_region": "us-west-2",  # where usgs-landsat lives: requests are signed for it
    },
    # Landsat 8/9 Collection 2 Level-2 surface reflectance (30 m) on Planetary Computer: no
    # account needed, asset hrefs are signed with a short-lived SAS token per collection.
    "planetary_computer_landsat": {
        "url": "https://planetarycomputer.microsoft.com/api/stac/v1",
        "collections": ["landsat-c2-l2"],
        "platforms": ["landsat-8", "landsat-9"],
        "band_asset": "red",  # B4, 30 m: inside the pan band's 500-680 nm range
        "cloud_asset": "qa_pixel",
        "cloud_bits": LANDSAT_QA_CLOUD_BITS,
        "fill_bits": LANDSAT_QA_FILL_BITS,
        "scale": 2.75e-5,
        "offset": -0.2,
        "access": "planetary_computer",
        "sas_url": "https://planetarycomputer.microsoft.com/api/sas/v1/token",
    },
}

ACCESS_KINDS = ("https", "s3_requester_pays", "planetary_computer")


def resolve_source(source: dict) -> dict:
    """``source`` with its preset's keys filled in (the config's own keys win)."""
    preset = source.get("preset")
    if not preset:
        return dict(source)
    if preset not in PRESETS:
        raise ValueError(f"source preset {preset!r} is unknown; expected one of {', '.join(PRESETS)}")
    return {**PRESETS[preset], **source}


# ----------------------------------------------------------------------------- STAC client

def stac_client(source: dict):
    """A pystac-client ``Client`` for ``source['url']`` that retries 429/5xx, POST included.

    ``max_retries`` (default 5) and ``retry_backoff_s`` (default 0.5 s, doubled each try;
    urllib3 also honours ``Retry-After``) come from the source.
    """
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO
    from urllib3 import Retry

    retry = Retry(total=int(source.get("max_retries", 5)), backoff_factor=float(source.get("retry_backoff_s", 0.5)),
                  status_forcelist=http.RETRY_STATUSES, respect_retry_after_header=True,
                  allowed_methods=None)  # searches are POST, which urllib3 retries only with None
    return Client.open(source["url"], stac_io=StacApiIO(max_retries=retry, timeout=float(source.get("timeout_s", 60))))


def platform_matches(item_platform: str, wanted: list[str] | None) -> bool:
    """``item_platform`` is one of ``wanted`` (case, '-' and '_' ignored: USGS says
    ``LANDSAT_8``, Planetary Computer ``landsat-8``); an empty ``wanted`` takes all."""
    if not wanted:
        return True
    norm = lambda s: str(s).lower().replace("_", "-")  # noqa: E731
    return norm(item_platform) in {norm(w) for w in wanted}


# ----------------------------------------------------------------------------- asset hrefs

def asset_href(asset, source: dict) -> str:
    """The href the scene table records for ``asset`` (a pystac Asset): the S3 alternate
    for requester-pays sources, otherwise the asset's own absolute href (never signed)."""
    if source.get("access") == "s3_requester_pays":
        s3 = (asset.extra_fields.get("alternate") or {}).get("s3") or {}
        if not s3.get("href"):
            raise KeyError(f"asset {asset.href} has no alternate.s3.href; source.access = 's3_requester_pays' "
                           "expects USGS Landsat items")
        return s3["href"]
    return asset.get_absolute_href()


def asset_scale_offset(asset) -> tuple[float | None, float | None]:
    """(scale, offset) of the asset's first ``raster:bands`` entry, None where not given."""
    bands = asset.extra_fields.get("raster:bands") or [{}]
    return bands[0].get("scale"), bands[0].get("offset")


def gdal_path(href: str) -> str:
    """``s3://bucket/key`` → ``/vsis3/bucket/key`` (GDAL reads it with the environment's keys,
    without boto3); anything else unchanged."""
    return "/vsis3/" + href[len("s3://"):] if href.startswith("s3://") else href


class SasSigner:
    """Planetary Computer SAS tokens, one per collection, reused until 5 min before expiry.

    ``GET {sas_url}/{collection}`` answers ``{"msft:expiry": ISO time, "token": "se=…&sig=…"}``;
    the token is appended to the blob URL's query string.
    """

    def __init__(self, sas_url: str):
        self.sas_url = sas_url.rstrip("/")
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def token(self, collection: str) -> str:
        with self._lock:
            token, expires = self._tokens.get(collection, ("", 0.0))
            if time.time() < expires - 300:
                return token
            request = urllib.request.Request(f"{self.sas_url}/{urllib.parse.quote(collection)}")
            key = os.environ.get("PC_SDK_SUBSCRIPTION_KEY")
            if key:
                request.add_header("Ocp-Apim-Subscription-Key", key)
            with urllib.request.urlopen(request, timeout=60) as response:
                body = json.load(response)
            expires = _iso_to_epoch(body.get("msft:expiry")) or time.time() + 3600
            self._tokens[collection] = (body["token"], expires)
            return body["token"]

    def sign(self, href: str, collection: str) -> str:
        """``href`` with the collection's SAS token in its query string."""
        return f"{href}{'&' if '?' in href else '?'}{self.token(collection)}"


def _iso_to_epoch(text: str | None) -> float | None:
    if not text:
        return None
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


_SIGNERS: dict[str, SasSigner] = {}


def gdal_href(href: str, source: dict, collection: str = "") -> str:
    """The path GDAL opens for a scene-table ``href``: signed for Planetary Computer,
    ``/vsis3/`` for S3. Signed URLs are made when read, never stored: tokens expire."""
    if not href:
        return href
    if source.get("access") == "planetary_computer":
        sas_url = source.get("sas_url") or PRESETS["planetary_computer_landsat"]["sas_url"]
        signer = _SIGNERS.setdefault(sas_url, SasSigner(sas_url))
        return signer.sign(href, collection or (source.get("collections") or [""])[0])
    return gdal_path(href)


def source_gdal_options(source: dict, fetch: dict | None = None) -> dict[str, str]:
    """GDAL configuration for reading a source's COGs: the network settings of
    :func:`icetrack.access.http.gdal_options` (only the blocks needed, retried, timed out, the
    configured token) plus the source's access rules.

    Requester-pays S3 adds ``AWS_REQUEST_PAYER=requester``; keys stay in the environment.
    Public HTTPS sources send no AWS signature.
    """
    options = http.gdal_options(fetch)
    if source.get("access") == "s3_requester_pays":
        options["AWS_REQUEST_PAYER"] = "requester"
        if source.get("aws_region") and not os.environ.get("AWS_REGION"):  # the environment's choice wins
            options["AWS_REGION"] = source["aws_region"]
    return options


@contextmanager
def reading(source: dict, fetch: dict | None = None) -> Iterator[None]:
    """A rasterio environment with :func:`source_gdal_options` for the source and the network settings."""
    import rasterio

    with rasterio.Env(**source_gdal_options(source, fetch)):
        yield


def s3_credentials_present(environ: dict | None = None) -> bool:
    """Whether AWS credentials are available from the environment (keys, a profile, or
    the shared credentials file): requester-pays reads need them, anonymous ones fail."""
    env = os.environ if environ is None else environ
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return True
    if env.get("AWS_PROFILE"):
        return True
    shared = env.get("AWS_SHARED_CREDENTIALS_FILE") or str(Path.home() / ".aws" / "credentials")
    return Path(shared).is_file()


