"""The API's own Prometheus metrics (kept here until the lead moves them to newsmon.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

API_REQUESTS = Counter("newsmon_api_requests_total", "API requests by method and status class",
                       ["method", "status"])
API_ERRORS = Counter("newsmon_api_errors_total", "Problem responses by status", ["status"])
API_AUTH_FAILURES = Counter("newsmon_api_auth_failures_total", "Refused requests by reason", ["reason"])
SSE_CLIENTS = Gauge("newsmon_api_sse_clients", "Connected live-stream clients")
TAIL_ERRORS = Counter("newsmon_api_tail_errors_total", "Failures while tailing the store or bus", ["source"])
