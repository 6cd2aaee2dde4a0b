"""/metrics parses with prometheus_client's parser, and the stages' counters move during a pipeline run."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import Api
from tests.api.pipeline import ARABIC, publish_through_pipeline


async def _samples(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with api.client(api.read) as c:
        r = await c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


async def test_metrics_parse_and_move(api: Api) -> None:
    before = await _samples(api)
    await publish_through_pipeline(api, ARABIC)
    after = await _samples(api)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("newsmon_matches_total", topic="syria-military-shifts") == 1
    assert moved("newsmon_alerts_total", topic="syria-military-shifts", kind="new") == 1
    assert moved("newsmon_classified_total", lang="ar") == 1
    attempts = [k for k in after if k[0] == "newsmon_deliveries_total" and ("channel", "webhook") in k[1]]
    assert sum(moved(name, **dict(labels)) for name, labels in attempts) >= 1
    assert moved("newsmon_api_requests_total", method="GET", status="2xx") >= 1
    assert any(name == "newsmon_end_to_end_seconds_bucket" or name == "newsmon_bus_lag" for name, _ in after)
