"""How a Faust app runs inside a test, against the embedded broker: the recipe that the
end-to-end tests follow, checked on its own so that a failure there points at the pipeline.

The recipe: create the topics first (Tansu would otherwise make them with 4 partitions), build
the app inside the running loop, ``await app.start()``, wait until the consumer holds the
source partitions, and ``await app.stop()`` in a ``finally``; the stop commits what the agents
processed. Sessions are short because Tansu holds a first join for about half the session
timeout, and the rejoin of a restarted app for the whole timeout of the member it replaces.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]

from monitor.pipeline.broker import EmbeddedBroker, ensure_topics, free_port

PARTITIONS = 2


def forwarding_app(broker_url: str, datadir: Path, web_port: int) -> faust.App:
    """One agent that upper-cases each value from ``in`` into ``out``, key kept."""
    app = faust.App(
        "recipe",
        broker=broker_url,
        store="memory://",
        processing_guarantee="at_least_once",  # Tansu has no idempotent producer
        broker_session_timeout=3,
        broker_heartbeat_interval=0.3,
        consumer_auto_offset_reset="earliest",
        web_port=web_port,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        datadir=str(datadir),
    )
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    source = app.topic("in", **raw)
    sink = app.topic("out", **raw)

    @app.agent(source)  # type: ignore[misc, untyped-decorator]
    async def forward(stream: Any) -> None:
        async for key, value in stream.items():
            await sink.send(key=key, value=value.upper())

    @app.page("/healthz")  # type: ignore[misc, untyped-decorator]
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"ok": True})

    return app


async def _holds_partitions_of(app: faust.App, topic: str) -> None:
    async with asyncio.timeout(30):
        while not any(tp.topic == topic for tp in app.consumer.assignment()):
            await asyncio.sleep(0.05)


async def _produce(bootstrap: str, numbers: range) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")  # never idempotent
    await producer.start()
    try:
        for n in numbers:
            await producer.send_and_wait("in", f"clip {n}".encode(), key=f"demo:{n}".encode())
    finally:
        await producer.stop()


async def _read(consumer: Any, count: int, into: dict[bytes, list[bytes]]) -> None:
    """Read ``count`` more records, then a little longer to catch any duplicate."""
    wanted = sum(map(len, into.values())) + count
    async with asyncio.timeout(20):
        while sum(map(len, into.values())) < wanted:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    into.setdefault(record.key, []).append(record.value)
    for records in (await consumer.getmany(timeout_ms=500)).values():
        for record in records:
            into.setdefault(record.key, []).append(record.value)


async def test_an_agent_forwards_every_record_and_a_restarted_app_resumes_where_it_committed(
    tmp_path: Path,
) -> None:
    async with EmbeddedBroker() as broker:
        await ensure_topics(broker.url, {"in": PARTITIONS, "out": PARTITIONS})
        # No group: the checker reads every partition from the start without a rebalance.
        out = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
        await out.start()
        try:
            out.assign([TopicPartition("out", p) for p in range(PARTITIONS)])
            await out.seek_to_beginning()
            seen: dict[bytes, list[bytes]] = {}

            port = free_port()
            app = forwarding_app(broker.url, tmp_path, port)
            await app.start()
            try:
                await _holds_partitions_of(app, "in")
                async with httpx.AsyncClient() as client:
                    health = await client.get(f"http://127.0.0.1:{port}/healthz")
                assert health.json() == {"ok": True}
                await _produce(broker.bootstrap, range(10))
                await _read(out, 10, seen)
            finally:
                await app.stop()
            assert seen == {f"demo:{n}".encode(): [f"CLIP {n}".encode()] for n in range(10)}

            # The stop committed all ten, so a new app in the same group sees only what is new.
            app = forwarding_app(broker.url, tmp_path, free_port())
            await app.start()
            try:
                await _holds_partitions_of(app, "in")
                await _produce(broker.bootstrap, range(10, 15))
                await _read(out, 5, seen)
            finally:
                await app.stop()
            assert seen == {f"demo:{n}".encode(): [f"CLIP {n}".encode()] for n in range(15)}
        finally:
            await out.stop()
