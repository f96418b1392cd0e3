"""A story's views over time as a small SVG line chart, drawn on the server.

The review page runs no script at all (its Content-Security-Policy allows none), so a chart
has to arrive as markup; a few dozen points need no plotting library. The SVG is inlined in
the page, where the template does not escape it: every text in it is escaped here, and the
numbers are formatted by this module, so nothing a clip's uploader chose ever reaches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from monitor.records import ViewsAt

__all__ = ["views_chart"]

_PAD_X = 6.0
_PAD_TOP = 16.0
_PAD_BOTTOM = 16.0
_LINE = "#2a6fb0"
_TEXT = "#555"


def views_chart(points: Sequence[ViewsAt], width: int = 240, height: int = 80) -> str:
    """An inline ``<svg>`` of ``points`` (any order), or a note when there is none."""
    if not points:
        return '<p class="chart-empty">no views yet</p>'
    ordered = sorted(points, key=lambda point: point.at)
    first, last = ordered[0].at, ordered[-1].at
    top = max(point.views for point in ordered)
    title = f"Views over time: {_count(ordered[-1].views)} at {_time(last)} UTC, peak {_count(top)}"
    xy = [_place(point, first, last, top, width, height) for point in ordered]
    parts = [
        f'<svg class="views-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f"<title>{escape(title)}</title>",
        _line(xy),
        _label(_PAD_X, _PAD_TOP - 4, "start", f"max {_count(top)} views"),
        _label(_PAD_X, height - 3, "start", _time(first)),
    ]
    if last != first:
        parts.append(_label(width - _PAD_X, height - 3, "end", _time(last)))
    parts.append("</svg>")
    return "".join(parts)


def _place(
    point: ViewsAt, first: datetime, last: datetime, top: int, width: int, height: int
) -> tuple[float, float]:
    """Where ``point`` lies in the box: time across, views up; one time or no views at all
    are drawn in the middle and on the floor rather than divided by zero."""
    span = (last - first).total_seconds()
    across = 0.5 if span <= 0 else (point.at - first).total_seconds() / span
    up = 0.0 if top <= 0 else point.views / top
    inner_w = max(width - 2 * _PAD_X, 1.0)
    inner_h = max(height - _PAD_TOP - _PAD_BOTTOM, 1.0)
    return _PAD_X + across * inner_w, _PAD_TOP + (1.0 - up) * inner_h


def _line(xy: Sequence[tuple[float, float]]) -> str:
    if len({round(x, 2) for x, _ in xy}) == 1:  # one time: a line would have no length
        x, y = xy[-1]
        return f'<circle cx="{x:.2f}" cy="{y:.2f}" r="3" fill="{_LINE}"/>'
    coords = " ".join(f"{x:.2f},{y:.2f}" for x, y in xy)
    return f'<polyline fill="none" stroke="{_LINE}" stroke-width="1.5" points="{coords}"/>'


def _label(x: float, y: float, anchor: str, text: str) -> str:
    return (
        f'<text x="{x:.2f}" y="{y:.2f}" text-anchor="{anchor}" font-size="10" '
        f'fill="{_TEXT}">{escape(text)}</text>'
    )


def _time(at: datetime) -> str:
    """UTC, as the rest of the page writes times."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _count(views: int) -> str:
    """Views the way a reader takes them in at a glance: 9,000 in full, then 12.3k, 4.5M, 6.7B (a
    count that rounds up to the next unit is written in it: 1.0M, never 1,000.0k)."""
    for size, least, suffix in ((10**9, 1, "B"), (10**6, 1, "M"), (10**3, 10, "k")):
        shown = round(views / size, 1)
        if shown >= least:
            return f"{shown:,.1f}{suffix}"
    return f"{views:,}"
