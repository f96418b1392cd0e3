"""``python -m monitor``: the same as the ``likeness-monitor`` command."""

from monitor.cli import main

main()
