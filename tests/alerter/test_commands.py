"""`newsmon deliveries list|replay` through the CLI entry point."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from newsmon.cli import main
from newsmon.store import Store
from newsmon.store import deliveries as deliveries_db
from tests.alerter.conftest import Harness, hook, make_settings, match
from tests.alerter.membus import MemoryBus
from tests.support.receiver import Receiver, Reply


async def _dead_letter(tmp_path: Path, db: Path) -> str:
    """Run the alerter against a receiver that always fails, leaving one dead delivery; returns its id."""
    store = await Store.open(f"sqlite:///{db}")
    try:
        async with Receiver() as rx:
            rx.script("/hook", [], then=Reply(500))
            settings = make_settings(tmp_path, [hook("ops", rx.url())], delivery={"retry_delays": [0.05]})
            h = Harness(settings, MemoryBus(), store)
            await h.publish(match())
            await h.drain()
        [row] = await deliveries_db.list_deliveries(store, status="dead")
        return row.id
    finally:
        await store.close()


async def _status(db: Path) -> str:
    store = await Store.open(f"sqlite:///{db}")
    try:
        [row] = await deliveries_db.list_deliveries(store)
        return row.status
    finally:
        await store.close()


def test_list_and_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "state.db"
    dead_id = asyncio.run(_dead_letter(tmp_path, db))
    config = tmp_path / "newsmon.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n[store]\nurl = "sqlite:///{db}"\n', encoding="utf-8")

    assert main(["deliveries", "list", "--config", str(config), "--status", "dead"]) == 0
    out = capsys.readouterr().out
    assert dead_id in out and "HTTP 500" in out

    assert main(["deliveries", "replay", "--config", str(config), "--since", "2020-01-01T00:00:00"]) == 0
    assert "replayed 1 dead delivery" in capsys.readouterr().out
    assert asyncio.run(_status(db)) == "pending"

    assert main(["deliveries", "replay", "--config", str(config), "--all"]) == 0
    assert "replayed 0" in capsys.readouterr().out


def test_replay_needs_a_filter_and_a_valid_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "newsmon.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n', encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["deliveries", "replay", "--config", str(config)])
    assert main(["deliveries", "replay", "--config", str(config), "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err


SILENCE_BAD_INPUT = [
    ("no-scope", ["--duration", "2h", "--reason", "drill"], "at least one of topic"),
    ("no-reason", ["--topic", "t", "--duration", "2h"], "--reason"),
    ("blank-reason", ["--topic", "t", "--duration", "2h", "--reason", " "], "reason"),
    ("no-duration", ["--topic", "t", "--reason", "drill"], "--duration"),
    ("bad-duration", ["--topic", "t", "--duration", "soon", "--reason", "drill"], "--duration"),
    ("zero-duration", ["--topic", "t", "--duration", "0", "--reason", "drill"], "duration"),
    ("too-long", ["--topic", "t", "--duration", "91d", "--reason", "drill"], "90 days"),
    ("long-topic", ["--topic", "t" * 121, "--duration", "1h", "--reason", "drill"], "topic"),
]


@pytest.mark.parametrize(("args", "says"), [(a, s) for _, a, s in SILENCE_BAD_INPUT],
                         ids=[i for i, _, _ in SILENCE_BAD_INPUT])
def test_silences_add_refuses_bad_input_on_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str) -> None:
    config = tmp_path / "newsmon.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n', encoding="utf-8")
    assert main(["silences", "add", "--config", str(config), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and says in captured.err and captured.err.count("\n") == 1
    assert main(["silences", "list", "--config", str(config)]) == 0
    assert capsys.readouterr().out.count("\n") == 1  # the header only: nothing was stored


def test_silences_add_list_expire(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "newsmon.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n', encoding="utf-8")
    assert main(["silences", "add", "--config", str(config), "--place", "Aleppo", "--subscription", "ops",
                 "--duration", "30m", "--reason", "known offensive"]) == 0
    sid = capsys.readouterr().out.strip()
    assert sid.startswith("sil_")
    assert main(["silences", "list", "--config", str(config)]) == 0
    listing = capsys.readouterr().out
    assert sid in listing and "place=Aleppo subscription=ops" in listing and "known offensive" in listing
    assert main(["silences", "expire", "--config", str(config), sid]) == 0
    assert f"expired {sid}" in capsys.readouterr().out
    assert main(["silences", "expire", "--config", str(config), sid]) == 2
    assert "no active silence" in capsys.readouterr().err
    assert main(["silences", "list", "--config", str(config)]) == 0
    assert sid not in capsys.readouterr().out


async def _claim(db: Path, owner: str) -> None:
    """Let an alerter named `owner` claim the queued delivery (as if its attempt were in flight)."""
    import time

    from newsmon.store import delivery_leases

    store = await Store.open(f"sqlite:///{db}")
    try:
        [claimed] = await delivery_leases.claim(store, owner, time.time() + 1, lease=60, limit=10)
        assert claimed.status == "pending"
    finally:
        await store.close()


def test_list_shows_which_alerter_holds_a_delivery(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "state.db"
    dead_id = asyncio.run(_dead_letter(tmp_path, db))
    config = tmp_path / "newsmon.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n[store]\nurl = "sqlite:///{db}"\n', encoding="utf-8")
    assert main(["deliveries", "replay", "--config", str(config), "--all"]) == 0
    asyncio.run(_claim(db, "alerter-7f3a"))
    assert main(["deliveries", "list", "--config", str(config)]) == 0
    [line] = [x for x in capsys.readouterr().out.splitlines() if x.startswith(dead_id)]
    assert "pending" in line and "[held by alerter-7f3a]" in line
