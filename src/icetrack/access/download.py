"""A download cache: whole files fetched once, resumable, verified, atomically placed.

Used by ``fetch.mode: download`` (servers without Range support for GDAL, or users who
keep local copies) and open to other steps (e.g. ITS_LIVE files). The API is one call::

    path = download(url, "resources/cache", fetch_settings, size_bytes=..., checksum=...)

What it guarantees:

- **Resumable.** Bytes go to ``<name>.partial`` beside the final file, flushed every
  ``chunk_mib``; a rerun (or a retry after a dropped connection) asks for the rest with
  ``Range: bytes=<have>-`` and ``If-Range: <ETag or Last-Modified of the first answer>``,
  so that a file replaced on the server in between is sent whole instead of being
  spliced. A killed download re-fetches at most one chunk.
- **Verified.** The size must match the server's ``Content-Length``/``Content-Range``
  total and, when the STAC item gives them, ``file:size`` and ``file:checksum`` (a
  multihash, e.g. ``1220…`` for SHA-256). A truncated body or a lying Content-Length is
  detected and never cached.
- **Atomic.** Only a verified file is renamed to its final name; a permanent failure
  leaves neither the file nor its ``.partial``.
- **Retried** with exponential backoff on 5xx, 408, 429 (honouring ``Retry-After``),
  timeouts, resets and truncated bodies; other 4xx fail at once. Errors are one line
  naming the URL (query string removed) and the HTTP status.
- **Bounded.** At most ``fetch.max_connections`` downloads run at once per process
  (Snakemake's ``resources: http_connections`` bounds jobs across the run), and one
  process at a time writes a given file (a lock file beside it).
- **Contained.** The cache key is a hash of the URL (without its query string, so that
  re-signed URLs hit the same entry) plus a sanitised file name: no URL can name a path
  outside the cache folder.
"""

from __future__ import annotations

import email.utils
import fcntl
import hashlib
import logging
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import requests

from icetrack.access.http import RETRY_STATUSES, NetworkError, auth_headers, check_url, settings, shown

log = logging.getLogger(__name__)

# multihash function codes (https://github.com/multiformats/multicodec) → hashlib names
MULTIHASH = {0x11: "sha1", 0x12: "sha256", 0x13: "sha512", 0xD5: "md5"}

_semaphores: dict[int, threading.BoundedSemaphore] = {}
_semaphores_lock = threading.Lock()


class DownloadError(NetworkError):
    """A download that failed for good: one line naming the URL and the reason (HTTP status)."""


class _Transient(Exception):
    """A failure worth another attempt; ``wait_s`` is the server's Retry-After, if any."""

    def __init__(self, reason: str, wait_s: float | None = None):
        super().__init__(reason)
        self.wait_s = wait_s


