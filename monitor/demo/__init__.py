"""A self-contained demo: a local platform serving clips built from package media, and the
gallery to find them with, so the pipeline runs end to end without a network."""

from __future__ import annotations

from monitor.demo.catalogue import DemoCatalogue, DemoClip, build_demo, default_demo_root
from monitor.demo.platform import create_platform_app, run_demo_platform, serve_platform

__all__ = [
    "DemoCatalogue",
    "DemoClip",
    "build_demo",
    "create_platform_app",
    "default_demo_root",
    "run_demo_platform",
    "serve_platform",
]
