"""Which URL holds a clip's media: the one the platform listed, or one a resolver command finds.

Some platform APIs list a clip without its video file: YouTube's Data API gives a thumbnail,
TikTok's Research API gives nothing to download. Teams that have a way to get the file (a
licensed feed, a downloader such as ``yt-dlp`` where its use is permitted) configure it as a
command that prints the media URL of a clip page; the scorer then fetches that URL through
the same guarded, bounded fetch as any other. Without one, or when it fails, the listed media
URL (a thumbnail, for YouTube) is scored instead, which is weaker evidence but not nothing.

The command runs without a shell, with ``{url}``, ``{platform}`` and ``{clip_id}`` replaced in
its arguments, a time limit, and no input; only its first line of output that is an http(s)
URL is used. Only http(s) page URLs are passed to it, so none can pass for an option (``-x``).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence

from monitor.errors import FetchError
from monitor.media.fetch import fetch_error
from monitor.records import ClipSeen

__all__ = ["CommandResolver", "ListedMedia", "MediaResolver"]

log = logging.getLogger(__name__)

_MAX_OUTPUT = 64 * 1024


class MediaResolver(ABC):
    """Turns an observation into the URL of its media, or None when there is none."""

    @abstractmethod
    async def resolve(self, seen: ClipSeen) -> str | None: ...


class ListedMedia(MediaResolver):
    """The media URL the platform listed, as it is."""

    async def resolve(self, seen: ClipSeen) -> str | None:
        return seen.media_url


class CommandResolver(MediaResolver):
    """Runs ``argv`` for clips of ``platforms``; other clips, and failures, go to ``fallback``.

    A failure with nothing to fall back to raises ``FetchError`` with reason ``resolve_failed``.
    """

    def __init__(
        self,
        argv: Sequence[str],
        platforms: Iterable[str],
        *,
        timeout_s: float = 30.0,
        fallback: MediaResolver | None = None,
    ) -> None:
        if not argv:
            raise ValueError("a resolver command needs at least the program to run")
        self.argv = tuple(argv)
        self.platforms = frozenset(platforms)
        self.timeout_s = timeout_s
        self.fallback = fallback or ListedMedia()

    async def resolve(self, seen: ClipSeen) -> str | None:
        if seen.platform not in self.platforms:
            return await self.fallback.resolve(seen)
        try:
            return await self._run(seen)
        except FetchError as exc:
            listed = await self.fallback.resolve(seen)
            if listed is None:
                raise
            log.warning("%s: %s; scoring the listed media instead", seen.key, exc)
            return listed

    async def _run(self, seen: ClipSeen) -> str:
        if not seen.url.startswith(("http://", "https://")):
            raise fetch_error("resolve_failed", "the clip's page URL is not http(s)", seen.url)
        values = {"{url}": seen.url, "{platform}": seen.platform, "{clip_id}": seen.clip_id}
        argv = [_substitute(arg, values) for arg in self.argv]
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise fetch_error("resolve_failed", f"{argv[0]} cannot run: {exc}", seen.url) from None
        try:
            out, err = await asyncio.wait_for(process.communicate(), self.timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise fetch_error(
                "resolve_failed", f"{argv[0]} gave no answer in {self.timeout_s:g} s", seen.url
            ) from None
        if process.returncode != 0:
            last = err[-_MAX_OUTPUT:].decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise fetch_error(
                "resolve_failed",
                f"{argv[0]} exited with {process.returncode}: {last[0][:300]}",
                seen.url,
            )
        for line in out[:_MAX_OUTPUT].decode(errors="replace").splitlines():
            if line.strip().startswith(("http://", "https://")):
                return line.strip()
        raise fetch_error("resolve_failed", f"{argv[0]} printed no media URL", seen.url)


def _substitute(arg: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        arg = arg.replace(placeholder, value)
    return arg
