"""Alerts as Slack messages, posted to an incoming webhook.

Messages are built from slack-sdk's Block Kit models rather than hand-written dicts: their
``to_dict()`` validates every block (lengths, counts, required fields), so a malformed message
fails here, in a test, instead of as a 400 from Slack in production. Text that comes from a
platform (titles, authors, and the clip's URL too) is escaped: ``<``, ``>`` and ``&`` are
Slack's link syntax, and a URL that could close its own link (``>``) or start a label (``|``)
would let a stranger's clip put ``<!channel>`` or a link of its choosing in the message.

Slack fetches the evidence image itself, and rejects the whole message (400
``invalid_blocks``) when it cannot; such a message is sent once more without the image, so a
monitor whose public URL Slack cannot reach still alerts.

An alert whose clip is in a story of several copies of one viral clip (``Alert.story``) says so: a
section with the story's copies, platforms, total views and first sighting. An incoming
webhook cannot edit a message, so only a story's first ``slack_story_messages`` copies get
one (the notifier groups the rest); ``monitor/alerts/slack_api.py`` posts the same message
through the Web API and edits it as copies come in.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import httpx
from pydantic import SecretStr
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    ImageBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from monitor.alerts.base import DeliveryContext, FloodSummary, Sink
from monitor.alerts.secrets import post, url_secrets
from monitor.errors import PermanentDeliveryError
from monitor.media.provenance import describe
from monitor.records import Alert, EvidenceRecord, Story, ViewsAt

__all__ = [
    "TREND_POINTS",
    "SlackSink",
    "slack_message",
    "slack_summary",
    "sparkline",
    "views_per_hour",
]

log = logging.getLogger(__name__)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _web_url(url: str) -> str | None:
    return url if url.startswith(("https://", "http://")) and len(url) <= 3000 else None


def _mrkdwn_url(url: str) -> str:
    """A URL as it may stand inside ``<...|label>``: Slack's three escapes, and every
    character that would end the URL early (``|``, white space, controls) percent-encoded."""
    encoded = "".join(
        f"%{ord(c):02X}" if c == "|" or c.isspace() or not c.isprintable() else c for c in url
    )
    return _escape(encoded)


def _count(value: int | float | None) -> str:
    return "unknown" if value is None else f"{value:,.0f}"


def views_per_hour(alert: Alert) -> float | None:
    """Average views per hour since the clip was posted, at the observation that alerted."""
    if alert.views is None or alert.posted_at is None:
        return None
    posted = alert.posted_at
    if posted.tzinfo is None:
        posted = posted.replace(tzinfo=UTC)
    # At least a minute old: a clip seen seconds after posting would read as millions an hour.
    hours = max((alert.observed_at - posted).total_seconds(), 60.0) / 3600
    return alert.views / hours


def _link(url: str, label: str) -> str:
    web = _web_url(url)
    label = _escape(label).replace("|", "¦")
    return f"<{_mrkdwn_url(web)}|{label}>" if web else label


def _caption_line(evidence: EvidenceRecord) -> str:
    """What the caption said: the name it used, or the sentence that reads like a description."""
    said = _escape(_clip(evidence.text or "", 300))
    if evidence.threshold is None:
        return f"Caption names it: “{said}”"
    described = _escape(_clip(evidence.reference or "", 300))
    return (
        f"Caption “{said}” reads like “{described}” "
        f"({evidence.score:.2f} vs {evidence.threshold:.2f})"
    )


def _signals(evidence: Sequence[EvidenceRecord]) -> str:
    """Each signal once, at its best score, against its threshold where it has one:
    ``face 0.912/0.800 · caption 1.00``."""
    best: dict[str, EvidenceRecord] = {}
    for item in evidence:
        if item.signal not in best or item.score > best[item.signal].score:
            best[item.signal] = item
    return " · ".join(
        f"{signal} {e.score:.3f}" + ("" if e.threshold is None else f"/{e.threshold:.3f}")
        for signal, e in best.items()
    )


def _copied(alert: Alert) -> Story | None:
    """The alert's story once it has more than one clip: then the message tells it."""
    story = alert.story
    return story if story is not None and story.copies > 1 else None


