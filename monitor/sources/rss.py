"""RSS 2.0 and Atom feeds: channels a team watches, without an API key.

YouTube publishes every channel as an Atom feed (``/feeds/videos.xml?channel_id=...``) with
the video id and its view count (``media:statistics``), so a watched channel costs no API
quota; entries that carry a YouTube video id are recorded under platform ``youtube`` with that
id, so they meet the same clip found by the API crawler under one key. Other feeds name their
media in an ``enclosure`` or ``media:content``. Feeds are fetched conditionally (ETag and
Last-Modified), so an unchanged feed costs one ``304``.

Feeds are documents from strangers: they are parsed with ``defusedxml``, which refuses a
DOCTYPE outright (no entity expansion, no external entities) whatever the document's encoding
(a byte search for ``<!DOCTYPE`` misses one written in UTF-16), and bodies over ``_MAX_BYTES``
are refused before parsing.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

import defusedxml
import defusedxml.ElementTree as SafeET

from monitor.errors import SourceError
from monitor.records import ClipSeen, utcnow
from monitor.sources.api_client import ApiClient
from monitor.sources.base import Feed, Page, Platform
from monitor.sources.crawl_state import FeedState
from monitor.sources.items import platform_time

__all__ = ["RssPlatform"]

_NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "yt": "http://www.youtube.com/xml/schemas/2015",
    "media": "http://search.yahoo.com/mrss/",
}
_MAX_BYTES = 5 * 1024 * 1024


def _int(text: str | None) -> int | None:
    try:
        return max(int(text), 0) if text is not None else None
    except ValueError:
        return None


def _text(node: ET.Element | None) -> str | None:
    return node.text.strip() if node is not None and node.text else None


def _media(entry: ET.Element) -> str | None:
    for enclosure in entry.iter("enclosure"):
        if enclosure.get("type", "").startswith(("video/", "image/")) and enclosure.get("url"):
            return enclosure.get("url")
    for content in entry.iterfind(".//media:content", _NS):
        kind = content.get("type", "") or content.get("medium", "")
        if kind.startswith(("video", "image")) and content.get("url"):
            return content.get("url")
    thumb = entry.find(".//media:thumbnail", _NS)
    return thumb.get("url") if thumb is not None else None


_Build = Callable[[ET.Element, datetime], ClipSeen | None]
"""Makes one entry's record, given when the feed was read."""


def _entries(body: bytes, source: str) -> tuple[Iterator[ET.Element], _Build]:
    """The entries of an Atom or RSS 2.0 document, and how an entry of that format becomes a
    record; each is built alone (``Platform.clips``), so one bad entry costs only itself."""
    if len(body) > _MAX_BYTES:
        raise SourceError(f"{source}: feed larger than {_MAX_BYTES} bytes")
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except defusedxml.DefusedXmlException:
        raise SourceError(f"{source}: feeds with a DOCTYPE are refused") from None
    except ET.ParseError as exc:
        raise SourceError(f"{source}: not an RSS or Atom document ({exc})") from None
    if root.tag == f"{{{_NS['atom']}}}feed":
        return root.iterfind("atom:entry", _NS), _atom
    if root.tag == "rss":
        return root.iterfind("channel/item"), _rss
    raise SourceError(f"{source}: not an RSS or Atom document (root <{root.tag}>)")


def _atom(entry: ET.Element, observed: datetime) -> ClipSeen | None:
    link = entry.find("atom:link[@rel='alternate']", _NS)
    if link is None:
        link = entry.find("atom:link", _NS)
    url = link.get("href") if link is not None else None
    video_id = _text(entry.find("yt:videoId", _NS))
    entry_id = _text(entry.find("atom:id", _NS)) or url
    if not url or not entry_id:
        return None
    stats = entry.find(".//media:community/media:statistics", _NS)
    rating = entry.find(".//media:community/media:starRating", _NS)
    return ClipSeen(
        platform="youtube" if video_id else "rss",
        clip_id=video_id or hashlib.sha256(entry_id.encode()).hexdigest()[:24],
        url=url,
        media_url=_media(entry),
        title=_text(entry.find("atom:title", _NS)),
        caption=_text(entry.find(".//media:description", _NS))
        or _text(entry.find("atom:summary", _NS)),
        author=_text(entry.find("atom:author/atom:name", _NS)),
        posted_at=platform_time(_text(entry.find("atom:published", _NS))),
        observed_at=observed,
        views=_int(stats.get("views")) if stats is not None else None,
        likes=_int(rating.get("count")) if rating is not None else None,
    )


def _rss(item: ET.Element, observed: datetime) -> ClipSeen | None:
    url = _text(item.find("link"))
    guid = _text(item.find("guid")) or url
    if not url or not guid:
        return None
    return ClipSeen(
        platform="rss",
        clip_id=hashlib.sha256(guid.encode()).hexdigest()[:24],
        url=url,
        media_url=_media(item),
        title=_text(item.find("title")),
        caption=_text(item.find("description")),
        author=_text(item.find("author"))
        or _text(item.find("dc:creator", {"dc": "http://purl.org/dc/elements/1.1/"})),
        posted_at=platform_time(_text(item.find("pubDate"))),
        observed_at=observed,
    )


class RssPlatform(Platform):
    name = "rss"

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = list(urls)

    def feeds(self) -> list[Feed]:
        return [Feed(f"feed:{url}", "feed", url) for url in self.urls]

    async def page(
        self,
        api: ApiClient,
        feed: Feed,
        cursor: str | None,
        since: datetime | None,
        validators: FeedState | None,
    ) -> Page:
        headers = {}
        if validators is not None and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators is not None and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        response = await api.send("GET", str(feed.query), headers=headers)
        if response.status_code == 304:
            return Page([], not_modified=True)
        entries, build = _entries(response.content, str(feed.query))
        observed = utcnow()
        return Page(
            self.clips(entries, lambda entry: build(entry, observed)),
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
        )
