"""What every rule script needs: its log file, and progress bars that land in it."""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Iterator

from tqdm import tqdm


def network_settings(snakemake) -> dict:  # noqa: ANN001 - Snakemake's injected object
    """The config's ``fetch`` block: how bytes are fetched (retries, timeouts, the download
    cache, the name of a token's environment variable), never which bytes.

    Read from the config at run time, not through ``params:`` (the one exception to that
    rule, on purpose): params are re-run triggers, and a changed timeout or cache folder
    changes no output, so it must re-run nothing. The block was validated with the rest
    of the config before any job started.
    """
    return dict(snakemake.config.get("fetch") or {})


def start_logging(snakemake) -> logging.Logger:  # noqa: ANN001 - Snakemake's injected object
    """Send this rule's logging, stdout and stderr (tracebacks included) to its ``log:`` file."""
    log_path = snakemake.log[0] if len(snakemake.log) else None
    if log_path:
        stream = open(log_path, "w", buffering=1)  # noqa: SIM115 - lives as long as the script
        sys.stdout = sys.stderr = stream
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from icetrack.access.http import RedactURLs

    for handler in logging.getLogger().handlers:  # signed URLs (tokens) never reach the log
        handler.addFilter(RedactURLs())
    sys.excepthook = _one_line_for_user_errors
    return logging.getLogger(f"icetrack.{snakemake.rule}")


def _one_line_for_user_errors(kind, value, tb) -> None:  # noqa: ANN001 - sys.excepthook signature
    """A full disk or a server that keeps failing is the user's to fix, not a bug: one line
    instead of a traceback wall."""
    from icetrack.common.atomic import DiskFullError
    from icetrack.access.http import InsecureURLError, NetworkError

    if isinstance(value, DiskFullError):
        print(f"icetrack: error: {value.strerror}", file=sys.stderr)
    elif isinstance(value, (NetworkError, InsecureURLError)):
        print(f"icetrack: error: {value}", file=sys.stderr)
    else:
        sys.__excepthook__(kind, value, tb)


@contextmanager
def progress(total: int, desc: str, unit: str) -> Iterator[tqdm]:
    """A tqdm bar that writes to the rule's log at most every 5 s."""
    with tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, mininterval=5.0, ascii=True) as bar:
        yield bar
