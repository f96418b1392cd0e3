"""The review loop: people confirm or dismiss alerts on a page the monitor serves."""

from __future__ import annotations

__all__: list[str] = []