def _story_block(story: Story) -> SectionBlock:
    """The story so far: copies, where (most copies first), views of all copies together."""
    platforms = " · ".join(
        f"{_escape(platform)} {count:,}"
        for platform, count in sorted(story.platforms.items(), key=lambda pc: (-pc[1], pc[0]))
    )
    first = _escape(story.first_clip).replace("`", "'")
    fields = [
        f"*Copies*\n{story.copies:,}",
        f"*Platforms*\n{platforms or '—'}",
        f"*Views, all copies*\n{_count(story.views)}" + _trend(story),
        f"*First seen*\n{story.first_seen.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
    ]
    return SectionBlock(
        text=MarkdownTextObject(
            text=_clip(f"*A copy of a viral clip*: story `{story.story_id}`, first `{first}`", 3000)
        ),
        fields=[MarkdownTextObject(text=_clip(f, 2000)) for f in fields],
    )


_BARS = "▁▂▃▄▅▆▇█"
TREND_POINTS = 24
"""Bars in a story's views-over-time line: Slack shows no image it cannot fetch, text it does."""


def sparkline(history: Sequence[ViewsAt], points: int = TREND_POINTS) -> str:
    """Views over time as a line of block characters, lowest to highest, one per stretch of
    time (the latest count in each), so a steep rise reads as one at a glance."""
    if len(history) < 2:
        return ""
    start, end = history[0].at.timestamp(), history[-1].at.timestamp()
    span = max(end - start, 1e-9)
    latest: list[int | None] = [None] * points
    for point in history:
        latest[min(int((point.at.timestamp() - start) / span * points), points - 1)] = point.views
    filled, last = [], history[0].views
    for value in latest:
        last = value if value is not None else last
        filled.append(last)
    low, high = min(filled), max(filled)
    scale = (len(_BARS) - 1) / (high - low) if high > low else 0.0
    return "".join(_BARS[round((value - low) * scale)] for value in filled)


def _trend(story: Story) -> str:
    line = sparkline(story.history)
    if not line:
        return ""
    since = story.history[0].at.astimezone(UTC)
    return f"\n`{line}` since {since:%m-%d %H:%M} UTC"


def _headline(alert: Alert, story: Story | None) -> str:
    entity, clip = alert.entity, alert.clip
    if story is None:
        return f"{entity.name} in a {clip.platform} clip"
    return f"{entity.name}: {story.copies:,} copies of one clip, the latest on {clip.platform}"


def slack_message(alert: Alert, context: DeliveryContext, *, image: bool = True) -> dict[str, Any]:
    """The Slack payload for ``alert``: fallback ``text`` plus validated ``blocks`` (a story
    section after the clip's when it is a copy of a viral clip)."""
    entity, clip = alert.entity, alert.clip
    title = clip.title or clip.clip_id
    story = _copied(alert)
    velocity = views_per_hour(alert)
    fields = [
        f"*Entity*\n{_escape(entity.name)} ({entity.kind})",
        f"*Franchise*\n{_escape(entity.franchise or '—')}",
        f"*Owner*\n{_escape(entity.owner or '—')}",
        f"*Platform*\n{_escape(clip.platform)}",
        f"*Score*\n{alert.score:.3f} vs threshold {alert.threshold:.3f}",
        f"*Views*\n{_count(alert.views)}"
        + ("" if velocity is None else f" (≈ {_count(velocity)}/h)"),
    ]
    signals = _signals(alert.evidence)
    if signals:
        fields.append(f"*Signals*\n{signals}")
    latest = "" if story is None else "Latest copy: "
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_clip(_headline(alert, story), 150))),
        SectionBlock(
            text=MarkdownTextObject(
                text=_clip(f"{latest}*{_link(clip.url, _clip(title, 200))}*", 3000)
            ),
            fields=[MarkdownTextObject(text=_clip(f, 2000)) for f in fields],
        ),
    ]
    if story is not None:
        blocks.append(_story_block(story))
    captions = [_caption_line(e) for e in alert.evidence if e.signal == "caption"]
    if captions:
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=_clip(line, 2000)) for line in captions])
        )
    if alert.synthetic.source != "unknown":  # who says whether it is AI-generated
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=_escape(_clip(describe(alert.synthetic), 2000)))]
            )
        )
    evidence_url = context.evidence_url(alert.alert_id)
    if image and context.evidence_images and _web_url(evidence_url):
        signals = ", ".join(sorted({e.signal for e in alert.evidence})) or "none"
        blocks.append(
            ImageBlock(
                image_url=evidence_url,
                alt_text=_clip(f"evidence frame for {entity.name} ({signals})", 2000),
            )
        )
    buttons = []
    if _web_url(clip.url):
        buttons.append(
            ButtonElement(text="Open clip", url=clip.url, action_id="open_clip", style="primary")
        )
    if _web_url(evidence_url):
        buttons.append(ButtonElement(text="Evidence", url=evidence_url, action_id="evidence"))
    if buttons:
        blocks.append(ActionsBlock(elements=buttons))
    context_line = f"alert `{alert.alert_id}` · first seen {alert.first_seen:%Y-%m-%d %H:%M} UTC"
    if alert.gallery_version:
        context_line += f" · gallery `{_escape(alert.gallery_version[:40])}`"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=context_line)]))
    text = (
        f"{entity.name} ({entity.franchise or entity.kind}) found on {clip.platform}: "
        f"score {alert.score:.3f} vs {alert.threshold:.3f}, views {_count(alert.views)}"
        + (" (AI-generated)" if alert.synthetic.value == "ai_generated" else "")
        + (
            ""
            if story is None
            else f"; {story.copies:,} copies of one clip, views in all {_count(story.views)}"
        )
    )
    return {"text": _escape(text), "blocks": [block.to_dict() for block in blocks]}


