"""The metrics port every process can serve (`[metrics] listen`): /healthz, /readyz, and metrics on any other path.

It runs in a thread of its own, so /healthz still answers (503, with the reasons) when the event loop hangs.
Bodies are JSON: `{"status": "ok"}`, `{"status": "unhealthy", "reasons": [...]}`, or
`{"status": "unavailable", "reason": "..."}` for /readyz.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import REGISTRY, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from newsmon.errors import ConfigError
from newsmon.health import Health


class _Quiet(WSGIRequestHandler):
    """No access log on stderr (scrapers and probes call every few seconds)."""

    def log_message(self, format: str, *args: Any) -> None:
        return None


def _json(start_response: StartResponse, ok: bool, body: dict[str, Any]) -> Iterable[bytes]:
    data = json.dumps(body, ensure_ascii=False).encode()
    start_response("200 OK" if ok else "503 Service Unavailable",
                   [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def app(health: Health) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    """The WSGI application of the metrics port."""
    metrics = make_wsgi_app(REGISTRY)

    def serve(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            reasons = health.liveness()
            return _json(start_response, not reasons, {"status": "unhealthy", "reasons": reasons} if reasons
                         else {"status": "ok"})
        if path == "/readyz":
            reason = health.readiness()
            return _json(start_response, reason is None, {"status": "unavailable", "reason": reason} if reason
                         else {"status": "ok"})
        body: Iterable[bytes] = metrics(environ, start_response)
        return body

    return serve


def serve(listen: str, health: Health) -> Callable[[], None]:
    """Serve the metrics port on `listen` (HOST:PORT) from a daemon thread; returns the function that stops it."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    try:
        httpd = make_server(host, int(port), app(health), Server, handler_class=_Quiet)
    except OSError as exc:
        raise ConfigError(f"metrics.listen = {listen!r}: cannot listen there: {exc.strerror or exc}") from None
    thread = threading.Thread(target=httpd.serve_forever, name="newsmon-metrics", daemon=True)
    thread.start()

    def close() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)

    return close
