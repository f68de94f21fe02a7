"""HTTP settings shared by GDAL's windowed range reads and the download cache.

One ``fetch`` config block drives both: retries, timeouts, the HTTPS rule and where
credentials come from. Credentials are never config values: GDAL and ``requests``
read ``~/.netrc`` themselves, AWS keys come from the usual ``AWS_*`` variables, and a
bearer token is read from the environment variable *named* by ``fetch.token_env``.
URLs are shown in logs and errors only through :func:`shown`, which drops query
strings (signed URLs carry tokens there) and user:password parts.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any
from urllib.parse import urlsplit

from icetrack.config.errors import ConfigError
from icetrack.common.provenance import redact

# The fetch block's defaults (the schema fills the same values in the workflow); the
# package's functions accept a partial block so that other callers need not know them all.
FETCH_DEFAULTS: dict[str, Any] = {
    "mode": "window",
    "allow_http": False,
    "max_retries": 5,
    "retry_delay_s": 1.0,
    "max_retry_delay_s": 60.0,
    "timeout_s": 60.0,
    "chunk_mib": 4,
    "max_connections": 4,
    "cache_dir": "resources/cache",
    "token_env": "",
    "gdal_allowed_extensions": [".tif", ".tiff", ".TIF", ".TIFF", ".jp2", ".nc"],
}

# Schemes GDAL and the cache read without the HTTPS rule: local files and object stores
# (signed by GDAL itself). Anything else that names a scheme must be https (or opted-in http).
# HTTP statuses worth retrying (the server or a proxy is overloaded, restarting or rate
# limiting), for every reader: STAC searches (urllib3 Retry) and the download cache alike.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_LOCAL_OR_SIGNED = {"", "file", "s3", "gs", "az", "abfs"}
_GDAL_CURL_PREFIXES = ("/vsicurl/", "/vsicurl_streaming/")


class InsecureURLError(ConfigError):
    """A plain-http (or unknown-scheme) URL without the ``fetch.allow_http`` opt-in."""


class NetworkError(RuntimeError):
    """A remote file that could not be had for good; the message is one line naming the URL."""


def settings(fetch: dict | None) -> dict[str, Any]:
    """``fetch`` with every missing key at its default."""
    return {**FETCH_DEFAULTS, **(fetch or {})}


def shown(url: str) -> str:
    """``url`` as it may appear in a log or an error: no query string, no user:password."""
    return redact(url) if isinstance(url, str) else url


_URL = re.compile(r"https?://[^\s'\"<>]+")


def redact_urls(text: str) -> str:
    """``text`` with every URL in it passed through :func:`shown` (query strings dropped)."""
    return _URL.sub(lambda m: shown(m.group(0)), text)


class RedactURLs(logging.Filter):
    """A logging filter for handlers: GDAL's warnings (via rasterio) quote the full signed URL
    ("HTTP error code: 500 - https://…?X-Amz-Signature=…"); this drops query strings from
    every record before it reaches a log file."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "://" in message:
            record.msg, record.args = redact_urls(message), None
        return True


def is_remote(href: str) -> bool:
    """True for http(s) URLs, also when wrapped in GDAL's ``/vsicurl/`` prefix."""
    return _strip_vsicurl(href).lower().startswith(("http://", "https://"))


def check_url(url: str, allow_http: bool, field: str = "href") -> None:
    """Refuse a URL that is not HTTPS (plain http needs ``fetch.allow_http: true``).

    Local paths, ``file://`` and object-store URLs (``s3://``…) pass: GDAL signs or
    reads those itself. Raises :class:`InsecureURLError` naming ``field`` and the URL.
    """
    plain = _strip_vsicurl(url)
    scheme = urlsplit(plain).scheme.lower() if "://" in plain else ""
    if scheme == "https" or scheme in _LOCAL_OR_SIGNED or (scheme == "http" and allow_http):
        return
    if scheme == "http":
        raise InsecureURLError(f"{field} = {shown(plain)!r}: plain http is refused (credentials and data would "
                               "travel unencrypted); expected an https:// URL, or set fetch.allow_http: true "
                               "for a server you trust (e.g. on your own network)")
    raise InsecureURLError(f"{field} = {shown(plain)!r}: unsupported URL scheme {scheme!r}; expected https://, "
                           "a local path or an object-store URL (s3://)")


