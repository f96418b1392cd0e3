"""``likeness-monitor up``: everything the monitor needs, started in order and stopped in reverse.

On its defaults it runs out of the box: the embedded broker, the bundled models, and, when no
platform is configured, the demo platform with a demo gallery built from packaged media. Each
piece it starts it also stops, on Ctrl-C, on SIGTERM and when the worker crashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import faust
from pydantic import SecretStr

from monitor.config import ROLES, Settings
from monitor.errors import GalleryError
from monitor.pipeline.app import TOPICS
from monitor.pipeline.broker import ensure_topics, resolve_broker
from monitor.pipeline.roles import create_pipeline
from monitor.sources.base import Source

__all__ = ["demo_platform_in_thread", "prepare_demo_gallery", "stop_service_threads", "up"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def demo_platform_in_thread(root: Path | None, port: int) -> Iterator[str]:
    """Serve the demo platform on 127.0.0.1 from a thread with its own event loop."""
    from monitor.demo.catalogue import build_demo
    from monitor.demo.platform import serve_platform

    catalogue = build_demo(root) if root is not None else build_demo()
    started = threading.Event()
    stop = threading.Event()
    url: list[str] = []

    async def serve() -> None:
        async with serve_platform(catalogue, port=port) as base_url:
            url.append(base_url)
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.2)

    thread = threading.Thread(
        target=lambda: asyncio.run(serve()), name="demo-platform", daemon=True
    )
    thread.start()
    if not started.wait(30):
        raise RuntimeError("the demo platform did not start")
    try:
        yield url[0]
    finally:
        stop.set()
        thread.join(5)


def prepare_demo_gallery(settings: Settings, say: Callable[[str], None]) -> Path:
    """Build the demo gallery if it is not built yet; returns the built folder."""
    from monitor.demo.catalogue import build_demo
    from monitor.likeness.gallery.build import build_gallery
    from monitor.likeness.gallery.built import Gallery
    from monitor.likeness.models import Models
    from monitor.likeness.scoring import check_gallery

    catalogue = build_demo()
    built = catalogue.gallery_dir / "built"
    models = Models.load(settings.likeness)
    try:
        check_gallery(Gallery.load(built), models)
        return built
    except GalleryError:
        pass  # not built yet, or with other models
    say(f"building the demo gallery in {catalogue.gallery_dir} ...")
    build_gallery(catalogue.gallery_dir, models, settings.likeness, settings.decode).save(built)
    return built


def _crawlers(
    settings: Settings, stack: contextlib.ExitStack, say: Callable[[str], None]
) -> tuple[list[Source], str | None]:
    """A crawler per platform with credentials; when none has any, the demo platform's
    (started here unless ``demo_platform_url`` names one), and its URL. One crawl state
    holds them all."""
    from monitor.demo.adapter import demo_crawler
    from monitor.sources.crawl_state import CrawlState
    from monitor.sources.registry import build_crawlers

    state = CrawlState(settings.pipeline.store("crawl"))
    stack.callback(state.close)
    crawlers: list[Source] = list(
        build_crawlers(
            settings.sources, settings.pipeline.gallery, state, flagged=state.flagged_clips
        )
    )
    demo_url = settings.pipeline.demo_platform_url
    if crawlers:
        return crawlers, demo_url
    demo_url = demo_url or stack.enter_context(
        demo_platform_in_thread(None, settings.pipeline.demo_platform_port)
    )
    say(f"demo platform at {demo_url}")
    demo = demo_crawler(
        settings.sources,
        state,
        demo_url,
        interval_s=settings.pipeline.crawl_interval_s,
        flagged=state.flagged_clips,
    )
    return [demo], demo_url


def _review_access(
    settings: Settings, page: str, *, demo: bool, say: Callable[[str], None]
) -> Settings:
    """Say where the review page is and how to sign in. The page is never open without
    credentials; in the demo, where nobody set any, a password is made for this run."""
    if settings.review.configured:
        say(f"review page at {page}")
        return settings
    if not demo:
        say(
            f"review page at {page} is closed: set LIKENESS_MONITOR_REVIEW__TOKEN, or "
            "LIKENESS_MONITOR_REVIEW__USERNAME and __PASSWORD"
        )
        return settings
    password = secrets.token_urlsafe(12)
    say(
        f"review page at {page} (demo sign-in for this run: user demo, password {password}; "
        "set LIKENESS_MONITOR_REVIEW__USERNAME and __PASSWORD to choose your own)"
    )
    review = settings.review.model_copy(
        update={"username": "demo", "password": SecretStr(password)}
    )
    return settings.model_copy(update={"review": review})


def _allow_fetch_from(settings: Settings, url: str) -> Settings:
    from monitor.media.safety import networks_of

    allow = (*settings.pipeline.fetch_allow, *networks_of(url))
    return settings.model_copy(
        update={"pipeline": settings.pipeline.model_copy(update={"fetch_allow": allow})}
    )


def stop_service_threads(timeout_s: float = 10.0) -> list[str]:
    """Stop what the worker left of Faust's service threads (its Kafka consumer's, say);
    returns the names of those that would not stop.

    mode's ``ServiceThread.stop`` does nothing to a thread that had not finished starting when
    the worker stopped (Ctrl-C during start-up): the thread then waits for a stop that never
    comes, and the interpreter, at exit, waits for it (it is not a daemon). Seen as a Ctrl-C
    that did not end ``up``. Each such thread is told to stop, as its service would have been.
    """
    from mode.threads import WorkerThread

    stuck = []
    for thread in threading.enumerate():
        if not isinstance(thread, WorkerThread) or not thread.is_alive():
            continue
        with contextlib.suppress(RuntimeError):  # its loop closed meanwhile: it is ending
            thread.service._stopped_set()
        thread.join(timeout_s)
        if thread.is_alive():
            log.error("service thread %s did not stop within %g s", thread.name, timeout_s)
            stuck.append(thread.name)
    return stuck


def up(
    settings: Settings,
    *,
    roles: Iterable[str] = ROLES,
    say: Callable[[str], None] = print,
    sources: list[Source] | None = None,
) -> None:
    """Run the monitor until interrupted."""
    roles = list(roles)
    with contextlib.ExitStack() as stack:
        broker_url, broker = resolve_broker(
            settings.pipeline.broker_url, avoid_ports=(settings.pipeline.web_port,)
        )
        if broker is not None:
            stack.callback(broker.stop)
            say(f"embedded broker at {broker_url}")
        sources = list(sources or [])
        demo_url = settings.pipeline.demo_platform_url
        if "crawl" in roles and not sources:
            sources, demo_url = _crawlers(settings, stack, say)
        if demo_url:
            # The demo serves its media from this machine: allowed by name, nothing else is.
            settings = _allow_fetch_from(settings, demo_url)
        if "score" in roles and settings.pipeline.gallery is None:
            gallery = prepare_demo_gallery(settings, say)
            settings = settings.model_copy(
                update={"pipeline": settings.pipeline.model_copy(update={"gallery": gallery})}
            )
        asyncio.run(
            ensure_topics(
                broker_url,
                {name: settings.pipeline.partitions for name in TOPICS},
            )
        )
        asyncio.set_event_loop(asyncio.new_event_loop())  # the worker's; asyncio.run closed its own
        web = f"http://{settings.pipeline.web_host}:{settings.pipeline.web_port}"
        if "review" in roles:
            settings = _review_access(settings, f"{web}/review", demo=bool(demo_url), say=say)
        pipeline = create_pipeline(settings, broker_url, roles=roles, sources=sources)
        stack.callback(pipeline.state.close)
        say(f"roles {', '.join(roles)}; metrics at {web}/metrics, health at {web}/healthz")
        worker = faust.Worker(pipeline.app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
        try:
            worker.execute_from_commandline()
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                raise
        finally:
            stop_service_threads()
