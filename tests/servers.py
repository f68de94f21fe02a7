"""Real servers on loopback for the tests: nginx serving files (with HTTP Range).

``NginxServer(root)`` starts Debian's nginx as a child process on a free 127.0.0.1
port, serving the folder ``root``, with an access log that records per request the
path, the status, the ``Range`` header and the bytes sent, so that tests can measure
what a client really fetched. Use it as a context manager (or the ``nginx`` fixture
factory of conftest.py); it stops the server on exit.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PROBE = "/.icetrack-probe"  # requested at start-up to see the server answer; left out of log()

_CONF = """
{user}
daemon off;
worker_processes 1;
pid {state}/nginx.pid;
error_log {state}/error.log warn;
events {{ worker_connections 64; }}
http {{
    types {{ image/tiff tif tiff; application/json json; application/x-netcdf nc; text/plain txt; }}
    default_type application/octet-stream;
    log_format ranges '$request_method $uri $status "$http_range" $bytes_sent $body_bytes_sent "$http_authorization"';
    access_log {state}/access.log ranges;
    client_body_temp_path {state}/body;
    proxy_temp_path {state}/proxy;
    fastcgi_temp_path {state}/fastcgi;
    uwsgi_temp_path {state}/uwsgi;
    scgi_temp_path {state}/scgi;
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ autoindex off; }}
    }}
}}
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answering(proc: subprocess.Popen, url: str, name: str, seconds: float) -> None:
    """Return once ``url`` gets any HTTP answer (a 404 too); raise if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not answer within {seconds:g} s")


def stop(proc: subprocess.Popen | None) -> None:
    """Terminate a server process (kill it after 5 s) and reap it."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class LogLine:
    method: str
    path: str
    status: int
    range: str
    bytes_sent: int  # headers + body
    body_bytes: int
    authorization: str  # the Authorization header received ("" if none): proves credentials were sent


class ServerProcess:
    """A server run as a child process on a free loopback port, with a private state
    folder; a context manager that stops the process and removes the folder on exit."""

    def __init__(self, name: str):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._state = Path(tempfile.mkdtemp(prefix=f"icetrack-{name.split()[0]}-"))
        self._proc: subprocess.Popen | None = None

    def _launch(self, cmd: list[str], probe_url: str, seconds: float) -> None:
        """Start ``cmd`` and wait until ``probe_url`` answers; clean up if it never does."""
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_until_answering(self._proc, probe_url, self.name, seconds)
        except RuntimeError:
            self.__exit__()
            raise

    def __exit__(self, *exc) -> None:
        stop(self._proc)
        shutil.rmtree(self._state, ignore_errors=True)


class NginxServer(ServerProcess):
    """nginx serving ``root`` on ``http://127.0.0.1:<port>/``."""

    def __init__(self, root: str | Path):
        if not Path(NGINX).exists():
            raise FileNotFoundError("nginx is not installed (Debian package nginx-light; `make test` installs it)")
        super().__init__("nginx")
        self.root = Path(root).resolve()

    def __enter__(self) -> "NginxServer":
        conf = self._state / "nginx.conf"
        # As root, nginx's workers would drop to `nobody` and could not read the tests' private tmp folders.
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        conf.write_text(_CONF.format(user=user, state=self._state, port=self.port, root=self.root))
        self._launch([NGINX, "-c", str(conf), "-p", str(self._state)], self.url + PROBE, seconds=10)
        return self

    def href(self, relative: str | Path) -> str:
        """The URL of a file below ``root``."""
        return f"{self.url}/{Path(relative).as_posix().lstrip('/')}"

    def _settled_log(self) -> Path:
        """The access log once it has not grown for 50 ms (at most 1 s): nginx writes a
        request's line just after its last byte left, so a client can be back before the line is."""
        path = self._state / "access.log"
        size, deadline = -1, time.monotonic() + 1
        while path.exists() and path.stat().st_size != size and time.monotonic() < deadline:
            size = path.stat().st_size
            time.sleep(0.05)
        return path

    def clear_log(self) -> None:
        # Truncate, do not replace: nginx appends at its own offset.
        self._settled_log().write_text("")

    def log(self) -> list[LogLine]:
        """The requests served since the last :meth:`clear_log`."""
        path = self._settled_log()
        lines = []
        for raw in path.read_text().splitlines() if path.exists() else []:
            method, uri, status, rest = raw.split(" ", 3)
            rest, auth = rest.rsplit(' "', 1)
            rng, sent, body = rest.rsplit(" ", 2)
            auth = auth.rstrip('"')
            if uri == PROBE:
                continue
            rng = rng.strip('"')
            lines.append(LogLine(method, uri, int(status), "" if rng == "-" else rng, int(sent), int(body),
                                 "" if auth == "-" else auth))
        return lines

    def bytes_served(self, path_suffix: str = "") -> int:
        """Body bytes sent for requests whose path ends with ``path_suffix``."""
        return sum(line.body_bytes for line in self.log() if line.path.endswith(path_suffix))
