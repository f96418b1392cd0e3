"""The review page's handlers, plain aiohttp: the Faust worker mounts them, tests serve them alone.

Faust's web server is aiohttp underneath and hands its views the aiohttp request, so the same
handlers run in a worker (``monitor.pipeline.review_role``) and in a bare ``aiohttp`` app built by
``ReviewPage.application`` (no broker needed to drive the page in a browser).

A decision is published (on the ``reviews`` topic, in a worker) and applied to the local store
at once, so the page the reviewer is sent back to already shows it; the review agent applies
the same record again when it consumes it, which changes nothing.

The page lists stories (one viral clip and its copies, ``decisions.ReviewedStory``). A decision
on a whole story is a decision on each of its copies: one ``Review`` per copy that is not in
that state yet, each published like a reviewer's click on that copy, so the topic, the metrics
and the gallery's teacher see nothing they did not see before stories existed.
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from monitor.evidence.files import is_alert_id, read_evidence
from monitor.evidence.urls import EvidenceUrls, may_see_evidence
from monitor.media.provenance import describe
from monitor.records import Review
from monitor.review.access import CSRF_COOKIE, CSRF_FIELD, Access
from monitor.review.decisions import STATES, AlertFilter, ReviewedAlert, ReviewStore, State
from monitor.review.templates import environment

__all__ = ["ROUTES", "Handler", "Publish", "ReviewPage"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_Inner = Callable[[web.Request, str], Awaitable[web.StreamResponse]]
Publish = Callable[[Review], Awaitable[None]]

_NOT_CONFIGURED = (
    "The review page is not configured. Set LIKENESS_MONITOR_REVIEW__TOKEN (bearer token), or "
    "LIKENESS_MONITOR_REVIEW__USERNAME and LIKENESS_MONITOR_REVIEW__PASSWORD (basic auth), "
    "and restart the worker.\n"
)
_HEADERS = {
    # No script runs on this page at all: an escaping mistake still executes nothing.
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_FILTERS = ("entity", "franchise", "platform", "state", "sort")
_STORY_ID = re.compile(r"[0-9a-f]{20}")
_DECISIONS = {"confirm": "confirm", "dismiss": "dismiss", "undo": "undo"}
_STORY_DECISIONS: dict[str, tuple[str, State]] = {
    "confirm": ("confirm", "confirmed"),
    "dismiss": ("dismiss", "dismissed"),
}
_MAX_PAGE = 100_000
_EXPORT_LIMIT = 100_000
_CSV_COLUMNS = (
    "alert_id",
    "entity_id",
    "entity_name",
    "entity_kind",
    "franchise",
    "owner",
    "platform",
    "clip_id",
    "url",
    "title",
    "author",
    "score",
    "threshold",
    "signals",
    "views",
    "shares",
    "posted_at",
    "alerted_at",
    "confirmed_at",
    "confirmed_by",
    "gallery_version",
    "evidence_url",
    "synthetic",
    "synthetic_source",
    "synthetic_detail",
    "story_id",
    "story_copies",
)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    name: str


ROUTES = (
    Route("GET", "/review", "index"),
    Route("POST", "/review/{alert_id}/{action}", "act"),
    Route("POST", "/review/stories/{story_id}/{action}", "act_on_story"),
    Route("GET", "/review/export.csv", "export_csv"),
    Route("GET", "/review/export.json", "export_json"),
)


class ReviewPage:
    def __init__(
        self,
        store: ReviewStore,
        access: Access,
        publish: Publish,
        *,
        public_base_url: str,
        page_size: int = 200,
        evidence: EvidenceUrls | None = None,
    ) -> None:
        # Evidence images are served only under signed URLs (or to a reviewer): the page's
        # <img> links are signed, since a browser sends no bearer token with them. Without
        # the worker's signer the page signs with a key of its own (``application``).
        self.evidence = evidence or EvidenceUrls(secrets.token_bytes(32))
        self.store = store
        self.access = access
        self.publish = publish
        self.public_base_url = public_base_url.rstrip("/")
        self.page_size = page_size
        self._templates = environment()

    def handler(self, name: str) -> Handler:
        """The handler of route ``name``, with access checked before it runs."""
        inner: _Inner = getattr(self, f"_{name}")

        async def guarded(request: web.Request) -> web.StreamResponse:
            if not self.access.configured:
                return web.Response(status=503, text=_NOT_CONFIGURED, headers=_HEADERS)
            reviewer = self.access.reviewer(request.headers.get("Authorization"))
            if reviewer is None:
                challenge = (
                    'Basic realm="likeness-monitor review", charset="UTF-8"'
                    if self.access.settings.password is not None
                    else 'Bearer realm="likeness-monitor review"'
                )
                return web.Response(
                    status=401,
                    text="Credentials required.\n",
                    headers={**_HEADERS, "WWW-Authenticate": challenge},
                )
            return await inner(request, reviewer)

        return guarded

    def application(self, state_dir: Path | None = None) -> web.Application:
        """A bare aiohttp app of the page (and, given ``state_dir``, its evidence images)."""
        app = web.Application()
        for route in ROUTES:
            app.router.add_route(route.method, route.path, self.handler(route.name))
        if state_dir is not None:

            async def evidence(request: web.Request) -> web.StreamResponse:
                alert_id = request.match_info["alert_id"]
                authorization = request.headers.get("Authorization")
                if not may_see_evidence(
                    self.evidence, self.access, alert_id, request.query, authorization
                ):
                    raise web.HTTPForbidden()
                image = read_evidence(state_dir, alert_id)
                if image is None:
                    raise web.HTTPNotFound()
                return web.Response(body=image, content_type="image/jpeg")

            app.router.add_get("/evidence/{alert_id}.jpg", evidence)
        return app

    # --- the page -------------------------------------------------------------------------

    async def _index(self, request: web.Request, reviewer: str) -> web.StreamResponse:
        where = _filter_of(request.query)
        nonce = request.cookies.get(CSRF_COOKIE)
        fresh = not nonce or len(nonce) > 64
        if fresh:
            nonce = self.access.new_nonce()
        assert nonce is not None
        number = _page_of(request.query)
        listed = self.store.stories(where, self.page_size, (number - 1) * self.page_size)
        html = self._templates.get_template("index.html").render(
            reviewer=reviewer,
            stories=listed.stories,
            newer=_back(request.query, number - 1) if number > 1 else None,
            older=_back(request.query, number + 1) if listed.more else None,
            facets=self.store.facets(),
            states=STATES,
            filters={
                "entity": where.entity,
                "franchise": where.franchise,
                "platform": where.platform,
                "state": where.state,
                "sort": where.sort,
            },
            csrf=self.access.csrf_token(nonce),
            back=_back(request.query),
            evidence_src=self.evidence.path,
        )
        response = web.Response(text=html, content_type="text/html", headers=_HEADERS)
        if fresh:
            response.set_cookie(
                CSRF_COOKIE, nonce, path="/review", httponly=True, samesite="Strict"
            )
        return response

    async def _act(self, request: web.Request, reviewer: str) -> web.StreamResponse:
        form = await request.post()
        if not self._csrf_ok(request, form):
            return _csrf_refused()
        alert_id, action = request.match_info["alert_id"], request.match_info["action"]
        decision = _DECISIONS.get(action)
        if decision is None or not is_alert_id(alert_id):
            return web.Response(status=404, text="No such action.\n", headers=_HEADERS)
        if self.store.get(alert_id) is None:
            return web.Response(status=404, text="No such alert.\n", headers=_HEADERS)
        await self.publish(_review(alert_id, decision, form.get("reason"), reviewer))
        return _back_to_page(request)

    async def _act_on_story(self, request: web.Request, reviewer: str) -> web.StreamResponse:
        """One decision for every copy of a story that is not in its state yet."""
        form = await request.post()
        if not self._csrf_ok(request, form):
            return _csrf_refused()
        story_id, action = request.match_info["story_id"], request.match_info["action"]
        chosen = _STORY_DECISIONS.get(action)
        if chosen is None or not _STORY_ID.fullmatch(story_id):
            return web.Response(status=404, text="No such action.\n", headers=_HEADERS)
        copies = self.store.story_states(story_id)
        if not copies:
            return web.Response(status=404, text="No such story.\n", headers=_HEADERS)
        decision, reached = chosen
        for alert_id, state in sorted(copies.items()):
            if state != reached:
                await self.publish(_review(alert_id, decision, form.get("reason"), reviewer))
        return _back_to_page(request)

    def _csrf_ok(self, request: web.Request, form: Any) -> bool:
        token = form.get(CSRF_FIELD)
        return self.access.csrf_ok(
            request.cookies.get(CSRF_COOKIE), token if isinstance(token, str) else None
        )

    # --- exports --------------------------------------------------------------------------

    def _confirmed(self) -> list[ReviewedAlert]:
        return self.store.alerts(AlertFilter(state="confirmed"), _EXPORT_LIMIT)

    async def _export_json(self, request: web.Request, reviewer: str) -> web.StreamResponse:
        body = json.dumps([self._exported(row) for row in self._confirmed()], indent=1)
        return web.Response(
            text=body,
            content_type="application/json",
            headers={
                **_HEADERS,
                "Content-Disposition": 'attachment; filename="confirmed-alerts.json"',
            },
        )

    async def _export_csv(self, request: web.Request, reviewer: str) -> web.StreamResponse:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=_CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in self._confirmed():
            flat = self._exported(row)
            flat["signals"] = "; ".join(
                f"{e['signal']} {e['score']:.3f}"
                + ("" if e["threshold"] is None else f"/{e['threshold']:.3f}")
                for e in flat["evidence"]
            )
            synthetic = row.alert.synthetic
            flat["synthetic"] = synthetic.value
            flat["synthetic_source"] = synthetic.source
            flat["synthetic_detail"] = describe(synthetic)
            writer.writerow({key: _cell(value) for key, value in flat.items()})
        return web.Response(
            text=out.getvalue(),
            content_type="text/csv",
            headers={
                **_HEADERS,
                "Content-Disposition": 'attachment; filename="confirmed-alerts.csv"',
            },
        )

    def _exported(self, row: ReviewedAlert) -> dict[str, Any]:
        """One confirmed alert as the takedown workflow needs it, with its evidence."""
        alert = row.alert
        return {
            "alert_id": alert.alert_id,
            "entity_id": alert.entity.id,
            "entity_name": alert.entity.name,
            "entity_kind": alert.entity.kind,
            "franchise": alert.entity.franchise,
            "owner": alert.entity.owner,
            "platform": alert.clip.platform,
            "clip_id": alert.clip.clip_id,
            "url": alert.clip.url,
            "title": alert.clip.title,
            "author": alert.clip.author,
            "score": alert.score,
            "threshold": alert.threshold,
            "views": alert.views,
            "shares": alert.shares,
            "posted_at": _iso(alert.posted_at),
            "alerted_at": _iso(alert.alerted_at),
            "confirmed_at": _iso(row.reviewed_at),
            "confirmed_by": row.reviewer,
            "gallery_version": alert.gallery_version,
            "evidence_url": self.evidence.url(self.public_base_url, alert.alert_id),
            "evidence": [e.model_dump(mode="json") for e in alert.evidence],
            "synthetic": alert.synthetic.model_dump(mode="json"),
            "story_id": None if alert.story is None else alert.story.story_id,
            "story_copies": row.story_copies,
        }


def _filter_of(query: Any) -> AlertFilter:
    def pick(name: str, allowed: Sequence[str] | None = None) -> str | None:
        value = query.get(name) or None
        if value is not None and allowed is not None and value not in allowed:
            return None
        return value  # type: ignore[no-any-return]

    return AlertFilter(
        entity=pick("entity"),
        franchise=pick("franchise"),
        platform=pick("platform"),
        state=pick("state", STATES),  # type: ignore[arg-type]
        sort="spreading" if query.get("sort") == "spreading" else "newest",
    )


def _page_of(query: Any) -> int:
    """The page of stories asked for, from 1; anything but a number in range is the first."""
    text = query.get("page", "")
    number = int(text) if text.isdigit() and len(text) <= 6 else 1
    return min(max(number, 1), _MAX_PAGE)


def _back(query: Any, page: int | None = None) -> str:
    """The page's filters (and page of stories) as a query string, so that an action returns
    to the same view; with ``page``, the same filters on that page."""
    kept = [(name, query[name]) for name in _FILTERS if query.get(name)]
    number = _page_of(query) if page is None else page
    if number > 1:
        kept.append(("page", str(number)))
    return f"?{urlencode(kept)}" if kept else ""


def _back_to_page(request: web.Request) -> web.Response:
    return web.Response(
        status=303, headers={**_HEADERS, "Location": f"/review{_back(request.query)}"}
    )


def _csrf_refused() -> web.Response:
    return web.Response(
        status=403,
        text="Refused: the form's CSRF token is missing or wrong. Reload the review "
        "page and try again.\n",
        headers=_HEADERS,
    )


def _review(alert_id: str, decision: str, reason: Any, reviewer: str) -> Review:
    """A reviewer's decision as published; a reason is kept only with a dismissal."""
    return Review(
        alert_id=alert_id,
        decision=decision,  # type: ignore[arg-type]  # one of the three, checked by the caller
        reason=(reason.strip()[:2000] or None)
        if isinstance(reason, str) and decision == "dismiss"
        else None,
        reviewer=reviewer[:200],
    )


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


_FORMULA_STARTS = ("=", "+", "-", "@")
_CONTROL_BLANKS = "\t\r\n\v\f"
"""Tab, line breaks and feeds: blanks a spreadsheet may skip, or act on, at a cell's start."""
_BLANKS = " " + _CONTROL_BLANKS


def _cell(value: Any) -> Any:
    # A spreadsheet runs a cell that starts with one of the formula starts as a formula, and
    # some skip leading blanks and line breaks first: titles are attacker-controlled, and the
    # CSV is opened by people. A cell whose first character after any blanks is a formula
    # start, or whose very first character is a tab, line break or feed, is quoted as text.
    if not isinstance(value, str) or not value:
        return value
    if value[0] in _CONTROL_BLANKS or value.lstrip(_BLANKS)[:1] in _FORMULA_STARTS:
        return "'" + value
    return value
