"""CLI: `newsmon tokens create|list` (the secret printed once, only its hash stored) and `newsmon api`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from newsmon.cli import main


def _config(tmp_path: Path, port: int = 0) -> Path:
    path = tmp_path / "newsmon.toml"
    text = f'data_dir = "{tmp_path / "data"}"\n[api]\nlisten = "127.0.0.1:{port}"\n'
    path.write_text(text, encoding="utf-8")
    return path


def test_tokens_create_prints_once_stores_hash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    assert main(["tokens", "create", "--scope", "admin", "--name", "ops-team", "--config", str(config)]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("nm_") and len(token) > 40
    db = (tmp_path / "data" / "newsmon.db").read_bytes() + b"".join(
        p.read_bytes() for p in (tmp_path / "data").glob("newsmon.db-*"))
    assert token.encode() not in db
    assert main(["tokens", "list", "--config", str(config)]) == 0
    listing = capsys.readouterr().out
    assert "admin" in listing and "ops-team" in listing and token not in listing


def test_tokens_create_refuses_an_unknown_scope(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["tokens", "create", "--scope", "root", "--config", str(_config(tmp_path))])
    assert exc.value.code == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(60)
async def test_newsmon_api_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    config = _config(tmp_path, port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "newsmon.cli", "api", "--config",
                                                str(config), env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            for _ in range(300):
                try:
                    if (await c.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            assert (await c.get("/readyz")).json() == {"status": "ok", "store": True, "bus": True}
            assert (await c.get("/api/v1/alerts")).status_code == 401
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()[-2000:]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _start_api(config: Path, port: int) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")} | {"NEWSMON_LOG__FORMAT": "json"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "newsmon.cli", "api", "--config",
                                                str(config), env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        for _ in range(300):
            try:
                if (await c.get("/readyz")).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    proc.kill()
    raise AssertionError("the API did not start")


async def _stop(proc: asyncio.subprocess.Process) -> list[dict[str, object]]:
    import json

    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    return [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]


@pytest.mark.timeout(90)
async def test_first_start_on_loopback_prints_a_working_dashboard_url_once(tmp_path: Path) -> None:
    port = _free_port()
    config = _config(tmp_path, port)
    events = await _stop(await _start_api(config, port))
    first = [e for e in events if e["event"] == "api.first_token"]
    assert len(first) == 1
    url = httpx.URL(str(first[0]["dashboard"]))
    assert (url.host, url.port, url.path) == ("127.0.0.1", port, "/dashboard")
    token = url.params["token"]
    proc = await _start_api(config, port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            assert (await c.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})).status_code == 200
            page = await c.get(url.path, params=url.params)
            assert page.status_code == 200 and "newsmon" in page.text
            root = await c.get("/", params={"token": token})  # the root keeps the sign-in query
            assert root.status_code == 307 and root.headers["location"] == f"/dashboard?token={token}"
    finally:
        again = await _stop(proc)
    assert not [e for e in again if e["event"] == "api.first_token"]  # a token exists now: none is made


@pytest.mark.timeout(90)
async def test_no_token_is_made_when_listening_beyond_loopback(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "newsmon.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[api]\nlisten = "0.0.0.0:{port}"\n', encoding="utf-8")
    events = await _stop(await _start_api(config, port))
    assert not [e for e in events if e["event"] == "api.first_token"]
    assert [e for e in events if e["event"] == "api.no_tokens"]
