"""A real HTTP/1.1 file server on 127.0.0.1 that misbehaves on demand, for the network-fault tests.

``FaultServer(root)`` serves the folder ``root`` (GET and HEAD, single ``Range``
requests answered with 206 + ``Content-Range``, keep-alive) from a thread of the test
process. ``server.inject(kind, times=N, **options)`` makes the next N requests (whose
path ends with ``path_suffix`` and whose method is ``method``, default any; after
letting ``skip`` of them through) misbehave:

==============  ==========================================================================
``status``      answer ``code`` (default 500) with a short body; ``retry_after`` adds the header
``hang``        accept, read the request, then say nothing for ``seconds`` and close
``reset``       send ``after_bytes`` body bytes (default 0: not even the headers), then a TCP RST
``truncate``    correct headers, then only ``body_bytes`` of the body (default half), then close
``lie_length``  ``Content-Length`` off by ``delta`` bytes (±) from the truth; the true body (cut
                to the lie if shorter), then close
==============  ==========================================================================

``rate_bytes_per_s`` throttles every body (to kill a client mid-transfer);
``ranges=False`` ignores ``Range`` and always sends the whole file (200), as some servers do. ``log()``
lists every request with its ``Range``, status, body bytes really written and the fault
applied, like the nginx fixture's access log; ``max_active`` is the most requests it
served at once.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

PIECE = 16 << 10  # bytes written per send when throttling


@dataclass
class Request:
    method: str
    path: str
    range: str
    status: int
    body_bytes: int
    fault: str = ""
    started_s: float = 0.0  # time.monotonic() when the request arrived and when its answer ended
    ended_s: float = 0.0
    authorization: str = ""  # the request's Authorization header (to check where credentials come from)


@dataclass
class _Fault:
    kind: str
    times: int
    path_suffix: str
    method: str
    skip: int
    options: dict = field(default_factory=dict)


class FaultServer:
    """A misbehaving file server on ``http://127.0.0.1:<port>/`` (a context manager)."""

    def __init__(self, root: str | Path, rate_bytes_per_s: float | None = None, ranges: bool = True):
        self.root = Path(root).resolve()
        self.rate_bytes_per_s = rate_bytes_per_s
        self.ranges = ranges  # False: ignore Range headers and send whole files, as some servers do
        self._faults: list[_Fault] = []
        self._log: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._active = 0
        self.max_active = 0  # most requests served at the same time so far
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "FaultServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()  # wakes hanging handlers
        self._httpd.shutdown()
        self._httpd.server_close()

    def href(self, relative: str | Path) -> str:
        return f"{self.url}/{Path(relative).as_posix().lstrip('/')}"

    def inject(self, kind: str, times: int = 1, path_suffix: str = "", method: str = "", skip: int = 0,
               **options) -> None:
        """Misbehave as ``kind`` for ``times`` requests whose path ends with ``path_suffix`` (and whose
        method is ``method``, if given), after letting the first ``skip`` of them through."""
        if kind not in ("status", "hang", "reset", "truncate", "lie_length"):
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._faults.append(_Fault(kind, times, path_suffix, method.upper(), skip, options))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def log(self) -> list[Request]:
        """Requests answered so far, in the order they arrived."""
        with self._lock:
            return sorted(self._log, key=lambda r: r.started_s)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def wait_for_requests(self, n: int, path_suffix: str = "", timeout_s: float = 10.0) -> list[Request]:
        """The log (of paths ending with ``path_suffix``) once it holds ``n`` requests: a handler
        records a request after its last byte left, so the client can be back first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            log = [r for r in self.log() if r.path.endswith(path_suffix)]
            if len(log) >= n:
                break
            time.sleep(0.01)
        return log

    def bytes_served(self, path_suffix: str = "") -> int:
        return sum(r.body_bytes for r in self.log() if r.path.endswith(path_suffix))

    # -- used by the handler --
    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if path.endswith(fault.path_suffix) and fault.method in ("", method):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _record(self, request: Request) -> None:
        with self._lock:
            self._log.append(request)

    def _count(self, delta: int) -> None:
        with self._lock:
            self._active += delta
            self.max_active = max(self.max_active, self._active)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client that hangs up (GDAL, a killed test process) is expected here, not a traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(server: FaultServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers and GDAL expect

        def log_message(self, *args) -> None:  # quiet: the tests read log() instead
            pass

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def _serve(self, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            rng = self.headers.get("Range", "")
            record = Request(self.command, path, rng, 0, 0, started_s=time.monotonic(),
                             authorization=self.headers.get("Authorization", ""))
            fault = server._take_fault(self.command, path)
            record.fault = fault.kind if fault else ""
            server._count(+1)
            try:
                self._answer(path, rng, head, fault, record)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            finally:
                record.ended_s = time.monotonic()
                server._count(-1)
                server._record(record)

        def _answer(self, path: str, rng: str, head: bool, fault: _Fault | None, record: Request) -> None:
            opts = fault.options if fault else {}
            if fault and fault.kind == "hang":
                server._stopping.wait(opts.get("seconds", 30))
                self.close_connection = True
                return
            if fault and fault.kind == "reset" and not opts.get("after_bytes"):
                self._reset()
                return
            if fault and fault.kind == "status":
                code = opts.get("code", 500)
                body = f"injected {code}\n".encode()
                record.status = code
                self.send_response(code)
                if "retry_after" in opts:
                    self.send_header("Retry-After", str(opts["retry_after"]))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)
                    record.body_bytes = len(body)
                return
            file = (server.root / path.lstrip("/")).resolve()
            if server.root not in file.parents or not file.is_file():
                record.status = 404
                self.send_error(404)
                return
            size = file.stat().st_size
            start, end = 0, size - 1
            status = 200
            if rng and server.ranges:
                parsed = _parse_range(rng, size)
                if parsed is None:
                    record.status = 416
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start, end = parsed
                status = 206
            length = end - start + 1
            declared = length + opts.get("delta", 0) if fault and fault.kind == "lie_length" else length
            record.status = status
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes" if server.ranges else "none")
            self.send_header("Content-Length", str(max(declared, 0)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if head:
                return
            send = length
            if fault and fault.kind == "truncate":
                send = opts.get("body_bytes", length // 2)
            elif fault and fault.kind == "lie_length":
                send = min(length, max(declared, 0))
            elif fault and fault.kind == "reset":
                send = opts["after_bytes"]
            with open(file, "rb") as f:
                f.seek(start)
                self._send_body(f, send, record)
            if fault and fault.kind == "reset":
                self._reset()
            elif fault:  # truncate / lie_length: the connection ends where the lie shows
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_WR)

        def _send_body(self, f, n: int, record: Request) -> None:
            """Write ``n`` bytes of ``f``, counting in ``record`` what the socket accepted (also if it breaks)."""
            t0 = time.monotonic()
            while record.body_bytes < n and not server._stopping.is_set():
                piece = f.read(min(PIECE, n - record.body_bytes))
                if not piece:
                    break
                self.wfile.write(piece)
                record.body_bytes += len(piece)
                if server.rate_bytes_per_s:
                    ahead = record.body_bytes / server.rate_bytes_per_s - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)

        def _reset(self) -> None:
            """Abort the connection with a TCP RST (SO_LINGER 0), as a crashed proxy does."""
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

    return Handler


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single ``bytes=`` range, or None if unsatisfiable."""
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", value.split(",")[0].strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):  # suffix range: the last n bytes
        n = int(m.group(2))
        return (max(size - n, 0), size - 1) if n and size else None
    start = int(m.group(1))
    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    return (start, end) if start < size and start <= end else None


if __name__ == "__main__":  # for a manual look: python tests/faultserver.py <folder>
    import sys

    with FaultServer(sys.argv[1] if len(sys.argv) > 1 else os.getcwd()) as s:
        print(s.url, flush=True)
        threading.Event().wait()
