"""Plumbing for the reliability tests: a figures collector and a private server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentcore import embedded
from agentcore.embedded import EmbeddedServer
from tests.support import FIGURES, scratch_dir

__all__ = ["FIGURES", "private_server"]


@pytest.fixture(scope="session")
def private_server() -> Iterator[EmbeddedServer]:
    """A throw-away embedded server of its own, which a test may stop and start.

    Separate from the shared test server, so an outage or a changed
    ``pg_hba.conf`` touches no other test.
    """
    with scratch_dir("agentcore-private-") as parent:
        server = embedded.start(parent / "pgdata", throwaway=True)
        try:
            yield server
        finally:
            server.stop()
