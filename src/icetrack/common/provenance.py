"""Provenance written into every output, so that a map can be reproduced.

Each output records the icetrack version, a SHA-256 of the effective configuration
blocks that determine the map, the input scene ids and the kernel parameters. The
values come only from what the rule received through ``params:``/its inputs — never
from the environment — and keys that look like credentials are removed first, with
query strings (signed URLs carry tokens there) stripped from any URL.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from icetrack import __version__

# Key names whose values must never reach an output (matched case-insensitively, anywhere in the key).
SECRET_KEY = re.compile(r"token|secret|passw|credential|api[_-]?key|access[_-]?key|auth|signature|cookie|session",
                        re.IGNORECASE)
REDACTED = "<redacted>"


def redact(value: Any) -> Any:
    """``value`` with credential-like keys replaced by ``<redacted>`` and URL query strings/userinfo removed."""
    if isinstance(value, dict):
        return {k: (REDACTED if SECRET_KEY.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return value


def canonical_json(value: Any) -> str:
    """Key-sorted compact JSON: the same config always gives the same text (and hash)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config_blocks: dict) -> str:
    """SHA-256 (hex) of the redacted, canonical JSON of the effective config blocks."""
    return hashlib.sha256(canonical_json(redact(config_blocks)).encode()).hexdigest()


def provenance_record(config_blocks: dict, scene_ids_img1: list[str], scene_ids_img2: list[str], kernel: dict) -> dict:
    """The provenance of one pair's outputs as plain JSON-able values.

    ``config_blocks`` are the effective (per-glacier) config blocks the map depends on;
    ``kernel`` the pair's kernel parameters (kernel.json); the tracking rule's
    measurements of its inputs (``inputs``: valid shares) are results, not parameters,
    and stay in quality.json only.
    """
    kernel = {key: value for key, value in kernel.items() if key != "inputs"}
    return {
        "icetrack_version": __version__,
        "config_sha256": config_hash(config_blocks),
        "config": redact(config_blocks),
        "scene_ids_img1": list(scene_ids_img1),
        "scene_ids_img2": list(scene_ids_img2),
        "kernel_parameters": redact(kernel),
    }


def provenance_attrs(record: dict) -> dict[str, str]:
    """``record`` flattened to string attributes/tags (NetCDF global attributes, GeoTIFF tags)."""
    return {
        "icetrack_version": record["icetrack_version"],
        "config_sha256": record["config_sha256"],
        "processing_parameters": canonical_json(record["config"]),
        "kernel_parameters": canonical_json(record["kernel_parameters"]),
        "scene_ids_img1": ",".join(record["scene_ids_img1"]),
        "scene_ids_img2": ",".join(record["scene_ids_img2"]),
    }


PROVENANCE_KEYS = ("icetrack_version", "config_sha256", "processing_parameters", "kernel_parameters",
                   "scene_ids_img1", "scene_ids_img2")


def provenance_of(attrs: dict) -> dict[str, str]:
    """The provenance attributes found in a dataset's (or GeoTIFF's) attributes."""
    return {k: str(attrs[k]) for k in PROVENANCE_KEYS if k in attrs}