def slack_summary(summary: FloodSummary, context: DeliveryContext) -> dict[str, Any]:
    """One message for an entity's alerts past the flood limit of a window."""
    entity = summary.entity
    span = f"{summary.window_start:%H:%M} to {summary.window_end:%H:%M} UTC"
    head = f"{entity.name}: {summary.suppressed} more clips ({summary.alerts} in all)"
    platforms = ", ".join(f"{_escape(p)} {n}" for p, n in sorted(summary.platforms.items()))
    lines = [
        f"• {_link(item.clip.url, _clip(item.clip.title or item.clip.clip_id, 120))} — "
        f"{_escape(item.clip.platform)}, views {_count(item.views)}, score {item.score:.3f}"
        for item in summary.top
    ]
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=_clip(head, 150))),
        SectionBlock(
            text=MarkdownTextObject(
                text=_clip(
                    f"Flood control held back {summary.suppressed} alerts for "
                    f"*{_escape(entity.name)}* ({_escape(entity.franchise or entity.kind)}) "
                    f"between {span}. By platform: {platforms or '—'}.",
                    3000,
                )
            )
        ),
    ]
    if lines:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=_clip("*Most viewed*\n" + "\n".join(lines), 3000))
            )
        )
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text=f"summary `{_escape(summary.summary_id)}`")])
    )
    return {"text": _escape(head), "blocks": [block.to_dict() for block in blocks]}


class SlackSink(Sink):
    """Posts to one Slack incoming webhook (the URL is the credential). It cannot edit what it
    posted, so a story's copies past ``story_messages`` get no message (the notifier groups
    them): a clip re-posted hundreds of times is a few messages, not hundreds."""

    name = "slack"

    def __init__(
        self, client: httpx.AsyncClient, webhook_url: SecretStr, *, story_messages: int = 3
    ) -> None:
        self._client = client
        self._url = webhook_url
        self.story_messages = story_messages

    def secrets(self) -> list[str]:
        return url_secrets(self._url)

    async def deliver(self, alert: Alert, context: DeliveryContext) -> None:
        try:
            await self._post(slack_message(alert, context))
        except PermanentDeliveryError as exc:
            if context.evidence_images and "invalid_blocks" in str(exc):
                log.warning(
                    "slack refused alert %s with its image; sending it without", alert.alert_id
                )
                await self._post(slack_message(alert, context, image=False))
            else:
                raise

    async def deliver_summary(self, summary: FloodSummary, context: DeliveryContext) -> None:
        await self._post(slack_summary(summary, context))

    async def _post(self, message: dict[str, Any]) -> None:
        body = json.dumps(message, ensure_ascii=False).encode()
        await post(
            self._client,
            self.name,
            self._url,
            body,
            {"Content-Type": "application/json; charset=utf-8"},
        )
