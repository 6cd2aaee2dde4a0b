"""Stored subscriptions (store/subscriptions.py) on both engines: SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import insert

from newsmon.settings import SubscriptionSettings
from newsmon.store import Store
from newsmon.store import subscriptions as subs


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'newsmon.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    opened = await Store.open(url)
    yield opened
    await opened.close()


def _sub(sub_id: str, *, url: str = "https://hooks.example.org/a", secret: str = "whsec_c2VjcmV0LW9uZQ==",
         **extra: object) -> SubscriptionSettings:
    return SubscriptionSettings.model_validate(
        {"id": sub_id, "topics": ["syria-military-shifts"], "webhook": {"url": url, "secret": secret}, **extra})


async def test_create_get_and_list_keep_the_spec_and_its_secret(store: Store) -> None:
    made = await subs.create(store, _sub("ops", languages=["ar", "en"], rate_limit="10/h"), "admin-token", 100.0)
    assert made is not None and made.created_by == "admin-token" and made.created_at == made.updated_at == 100.0
    got = await subs.get(store, "ops")
    assert isinstance(got, subs.Stored)
    assert got.spec.languages == ["ar", "en"] and got.spec.rate_limit == "10/h"
    assert got.spec.webhook is not None and got.spec.webhook.secret is not None
    assert got.spec.webhook.secret.get_secret_value() == "whsec_c2VjcmV0LW9uZQ=="  # the alerter signs with it
    assert (got.created_by, got.created_at, got.updated_at) == ("admin-token", 100.0, 100.0)


async def test_a_second_create_with_the_same_id_is_refused_and_changes_nothing(store: Store) -> None:
    assert await subs.create(store, _sub("dup"), "a", 1.0) is not None
    assert await subs.create(store, _sub("dup", url="https://other.example.org/b"), "b", 2.0) is None
    got = await subs.get(store, "dup")
    assert isinstance(got, subs.Stored) and got.created_by == "a"
    assert got.spec.webhook is not None and str(got.spec.webhook.url) == "https://hooks.example.org/a"


async def test_list_is_oldest_first_with_id_breaking_ties(store: Store) -> None:
    for sub_id, when in (("c", 5.0), ("b", 3.0), ("a", 5.0)):
        await subs.create(store, _sub(sub_id), "t", when)
    listed = await subs.list_all(store)
    assert [(s.spec.id if isinstance(s, subs.Stored) else s.id) for s in listed] == ["b", "a", "c"]


async def test_replace_and_remove_report_whether_the_id_existed(store: Store) -> None:
    await subs.create(store, _sub("r"), "t", 1.0)
    assert await subs.replace(store, _sub("r", url="https://hooks.example.org/new", min_score=0.5), 9.0)
    got = await subs.get(store, "r")
    assert isinstance(got, subs.Stored)
    assert got.spec.min_score == 0.5 and got.created_at == 1.0 and got.updated_at == 9.0
    assert got.spec.webhook is not None and str(got.spec.webhook.url) == "https://hooks.example.org/new"
    assert not await subs.replace(store, _sub("absent"), 9.0)
    assert await subs.remove(store, "r")
    assert not await subs.remove(store, "r")
    assert await subs.get(store, "r") is None
    assert await subs.list_all(store) == []


async def test_a_row_that_no_longer_validates_is_reported_not_dropped(store: Store) -> None:
    await subs.create(store, _sub("good"), "t", 1.0)
    bad = json.loads(subs.dump_spec(_sub("bad")))
    bad["rate_limit"] = "5/x"  # what an older newsmon accepted
    async with store.engine.begin() as conn:
        await conn.execute(insert(subs.subscriptions).values(id="bad", spec=json.dumps(bad), created_by="old",
                                                              created_at=2.0, updated_at=2.0))
    listed = await subs.list_all(store)
    assert [type(s).__name__ for s in listed] == ["Stored", "Invalid"]
    invalid = listed[1]
    assert isinstance(invalid, subs.Invalid) and invalid.id == "bad" and invalid.error.startswith("rate_limit:")
    assert isinstance(await subs.get(store, "bad"), subs.Invalid)
    assert await subs.remove(store, "bad")  # deletable like any other


async def test_arabic_text_and_long_ids_survive_the_round_trip(store: Store) -> None:
    long_id = "x" * subs.ID_MAX
    await subs.create(store, _sub(long_id, places=["حلب", "إدلب"]), "مشغل", 1.0)
    got = await subs.get(store, long_id)
    assert isinstance(got, subs.Stored) and got.spec.places == ["حلب", "إدلب"] and got.created_by == "مشغل"
