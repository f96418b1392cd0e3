"""The fetch guard: private, loopback, link-local and metadata destinations are refused at the
resolution step, redirects included; only an explicit allow-list opens them.

Names resolve through a table the test owns, so no packet is ever sent to the addresses under
test; the one real server is on 127.0.0.1, allowed explicitly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from monitor.errors import FetchError
from monitor.media.fetch import fetch_media
from monitor.media.safety import AddressGuard, guarded_client

NAMES = {
    "cdn.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "intranet.example.com": ["10.20.30.40"],
    "metadata.example.com": ["169.254.169.254"],
    "six.example.com": ["::1"],
    "split.example.com": ["93.184.216.34", "192.168.1.10"],
    "mapped.example.com": ["::ffff:10.0.0.7"],
}


class Table:
    """A resolver that answers from ``NAMES`` and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in NAMES:
            raise OSError(f"unknown host {host}")
        return NAMES[host]


async def refused(guard: AddressGuard, url: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await guard(httpx.URL(url))
    return caught.value


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/clip.mp4",
        "http://10.255.255.254:8080/clip.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/clip.mp4",
        "http://127.0.0.1/clip.mp4",
        "http://[::ffff:10.0.0.1]/clip.mp4",
        "http://0.0.0.0/clip.mp4",
        "http://intranet.example.com/clip.mp4",
        "http://metadata.example.com/latest/meta-data/",
        "https://six.example.com/clip.mp4",
        "https://mapped.example.com/clip.mp4",
    ],
)
async def test_non_public_destinations_are_refused(url: str) -> None:
    error = await refused(AddressGuard(resolver=Table()), url)
    assert error.reason == "refused"


async def test_a_name_resolving_to_any_private_address_is_refused() -> None:
    error = await refused(AddressGuard(resolver=Table()), "https://split.example.com/a.mp4")
    assert "192.168.1.10" in str(error)


async def test_public_destinations_pass() -> None:
    guard = AddressGuard(resolver=Table())
    await guard(httpx.URL("https://cdn.example.com/clip.mp4"))
    await guard(httpx.URL("http://93.184.216.34/clip.mp4"))


async def test_only_http_and_https_are_fetched() -> None:
    for url in ("ftp://cdn.example.com/clip.mp4", "file:///etc/passwd"):
        assert (await refused(AddressGuard(resolver=Table()), url)).reason == "bad_url"


async def test_a_name_that_does_not_resolve_is_a_network_failure() -> None:
    assert (
        await refused(AddressGuard(resolver=Table()), "http://nowhere.test/")
    ).reason == "network"


async def test_the_allow_list_opens_exactly_the_networks_it_names() -> None:
    guard = AddressGuard(allow=["127.0.0.1/32", "10.20.0.0/16"], resolver=Table())
    await guard(httpx.URL("http://127.0.0.1:8765/media/a.mp4"))
    await guard(httpx.URL("http://intranet.example.com/clip.mp4"))
    assert (await refused(guard, "http://127.0.0.2/")).reason == "refused"
    assert (await refused(guard, "http://169.254.169.254/")).reason == "refused"
    assert (await refused(guard, "http://[::1]/")).reason == "refused"


@pytest.fixture
async def redirector() -> AsyncIterator[httpx.URL]:
    async def to(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["where"])

    async def clip(request: web.Request) -> web.Response:
        return web.Response(body=b"\0" * 64, content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/to", to)
    app.router.add_get("/clip.mp4", clip)
    async with TestServer(app, host="127.0.0.1") as server:
        yield httpx.URL(str(server.make_url("/")))


@pytest.mark.parametrize(
    "where",
    [
        "http://10.1.2.3/clip.mp4",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://[::1]:6066/metrics",
        "http://metadata.example.com/computeMetadata/v1/",
    ],
)
async def test_a_redirect_into_a_private_address_is_refused_before_it_is_followed(
    redirector: httpx.URL, where: str, tmp_path: Path
) -> None:
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        sent.append(str(request.url))

    guard = AddressGuard(allow=["127.0.0.1/32"], resolver=Table())
    start = str(redirector.join("/to").copy_add_param("where", where))
    async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
        with pytest.raises(FetchError) as caught:
            await fetch_media(client, start, tmp_path, validate_url=guard)

    assert caught.value.reason == "refused"
    assert where in str(caught.value)
    assert sent == [start], "nothing is sent to the redirect target"
    assert list(tmp_path.iterdir()) == []


async def test_an_allowed_local_server_is_fetched(redirector: httpx.URL, tmp_path: Path) -> None:
    guard = AddressGuard(allow=["127.0.0.1/32"])
    async with httpx.AsyncClient() as client:
        path = await fetch_media(
            client, str(redirector.join("/clip.mp4")), tmp_path, validate_url=guard
        )
    assert path.stat().st_size == 64


class Rebinding:
    """A DNS answer that changes: public when first asked, then each address of ``later``."""

    def __init__(self, *later: str) -> None:
        self.answers = [["93.184.216.34"], *([address] for address in later)]
        self.asked = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        answer = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        return answer


@pytest.mark.parametrize("later", ["10.0.0.9", "169.254.169.254", "127.0.0.1"])
async def test_a_name_that_rebinds_to_a_private_address_after_the_check_is_refused_at_connect(
    later: str, tmp_path: Path
) -> None:
    resolver = Rebinding(later)
    guard = AddressGuard(resolver=resolver)
    async with guarded_client(guard) as client:
        with pytest.raises(FetchError) as caught:
            await fetch_media(
                client, "http://rebind.example.com/clip.mp4", tmp_path, validate_url=guard
            )
    assert caught.value.reason == "refused" and later in str(caught.value)
    assert resolver.asked == 2, "checked once before the request and again for the connection"


async def test_a_guarded_client_connects_to_the_address_that_passed_the_check(
    redirector: httpx.URL, tmp_path: Path
) -> None:
    """``media.test`` resolves only in the guard's table; the server sees the name as Host."""
    hosts: list[str] = []

    async def table(host: str, port: int) -> list[str]:
        hosts.append(host)
        return ["127.0.0.1"]

    guard = AddressGuard(allow=["127.0.0.1/32"], resolver=table)
    url = redirector.copy_with(host="media.test").join("/clip.mp4")
    async with guarded_client(guard) as client:
        path = await fetch_media(client, str(url), tmp_path, validate_url=guard)
    assert path.stat().st_size == 64
    assert hosts == ["media.test", "media.test"]
