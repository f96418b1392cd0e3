"""RSS and Atom feeds (YouTube channel feeds among them) from a local server, fetched
conditionally."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from monitor.errors import SourceError
from monitor.records import URL_MAX
from monitor.sources.crawl_state import CrawlState
from monitor.sources.crawler import Crawler
from monitor.sources.rss import RssPlatform

from .platforms import FakePlatform, Sleeps, crawl, quick_retry, serve

YOUTUBE_CHANNEL = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns:yt="http://www.youtube.com/xml/schemas/2015"
      xmlns:media="http://search.yahoo.com/mrss/" xmlns="http://www.w3.org/2005/Atom">
 <link rel="self" href="http://www.youtube.com/feeds/videos.xml?channel_id=UCabc"/>
 <id>yt:channel:UCabc</id>
 <title>Fan Edits</title>
 <entry>
  <id>yt:video:dQw4w9WgXcQ</id>
  <yt:videoId>dQw4w9WgXcQ</yt:videoId>
  <yt:channelId>UCabc</yt:channelId>
  <title>the upside down, remastered</title>
  <link rel="alternate" href="https://www.youtube.com/watch?v=dQw4w9WgXcQ"/>
  <author><name>Fan Edits</name><uri>https://www.youtube.com/channel/UCabc</uri></author>
  <published>2024-05-01T10:00:00+00:00</published>
  <updated>2024-05-02T10:00:00+00:00</updated>
  <media:group>
   <media:title>the upside down, remastered</media:title>
   <media:content url="https://www.youtube.com/v/dQw4w9WgXcQ?version=3" type="application/x-shockwave-flash" width="640" height="390"/>
   <media:thumbnail url="https://i1.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg" width="480" height="360"/>
   <media:description>no names here</media:description>
   <media:community>
    <media:starRating count="5120" average="5.00" min="1" max="5"/>
    <media:statistics views="812345"/>
   </media:community>
  </media:group>
 </entry>
</feed>
"""

RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>clips</title>
 <item><title>one</title><link>https://clips.example.com/1</link><guid>clip-1</guid>
  <pubDate>Wed, 01 May 2024 10:00:00 GMT</pubDate>
  <enclosure url="https://cdn.example.com/1.mp4" length="1000" type="video/mp4"/></item>
 <item><title>two</title><link>https://clips.example.com/2</link></item>
</channel></rss>
"""


class FakeFeeds(FakePlatform):
    ETAG = '"v1"'
    MODIFIED = "Thu, 02 May 2024 10:00:00 GMT"

    def __init__(self, body: str | bytes = YOUTUBE_CHANNEL) -> None:
        super().__init__()
        self.body = body

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/feeds/videos.xml", self.feed)
        return app

    async def feed(self, request: web.Request) -> web.Response:
        answer = await self.record(request)
        if answer is not None:
            return answer
        if request.headers.get("If-None-Match") == self.ETAG:
            return web.Response(status=304, headers={"ETag": self.ETAG})
        return web.Response(
            body=self.body.encode() if isinstance(self.body, str) else self.body,
            content_type="application/atom+xml",
            headers={"ETag": self.ETAG, "Last-Modified": self.MODIFIED},
        )


async def test_a_youtube_channel_feed_yields_its_videos_with_views_then_costs_one_304(
    tmp_path: Path,
) -> None:
    fake = FakeFeeds()
    async with serve(fake) as url:
        feed = f"{url}/feeds/videos.xml?channel_id=UCabc"
        source = Crawler(
            RssPlatform([feed]), CrawlState(tmp_path / "c.db"), retry=quick_retry(Sleeps())
        )
        first = await crawl(source)
        second = await crawl(source)

    assert len(first) == 1
    clip = first[0]
    assert (clip.platform, clip.clip_id, clip.views, clip.likes) == (
        "youtube",
        "dQw4w9WgXcQ",
        812345,
        5120,
    )
    assert clip.url == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert clip.media_url == "https://i1.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg"
    assert clip.author == "Fan Edits" and clip.posted_at is not None
    assert second == []
    conditional = fake.requests[1]["headers"]
    assert conditional.get("If-None-Match") == FakeFeeds.ETAG
    assert conditional.get("If-Modified-Since") == FakeFeeds.MODIFIED


def crawler(url: str, tmp_path: Path) -> Crawler:
    return Crawler(
        RssPlatform([f"{url}/feeds/videos.xml"]),
        CrawlState(tmp_path / "c.db"),
        retry=quick_retry(Sleeps()),
    )


async def test_an_rss_feed_names_its_media_in_the_enclosure(tmp_path: Path) -> None:
    async with serve(FakeFeeds(RSS)) as url:
        clips = {c.title: c async for c in crawler(url, tmp_path).poll()}

    one, two = clips["one"], clips["two"]
    assert one.media_url == "https://cdn.example.com/1.mp4"
    assert one.posted_at is not None and one.posted_at.year == 2024
    assert two.media_url is None and two.posted_at is None
    assert one.clip_id != two.clip_id and len(clips) == 2


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><rss>&lol;</rss>',
            "feeds with a DOCTYPE are refused",
        ),
        pytest.param(
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x SYSTEM'
            ' "file:///etc/passwd">]><rss><channel><item><link>&x;</link></item></channel></rss>'.encode(
                "utf-16"
            ),
            "feeds with a DOCTYPE are refused",
            id="a DOCTYPE in UTF-16, which a byte search misses",
        ),
        ("<html><body>not a feed</body></html>", r"not an RSS or Atom document \(root <html>\)"),
        ("<rss><channel><item>", "not an RSS or Atom document"),
    ],
)
async def test_documents_that_are_not_plain_feeds_are_refused(
    body: str | bytes, why: str, tmp_path: Path
) -> None:
    async with serve(FakeFeeds(body)) as url:
        source = crawler(url, tmp_path)
        with pytest.raises(SourceError, match=why):
            await crawl(source)
    assert source.report.emitted == 0


async def test_an_entry_that_makes_no_valid_record_is_skipped_and_the_rest_of_the_feed_kept(
    tmp_path: Path,
) -> None:
    long_link = "https://clips.example.com/" + "x" * (URL_MAX + 1)
    bad = f"<item><title>a link longer than any record takes</title><link>{long_link}</link></item>"
    fake = FakeFeeds(RSS.replace("<item><title>two", f"{bad}\n <item><title>two"))
    async with serve(fake) as url:
        source = crawler(url, tmp_path)
        seen = await crawl(source)
        first = source.report
        fake.ETAG = '"v2"'  # changed: the next pass reads the feed again
        again = await crawl(source)

    assert sorted(c.title or "" for c in seen) == ["one", "two"] and again == []
    assert first.skipped == 1 and first.errors == []
    assert source.report.skipped == 1, "each pass counts its own skipped entries"


async def test_a_feed_whose_only_entry_is_bad_is_skipped_and_the_pass_goes_on(
    tmp_path: Path,
) -> None:
    long_link = "https://clips.example.com/" + "x" * (URL_MAX + 1)
    only = f"<item><title>a link over 8,192 characters</title><link>{long_link}</link></item>"
    fake = FakeFeeds(f'<?xml version="1.0"?><rss version="2.0"><channel>{only}</channel></rss>')
    async with serve(fake) as url:
        source = Crawler(
            RssPlatform([f"{url}/feeds/videos.xml"]),
            CrawlState(tmp_path / "c.db"),
            retry=quick_retry(Sleeps()),
        )
        assert [clip async for clip in source.poll()] == []

    assert source.report.skipped == 1 and source.report.errors == []
