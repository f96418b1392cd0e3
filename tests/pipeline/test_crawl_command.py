"""``likeness-monitor crawl --source NAME --once --dry-run`` and how sources are configured."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.config import Settings
from monitor.sources.crawl_state import CrawlState
from monitor.sources.registry import build_crawlers
from tests.sources.platforms import FakeYouTube, catalogue, serve

runner = CliRunner()


async def test_a_dry_run_prints_what_would_be_sent_and_remembers_nothing(tmp_path: Path) -> None:
    fake = FakeYouTube([], popular=catalogue(3, prefix="pop"))
    async with serve(fake) as url:
        env = {
            "LIKENESS_MONITOR_SOURCES__YOUTUBE__API_KEY": FakeYouTube.KEY,
            "LIKENESS_MONITOR_SOURCES__YOUTUBE__BASE_URL": f"{url}/youtube/v3",
            "LIKENESS_MONITOR_PIPELINE__STATE_DIR": str(tmp_path),
        }
        args = ["crawl", "--source", "youtube", "--once", "--dry-run"]
        first = await asyncio.to_thread(runner.invoke, app, args, env=env)
        second = await asyncio.to_thread(runner.invoke, app, args, env=env)

    assert first.exit_code == 0, first.output
    printed = [json.loads(line) for line in first.stdout.splitlines() if line.startswith("{")]
    assert sorted(p["clip_id"] for p in printed) == ["pop000", "pop001", "pop002"]
    assert {p["platform"] for p in printed} == {"youtube"}
    assert second.stdout.count('"clip_id"') == 3, "a dry run commits no cursor and no dedup"
    assert FakeYouTube.KEY not in first.output + second.output


def test_crawling_a_source_without_credentials_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["crawl", "--source", "reddit", "--once", "--dry-run"],
        env={"LIKENESS_MONITOR_PIPELINE__STATE_DIR": str(tmp_path)},
    )
    assert result.exit_code != 0
    assert "reddit is not configured" in str(result.exception) + result.output


def test_sources_without_credentials_are_skipped_with_one_line_each_and_no_secret_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings.model_validate(
        {
            "sources": {
                "youtube": {"api_key": "yt-very-secret"},
                "x": {"bearer_token": "x-very-secret"},
                "reddit": {"client_id": "reddit-id-secret"},  # no client_secret
            }
        }
    )
    state = CrawlState(tmp_path / "crawl.sqlite3")
    crawlers = build_crawlers(settings.sources, settings.pipeline.gallery, state)

    assert sorted(c.name for c in crawlers) == ["x", "youtube"]
    skipped = [r.getMessage() for r in caplog.records if "not crawled" in r.getMessage()]
    assert len(skipped) == 3 and {m.split(":")[0] for m in skipped} == {"reddit", "tiktok", "rss"}
    logged = " ".join(r.getMessage() for r in caplog.records) + repr(settings)
    for secret in ("yt-very-secret", "x-very-secret", "reddit-id-secret"):
        assert secret not in logged
