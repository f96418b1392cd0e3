"""A receiver on 127.0.0.1 that plays Slack or a webhook endpoint: it answers from a script
(status, headers, body; 200 "ok" once the script is used up), records every request, and can
go down (its port closed) and come back on the same port."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web

from monitor.records import Alert, AlertEntity, ClipRef, EvidenceRecord

__all__ = ["Receiver", "Request", "make_alert"]


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    requests: list[Request] = field(default_factory=list)
    script: deque[tuple[int, dict[str, str], str]] = field(default_factory=deque)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, status: int, body: str = "", times: int = 1, **headers: str) -> None:
        for _ in range(times):
            self.script.append((status, {k.replace("_", "-"): v for k, v in headers.items()}, body))

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(Request(request.path, dict(request.headers), await request.read()))
        status, headers, body = self.script.popleft() if self.script else (200, {}, "ok")
        return web.Response(status=status, headers=headers, text=body)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if not self.port:
            self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def delivered(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]


def make_alert(
    clip_id: str,
    entity: str = "ghostface",
    *,
    views: int | None = 1200,
    platform: str = "demo",
    title: str | None = None,
) -> Alert:
    clip_key = f"{platform}:{clip_id}"
    now = datetime.now(UTC)
    return Alert(
        alert_id=Alert.id_for(clip_key, entity),
        entity=AlertEntity(
            id=entity,
            name=entity.replace("-", " ").title(),
            kind="character",
            franchise="Scream",
            owner="Spyglass Media",
        ),
        clip=ClipRef(
            platform=platform,
            clip_id=clip_id,
            url=f"https://clips.example/watch/{clip_id}",
            title=title or f"clip {clip_id}",
            author="someone",
        ),
        score=0.91,
        threshold=0.8,
        evidence=[
            EvidenceRecord(
                signal="visual", score=0.91, threshold=0.8, frame_time=1.5, box=[0, 0, 64, 64]
            )
        ],
        gallery_version="g-test",
        first_seen=now,
        observed_at=now,
        views=views,
        shares=7,
        posted_at=now - timedelta(hours=2),
    )