def bearer_token(fetch: dict | None) -> str | None:
    """The token in the environment variable named by ``fetch.token_env`` (None if unset)."""
    name = settings(fetch)["token_env"]
    return os.environ.get(name) or None if name else None


def auth_headers(fetch: dict | None) -> dict[str, str]:
    """HTTP headers carrying the configured credentials (empty without a token)."""
    token = bearer_token(fetch)
    return {"Authorization": f"Bearer {token}"} if token else {}


def gdal_options(fetch: dict | None) -> dict[str, str]:
    """GDAL configuration for windowed COG reads over HTTP(S), for ``rasterio.Env(**…)``.

    - ``GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR``: do not list the "folder" of each file
      (a costly request, and refused by most object stores);
    - ``CPL_VSIL_CURL_ALLOWED_EXTENSIONS``: never probe side-car files (.aux.xml, .ovr…);
    - ``GDAL_HTTP_MAX_RETRY`` (GDAL's default is 0: the first 5xx would fail the job) and
      ``GDAL_HTTP_RETRY_DELAY`` (s, doubled at each retry by GDAL);
    - ``GDAL_HTTP_CONNECTTIMEOUT`` and ``GDAL_HTTP_LOW_SPEED_TIME`` (s, below 1 byte/s) so that
      a server that hangs fails the attempt, not the run;
    - ``VSI_CACHE``: blocks read once (the COG header) are kept for the other reads;
    - ``GDAL_HTTP_MERGE_CONSECUTIVE_RANGES``: adjacent tiles in one request.
    A configured bearer token goes in ``GDAL_HTTP_HEADERS``; ``.netrc`` is read by GDAL
    (``GDAL_HTTP_NETRC`` defaults to YES).
    """
    s = settings(fetch)
    options = {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ",".join(s["gdal_allowed_extensions"]),
        "GDAL_HTTP_MAX_RETRY": str(int(s["max_retries"])),
        "GDAL_HTTP_RETRY_DELAY": f"{float(s['retry_delay_s']):g}",
        # An idle timeout, as for the download cache: no byte for timeout_s ends the attempt,
        # while a slow but moving transfer goes on (GDAL_HTTP_TIMEOUT would cap the whole request).
        "GDAL_HTTP_CONNECTTIMEOUT": str(max(1, round(float(s["timeout_s"])))),
        "GDAL_HTTP_LOW_SPEED_TIME": str(max(1, round(float(s["timeout_s"])))),
        "GDAL_HTTP_LOW_SPEED_LIMIT": "1",
        "VSI_CACHE": "TRUE",
        "VSI_CACHE_SIZE": str(64 << 20),
        "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    }
    token = bearer_token(fetch)
    if token:
        options["GDAL_HTTP_HEADERS"] = f"Authorization: Bearer {token}"
    return options


def forget_cached_blocks(href: str) -> bool:
    """Drop GDAL's cached blocks of the remote ``href`` (``VSICurlPartialClearCache``).

    GDAL keeps what /vsicurl/ received, also a body cut short, for the life of the process:
    a retry would read the same short block again. rasterio does not expose this GDAL C
    function, so it is called in the libgdal rasterio loaded. Returns False (nothing done)
    where that library cannot be found.
    """
    clear = _gdal_function("VSICurlPartialClearCache")
    if clear is None or not is_remote(href):
        return False
    clear(("/vsicurl/" + _strip_vsicurl(href)).encode())
    return True


def _gdal_function(name: str):
    """A C function of the libgdal loaded in this process, or None."""
    import ctypes

    import rasterio  # noqa: F401 - loads libgdal

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libgdal" in line and line.rstrip().endswith(tuple("0123456789o"))}
    except OSError:
        paths = set()
    for path in sorted(paths):
        try:
            function = getattr(ctypes.CDLL(path), name)
        except (OSError, AttributeError):
            continue
        function.argtypes, function.restype = [ctypes.c_char_p], None
        return function
    return None


def _strip_vsicurl(href: str) -> str:
    for prefix in _GDAL_CURL_PREFIXES:
        if href.startswith(prefix):
            return href[len(prefix):]
    return href
