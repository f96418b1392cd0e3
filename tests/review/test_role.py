"""The review role in the Faust worker: its pages are served by the worker's own web server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from pydantic import SecretStr

from monitor.config import PipelineSettings, ReviewSettings, Settings
from monitor.pipeline.app import TOPICS, create_pipeline
from tests.review.conftest import TOKEN


@pytest.fixture
async def worker_web(tmp_path: Path) -> AsyncIterator[str]:
    settings = Settings(
        pipeline=PipelineSettings(state_dir=tmp_path), review=ReviewSettings(token=SecretStr(TOKEN))
    )
    # No broker is reached: the app is built, and only its web server is run.
    pipeline = create_pipeline(settings, "kafka://127.0.0.1:9", roles=("review",))
    assert "reviews" in TOPICS and not pipeline.app.agents, "read by a feed of its own, not agents"
    runner = web.AppRunner(pipeline.app.web.web_app)  # type: ignore[attr-defined]  # aiohttp driver
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()
    pipeline.state.close()


async def test_a_worker_running_the_review_role_serves_the_review_page(worker_web: str) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=worker_web) as client:
        page = await client.get("/review", headers=bearer)
        assert page.status_code == 200 and "Alerts to review" in page.text
        assert "review_csrf=" in page.headers["set-cookie"]
        assert (await client.get("/review")).status_code == 401
        assert (await client.get("/review/export.json", headers=bearer)).json() == []
        assert (await client.get("/review/export.csv", headers=bearer)).text.startswith("alert_id,")
        refused = await client.post(f"/review/{'0' * 20}/confirm", headers=bearer)
        assert refused.status_code == 403


def test_a_worker_without_the_review_role_has_no_review_page(tmp_path: Path) -> None:
    settings = Settings(pipeline=PipelineSettings(state_dir=tmp_path))
    pipeline = create_pipeline(settings, "kafka://127.0.0.1:9", roles=("decide",))
    paths = {route.resource.canonical for route in pipeline.app.web.web_app.router.routes()}  # type: ignore[attr-defined]
    assert "/healthz" in paths and "/review" not in paths
    pipeline.state.close()
