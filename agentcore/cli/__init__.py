"""The ``agentcore`` command: the composition root that wires real parts together.

Run ``agentcore --help``; the commands are described in ``docs/cli.md``.
"""

from agentcore.cli.app import main

__all__ = ["main"]
