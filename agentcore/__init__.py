"""agentcore: session-scoped, persistent conversation history for AI agents."""

from agentcore.agent import Agent
from agentcore.checkpoints import (
    MESSAGES_TYPE,
    ChannelVersion,
    NewMessage,
    PostgresCheckpointStore,
    StoredCheckpoint,
    check_thread_id,
)
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
from agentcore.repository import HistoryRepository
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
    "MESSAGES_TYPE",
    "REQUIRED_SIGNATURE",
    "Agent",
    "AgentConfig",
    "AgentResult",
    "AgentRunner",
    "AgentcoreError",
    "ChannelVersion",
    "CustomWorkflowExecutor",
    "DatabaseUnavailableError",
    "EchoModel",
    "ExecutionFacade",
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
    "NewMessage",
    "NotFoundError",
    "OpenAIChatModel",
    "PoolNotOpenError",
    "PostgresCheckpointStore",
    "PostgresHistoryRepository",
    "PurgeReport",
    "RepositoryClosedError",
    "Role",
    "SchemaNotReadyError",
    "ScriptedModel",
    "SessionExistsError",
    "SessionInfo",
    "SessionPage",
    "StorageError",
    "StoredCheckpoint",
    "SyncHistoryRepository",
    "UnknownAgentError",
    "UnknownNameError",
    "UnknownWorkflowError",
    "UnsupportedDatabaseError",
    "WorkflowError",
    "check_thread_id",
    "load_workflows",
]
