"""``python -m agentcore``: the same as the ``agentcore`` command."""

from agentcore.cli import main

raise SystemExit(main(prog="python -m agentcore"))
