"""A small HTTP file server for tests: byte ranges, injected failures, cut transfers.

``FileServer`` serves ``files`` (URL path -> bytes or a file) from a daemon thread on 127.0.0.1 and
records every request, so tests can check what a client asked for. It is also pointed at as
``HF_ENDPOINT``: unknown paths answer a JSON 404, as the Hub API does.

    with FileServer({"ckpt/model.npz": data}) as server:
        download_file(server.url + "ckpt/model.npz", ...)
        assert server.gets("ckpt/model.npz")[0].range is None
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class RequestRecord:
    method: str
    path: str  # URL path, e.g. "/ckpt/model.npz"
    range: str | None  # the Range header, if any
    status: int  # status sent
    headers: dict[str, str] = field(default_factory=dict)  # request headers
    cut_at: int | None = None  # body bytes sent before the connection was cut on purpose


class FileServer:
    """Serve ``files`` over HTTP on 127.0.0.1 (a context manager: start / stop).

    Attributes (all may be changed while the server runs):
        url: Base URL ending with "/".
        files: URL path without the leading slash -> bytes or a Path to read when requested.
        requests: Every request served, in order.
        cut_after: Path -> close the connection after this many body bytes, once (the entry is
            removed when used); Content-Length still announces the full size.
        fail_next: Path -> statuses to answer the next requests with, one popped per request.
        ignore_range: Answer 200 with the whole file even to Range requests.
        chunk_delay: Seconds to sleep per 64 KiB chunk sent (to make transfers overlap).
    """

    def __init__(self, files: dict[str, bytes | Path] | None = None):
        self.files: dict[str, bytes | Path] = dict(files or {})
        self.requests: list[RequestRecord] = []
        self.cut_after: dict[str, int] = {}
        self.fail_next: dict[str, list[int]] = {}
        self.ignore_range = False
        self.chunk_delay = 0.0
        self.url = ""
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FileServer:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), name="FileServer",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def gets(self, path: str) -> list[RequestRecord]:
        """The GET requests for ``path`` (with or without the leading slash), in order."""
        path = "/" + path.lstrip("/")
        with self._lock:
            return [record for record in self.requests if record.method == "GET" and record.path == path]

    # Called from the handler threads.
    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def _pop_failure(self, path: str) -> int | None:
        with self._lock:
            statuses = self.fail_next.get(path)
            return statuses.pop(0) if statuses else None

    def _pop_cut(self, path: str) -> int | None:
        with self._lock:
            return self.cut_after.pop(path, None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FileServer

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up (a cut test, a cancelled download) is not a server error.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers (and huggingface_hub's clients) use

    def log_message(self, format, *args) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _serve(self, send_body: bool) -> None:
        owner = self.server.owner
        url_path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        key = url_path.lstrip("/")
        range_header = self.headers.get("Range")
        record = RequestRecord(self.command, url_path, range_header, 0, dict(self.headers.items()))

        failure = owner._pop_failure(key)
        content = owner.files.get(key)
        if failure is not None or content is None:
            record.status = failure if failure is not None else 404
            owner._record(record)
            error = "injected failure" if failure is not None else "not found"
            self._send(record.status, json.dumps({"error": error}).encode(), "application/json", send_body)
            return

        data = content.read_bytes() if isinstance(content, Path) else bytes(content)
        total = len(data)
        start, end, status = 0, total, 200
        match = _RANGE.match(range_header.strip()) if range_header and not owner.ignore_range else None
        if match and (match[1] or match[2]):
            if match[1]:
                start = int(match[1])
                end = min(int(match[2]) + 1, total) if match[2] else total
            else:  # bytes=-K: the last K bytes
                start = max(total - int(match[2]), 0)
            if start >= total:
                record.status = 416
                owner._record(record)
                self._send(416, b"", "application/octet-stream", send_body, {"Content-Range": f"bytes */{total}"})
                return
            status = 206
        body = data[start:end]
        extra = {"Accept-Ranges": "bytes"}
        if status == 206:
            extra["Content-Range"] = f"bytes {start}-{end - 1}/{total}"
        cut = owner._pop_cut(key) if send_body else None
        record.status = status
        record.cut_at = min(cut, len(body)) if cut is not None else None
        owner._record(record)
        self._send(status, body, "application/octet-stream", send_body, extra, cut=record.cut_at)

    def _send(self, status: int, body: bytes, content_type: str, send_body: bool,
              extra: dict[str, str] | None = None, cut: int | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if not send_body:
                return
            payload = body[:cut] if cut is not None else body
            for offset in range(0, len(payload), CHUNK):
                self.wfile.write(payload[offset:offset + CHUNK])
                if self.server.owner.chunk_delay:
                    time.sleep(self.server.owner.chunk_delay)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        if cut is not None:
            # Closing after fewer bytes than Content-Length announced is how a dropped transfer looks.
            self.close_connection = True
