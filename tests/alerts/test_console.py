"""The console is a sink like any other: each alert printed once, however often it comes back,
and an entity's flood past the window's limit as one summary line."""

from __future__ import annotations

from pathlib import Path

import httpx

from monitor.alerts.console import ConsoleSink, alert_line
from monitor.alerts.deliveries import DeliveryStore
from monitor.alerts.notifier import Notifier, build_sinks
from monitor.config import NotifySettings
from monitor.records import Alert, ParkedAlert, Synthetic
from tests.review.conftest import make_alert


async def nowhere_parked(parked: ParkedAlert) -> None:
    raise AssertionError(f"the console never fails: {parked}")


async def nowhere_rejected(alert: Alert, reason: str) -> None:
    raise AssertionError(f"the console never fails: {reason}")


def notifier(
    tmp_path: Path, lines: list[str], now: list[float] | None = None, **settings: object
) -> Notifier:
    clock = now or [1_000_000.0]
    return Notifier(
        [ConsoleSink(lines.append)],
        DeliveryStore(tmp_path / "notify.sqlite3"),
        NotifySettings.model_validate(settings),
        park=nowhere_parked,
        reject=nowhere_rejected,
        clock=lambda: clock[0],
    )


async def test_an_alert_is_printed_once_however_often_it_is_handled(tmp_path: Path) -> None:
    lines: list[str] = []
    console = notifier(tmp_path, lines)
    alert = make_alert("c1", "ghostface")
    for _ in range(3):  # a replay, a re-send to a new broker
        await console.handle(alert)
    assert lines == [alert_line(alert)]
    assert lines[0].startswith("ALERT ") and lines[0].endswith(alert.clip.url)
    console.close()


async def test_an_entitys_alerts_past_the_flood_limit_become_one_summary_line(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    now = [1_000_000.0]
    console = notifier(tmp_path, lines, now, flood_max_per_window=2, flood_window_s=600.0)
    for n in range(5):
        await console.handle(make_alert(f"c{n}", "ghostface"))
    assert len(lines) == 2  # the rest wait for the window's summary
    now[0] += 1200.0  # the window has closed
    assert await console.flush() == 1
    assert lines[2].startswith("ALERTS ") and "3 more of 5 alerts" in lines[2]
    console.close()


async def test_the_console_is_on_unless_switched_off() -> None:
    async with httpx.AsyncClient() as client:
        assert [s.name for s in build_sinks(NotifySettings(), client)] == ["console"]
        assert build_sinks(NotifySettings(console=False), client) == []


def test_an_ai_generated_clip_says_so_and_who_says_it_and_unknown_says_nothing() -> None:
    alert = make_alert("c1", "ghostface")
    assert "AI-generated" not in alert_line(alert)
    labelled = alert.model_copy(
        update={"synthetic": Synthetic(source="platform", value="ai_generated")}
    )
    assert alert_line(labelled).endswith("  AI-generated (platform)")
