"""The OpenAPI document matches the routes, and a schemathesis fuzz run against it finds no 5xx."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
from starlette.routing import Route

from newsmon.api.openapi import OPERATIONS
from tests.api.conftest import Api

STATIC = {("get", "/"), ("get", "/dashboard"), ("get", "/api/v1/openapi.json")}


async def test_document_lists_every_route(api: Api) -> None:
    served = {(m.lower(), r.path) for r in api.service.app.routes if isinstance(r, Route)
              for m in (r.methods or ()) if m != "HEAD"}
    assert served - STATIC == set(OPERATIONS)
    async with api.client() as c:
        doc = (await c.get("/api/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    assert {(m, p) for p, ops in doc["paths"].items() for m in ops} == set(OPERATIONS)
    assert doc["paths"]["/healthz"]["get"]["security"] == []


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_fuzz_finds_no_server_errors(api: Api, tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("schemathesis")
    if not cli.exists() and shutil.which("schemathesis") is None:
        pytest.skip("schemathesis is not installed (.venv/bin/pip install schemathesis)")
    proc = await asyncio.create_subprocess_exec(
        str(cli), "run", f"{api.url}/api/v1/openapi.json", "--url", api.url,
        "-H", f"Authorization: Bearer {api.admin}", "--checks", "not_a_server_error,status_code_conformance,"
        "content_type_conformance,response_schema_conformance", "--max-examples", "25", "--no-color",
        "--exclude-path", "/api/v1/stream", "--seed", "1",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-12000:]
