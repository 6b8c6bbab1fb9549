"""agentcore: session-scoped, persistent conversation history for AI agents."""

from agentcore.agent import Agent
from agentcore.errors import (
    AgentcoreError,
    DatabaseUnavailableError,
    ImportLineError,
    InvalidDsnError,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidMessageError,
    InvalidWorkflowError,
    LineTooLongError,
    MigrationError,
    MissingDependencyError,
    ModelError,
    NotFoundError,
    PoolNotOpenError,
    RepositoryClosedError,
    SchemaNotReadyError,
    SessionExistsError,
    StaleStateError,
    StorageError,
    UnknownAgentError,
    UnknownNameError,
    UnknownWorkflowError,
    UnsupportedDatabaseError,
    WorkflowError,
)
from agentcore.facade import ExecutionFacade
from agentcore.memory import InMemoryHistoryRepository
from agentcore.model_client import ModelClient
from agentcore.models import (
    DEFAULT_HISTORY_LIMIT,
    AgentConfig,
    AgentResult,
    HistoryPage,
    Message,
    PurgeReport,
    Role,
    SessionInfo,
    SessionPage,
)
from agentcore.offline_models import EchoModel, ScriptedModel
from agentcore.openai_model import OpenAIChatModel
from agentcore.postgres import PostgresHistoryRepository
from agentcore.repository import (
    ChatMessageStore,
    HistoryEditing,
    HistoryExport,
    HistoryImport,
    HistoryRepository,
    SessionItemStore,
    SessionLifecycle,
    TurnStore,
)
from agentcore.scoped_state import ScopedSession, ScopedStateStore
from agentcore.sync import SyncHistoryRepository
from agentcore.validation import (
    DEFAULT_MAX_CONTENT_CHARS,
    MAX_ID_BYTES,
    MAX_ID_LENGTH,
    MessageInput,
)
from agentcore.workflows import (
    REQUIRED_SIGNATURE,
    AgentRunner,
    CustomWorkflowExecutor,
    load_workflows,
)

LEGACY_SESSION_ID = "__legacy__"
"""The session id under which migration 0002 keeps rows written before sessions existed."""

__all__ = [
    "DEFAULT_HISTORY_LIMIT",
    "DEFAULT_MAX_CONTENT_CHARS",
    "LEGACY_SESSION_ID",
    "MAX_ID_BYTES",
    "MAX_ID_LENGTH",
    "REQUIRED_SIGNATURE",
    "Agent",
    "AgentConfig",
    "AgentResult",
    "AgentRunner",
    "AgentcoreError",
    "ChatMessageStore",
    "CustomWorkflowExecutor",
    "DatabaseUnavailableError",
    "EchoModel",
    "ExecutionFacade",
    "HistoryEditing",
    "HistoryExport",
    "HistoryImport",
    "HistoryPage",
    "HistoryRepository",
    "ImportLineError",
    "InMemoryHistoryRepository",
    "InvalidDsnError",
    "InvalidIdentifierError",
    "InvalidInputError",
    "InvalidMessageError",
    "InvalidWorkflowError",
    "LineTooLongError",
    "Message",
    "MessageInput",
    "MigrationError",
    "MissingDependencyError",
    "ModelClient",
    "ModelError",
    "NotFoundError",
    "OpenAIChatModel",
    "PoolNotOpenError",
    "PostgresHistoryRepository",
    "PurgeReport",
    "RepositoryClosedError",
    "Role",
    "SchemaNotReadyError",
    "ScopedSession",
    "ScopedStateStore",
    "ScriptedModel",
    "SessionExistsError",
    "SessionInfo",
    "SessionItemStore",
    "SessionLifecycle",
    "SessionPage",
    "StaleStateError",
    "StorageError",
    "SyncHistoryRepository",
    "TurnStore",
    "UnknownAgentError",
    "UnknownNameError",
    "UnknownWorkflowError",
    "UnsupportedDatabaseError",
    "WorkflowError",
    "load_workflows",
]
