"""The S3 API server of the object storage tests and benchmark, seen through a counting proxy.

``scripts/s3.sh`` starts moto's server (``AES_HMAC_S3_ENDPOINT``); ``CountingProxy`` is a small
HTTP proxy on 127.0.0.1 in front of it that counts, per request, its method, path, query,
``Range`` header and the bytes of the response body, so tests measure what the server sent.
"""

from __future__ import annotations

import http.client
import http.server
import os
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

ENDPOINT_VARIABLE = "AES_HMAC_S3_ENDPOINT"
_HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection"})


@dataclass
class Request:
    """One request that went through the proxy."""

    method: str
    path: str
    query: str
    range: str | None
    sent: int  # response body bytes


@dataclass
class CountingProxy:
    """A threaded HTTP proxy on 127.0.0.1 in front of ``upstream`` recording every request."""

    upstream: str
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        target = urllib.parse.urlsplit(self.upstream)
        host, port = target.hostname or "127.0.0.1", target.port or 80
        lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                body = self._body()
                if body is not None:
                    headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(host, port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                finally:
                    conn.close()
                # Recorded before the answer goes back, so the client sees it counted.
                split = urllib.parse.urlsplit(self.path)
                record = Request(
                    self.command, split.path, split.query, self.headers.get("Range"), len(data)
                )
                with lock:
                    proxy.requests.append(record)
                self.send_response(response.status, response.reason)
                # A HEAD's Content-Length is the object's size: passed on as it came.
                own_length = self.command != "HEAD"
                for k, v in response.getheaders():
                    if k.lower() not in _HOP_HEADERS and not (
                        own_length and k.lower() == "content-length"
                    ):
                        self.send_header(k, v)
                if own_length:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _body(self) -> bytes | None:
                """The request body, whole (botocore streams large bodies chunked)."""
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    length = int(self.headers.get("Content-Length") or 0)
                    return self.rfile.read(length) if length else None
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if not size:
                        while self.rfile.readline().strip():
                            pass  # trailers
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def take(self) -> list[Request]:
        """The requests recorded since the last ``take``."""
        taken, self.requests = self.requests, []
        return taken

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def endpoint() -> str | None:
    """The S3 server's endpoint URL that ``scripts/s3.sh`` printed, if the tests were given one."""
    return os.environ.get(ENDPOINT_VARIABLE) or None


def storage_options(url: str) -> dict[str, Any]:
    """``s3fs`` options for the server at ``url`` (moto accepts any credentials)."""
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": url, "region_name": "us-east-1"},
        "skip_instance_cache": True,
    }


def gets(requests: list[Request]) -> list[Request]:
    """The object reads (GETs of a key, not listings) among ``requests``."""
    return [r for r in requests if r.method == "GET" and "list-type" not in r.query]
