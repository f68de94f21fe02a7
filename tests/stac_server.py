"""A real STAC API on loopback for the tests, with a fault-injecting HTTP proxy in front.

``RustacServer(items)`` runs ``rustac serve`` (pip ``rustac``, pinned in
requirements.txt: an in-memory STAC API server with item search by ``intersects``,
``bbox``, ``datetime`` and ``collections``, paged by ``limit`` and "next" links) on a
free 127.0.0.1 port. ``RecordingProxy`` is a plain threaded HTTP server that forwards
every request to an upstream server and records it (method, path with query string,
headers, status); ``fail_next(n, status)`` makes it answer the next ``n`` POSTs with an
error instead, so tests can see pystac-client retry. The API is started with its public
address set to the proxy, so the "next" links of every page lead back through it.

``stac_api`` is a fixture factory: ``stac_api(items)`` → a :class:`StacApi` with ``url``
(through the proxy), ``proxy`` and ``server``; both are stopped after the test.
"""

from __future__ import annotations

import http.client
import json
import shutil
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from servers import ServerProcess, free_port

RUSTAC = str(Path(sys.executable).parent / "rustac") if (Path(sys.executable).parent / "rustac").exists() \
    else (shutil.which("rustac") or "rustac")


@dataclass
class Request:
    method: str
    path: str  # with the query string
    headers: dict[str, str]
    status: int
    body: bytes = b""

    def json(self) -> dict:
        return json.loads(self.body or b"{}")


@dataclass
class _Faults:
    remaining: int = 0
    status: int = 503
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, method: str) -> int | None:
        with self.lock:
            if method == "POST" and self.remaining > 0:
                self.remaining -= 1
                return self.status
        return None


class RecordingProxy:
    """HTTP proxy on 127.0.0.1 that forwards to ``upstream`` and records each request."""

    def __init__(self, upstream: str = ""):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.upstream = upstream
        self.requests: list[Request] = []
        self._faults = _Faults()
        self._server: ThreadingHTTPServer | None = None

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next ``n`` POST requests with ``status`` (and ``Retry-After: 0``)."""
        self._faults.remaining, self._faults.status = n, status

    def __enter__(self) -> "RecordingProxy":
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                fault = proxy._faults.take(self.command)
                if fault is not None:
                    payload = json.dumps({"code": "Injected", "description": f"injected {fault}"}).encode()
                    # Recorded before answering: a client back from its request finds it in the list.
                    proxy.requests.append(Request(self.command, self.path, headers, fault, body))
                    self.send_response(fault)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                up = urlsplit(proxy.upstream)
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
                forward = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=forward)
                resp = conn.getresponse()
                data = resp.read()
                proxy.requests.append(Request(self.command, self.path, headers, resp.status, body))
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                # A HEAD answer has no body but announces the file's size: pass that on.
                length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def searches(self) -> list[Request]:
        """The POST /search requests seen (failed ones included)."""
        return [r for r in self.requests if r.method == "POST" and r.path.startswith("/search")]


class RustacServer(ServerProcess):
    """``rustac serve`` with ``items`` (STAC item dicts) on 127.0.0.1, links pointing at ``public_url``."""

    def __init__(self, items: list[dict], public_url: str | None = None):
        if not Path(RUSTAC).exists() and not shutil.which(RUSTAC):
            raise FileNotFoundError("rustac is not installed (pip install -r requirements.txt)")
        super().__init__("rustac serve")
        self.url = public_url or self.url
        self._items_file = self._state / "items.json"
        self._items_file.write_text(json.dumps({"type": "FeatureCollection", "features": items}))

    def __enter__(self) -> "RustacServer":
        self._launch([RUSTAC, "serve", "--addr", self.url.replace("http://", ""), "--bind", f"127.0.0.1:{self.port}",
                      "--create-collections", str(self._items_file)], f"http://127.0.0.1:{self.port}/", seconds=20)
        return self


@dataclass
class StacApi:
    url: str
    proxy: RecordingProxy
    server: RustacServer


@pytest.fixture
def stac_api():
    """Factory: ``stac_api(items)`` starts rustac behind a :class:`RecordingProxy`."""
    from conftest import require_program

    require_program(RUSTAC, "(pip) rustac — pip install -r requirements.txt")
    started: list = []

    def start(items: list[dict]) -> StacApi:
        proxy = RecordingProxy().__enter__()
        started.append(proxy)
        server = RustacServer(items, public_url=proxy.url).__enter__()
        started.append(server)
        proxy.upstream = f"http://127.0.0.1:{server.port}"
        return StacApi(proxy.url, proxy, server)

    yield start
    for thing in reversed(started):
        thing.__exit__()
