"""Test and benchmark helper: serve a folder over HTTP on 127.0.0.1 with byte ranges, and optional latency."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class RangeHandler(BaseHTTPRequestHandler):
    """GET and HEAD of files under the server's root; `Range: bytes=a-b` answered with 206 when enabled."""

    protocol_version = "HTTP/1.1"  # keep-alive, as a real file server or object store
    server: RangeServer

    def do_HEAD(self) -> None:
        self.respond(body=False)

    def do_GET(self) -> None:
        self.respond(body=True)

    def respond(self, body: bool) -> None:
        time.sleep(self.server.latency_s)
        self.server.requests += 1
        path = (self.server.root / self.path.split("?", 1)[0].lstrip("/")).resolve()
        if self.server.root not in path.parents or not path.is_file():
            self.send_error(404)
            return
        size = path.stat().st_size
        start, end, status = 0, size - 1, 200
        wanted = RANGE.fullmatch(self.headers.get("Range", ""))
        if wanted and self.server.ranges:
            start, end, status = int(wanted[1]), min(int(wanted[2] or size - 1), size - 1), 206
            if start >= size:
                self.send_error(416)
                return
        self.send_response(status)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes" if self.server.ranges else "none")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if body:
            with path.open("rb") as f:
                f.seek(start)
                self.wfile.write(f.read(end - start + 1))

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


class RangeServer(ThreadingHTTPServer):
    """A threaded HTTP server of one folder; counts the requests it answered."""

    daemon_threads = True

    def __init__(self, root: Path, latency_s: float, ranges: bool) -> None:
        super().__init__(("127.0.0.1", 0), RangeHandler)  # port 0: a free port, never a fixed one
        self.root, self.latency_s, self.ranges = root.resolve(), latency_s, ranges
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextlib.contextmanager
def serve(root: Path, latency_s: float = 0.0, ranges: bool = True) -> Iterator[RangeServer]:
    """Serve `root` in a background thread for the duration of the block."""
    server = RangeServer(root, latency_s, ranges)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
