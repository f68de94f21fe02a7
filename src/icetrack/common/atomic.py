"""Write-to-temp-then-rename, so that an interrupted job never leaves a half-written
file under its final name (Snakemake would otherwise trust it on the next run)."""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

# Below this many free bytes a failed write is blamed on a full disk, whatever the
# library said (GDAL and HDF5 report ENOSPC as generic write errors).
NEARLY_FULL_BYTES = 1 << 20
# An error that says a write or seek failed is blamed on the disk below this much free space:
# GDAL writes whole compressed strips/tiles, so the one that no longer fits can fail while
# more than a MiB is still free.
WRITE_FAILED_LOW_SPACE_BYTES = 64 << 20
WRITE_FAILED = re.compile(r"write error|seek error|failed to write|could not write|no space", re.IGNORECASE)


class DiskFullError(OSError):
    """No space left where an output is written; nothing was left under its final name."""


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` on success.

    The temporary file lives in the same directory so that the rename is atomic on
    POSIX file systems. On any exception the temporary file is removed and ``final``
    is left untouched (whatever the user had there is kept); a full disk is reported
    as :class:`DiskFullError` naming the file and the folder.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = final.suffix if suffix is None else suffix
    _remove_stale_parts(final, suffix)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".part{suffix}", dir=final.parent)
    except OSError as e:
        _raise_if_disk_full(e, final, _free_bytes(final.parent))
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    except Exception as e:
        free_at_failure = _free_bytes(final.parent)  # before the cleanup below frees space again
        tmp.unlink(missing_ok=True)
        _raise_if_disk_full(e, final, free_at_failure)
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _raise_if_disk_full(error: BaseException, final: Path, free_at_failure: int | None = None) -> None:
    full = isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
    write_failed = bool(WRITE_FAILED.search(str(error)))
    nearly_full = free_at_failure is not None and (
        free_at_failure < NEARLY_FULL_BYTES or (write_failed and free_at_failure < WRITE_FAILED_LOW_SPACE_BYTES))
    if full or nearly_full or "No space left" in str(error):
        free = _free_bytes(final.parent)
        shown = f"{free / 1e6:.1f} MB free" if free is not None else "free space unknown"
        raise DiskFullError(errno.ENOSPC, f"no space left on the disk holding {final.parent} while writing "
                            f"{final.name} ({shown} after cleanup); nothing was written under that name — free "
                            "some space and re-run") from error


def _remove_stale_parts(final: Path, suffix: str) -> None:
    """Delete temporaries of ``final`` left by a killed run (SIGKILL skips ``finally``).

    Only names of this very output's temporaries (``.<name>.<8 random chars>.part<suffix>``,
    see mkstemp above) are touched, and an output has one writer at a time.
    """
    pattern = f".{glob.escape(final.name)}.{'?' * 8}.part{glob.escape(suffix)}"
    for stale in final.parent.glob(pattern):
        stale.unlink(missing_ok=True)


def write_text_atomic(final: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``final`` atomically."""
    with atomic_path(final) as tmp:
        tmp.write_text(text)
