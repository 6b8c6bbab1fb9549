"""agentcore: session-scoped, persistent conversation history for AI agents."""

from agentcore.errors import (
    AgentcoreError,
    DatabaseUnavailableError,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidMessageError,
    MigrationError,
    NotFoundError,
    SchemaNotReadyError,
    StorageError,
)
from agentcore.memory import InMemoryHistoryRepository
from agentcore.models import Message, Role, SessionInfo
from agentcore.postgres import PostgresHistoryRepository
from agentcore.repository import HistoryRepository
from agentcore.validation import DEFAULT_MAX_CONTENT_CHARS, MAX_ID_LENGTH, MessageInput

LEGACY_SESSION_ID = "__legacy__"
"""The session id under which migration 0002 keeps rows written before sessions existed."""

__all__ = [
    "DEFAULT_MAX_CONTENT_CHARS",
    "LEGACY_SESSION_ID",
    "MAX_ID_LENGTH",
    "AgentcoreError",
    "DatabaseUnavailableError",
    "HistoryRepository",
    "InMemoryHistoryRepository",
    "InvalidIdentifierError",
    "InvalidInputError",
    "InvalidMessageError",
    "Message",
    "MessageInput",
    "MigrationError",
    "NotFoundError",
    "PostgresHistoryRepository",
    "Role",
    "SchemaNotReadyError",
    "SessionInfo",
    "StorageError",
]
