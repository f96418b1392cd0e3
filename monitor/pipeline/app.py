"""The Faust app: topics between roles, and the roles a worker runs.

One app holds every role, and a worker runs any subset (``--roles``), so a laptop runs all of
them in one process and a cluster scales each on its own. Records travel as raw bytes and are
parsed by the roles themselves: Faust's own deserialisation would fail before the agent sees
a malformed record, and then it could not be sent to ``deadletter`` with its offset.

The Faust settings follow what was measured against the embedded broker (DESIGN.md):
at-least-once (it has no idempotent producer), short session timeouts (rebalances wait for
them), and frequent commits.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor import metrics
from monitor.config import ROLES, Settings
from monitor.errors import RecordError
from monitor.evidence.files import read_evidence
from monitor.evidence.urls import EvidenceUrls, may_see_evidence
from monitor.pipeline.poison import broker_trouble, describe
from monitor.pipeline.worker_state import StateStore
from monitor.records import DeadLetter, encode
from monitor.review.access import Access
from monitor.sources.base import Source

__all__ = ["TOPICS", "Pipeline", "bare_pipeline"]

log = logging.getLogger(__name__)

TOPICS = ("clips.discovered", "clips.scored", "alerts", "alerts.retry", "reviews", "deadletter")


@dataclass
class Pipeline:
    """The app, its topics, and what its roles share."""

    app: faust.App
    settings: Settings
    state: StateStore
    roles: frozenset[str]
    broker: str = ""
    """The ``kafka://`` URL the app talks to, for a role that needs a client of its own."""
    sources: Sequence[Source] = ()
    topics: dict[str, Any] = field(default_factory=dict)
    health: dict[str, Any] = field(default_factory=dict)
    evidence: EvidenceUrls | None = None
    """Signs and checks evidence image URLs (``evidence_urls.py``)."""
    checks: dict[str, Callable[[], str | None]] = field(default_factory=dict)
    """Per role, what keeps it from working (None while it works): ``/healthz`` answers 503
    with the reasons while any says something (a scorer whose decoders keep dying, say)."""

    async def guarded(self, event: Any, role: str, work: Awaitable[None]) -> None:
        """Run ``role``'s ``work`` on one event: whatever the record makes it raise sends the
        record to ``deadletter``, so the partition moves on and the agent lives; broker
        trouble is raised, since the record is not at fault (``poison.py``)."""
        try:
            await work
        except RecordError as exc:
            await self.dead_letter(event, str(exc))
        except Exception as exc:
            if broker_trouble(exc):
                raise
            log.exception("%s failed on a record; it goes to deadletter", role)
            await self.dead_letter(event, describe(role, exc))

    async def dead_letter(self, event: Any, reason: str) -> None:
        """Park a Faust event's record on ``deadletter``."""
        message = event.message
        raw = message.value if isinstance(message.value, bytes) else bytes(message.value or b"")
        await self.dead_letter_record(raw, reason, message.topic, message.partition, message.offset)

    async def dead_letter_record(
        self, raw: bytes, reason: str, topic: str, partition: int, offset: int
    ) -> None:
        """Park a record on ``deadletter`` with why and where it came from."""
        log.warning("dead letter from %s[%s]@%s: %s", topic, partition, offset, reason)
        letter = DeadLetter.of(raw, reason, topic, partition, offset)
        await self.topics["deadletter"].send(value=encode(letter))
        metrics.DEADLETTERS.labels(topic).inc()


_FAUST_METRICS: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, FaustMetrics]] = (
    weakref.WeakKeyDictionary()
)


def _prometheus_sensors(app: faust.App, registry: CollectorRegistry) -> None:
    """Faust's own Prometheus sensors and ``/metrics``, as ``setup_prometheus_sensors`` does,
    except that the sensors are registered once per registry and shared by every app built
    in the process after the first (Faust's helper fails on the second: duplicate series)."""
    prefix = app.conf.name.replace("-", "_").replace(".", "_")
    shared = _FAUST_METRICS.setdefault(registry, {})
    if prefix not in shared:
        shared[prefix] = FaustMetrics.create(registry, prefix)
    app.monitor = PrometheusMonitor(metrics=shared[prefix])

    @app.page("/metrics")
    async def scrape(web: Any, request: Any) -> Any:
        # aiohttp refuses a content_type with parameters; the header takes them.
        return web.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _app(settings: Settings, broker: str) -> faust.App:
    pipeline = settings.pipeline
    return faust.App(
        pipeline.app_id,
        broker=broker,
        store="memory://",
        processing_guarantee="at_least_once",
        broker_session_timeout=pipeline.broker_session_timeout_s,
        broker_heartbeat_interval=pipeline.broker_heartbeat_interval_s,
        broker_commit_every=100,
        broker_commit_interval=1.0,
        producer_acks=-1,
        topic_partitions=pipeline.partitions,
        topic_allow_declare=True,
        web_host=pipeline.web_host,
        web_port=pipeline.web_port,
        web_bind=pipeline.web_host,
        datadir=str(pipeline.state_dir / "faust"),
        consumer_auto_offset_reset="earliest",
        # No Faust tables here, so no standbys to place; with Faust's default of one standby
        # its assignor keeps each worker's partitions, and a third worker joining two on four
        # partitions was given none (issue 15's scale-out test).
        table_standby_replicas=0,
    )


def bare_pipeline(
    settings: Settings, broker: str, *, roles: Iterable[str] = ROLES, sources: Sequence[Source] = ()
) -> Pipeline:
    """The app, its topics and its own pages (health, evidence), before any role is installed
    (``roles.create_pipeline`` installs them); ``broker`` is a ``kafka://`` URL."""
    wanted = frozenset(roles)
    unknown = wanted - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; known: {', '.join(ROLES)}")
    app = _app(settings, broker)
    secret = settings.notify.evidence_secret
    evidence_urls = EvidenceUrls.for_dir(
        settings.pipeline.shared_root,
        secret.get_secret_value() if secret is not None else None,
        ttl_s=settings.notify.evidence_url_ttl_s,
    )
    reviewers = Access(settings.review)
    pipeline = Pipeline(
        app=app,
        settings=settings,
        state=StateStore(
            settings.pipeline.store("state"),
            resend_window_s=settings.pipeline.alert_resend_window_s,
        ),
        roles=wanted,
        broker=broker,
        sources=sources,
        evidence=evidence_urls,
    )
    for name in TOPICS:
        pipeline.topics[name] = app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.pipeline.partitions,
        )
    _prometheus_sensors(app, metrics.registry)

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        problems = {role: why for role, check in pipeline.checks.items() if (why := check())}
        body = {
            "status": "failing" if problems else "ok",
            "roles": sorted(pipeline.roles),
            **pipeline.health,
            **({"problems": problems} if problems else {}),
        }
        return web.json(body, status=503 if problems else 200)

    @app.page("/evidence/{alert_id}.jpg")
    async def evidence(web: Any, request: Any, alert_id: str) -> Any:
        authorization = request.headers.get("Authorization")
        if not may_see_evidence(evidence_urls, reviewers, alert_id, request.query, authorization):
            return web.error(403, "a signed evidence URL or a reviewer's credentials")
        # The id is checked against the alert-id format before it becomes a path.
        image = read_evidence(settings.pipeline.shared_root, alert_id)
        if image is None:
            return web.error(404, "no such evidence")
        return web.bytes(
            image, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
        )

    return pipeline
