"""Topics: the list, and preview with explanations and spans (also with a draft topic)."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.api.pipeline import ARABIC
from tests.api.test_auth import assert_problem

DRAFT = '''
[[topics]]
id = "draft-drones"
title = "Drone strikes (draft)"
languages = ["ar", "en"]
query = '"drone" OR "مسيرة"'
threshold = 0.1
'''


async def test_list(api: Api) -> None:
    async with api.client(api.read) as c:
        topics = (await c.get("/api/v1/topics")).json()
    syria = next(t for t in topics if t["id"] == "syria-military-shifts")
    assert set(syria["languages"]) >= {"ar", "en"} and syria["query"] and 0 < syria["threshold"] <= 1


async def test_preview_explains_arabic_with_spans(api: Api) -> None:
    async with api.client(api.read) as c:
        r = await c.post("/api/v1/topics/preview", json={"title": ARABIC.title, "text": ARABIC.text})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["lang"] == "ar"
    match = next(m for m in body["matches"] if m["topic"] == "syria-military-shifts")
    assert match["explanation"] and match["score"] > 0.5
    for span in match["spans"]:
        source = ARABIC.title if span["field"] == "title" else ARABIC.text
        assert source[span["start"]:span["end"]] == span["text"]
    assert "حلب" in {s["text"] for s in match["spans"]}
    assert "aleppo" in {p["id"] for p in body["places"]}


async def test_preview_with_a_draft_topic(api: Api) -> None:
    async with api.client(api.read) as c:
        r = await c.post("/api/v1/topics/preview", json={"text": "A drone hit a depot near the border",
                                                          "lang": "en", "topic_toml": DRAFT})
    assert r.status_code == 200, r.text
    assert "draft-drones" in {m["topic"] for m in r.json()["scores"]}


async def test_preview_draft_without_topics(api: Api) -> None:
    async with api.client(api.read) as c:
        r = await c.post("/api/v1/topics/preview", json={"text": "x", "topic_toml": "title = 'nothing'"})
    assert str(assert_problem(r, 422)["detail"]).startswith("topic_toml")


async def test_preview_bad_query_in_draft(api: Api) -> None:
    bad = DRAFT.replace("""'"drone" OR "مسيرة"'""", """'"drone" AND ('""")
    async with api.client(api.read) as c:
        r = await c.post("/api/v1/topics/preview", json={"text": "x", "topic_toml": bad})
    assert str(assert_problem(r, 422)["detail"]).startswith("topic_toml")
