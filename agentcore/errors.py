"""The one family of errors agentcore raises.

Every error a caller can cause or meet is an :class:`AgentcoreError`. Errors that
come from a lower layer (psycopg, pydantic, a model SDK, a user's workflow) keep
the original exception as ``__cause__``.
"""

from __future__ import annotations


class AgentcoreError(Exception):
    """Base class of every error agentcore raises on purpose."""


class InvalidInputError(AgentcoreError, ValueError):
    """A value passed to agentcore was rejected before anything was stored."""


class InvalidIdentifierError(InvalidInputError):
    """An agent name, session id or message id is not acceptable."""


class InvalidMessageError(InvalidInputError):
    """A message (or a batch of messages) failed validation."""


class StorageError(AgentcoreError):
    """The history store failed; nothing partial was written."""


class DatabaseUnavailableError(StorageError):
    """The database could not be reached (down, wrong credentials, pool exhausted)."""


class SchemaNotReadyError(StorageError):
    """agentcore's tables are missing: the migrations have not been applied."""


class MigrationError(AgentcoreError):
    """Applying or rolling back a schema migration failed."""


class NotFoundError(AgentcoreError, LookupError):
    """Something that was asked for by name (an agent's or a session's history) does not exist."""
