"""The poller's agenda (pure): one entry per feed, earliest first, replaced whole on reload."""

from __future__ import annotations

from newsmon.poller.schedule import Agenda


def test_a_feed_is_scheduled_once_whatever_how_often_it_is_set() -> None:
    agenda = Agenda()
    agenda.set("a", 10)
    agenda.set("a", 5)
    agenda.set("a", 5)
    agenda.set("b", 7)
    assert (len(agenda), agenda.when("a"), agenda.next_at()) == (2, 5, 5)
    assert agenda.take_due(now=20, limit=10) == ["a", "b"]
    assert (len(agenda), agenda.next_at(), agenda.take_due(now=20, limit=10)) == (0, None, [])


def test_take_due_respects_time_and_limit() -> None:
    agenda = Agenda()
    for i, when in enumerate([3, 1, 2, 9]):
        agenda.set(f"f{i}", when)
    assert agenda.take_due(now=2.5, limit=1) == ["f1"]
    assert agenda.take_due(now=2.5, limit=5) == ["f2"]
    assert ("f0" in agenda, "f1" in agenda, agenda.next_at()) == (True, False, 3)


def test_replace_forgets_what_the_table_no_longer_has() -> None:
    agenda = Agenda()
    agenda.set("gone", 1)
    agenda.set("kept", 1)
    agenda.replace([("kept", 4), ("new", 2)])
    assert "gone" not in agenda and agenda.take_due(now=10, limit=10) == ["new", "kept"]
