"""Render the README's picture of the review page, from the real page and real evidence frames.

    python -m docs.screenshots [--out docs/review-page.png]

The page is served on 127.0.0.1 by its own handlers (no broker), filled with alerts like the
demo's (Big Buck Bunny re-uploads, the car-phone man), each with an evidence thumbnail rendered
from package media as the scorer renders them, one already confirmed and one dismissed;
Debian's chromium, driven by Playwright, takes the screenshot. Scores, spread and the face box
are illustrative, not the output of a scoring run.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web
from PIL import Image
from playwright.async_api import async_playwright
from pydantic import SecretStr

from monitor.config import ReviewSettings
from monitor.evidence.files import save_evidence
from monitor.media import DecodeLimits, decode_clip
from monitor.media.samples import sample
from monitor.pipeline.review_role import apply_review
from monitor.records import (
    Alert,
    AlertEntity,
    ClipRef,
    EvidenceRecord,
    Review,
    Story,
    ViewsAt,
    utcnow,
)
from monitor.review.access import Access
from monitor.review.decisions import ReviewStore
from monitor.review.page import ReviewPage

__all__ = ["main"]

OUT = Path(__file__).with_name("review-page.png")
TOKEN = "screenshot"
CHROMIUM = "/usr/bin/chromium"
BUNNY = AlertEntity(
    id="big-buck-bunny",
    name="Big Buck Bunny",
    kind="character",
    franchise="Big Buck Bunny",
    owner="Blender Foundation",
)
CALLER = AlertEntity(id="carphone-man", name="Car-phone man", kind="actor", owner="demo")

# (clip id, title, entity, signal, score, threshold, views, hours since posting, media sample)
ALERTS = (
    ("bbb-vertical", "bbb edit", BUNNY, "visual", 0.874, 0.761, 48_200, 1.0, "bigbuckbunny.mp4"),
    (
        "bbb-mirrored",
        "he woke up like this",
        BUNNY,
        "hash",
        0.78,
        0.5,
        9_800,
        0.8,
        "bigbuckbunny.mp4",
    ),
    (
        "bbb-pip",
        "my commute vs my mood",
        BUNNY,
        "visual",
        0.802,
        0.761,
        1_150,
        2.5,
        "bigbuckbunny.mp4",
    ),
    (
        "carphone-mirrored",
        "on my way to the wedding",
        CALLER,
        "face",
        0.912,
        0.617,
        420,
        3.0,
        "carphone_pristine.mp4",
    ),
)


STORY = ("bbb-mirrored", "bbb-vertical")
"""Two uploads of one viral clip, first seen in this order: one story on the page."""


def story_of(clip_id: str, now: datetime) -> Story | None:
    if clip_id not in STORY:
        return None
    start = now - timedelta(hours=3)
    views = [0, 400, 1_900, 6_500, 14_000, 31_000, 46_000, 58_000]
    history = [ViewsAt(at=start + timedelta(minutes=25 * i), views=v) for i, v in enumerate(views)]
    return Story(
        story_id=Story.id_for(f"demo:{STORY[0]}", BUNNY.id),
        first_clip=f"demo:{STORY[0]}",
        first_seen=start,
        copies=len(STORY),
        copy_number=STORY.index(clip_id) + 1,
        platforms={"demo": len(STORY)},
        views=views[-1],
        history=history,
    )


def fill(store: ReviewStore, state_dir: Path) -> None:
    now = utcnow()
    for minutes, (
        clip_id,
        title,
        entity,
        signal,
        score,
        threshold,
        views,
        hours,
        media,
    ) in enumerate(ALERTS):
        frames = decode_clip(sample(media), DecodeLimits(max_frames=8), even_frames=8)
        frame = frames[(2 + 3 * minutes) % len(frames)]
        box = [40, 20, 90, 90] if signal == "face" else None
        evidence = [
            EvidenceRecord(
                signal=signal,  # type: ignore[arg-type]
                score=score,
                threshold=threshold,
                frame_time=frame.time,
                box=box,
                region="grid3:1,1" if signal == "visual" else None,
            )
        ]
        at = now - timedelta(minutes=5 * minutes)
        key = f"demo:{clip_id}"
        alert = Alert(
            alert_id=Alert.id_for(key, entity.id),
            entity=entity,
            clip=ClipRef(
                platform="demo",
                clip_id=clip_id,
                url=f"https://demo.example/watch/{clip_id}",
                title=title,
                author="@uploader",
            ),
            score=score,
            threshold=threshold,
            evidence=evidence,
            first_seen=at,
            observed_at=at,
            views=views,
            posted_at=at - timedelta(hours=hours),
            alerted_at=at,
            story=story_of(clip_id, now),
        )
        store.add_alert(alert)
        save_evidence(state_dir, alert.alert_id, [frame], evidence)
    decided = [
        ("bbb-pip", BUNNY, "dismiss", "reaction video, fair use"),
        ("bbb-mirrored", BUNNY, "confirm", None),
    ]
    for clip_id, entity, decision, reason in decided:
        apply_review(
            store,
            Review(
                alert_id=Alert.id_for(f"demo:{clip_id}", entity.id),
                decision=decision,  # type: ignore[arg-type]
                reviewer="rita",
                reason=reason,
            ),
        )


async def render(out: Path) -> None:
    with tempfile.TemporaryDirectory() as work:
        state_dir = Path(work)
        store = ReviewStore(state_dir / "review.sqlite3")
        fill(store, state_dir)

        async def publish(review: Review) -> None:
            apply_review(store, review)

        page = ReviewPage(
            store,
            Access(ReviewSettings(token=SecretStr(TOKEN))),
            publish,
            public_base_url="https://monitor.example",
        )
        runner = web.AppRunner(page.application(state_dir))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-background-networking"],
                )
                context = await browser.new_context(
                    viewport={"width": 1280, "height": 760},
                    extra_http_headers={"Authorization": f"Bearer {TOKEN}"},
                )
                tab = await context.new_page()
                await tab.goto(f"http://127.0.0.1:{runner.addresses[0][1]}/review?sort=spreading")
                await tab.screenshot(path=str(out), full_page=True)
                await browser.close()
        finally:
            await runner.cleanup()
            store.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    asyncio.run(render(args.out))
    # 256 colours are plenty for a page of text and small thumbnails: a third of the bytes.
    Image.open(args.out).convert("RGB").quantize(256).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
