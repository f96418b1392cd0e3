"""Alert delivery: sinks (Slack by webhook or Web API, a signed webhook) behind one engine that
retries, parks, deduplicates and summarises floods, so every sink gets the same guarantees."""

from __future__ import annotations

from monitor.alerts.base import DeliveryContext, FloodSummary, Sink, SummaryClip
from monitor.alerts.deliveries import DeliveryStore
from monitor.alerts.notifier import Notifier, build_sinks
from monitor.alerts.slack import SlackSink, slack_message, slack_summary
from monitor.alerts.slack_api import SlackApiSink
from monitor.alerts.webhook import WebhookSink, sign, verify_signature

__all__ = [
    "DeliveryContext",
    "DeliveryStore",
    "FloodSummary",
    "Notifier",
    "Sink",
    "SlackApiSink",
    "SlackSink",
    "SummaryClip",
    "WebhookSink",
    "build_sinks",
    "sign",
    "slack_message",
    "slack_summary",
    "verify_signature",
]
