"""The demo platform, served for real on 127.0.0.1 and read with httpx: a paged listing
whose counts grow with (injected) time, a per-client poll limit, and the clips' media."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from monitor.demo import DemoCatalogue, serve_platform
from monitor.demo.platform import API_KEY_HEADER


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
async def base_url(demo_catalogue: DemoCatalogue, clock: FakeClock) -> AsyncIterator[str]:
    async with serve_platform(demo_catalogue, page_size=3, burst=100, clock=clock) as url:
        yield url


async def listing(client: httpx.AsyncClient, base_url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"cursor": cursor} if cursor else {}
        page = (await client.get(f"{base_url}/api/v1/clips", params=params)).json()
        assert len(page["items"]) <= 3
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_paging_to_the_end_lists_every_clip_once_newest_first(
    demo_catalogue: DemoCatalogue, client: httpx.AsyncClient, base_url: str
) -> None:
    items = await listing(client, base_url)

    assert sorted(item["id"] for item in items) == sorted(c.id for c in demo_catalogue.clips)
    assert len(items) == len(demo_catalogue.clips)
    posted = [item["posted_at"] for item in items]
    assert posted == sorted(posted, reverse=True)
    first = items[0]
    assert first["url"] == f"{base_url}/watch/{first['id']}"
    assert first["media_url"].startswith(f"{base_url}/media/")
    assert set(first["stats"]) == {"views", "likes", "shares", "comments"}


async def test_views_grow_with_time_at_each_clips_own_rate(
    demo_catalogue: DemoCatalogue, client: httpx.AsyncClient, base_url: str, clock: FakeClock
) -> None:
    before = {item["id"]: item["stats"] for item in await listing(client, base_url)}
    clock.now += 60.0
    after = {item["id"]: item["stats"] for item in await listing(client, base_url)}

    for clip in demo_catalogue.clips:
        assert before[clip.id]["views"] == clip.base_views
        assert after[clip.id]["views"] == clip.base_views + int(60 * clip.views_per_s)
        assert after[clip.id]["likes"] >= before[clip.id]["likes"]
    viral = max(demo_catalogue.clips, key=lambda clip: clip.views_per_s)
    assert after[viral.id]["shares"] > before[viral.id]["shares"]


async def test_polling_faster_than_allowed_gets_429_with_retry_after_per_client(
    demo_catalogue: DemoCatalogue, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    async with serve_platform(
        demo_catalogue, min_poll_interval_s=10.0, burst=1, clock=clock
    ) as url:
        listing_url = f"{url}/api/v1/clips"
        assert (await client.get(listing_url)).status_code == 200

        refused = await client.get(listing_url)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "10"
        assert refused.json()["error"] == "rate_limited"
        # Another API key is another client.
        other = await client.get(listing_url, headers={API_KEY_HEADER: "second-team"})
        assert other.status_code == 200

        clock.now += 7.5
        still = await client.get(listing_url)
        assert still.status_code == 429
        assert still.headers["Retry-After"] == "3"
        clock.now += 2.5
        assert (await client.get(listing_url)).status_code == 200


async def test_media_is_served_whole_as_mp4(
    demo_catalogue: DemoCatalogue, client: httpx.AsyncClient, base_url: str
) -> None:
    clip = demo_catalogue.clip("bbb-mirrored")
    path = demo_catalogue.media_path(clip.media)
    assert path is not None

    response = await client.get(f"{base_url}/media/{clip.media}")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "video/mp4"
    assert int(response.headers["Content-Length"]) == path.stat().st_size
    assert response.content == path.read_bytes()


@pytest.mark.parametrize("name", ["gone.mp4", "nothing.mp4", "..%2FVERSION", "%2E%2E"])
async def test_media_taken_down_or_never_listed_is_404(
    client: httpx.AsyncClient, base_url: str, name: str
) -> None:
    response = await client.get(f"{base_url}/media/{name}")
    assert response.status_code == 404


async def test_the_taken_down_clip_is_still_listed_with_its_dead_media_url(
    client: httpx.AsyncClient, base_url: str
) -> None:
    gone = next(item for item in await listing(client, base_url) if item["id"] == "gone")
    assert (await client.get(gone["media_url"])).status_code == 404


async def test_watch_pages_and_health(
    demo_catalogue: DemoCatalogue, client: httpx.AsyncClient, base_url: str
) -> None:
    page = await client.get(f"{base_url}/watch/bbb-pip")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert demo_catalogue.clip("bbb-pip").title in page.text
    assert (await client.get(f"{base_url}/watch/nope")).status_code == 404
    health = await client.get(f"{base_url}/healthz")
    assert health.json() == {"status": "ok", "clips": len(demo_catalogue.clips)}


@pytest.mark.parametrize(
    "params", [{"cursor": "not-a-cursor"}, {"limit": "0"}, {"limit": "many"}, {"limit": "51"}]
)
async def test_a_malformed_cursor_or_limit_is_a_400(
    client: httpx.AsyncClient, base_url: str, params: dict[str, str]
) -> None:
    response = await client.get(f"{base_url}/api/v1/clips", params=params)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
