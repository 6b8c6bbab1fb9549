"""The one family of errors agentcore raises.

Every error a caller can cause or meet is an :class:`AgentcoreError`. Errors that
come from a lower layer (psycopg, pydantic, a model SDK, a user's workflow) keep
the original exception as ``__cause__``.
"""

from __future__ import annotations

DISTRIBUTION_NAME = "agentcore-history"
"""The name agentcore is installed under with pip (the import package is ``agentcore``;
``agentcore`` on the package index is an unrelated project)."""


class AgentcoreError(Exception):
    """Base class of every error agentcore raises on purpose."""


class InvalidInputError(AgentcoreError, ValueError):
    """A value passed to agentcore was rejected before anything was stored."""


class InvalidIdentifierError(InvalidInputError):
    """An agent name, session id or message id is not acceptable."""


class InvalidMessageError(InvalidInputError):
    """A message (or a batch of messages) failed validation."""


class InvalidDsnError(InvalidInputError):
    """A database DSN could not be parsed; the message never holds its password."""


class ImportLineError(InvalidInputError):
    """A line of an import file cannot be read as part of an export.

    It is not UTF-8, not a JSON object (or nested too deeply to parse), out
    of place (a message line under another conversation's session line), or
    too long (:class:`LineTooLongError`). The import stops at that line: the
    conversations complete before it stay stored, nothing after it is read.

    Attributes:
        line_number: The line, counted from 1.
    """

    def __init__(self, line_number: int, problem: str) -> None:
        self.line_number = line_number
        super().__init__(f"line {line_number}: {problem}")


class LineTooLongError(ImportLineError):
    """A line of an import is longer than any line of a valid export can be.

    It is refused after reading at most ``limit`` + 1 of its bytes, before
    they are decoded (``agentcore.transfer.max_line_bytes`` says how the
    limit follows from the message size limits).

    Attributes:
        line_number: The line, counted from 1.
        limit: The most bytes a line may hold, not counting its newline.
    """

    def __init__(self, line_number: int, limit: int) -> None:
        self.limit = limit
        super().__init__(
            line_number,
            f"longer than {limit:,} bytes, the most a line of a valid "
            "export holds under this repository's message size limits; refused unread",
        )


class StorageError(AgentcoreError):
    """The history store failed; nothing partial was written."""


class TransientStorageError(StorageError):
    """The database cut the call short for a reason that passes; nothing was written.

    A lock timeout or a statement timeout (a write waiting behind a lock: another
    writer's, or a Citus shard move that blocks the shard's writes), a
    serialization failure or a deadlock (SQLSTATE 55P03, 57014, 40001, 40P01);
    on a Citus cluster, a statement that waited for a shard split and found
    its shard gone ("could not find valid entry for shard").
    Every write is all or nothing, so the same call can simply be made again:
    an append with message ids (a turn with an input id) is then stored exactly
    once.
    """


class DatabaseUnavailableError(StorageError):
    """The database could not be reached (down, wrong credentials, pool exhausted)."""


class PoolNotOpenError(DatabaseUnavailableError):
    """The repository's connection pool is not open: never opened, or closed already.

    A mistake in the caller's code, not an outage: trying again does not help.
    Open the pool before the repository's first call (``await pool.open()``, or
    ``async with pool``) and close it after the last; psycopg_pool cannot open a
    closed pool again. It is a :class:`DatabaseUnavailableError`, as a closed
    pool's error was before it had a class of its own.
    """


class RepositoryClosedError(StorageError):
    """The repository was closed: before the call, or while the call was in flight.

    A call that :meth:`SyncHistoryRepository.close` had to cancel may or may not
    have been stored, as with any interrupted call (each write is atomic).
    """


class SchemaNotReadyError(StorageError):
    """agentcore's tables are missing: the migrations have not been applied."""


class UnsupportedDatabaseError(StorageError):
    """The database is of a kind agentcore refuses to use (not encoded in UTF-8).

    Raised before anything is read or written: by the migrations before they
    touch the schema, and by the repository when it first uses a connection.
    """


class MigrationError(AgentcoreError):
    """Applying or rolling back a schema migration failed."""


class NotFoundError(AgentcoreError, LookupError):
    """No conversation is stored under the agent name or session id asked for."""


class SessionExistsError(AgentcoreError):
    """A conversation was to be created (a copy, an import) where one already exists."""


class StaleStateError(AgentcoreError):
    """A write with scoped state named a revision of the conversation that is no longer current.

    Someone else wrote the conversation's state since the writer read it:
    nothing was written. Read the conversation again, then write.
    """


class MissingDependencyError(AgentcoreError, ImportError):
    """An optional dependency is not installed (the message names the extra to install)."""

    @classmethod
    def for_extra(cls, what: str, extra: str) -> MissingDependencyError:
        """The error for ``what`` needing the optional dependencies of ``extra``."""
        return cls(
            f"{what} needs the {extra!r} extra: pip install '{DISTRIBUTION_NAME}[{extra}]' "
            f"(from a checkout of agentcore: pip install '.[{extra}]')"
        )


class ModelError(AgentcoreError):
    """A model client failed to produce a reply; nothing of the turn was stored.

    Attributes:
        status: The HTTP status the model server answered with, or ``None`` when
            there was no HTTP answer (connection failure, timeout, bad reply).
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        """Whether trying again later may succeed (rate limit, server error, no answer)."""
        return self.status is None or self.status in (408, 409, 429) or self.status >= 500


class UnknownNameError(InvalidInputError):
    """A name was looked up that is not registered.

    Attributes:
        name: The name that was asked for.
        available: The names that exist, sorted.
    """

    kind = "name"

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = sorted(available)
        known = ", ".join(repr(n) for n in self.available) or "none"
        super().__init__(f"unknown {self.kind} {name!r}; known {self.kind}s: {known}")


class UnknownAgentError(UnknownNameError):
    """No agent with that name was given to the facade."""

    kind = "agent"


class UnknownWorkflowError(UnknownNameError):
    """No workflow with that name is registered."""

    kind = "workflow"


class InvalidWorkflowError(InvalidInputError):
    """A custom workflow class was rejected when it was registered."""


class WorkflowError(AgentcoreError):
    """A custom workflow raised; the original exception is the ``__cause__``.

    Attributes:
        workflow_name: The registered name of the workflow that failed.
    """

    def __init__(self, message: str, *, workflow_name: str) -> None:
        super().__init__(message)
        self.workflow_name = workflow_name


def session_not_found(agent_name: str, session_id: str) -> NotFoundError:
    """The error for an operation on a conversation that is not stored."""
    return NotFoundError(f"agent {agent_name!r} has no session {session_id!r}")


def session_exists(agent_name: str, session_id: str) -> SessionExistsError:
    """The error for creating a conversation that is already stored."""
    return SessionExistsError(
        f"agent {agent_name!r} already has a session {session_id!r}; "
        "choose another id, or delete it first"
    )


def copy_refusal(
    agent_name: str,
    source_session_id: str,
    target_session_id: str,
    up_to: int | str | None,
    *,
    source_found: bool,
    cut_found: bool,
    created: bool,
) -> AgentcoreError | None:
    """Why ``copy_session`` copied nothing, if it did not.

    The source is checked first, then the message to cut at, then the target.
    """
    if not source_found:
        return session_not_found(agent_name, source_session_id)
    if not cut_found:
        return NotFoundError(
            f"session {source_session_id!r} of agent {agent_name!r} has no message "
            f"with id {up_to!r} to copy up to"
        )
    if not created:
        return session_exists(agent_name, target_session_id)
    return None
