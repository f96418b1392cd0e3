"""A fake Slack Web API on 127.0.0.1: ``chat.postMessage`` and ``chat.update`` as documented.

It answers as Slack does: HTTP 200 with ``{"ok": true, "channel", "ts", ...}`` or
``{"ok": false, "error": "..."}``; a missing token is ``not_authed``, a wrong one
``invalid_auth``, an unknown channel ``channel_not_found``, an update of a message it does not
hold ``message_not_found``. It keeps the posted messages by ``(channel, ts)``, with ``ts``
strings that increase, records every call, and can be scripted: the next calls answer an HTTP
status (429 with a ``Retry-After``, a 5xx) or an ``ok: false`` error before it behaves again.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["CHANNEL", "TOKEN", "Call", "FakeSlackApi"]

TOKEN = "xoxb-1234567890-0987654321-fakeSlackBotTokenValue"
CHANNEL = "C0123456789"


@dataclass(frozen=True)
class Call:
    method: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeSlackApi:
    token: str = TOKEN
    channels: set[str] = field(default_factory=lambda: {CHANNEL})
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    script: deque[tuple[int, dict[str, str], str]] = field(default_factory=deque)
    refuse_images: bool = False
    """Answer ``invalid_blocks`` to a message with an image block (Slack could not fetch it)."""
    port: int = 0
    _posted: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def answer(self, status: int, body: str = "", times: int = 1, **headers: str) -> None:
        """The next ``times`` calls get this HTTP answer, whatever they ask."""
        for _ in range(times):
            self.script.append((status, {k.replace("_", "-"): v for k, v in headers.items()}, body))

    def fail(self, error: str, times: int = 1, **headers: str) -> None:
        """The next ``times`` calls get HTTP 200 ``{"ok": false, "error": error}``."""
        self.answer(200, json.dumps({"ok": False, "error": error}), times, **headers)

    def delete(self, channel: str, ts: str) -> None:
        """A person deleted the message."""
        del self.messages[(channel, ts)]

    def called(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.read()
        body = json.loads(raw) if request.content_type == "application/json" else {}
        self.calls.append(Call(method, dict(request.headers), body))
        if self.script:
            status, headers, text = self.script.popleft()
            return web.Response(status=status, headers=headers, text=text)
        return web.json_response(self._api(method, request.headers.get("Authorization"), body))

    def _api(self, method: str, auth: str | None, body: dict[str, Any]) -> dict[str, Any]:
        if not auth or not auth.startswith("Bearer "):
            return {"ok": False, "error": "not_authed"}
        if auth.removeprefix("Bearer ") != self.token:
            return {"ok": False, "error": "invalid_auth"}
        if method not in ("chat.postMessage", "chat.update"):
            return {"ok": False, "error": "unknown_method"}
        channel = body.get("channel")
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        if not (body.get("text") or body.get("blocks")):
            return {"ok": False, "error": "no_text"}
        if self.refuse_images and any(b.get("type") == "image" for b in body.get("blocks", [])):
            return {"ok": False, "error": "invalid_blocks"}
        message = {"type": "message", "text": body.get("text", ""), "blocks": body.get("blocks")}
        if method == "chat.postMessage":
            self._posted += 1
            ts = f"{1_700_000_000 + self._posted}.{self._posted:06d}"
            self.messages[(channel, ts)] = {**message, "ts": ts}
            return {"ok": True, "channel": channel, "ts": ts, "message": {**message, "ts": ts}}
        ts = str(body.get("ts"))
        if (channel, ts) not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        self.messages[(channel, ts)] = {**message, "ts": ts, "edited": True}
        return {"ok": True, "channel": channel, "ts": ts, "text": message["text"]}

    def app(self) -> web.Application:
        """The API as an aiohttp app, for a test that serves it itself (from a thread)."""
        app = web.Application()
        app.router.add_post("/api/{method}", self._handle)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if not self.port:
            self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
