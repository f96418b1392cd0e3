"""Alerts as lines on standard output: what ``likeness-monitor up`` shows a person watching.

The console is a sink like Slack and the webhook, not a print beside them: the notifier
settles each alert once per sink, so a replayed alert, or decide's re-send of the last day's
alerts to a new broker, prints nothing a second time, and flood control replaces an entity's
alerts past the window's limit with one summary line here too.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.alerts.base import DeliveryContext, FloodSummary, Sink
from monitor.records import Alert

__all__ = ["ConsoleSink", "alert_line"]


def alert_line(alert: Alert) -> str:
    entity = alert.entity
    views = "?" if alert.views is None else f"{alert.views:,}"
    line = (
        f"ALERT {entity.name} ({entity.kind}, {entity.franchise or '-'}) "
        f"score {alert.score:.3f} >= {alert.threshold:.3f}  {alert.clip.platform}  "
        f"views {views}  {alert.clip.url}"
    )
    if alert.synthetic.value == "ai_generated":  # only what a source says; unknown stays quiet
        line += f"  AI-generated ({alert.synthetic.source})"
    return line


def _print(line: str) -> None:
    print(line, flush=True)


class ConsoleSink(Sink):
    name = "console"

    def __init__(self, write: Callable[[str], None] = _print) -> None:
        self._write = write

    async def deliver(self, alert: Alert, context: DeliveryContext) -> None:
        self._write(alert_line(alert))

    async def deliver_summary(self, summary: FloodSummary, context: DeliveryContext) -> None:
        entity = summary.entity
        self._write(
            f"ALERTS {entity.name} ({entity.kind}, {entity.franchise or '-'}): "
            f"{summary.suppressed} more of {summary.alerts} alerts since "
            f"{summary.window_start:%H:%M} UTC, not shown one by one"
        )
