"""The Faust app: more than one can be built in a process (a tool, a test), and each serves the
project's metrics and Faust's own on ``/metrics``."""

from __future__ import annotations

from pathlib import Path

import httpx
from aiohttp import web

from monitor.config import PipelineSettings, Settings
from monitor.pipeline.roles import create_pipeline


async def test_two_apps_in_one_process_both_serve_every_metric(tmp_path: Path) -> None:
    pipelines = [
        create_pipeline(
            Settings(pipeline=PipelineSettings(state_dir=tmp_path / str(i))),
            "kafka://127.0.0.1:9",  # never reached: only the web server runs
            roles=("decide",),
        )
        for i in range(2)
    ]
    runner = web.AppRunner(pipelines[1].app.web.web_app)  # type: ignore[attr-defined]
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/metrics"
        async with httpx.AsyncClient() as client:
            page = await client.get(url)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/plain; version=")
        assert "likeness_clips_scored_total" in page.text, "the project's metrics"
        assert "likeness_monitor_messages_received_total" in page.text, "Faust's sensors"
    finally:
        await runner.cleanup()
        for pipeline in pipelines:
            pipeline.state.close()