def cache_path(url: str, cache_dir: str | os.PathLike) -> Path:
    """Where ``url`` is cached: ``<cache_dir>/<16 hex of SHA-256(url without query)>/<safe name>``.

    The name keeps the URL's last path segment (for the user, and for GDAL drivers that
    look at the extension) with anything but ``[A-Za-z0-9._-]`` replaced and no leading
    dot, so neither ``..`` nor ``/`` nor a NUL can leave the folder.
    """
    parts = urlsplit(url)
    key_url = f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{parts.port or ''}{parts.path}"
    key = hashlib.sha256(key_url.encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", parts.path.rsplit("/", 1)[-1]).lstrip(".")[-120:] or "data"
    root = Path(cache_dir).resolve()
    path = (root / key / name).resolve()
    if path.parent.parent != root:  # cannot happen with the name above; kept as the guarantee
        raise DownloadError(f"download of {shown(url)}: cache path {path} would leave {root}")
    return path


def parse_multihash(checksum: str) -> tuple[str, bytes]:
    """(hashlib name, digest) of a hex multihash such as STAC's ``file:checksum``."""
    try:
        raw = bytes.fromhex(checksum)
        code, i = _varint(raw, 0)
        length, i = _varint(raw, i)
    except (ValueError, IndexError):
        raise ValueError(f"file:checksum = {checksum!r}: not a hex multihash (expected e.g. '1220' + 64 hex digits)") from None
    digest = raw[i:]
    if code not in MULTIHASH or len(digest) != length:
        raise ValueError(f"file:checksum = {checksum!r}: unsupported hash code 0x{code:x} or wrong digest length; "
                         f"expected one of {', '.join(MULTIHASH.values())}")
    return MULTIHASH[code], digest


def file_digest(path: Path, algorithm: str) -> bytes:
    """Digest of a file's bytes, read in 8 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.digest()


def stac_file_info(asset_fields: dict) -> tuple[int | None, str | None]:
    """(``file:size`` in bytes, ``file:checksum`` hex multihash) of a STAC asset (its
    ``extra_fields``, STAC file extension), None where the catalogue gives none."""
    size, checksum = asset_fields.get("file:size"), asset_fields.get("file:checksum")
    return (int(size) if isinstance(size, int) or str(size).isdigit() else None), (str(checksum) if checksum else None)


def download(url: str, cache_dir: str | os.PathLike, fetch: dict | None = None, *, size_bytes: int | None = None,
             checksum: str | None = None, progress: Callable[[int], None] | None = None) -> Path:
    """Path of ``url``'s verified copy in ``cache_dir``, downloading (or resuming) it if needed.

    ``fetch`` is the ``fetch`` config block (retries, timeouts, chunk size, HTTPS rule,
    token); ``size_bytes`` (``file:size``) and ``checksum`` (``file:checksum``, hex
    multihash) are checked when given. ``progress(n)`` is called with each chunk's byte
    count. Raises :class:`DownloadError` (one line) when the file cannot be had.
    """
    s = settings(fetch)
    check_url(url, s["allow_http"], "download url")
    expected_hash = parse_multihash(checksum) if checksum else None
    final = cache_path(url, cache_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    with _connection_slot(int(s["max_connections"])), _file_lock(final):
        if final.exists() and _verified(final, size_bytes, expected_hash):
            return final
        final.unlink(missing_ok=True)  # a stale or different version: fetch again
        partial = final.with_name(final.name + ".partial")
        try:
            _fetch_with_retries(url, partial, s, progress)
            _check_complete(url, partial, size_bytes, expected_hash)
            with open(partial, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(partial, final)
            _validator_path(partial).unlink(missing_ok=True)
        except BaseException as error:
            # A failure for good: nothing may look cached. (A killed process skips this; its
            # .partial is what the next run resumes from.)
            if isinstance(error, (DownloadError, ValueError)):
                partial.unlink(missing_ok=True)
                _validator_path(partial).unlink(missing_ok=True)
            raise
    log.info("cached %s (%d bytes) as %s", shown(url), final.stat().st_size, final)
    return final


def http_status(url: str, fetch: dict | None = None) -> str:
    """What the server answers right now to a one-byte GET of ``url``: "HTTP 206 Partial Content",
    "HTTP 404 Not Found", or the connection error. For error messages: GDAL does not say."""
    s = settings(fetch)
    headers = {"User-Agent": "icetrack", "Range": "bytes=0-0", **auth_headers(s)}
    try:
        with requests.get(url, headers=headers, stream=True, timeout=float(s["timeout_s"])) as r:
            return f"HTTP {r.status_code} {r.reason}".rstrip()
    except requests.RequestException as e:
        return _short(e)


def _fetch_with_retries(url: str, partial: Path, s: dict, progress: Callable[[int], None] | None) -> int:
    """Fill ``partial`` with the whole body of ``url``; returns the total size the server declared."""
    attempts = int(s["max_retries"]) + 1
    headers = {"User-Agent": "icetrack", "Accept-Encoding": "identity", **auth_headers(s)}
    total: int | None = None
    with requests.Session() as session:  # trust_env: .netrc credentials, proxies from the environment
        for attempt in range(attempts):
            try:
                total = _one_request(session, url, partial, headers, s, total, progress)
                return total
            except _Transient as failure:
                if attempt + 1 == attempts:
                    raise DownloadError(f"download of {shown(url)} failed after {attempts} attempts: {failure}") from None
                delay = min(float(s["retry_delay_s"]) * 2 ** attempt, float(s["max_retry_delay_s"]))
                if failure.wait_s is not None:  # the server said when: honour it (within the cap)
                    delay = min(max(failure.wait_s, 0.0), float(s["max_retry_delay_s"]))
                log.warning("download of %s: %s; retry %d/%d in %.1f s", shown(url), failure, attempt + 1,
                            attempts - 1, delay)
                time.sleep(delay)
    raise AssertionError("unreachable")


def _one_request(session: requests.Session, url: str, partial: Path, headers: dict, s: dict, total: int | None,
                 progress: Callable[[int], None] | None) -> int:
    """One GET from where ``partial`` ends; appends the body. Raises _Transient or DownloadError."""
    have = partial.stat().st_size if partial.exists() else 0
    if total is not None and have == total:
        return total
    request_headers = dict(headers)
    if have:
        request_headers["Range"] = f"bytes={have}-"
        validator = _validator_path(partial).read_text() if _validator_path(partial).exists() else ""
        if validator:  # the rest only if the file is still the one the partial came from, else all of it
            request_headers["If-Range"] = validator
    timeout = (float(s["timeout_s"]), float(s["timeout_s"]))
    chunk = int(s["chunk_mib"] * (1 << 20))
    try:
        with session.get(url, headers=request_headers, stream=True, timeout=timeout, allow_redirects=True) as r:
            if r.url != url:
                check_url(r.url, s["allow_http"], f"redirect of {shown(url)}")
            status = r.status_code
            if status in RETRY_STATUSES:
                raise _Transient(f"HTTP {status} {r.reason}", _retry_after_s(r.headers.get("Retry-After")))
            if status == 416 and have:  # asked past the end: the partial is complete or belongs to another file
                size = _content_range_total(r.headers.get("Content-Range", ""))
                if size == have:
                    return have
                partial.unlink(missing_ok=True)
                raise _Transient(f"HTTP 416 for bytes={have}- (server size {size}); restarting from byte 0")
            if status not in (200, 206):
                raise DownloadError(f"download of {shown(url)}: HTTP {status} {r.reason}".rstrip())
            if status == 200:
                have = 0  # the server ignored the Range (or none was sent): start over
                declared = _int_or_none(r.headers.get("Content-Length"))
                server_total = declared
            else:
                start, server_total = _content_range(r.headers.get("Content-Range", ""), url)
                if start != have:
                    partial.unlink(missing_ok=True)
                    raise _Transient(f"server answered Range bytes={have}- from byte {start}; restarting")
                declared = _int_or_none(r.headers.get("Content-Length"))
                if declared is not None and server_total is not None and have + declared != server_total:
                    partial.unlink(missing_ok=True)
                    raise _Transient(f"Content-Length {declared} + {have} ≠ Content-Range total {server_total}")
            if total is not None and server_total is not None and server_total != total:
                partial.unlink(missing_ok=True)  # the file changed on the server between requests
                raise _Transient(f"size on the server changed from {total} to {server_total} bytes; restarting")
            if not have:
                _remember_validator(partial, r.headers)
            with open(partial, "ab" if have else "wb") as out:
                for block in r.iter_content(chunk_size=chunk):
                    out.write(block)
                    out.flush()  # what was received survives a kill of this process
                    if progress:
                        progress(len(block))
    except requests.exceptions.ChunkedEncodingError:  # the body ended before its Content-Length
        got = partial.stat().st_size if partial.exists() else 0
        raise _Transient(f"body truncated: the connection closed before byte {server_total or '?'} "
                         f"({got} bytes kept)") from None
    except (requests.ConnectionError, requests.Timeout) as e:
        raise _Transient(_short(e)) from None
    got = partial.stat().st_size if partial.exists() else 0
    if server_total is None:
        return got  # no size declared (chunked transfer): the checks against file:size/checksum remain
    if got < server_total:
        raise _Transient(f"body truncated at {got} of {server_total} bytes")
    if got > server_total:
        partial.unlink(missing_ok=True)
        raise _Transient(f"received {got} bytes, more than the declared {server_total}; restarting")
    return server_total


def _validator_path(partial: Path) -> Path:
    return partial.with_name(partial.name + ".validator")


def _remember_validator(partial: Path, headers) -> None:  # noqa: ANN001 - requests' header mapping
    """Keep the file version's ETag (strong only) or Last-Modified beside the partial, for If-Range."""
    etag = headers.get("ETag", "")
    validator = etag if etag and not etag.startswith("W/") else headers.get("Last-Modified", "")
    if validator:
        _validator_path(partial).write_text(validator)
    else:
        _validator_path(partial).unlink(missing_ok=True)


def _check_complete(url: str, partial: Path, size_bytes: int | None,
                    expected_hash: tuple[str, bytes] | None) -> None:
    got = partial.stat().st_size
    if size_bytes is not None and got != size_bytes:
        raise DownloadError(f"download of {shown(url)}: got {got} bytes but the catalogue (file:size) says "
                            f"{size_bytes}; the server sent a different or damaged file — not cached")
    if expected_hash is not None:
        algorithm, digest = expected_hash
        if file_digest(partial, algorithm) != digest:
            raise DownloadError(f"download of {shown(url)}: {algorithm} of the {got} bytes received differs from "
                                "the catalogue's file:checksum — not cached")


def _verified(path: Path, size_bytes: int | None, expected_hash: tuple[str, bytes] | None) -> bool:
    """A cached file still matches what the catalogue says (size, then checksum)."""
    if size_bytes is not None and path.stat().st_size != size_bytes:
        return False
    return expected_hash is None or file_digest(path, expected_hash[0]) == expected_hash[1]


@contextmanager
def _connection_slot(limit: int) -> Iterator[None]:
    """At most ``limit`` downloads at once in this process."""
    with _semaphores_lock:
        semaphore = _semaphores.setdefault(max(1, limit), threading.BoundedSemaphore(max(1, limit)))
    with semaphore:
        yield


@contextmanager
def _file_lock(final: Path) -> Iterator[None]:
    """One writer per cache entry across processes (flock; released if the process dies)."""
    with open(final.with_name(final.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _content_range(value: str, url: str) -> tuple[int, int | None]:
    """(first byte, total or None) of ``Content-Range: bytes a-b/total``."""
    m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", value.strip())
    if not m:
        raise _Transient(f"206 without a valid Content-Range ({value!r})")
    return int(m.group(1)), None if m.group(3) == "*" else int(m.group(3))


def _content_range_total(value: str) -> int | None:
    m = re.fullmatch(r"bytes \*/(\d+)", value.strip())
    return int(m.group(1)) if m else None


def _retry_after_s(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.strip().isdigit() else None


def _varint(raw: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = raw[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i
        shift += 7


def _short(error: Exception) -> str:
    """One line for a requests/urllib3 exception, without the URL (it may carry a token)."""
    text = str(error.__context__ or error) if not str(error) else str(error)
    text = re.sub(r"https?://\S+", "<url>", text)
    text = re.sub(r"host='[^']*', port=\d+", "", text)
    return f"{type(error).__name__}: {text.splitlines()[0][:160]}" if text else type(error).__name__
