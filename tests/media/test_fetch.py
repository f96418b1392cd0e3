"""Fetching media from URLs a stranger chose: a real aiohttp server on 127.0.0.1 that
answers well, badly, hugely and slowly, read with real httpx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.errors import FetchError, MediaError
from monitor.media import decode_clip
from monitor.media.fetch import FETCH_REASONS, fetch_error, fetch_media
from monitor.media.transforms import pattern_frames, write_clip
from monitor.pipeline.broker import free_port

LIMIT = 4096

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = write_clip(pattern_frames(10), tmp_path_factory.mktemp("fetch") / "clip.mp4")
    return path.read_bytes()


@pytest.fixture
async def server(clip_bytes: bytes) -> AsyncIterator[httpx.URL]:
    release = asyncio.Event()

    async def clip(request: web.Request) -> web.Response:
        return web.Response(body=clip_bytes, content_type="video/mp4")

    async def declared_big(request: web.Request) -> web.Response:
        return web.Response(body=b"\0" * (LIMIT + 1), content_type="video/mp4")

    async def undeclared_big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(8):
            await response.write(b"\0" * 1024)
        await response.write_eof()
        return response

    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        await response.prepare(request)
        await response.write(b"\0" * 16)
        await asyncio.wait_for(release.wait(), 10)
        return response

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        await response.prepare(request)
        while not release.is_set():
            await response.write(b"\0")
            await asyncio.sleep(0.02)
        return response

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>Sign in to watch</html>", content_type="text/html")

    def status(code: int) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            return web.Response(status=code, text="no")

        return handle

    def redirect(location: str) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            return web.Response(status=302, headers={"Location": location})

        return handle

    app = web.Application()
    app.router.add_get("/clip.mp4", clip)
    app.router.add_get("/big-declared", declared_big)
    app.router.add_get("/big-chunked", undeclared_big)
    app.router.add_get("/stall", stall)
    app.router.add_get("/trickle", trickle)
    app.router.add_get("/page.html", html)
    app.router.add_get("/gone", status(404))
    app.router.add_get("/forbidden", status(403))
    app.router.add_get("/broken", status(503))
    app.router.add_get("/moved", redirect("/clip.mp4"))
    app.router.add_get("/loop", redirect("/loop"))
    app.router.add_get("/to-file", redirect("file:///etc/passwd"))
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    yield httpx.URL(str(test_server.make_url("/")))
    release.set()
    await test_server.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def failure(
    client: httpx.AsyncClient,
    url: str | httpx.URL,
    dest: Path,
    *,
    read_timeout: float = 5.0,
    total_timeout: float = 10.0,
) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await fetch_media(
            client,
            str(url),
            dest,
            max_bytes=LIMIT,
            read_timeout=read_timeout,
            total_timeout=total_timeout,
        )
    assert caught.value.reason in FETCH_REASONS
    assert isinstance(caught.value, MediaError)
    assert list(dest.iterdir()) == [], "a failed fetch leaves nothing behind"
    return caught.value


async def test_a_clip_is_streamed_to_a_file_that_decodes(
    client: httpx.AsyncClient, server: httpx.URL, tmp_path: Path, clip_bytes: bytes
) -> None:
    path = await fetch_media(client, str(server.join("/clip.mp4")), tmp_path)

    assert path.parent == tmp_path
    assert path.suffix == ".mp4"
    assert path.read_bytes() == clip_bytes
    assert len(decode_clip(path)) >= 2


async def test_redirects_are_followed_and_each_hop_is_validated(
    client: httpx.AsyncClient, server: httpx.URL, tmp_path: Path, clip_bytes: bytes
) -> None:
    asked: list[str] = []

    async def validate(url: httpx.URL) -> None:
        asked.append(url.path)

    path = await fetch_media(client, str(server.join("/moved")), tmp_path, validate_url=validate)

    assert path.read_bytes() == clip_bytes
    assert asked == ["/moved", "/clip.mp4"]


async def test_a_refusing_validator_stops_the_fetch_before_the_request(
    client: httpx.AsyncClient, server: httpx.URL, tmp_path: Path
) -> None:
    async def refuse_clips(url: httpx.URL) -> None:
        if url.path.endswith(".mp4"):
            raise fetch_error("refused", "not on the allow list", url)

    with pytest.raises(FetchError) as caught:
        await fetch_media(client, str(server.join("/moved")), tmp_path, validate_url=refuse_clips)
    assert caught.value.reason == "refused"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/gone", "http_404"),
        ("/forbidden", "http_4xx"),
        ("/broken", "http_5xx"),
        ("/page.html", "not_media"),
        ("/big-declared", "too_large"),
        ("/big-chunked", "too_large"),
        ("/loop", "redirects"),
        ("/to-file", "bad_url"),
    ],
)
async def test_bad_answers_are_fetch_errors_with_a_reason(
    client: httpx.AsyncClient, server: httpx.URL, tmp_path: Path, path: str, reason: str
) -> None:
    error = await failure(client, server.join(path), tmp_path)
    assert error.reason == reason
    assert error.source is not None and error.source.startswith("http://127.0.0.1")


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/clip.mp4",
        "javascript:alert(1)",
        "/clip.mp4",
        "http://",
    ],
)
async def test_only_http_and_https_urls_are_fetched(
    client: httpx.AsyncClient, tmp_path: Path, url: str
) -> None:
    error = await failure(client, url, tmp_path)
    assert error.reason == "bad_url"


async def test_a_server_that_stops_sending_times_out_on_the_read_timeout(
    client: httpx.AsyncClient, server: httpx.URL, tmp_path: Path
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    error = await failure(client, server.join("/stall"), tmp_path, read_timeout=0.2)
    assert error.reason == "timeout"
    assert loop.time() - started < 1.5


async def test_a_server_that_trickles_times_out_on_the_total_timeout(
    client: httpx.AsyncClient, server: httpx.URL, tmp_path: Path
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    error = await failure(
        client, server.join("/trickle"), tmp_path, read_timeout=0.5, total_timeout=0.3
    )
    assert error.reason == "timeout"
    assert loop.time() - started < 1.5


async def test_a_closed_port_is_a_network_failure(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens on it
    error = await failure(client, f"http://127.0.0.1:{port}/clip.mp4", tmp_path)
    assert error.reason == "network"
