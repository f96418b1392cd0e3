"""A media resolver command finds the video behind a clip page for platforms that list none;
it runs without a shell and within a time limit, and when it fails the listed media (a
thumbnail) is scored instead, or, with none, the failure is reported as ``resolve_failed``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from monitor.errors import FetchError
from monitor.media.resolve import CommandResolver
from monitor.records import ClipSeen

SCRIPT = """
import sys, time
url, platform, clip_id = sys.argv[1:4]
if clip_id == "sleepy":
    time.sleep(30)
if clip_id == "broken":
    print("ERROR: Video unavailable. This video is private", file=sys.stderr)
    sys.exit(1)
if clip_id == "chatty":
    print("[info] nothing to see here")
    sys.exit(0)
print("[info] resolving", url)
print(f"http://127.0.0.1:9/media/{platform}-{clip_id}.mp4")
"""


@pytest.fixture
def resolver(tmp_path: Path) -> CommandResolver:
    script = tmp_path / "resolve.py"
    script.write_text(SCRIPT)
    return CommandResolver(
        [sys.executable, str(script), "{url}", "{platform}", "{clip_id}"],
        ["youtube", "tiktok"],
        timeout_s=2.0,
    )


def seen(clip_id: str, platform: str = "youtube", media_url: str | None = None) -> ClipSeen:
    return ClipSeen(
        platform=platform,
        clip_id=clip_id,
        url=f"https://www.{platform}.com/watch?v={clip_id}",
        media_url=media_url,
    )


async def test_the_first_url_the_command_prints_is_the_media(resolver: CommandResolver) -> None:
    url = await resolver.resolve(seen("abc", media_url="https://i.ytimg.com/vi/abc/hq.jpg"))
    assert url == "http://127.0.0.1:9/media/youtube-abc.mp4"


async def test_platforms_not_listed_keep_their_listed_media(resolver: CommandResolver) -> None:
    listed = "https://v.redd.it/abc/DASH_720.mp4"
    assert await resolver.resolve(seen("abc", "reddit", listed)) == listed


@pytest.mark.parametrize(
    ("clip_id", "why"),
    [
        ("broken", "exited with 1: ERROR: Video unavailable. This video is private"),
        ("chatty", "printed no media URL"),
        ("sleepy", "gave no answer in 2 s"),
    ],
)
async def test_a_failed_resolution_without_listed_media_is_a_resolve_failure(
    resolver: CommandResolver, clip_id: str, why: str
) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        await resolver.resolve(seen(clip_id, "tiktok"))
    assert caught.value.reason == "resolve_failed" and why in str(caught.value)
    assert time.monotonic() - started < 10, "a slow command is killed at its time limit"


async def test_a_failed_resolution_falls_back_to_the_listed_thumbnail(
    resolver: CommandResolver,
) -> None:
    thumbnail = "https://i.ytimg.com/vi/broken/hqdefault.jpg"
    assert await resolver.resolve(seen("broken", media_url=thumbnail)) == thumbnail


async def test_a_page_url_that_is_not_http_never_reaches_the_command(
    resolver: CommandResolver,
) -> None:
    odd = seen("abc").model_copy(update={"url": "--exec=rm -rf /"})
    with pytest.raises(FetchError, match="not http"):
        await resolver.resolve(odd)


async def test_a_command_that_cannot_run_says_so(tmp_path: Path) -> None:
    missing = CommandResolver([str(tmp_path / "no-such-program"), "{url}"], ["youtube"])
    with pytest.raises(FetchError, match="cannot run"):
        await missing.resolve(seen("abc"))
