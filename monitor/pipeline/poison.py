"""Telling a record that cannot be handled from a broker that cannot be reached.

A role that fails on one record must not stop: the record goes to ``deadletter`` and the
partition moves on, or one bad record (junk, a huge title, a date with no time zone) stops the
partition for good, and on every restart again. But a failure because the broker is away says
nothing about the record: dead-lettering it would drop a good record (and the dead letter would
fail too), so that failure stops the role's read and it is tried again.
"""

from __future__ import annotations

from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from monitor.errors import ReadAgain

__all__ = ["broker_trouble", "describe"]


def broker_trouble(exc: BaseException) -> bool:
    """Whether ``exc`` is not the record's doing (the broker's, the network's, or the host's:
    ``ReadAgain``): worth reading the record again later rather than dead-lettering it. A
    record too large to send is the record's own fault."""
    if isinstance(exc, MessageSizeTooLargeError):
        return False
    return isinstance(exc, KafkaError | OSError | ReadAgain)


def describe(role: str, exc: BaseException) -> str:
    """The dead letter's reason for an unexpected failure: the role, the error's type and its
    first line, bounded."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{role}: {type(exc).__name__}: {first}"[:500]
