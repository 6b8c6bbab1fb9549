"""The storage ports: what a history store must do, for each kind of caller.

Each caller asks for the smallest protocol it uses (an :class:`~agentcore.Agent`
a :class:`TurnStore`, an export a :class:`HistoryExport`...), so a store
written for one use implements only that port's methods.
:class:`HistoryRepository` is all of them: both agentcore repositories
implement it, and the contract suite (``tests/contract/``) checks it port by
port. A method may belong to several ports: it is described where it is
first declared in this module, and a port that repeats it repeats its
signature exactly (a unit test keeps them equal).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from agentcore.models import HistoryPage, Message, PurgeReport, SessionInfo, SessionPage
from agentcore.scoped_state import ScopedStateStore
from agentcore.validation import (
    DEFAULT_PURGE_BATCH_SIZE,
    DEFAULT_PURGE_MAX_IMPACT,
    DEFAULT_PURGE_PAUSE,
    MessageInput,
)


@runtime_checkable
class TurnStore(Protocol):
    """What an agent turn needs: read the window, append the turn, find a retried turn's reply.

    :class:`~agentcore.Agent` and :class:`~agentcore.ExecutionFacade` ask
    for this port only. ``get_message`` is called only for an input
    ``Message`` with an ``id`` (an exactly-once turn) whose reply the read
    window did not hold, or when an append stored less than the whole turn;
    a store for turns without input ids may implement it as ``return None``
    (a retried turn then calls the model again).

    Identifiers are non-empty strings of at most 255 characters with no NUL
    byte (anything else raises :class:`~agentcore.errors.InvalidIdentifierError`
    before any I/O). A whole batch is validated before anything is written, and
    every write is atomic. ``session_id=None`` never falls back to a shared
    conversation: reads return ``[]`` and writes store nothing, with a warning.
    """

    async def load_history(
        self, agent_name: str, session_id: str | None, limit: int | None = None
    ) -> list[Message]:
        """Return the last ``limit`` messages (all when ``None``), oldest first.

        ``limit=None`` reads the whole conversation: its time and memory grow
        with the conversation's length (an agent reads a bounded window, its
        ``history_limit``, by default).

        Raises:
            InvalidIdentifierError: a bad ``agent_name`` or ``session_id``.
            InvalidInputError: ``limit`` is negative or not an int.
            StorageError: the store failed.
        """
        ...

    async def append_messages(
        self, agent_name: str, session_id: str | None, messages: Sequence[MessageInput]
    ) -> int:
        """Add ``messages`` after the last stored one, all or nothing.

        A message whose ``id`` is already stored in this conversation is
        skipped, so retrying an append after an ambiguous failure is safe.

        Returns:
            How many messages were stored (skipped ids do not count).

        Raises:
            InvalidIdentifierError: a bad ``agent_name`` or ``session_id``.
            InvalidMessageError: any message is invalid (nothing is stored).
            StorageError: the store failed (nothing is stored).
        """
        ...

    async def get_message(
        self, agent_name: str, session_id: str, message_id: str
    ) -> Message | None:
        """The stored message with this ``id`` in the conversation, or ``None``.

        A point lookup, whatever the length of the conversation: it finds a
        message beyond any read window (an agent uses it to find a retried
        turn's stored reply).

        Raises:
            InvalidIdentifierError: a bad ``agent_name``, ``session_id`` or
                ``message_id``.
            StorageError: the store failed.
        """
        ...


@runtime_checkable
class HistoryEditing(Protocol):
    """Rewriting a conversation's stored messages: replace, clear, pop, compare-and-swap.

    Identifiers are non-empty strings of at most 255 characters with no NUL
    byte (anything else raises :class:`~agentcore.errors.InvalidIdentifierError`
    before any I/O). A whole batch is validated before anything is written, and
    every write is atomic. ``session_id=None`` never falls back to a shared
    conversation: reads return ``[]`` and writes store nothing, with a warning.
    """

    async def save_full_history(
        self, agent_name: str, session_id: str | None, history: Sequence[MessageInput]
    ) -> None:
        """Atomically replace the conversation with ``history``.

        Raises:
            InvalidIdentifierError: a bad ``agent_name`` or ``session_id``.
            InvalidMessageError: any message is invalid (nothing is replaced).
            StorageError: the store failed (the old conversation is intact).
        """
        ...

    async def clear_session(self, agent_name: str, session_id: str) -> int:
        """Delete the conversation. Returns how many messages it had."""
        ...

    async def pop_message(self, agent_name: str, session_id: str) -> Message | None:
        """Remove the conversation's last message and return it (``None`` if it is empty).

        One atomic step whose cost does not grow with the conversation:
        concurrent pops return distinct messages, and an append racing a pop
        is never lost. The popped message's id may be stored again.

        Raises:
            InvalidIdentifierError: a bad ``agent_name`` or ``session_id``.
            StorageError: the store failed (nothing is removed).
        """
        ...

    async def replace_last_messages(
        self,
        agent_name: str,
        session_id: str,
        expected: Sequence[Message],
        messages: Sequence[MessageInput],
    ) -> bool:
        """Replace the conversation's last messages with ``messages``, if they are ``expected``.

        A compare-and-swap of the conversation's tail, for compaction (a
        summary in place of the turns it summarises): in one atomic step, if
        the last ``len(expected)`` stored messages are equal to ``expected``
        (every field, ``created_at`` included: pass what :meth:`load_history`
        returned), they are removed and ``messages`` are stored in their place,
        in order, after the messages before them; otherwise nothing changes.
        A write that landed since ``expected`` was read (an append, a pop, a
        replace) makes it fail, so it never loses one: an append racing a
        replace is stored after the replacement, or makes the replace return
        ``False``.

        ``expected`` empty matches any conversation: ``messages`` are appended.
        ``expected`` the whole conversation replaces all of it (a
        :meth:`save_full_history` that fails if anybody wrote meanwhile).
        ``messages`` empty removes the tail; a conversation emptied so stays
        listed with no message, as after :meth:`pop_message`. Ids follow
        :meth:`append_messages`' rule against the messages kept: a message
        whose id is stored before the tail is skipped, the replaced messages'
        ids may be stored again. The conversation's metadata is kept.

        Returns:
            ``True`` when the tail was replaced, ``False`` when the stored
            tail differs from ``expected`` (or the conversation is shorter).

        Raises:
            InvalidIdentifierError: a bad ``agent_name`` or ``session_id``
                (``None`` included).
            InvalidInputError: ``expected`` is not a list of messages.
            InvalidMessageError: any of ``messages`` is invalid (nothing changes).
            StorageError: the store failed (nothing changes).
        """
        ...


@runtime_checkable
class SessionLifecycle(Protocol):
    """A conversation's life beyond its turns: listing, paging, metadata, copies, retention.

    What an application's admin pages and the ``agentcore`` command's
    ``sessions``/``history``/``copy``/``meta``/``purge`` commands call.
    """

    async def list_sessions(self, agent_name: str, limit: int | None = 100) -> list[SessionInfo]:
        """The agent's conversations, most recently written first (at most ``limit``).

        Ties break by session id in code point order. ``limit=None`` lists them
        all: its cost grows with the number of the agent's conversations. For
        more than one page, use :meth:`list_sessions_page`.
        """
        ...

    async def list_sessions_page(
        self,
        agent_name: str,
        *,
        owner: str | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> SessionPage:
        """One page of the agent's conversations, in :meth:`list_sessions`' order.

        Each page is one index range scan from the cursor (a keyset, never an
        OFFSET), so page 10,000 costs what page 1 does. A walk sees every
        conversation not written during it exactly once. A conversation
        written during the walk moves to the front: it is not listed twice,
        but one not yet listed is then missed (start again from the first
        page to see it).

        Args:
            agent_name: Whose conversations.
            owner: Only the conversations whose metadata ``owner`` is this
                (see :meth:`set_session_metadata`).
            limit: Page size, 1 to 10,000.
            after: The ``next_cursor`` of the previous page; ``None`` for the first.

        Raises:
            InvalidIdentifierError: a bad ``agent_name`` or ``owner``.
            InvalidInputError: a bad ``limit``, or ``after`` is not a cursor
                this method returned.
        """
        ...

    async def get_session(self, agent_name: str, session_id: str) -> SessionInfo | None:
        """One conversation's summary (with its metadata); ``None`` when it is not stored.

        Raises:
            InvalidIdentifierError: a bad ``agent_name`` or ``session_id``.
        """
        ...

    async def set_session_metadata(
        self,
        agent_name: str,
        session_id: str,
        metadata: Mapping[str, Any],
        *,
        merge: bool = True,
    ) -> dict[str, Any]:
        """Set the conversation's metadata object (returned by the session listings).

        Its ``owner`` key, when present, names who the conversation belongs to
        (a user id: a string with the rules of a session id), and
        :meth:`list_sessions_page` can list one owner's conversations. The
        metadata is kept by appends and replaces, copied by
        :meth:`copy_session`, and deleted with the conversation. Setting it
        does not change ``updated_at``.

        Args:
            metadata: A JSON object, at most 16,384 characters as JSON (also
                after a merge).
            merge: Put ``metadata``'s keys over the stored ones (a shallow
                merge). ``False`` replaces the whole object.

        Returns:
            The metadata now stored.

        Raises:
            InvalidIdentifierError: a bad ``agent_name`` or ``session_id``.
            InvalidInputError: the metadata is not a JSON object, is too large,
                or has an ``owner`` that is not a valid identifier.
            NotFoundError: no such conversation is stored.
        """
        ...

    async def load_history_page(
        self,
        agent_name: str,
        session_id: str,
        *,
        limit: int = 100,
        before: str | None = None,
    ) -> HistoryPage:
        """A conversation read backwards: the ``limit`` messages before ``before``.

        The first page (``before=None``) holds the latest messages; each
        ``next_cursor`` gives the page of older ones. Each page is one index
        range scan. Messages appended meanwhile do not shift the pages; a
        replace (``save_full_history``) renumbers them.

        Raises:
            InvalidIdentifierError: a bad ``agent_name`` or ``session_id``.
            InvalidInputError: a bad ``limit`` (1 to 10,000), or ``before`` is
                not a cursor this method returned.
        """
        ...

    async def copy_session(
        self,
        agent_name: str,
        source_session_id: str,
        target_session_id: str,
        *,
        up_to: int | str | None = None,
    ) -> int:
        """Copy a conversation to a new session id of the same agent, atomically.

        Every message is copied with every field (ids, ``created_at``,
        metadata, tool calls), and so is the conversation's metadata; the new
        conversation's own ``created_at``/``updated_at`` are the time of the
        copy. To branch a conversation before a given turn, copy it ``up_to``
        that point.

        Args:
            up_to: ``None``: every message. An int N: the first N messages.
                A message id: the messages up to and including that one.

        Returns:
            How many messages were copied.

        Raises:
            InvalidIdentifierError: a bad agent name or session id.
            InvalidInputError: a bad ``up_to``.
            NotFoundError: the source conversation is not stored, or holds no
                message with the id ``up_to``.
            SessionExistsError: the target conversation already exists
                (nothing is changed).
        """
        ...

    async def purge_idle_sessions(
        self,
        idle_for: timedelta,
        *,
        agent_name: str | None = None,
        batch_size: int = DEFAULT_PURGE_BATCH_SIZE,
        pause: float = DEFAULT_PURGE_PAUSE,
        max_impact: float = DEFAULT_PURGE_MAX_IMPACT,
        dry_run: bool = False,
        on_progress: Callable[[PurgeReport], None] | None = None,
    ) -> PurgeReport:
        """Delete the conversations nobody wrote to for ``idle_for``, in batches.

        Idle means last written before now minus ``idle_for`` (now: when the
        purge starts). Each batch of at most ``batch_size`` conversations is
        one transaction; a conversation written meanwhile is re-checked under
        its lock and kept, and one whose lock a writer holds is skipped (a
        later purge takes it). Stopping a purge (cancelling it) keeps the
        batches done; running it again goes on. The order of the batches is
        the store's own (PostgreSQL: where the conversations' rows lie, so
        that each page is changed once; then the rest, oldest first). A batch
        lost in a crash was not committed: a later purge deletes it again.

        Args:
            idle_for: How long a conversation must have been idle (>= 0).
            agent_name: Only this agent's conversations (default: every agent's).
            batch_size: Conversations per transaction (1 to 10,000). Larger
                batches purge faster and delay concurrent turns more.
            pause: Seconds to wait at least between two batches that delete
                (0 to 3600), leaving the database to other work.
            max_impact: The share of the purge's time spent in batches (above
                0, at most 1): after a batch that took ``d`` seconds it waits
                ``d * (1 - max_impact) / max_impact`` when that is longer than
                ``pause``, so that a batch slowed by concurrent work slows the
                purge too. Lower is gentler on concurrent turns and slower
                (docs/operations.md has measurements).
            dry_run: Count what would be deleted; delete nothing.
            on_progress: Called after each batch with the totals so far.

        Returns:
            What was deleted (with ``dry_run``: what would be).

        Raises:
            InvalidIdentifierError: a bad ``agent_name``.
            InvalidInputError: a bad ``idle_for``, ``batch_size``, ``pause`` or
                ``max_impact``.
        """
        ...


@runtime_checkable
class HistoryExport(Protocol):
    """What :func:`~agentcore.transfer.export_jsonl` reads: every conversation, streamed."""

    def iter_sessions(
        self, agent_name: str | None = None, *, batch_size: int = 1000
    ) -> AsyncIterator[SessionInfo]:
        """Every conversation (of one agent, or of all), read in batches of ``batch_size``.

        The order is the store's key order, stable while conversations are
        written (unlike :meth:`list_sessions`); use it to visit all of them
        (an export).

        Raises:
            InvalidIdentifierError: a bad ``agent_name``.
            InvalidInputError: a bad ``batch_size`` (1 to 10,000).
        """
        ...

    def iter_history(
        self, agent_name: str, session_id: str, *, batch_size: int = 1000
    ) -> AsyncIterator[Message]:
        """Every message of a conversation, oldest first, read in batches (bounded memory).

        Each batch is one index range scan. Messages appended during the walk
        are included; a replace during it gives a mix of both versions.

        Raises:
            InvalidIdentifierError: a bad ``agent_name`` or ``session_id``.
            InvalidInputError: a bad ``batch_size`` (1 to 10,000).
        """
        ...

    async def get_session(self, agent_name: str, session_id: str) -> SessionInfo | None:
        """As :meth:`SessionLifecycle.get_session`."""
        ...


@runtime_checkable
class HistoryImport(Protocol):
    """What :func:`~agentcore.transfer.import_jsonl` writes: whole conversations, streamed.

    When the store has a ``max_content_chars`` attribute, the import bounds
    the lines it reads by it (else by the largest limit agentcore allows).
    """

    async def import_session(
        self,
        agent_name: str,
        session_id: str,
        messages: AsyncIterable[MessageInput] | Iterable[MessageInput],
        *,
        metadata: Mapping[str, Any] | None = None,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
    ) -> int:
        """Store a whole conversation under a new session id, atomically, from a stream.

        Messages are kept as given (ids, ``created_at``...), like an append;
        they are consumed one by one, so a long conversation needs no more
        memory than one message (PostgreSQL streams them into one
        transaction). No messages stores the conversation empty, with its
        metadata and times, as :meth:`pop_message` or
        :meth:`replace_last_messages` can leave one.

        An import restores what an export wrote, so the agent name, session id
        and message ids are checked as a read checks them: ids that older
        versions stored (with control characters) are accepted.

        Args:
            metadata: The conversation's metadata (see :meth:`set_session_metadata`).
            created_at: The conversation's creation time (default: now).
            updated_at: Its last write time (default: now).

        Returns:
            How many messages were stored.

        Raises:
            InvalidIdentifierError: a bad ``agent_name`` or ``session_id``.
            InvalidInputError: bad metadata or times.
            InvalidMessageError: a message is invalid, or repeats an id
                (nothing is stored).
            SessionExistsError: the conversation already exists (nothing is
                read from ``messages``, nothing changed).
        """
        ...


@runtime_checkable
class ChatMessageStore(Protocol):
    """What the LangChain bridge (:mod:`agentcore.integrations.langchain`) calls."""

    async def load_history(
        self, agent_name: str, session_id: str | None, limit: int | None = None
    ) -> list[Message]:
        """As :meth:`TurnStore.load_history`."""
        ...

    async def append_messages(
        self, agent_name: str, session_id: str | None, messages: Sequence[MessageInput]
    ) -> int:
        """As :meth:`TurnStore.append_messages`."""
        ...

    async def clear_session(self, agent_name: str, session_id: str) -> int:
        """As :meth:`HistoryEditing.clear_session`."""
        ...


@runtime_checkable
class SessionItemStore(HistoryEditing, Protocol):
    """What the OpenAI Agents SDK bridge (:mod:`agentcore.integrations.openai_agents`) calls.

    The :class:`HistoryEditing` methods serve ``pop_item``, ``clear_session``
    and the SDK's compaction hooks (``replace_last_messages``; ``iter_history``
    when the SDK prunes expired items; ``save_full_history`` for its
    whole-history replacement).
    """

    async def load_history(
        self, agent_name: str, session_id: str | None, limit: int | None = None
    ) -> list[Message]:
        """As :meth:`TurnStore.load_history`."""
        ...

    async def append_messages(
        self, agent_name: str, session_id: str | None, messages: Sequence[MessageInput]
    ) -> int:
        """As :meth:`TurnStore.append_messages`."""
        ...

    def iter_history(
        self, agent_name: str, session_id: str, *, batch_size: int = 1000
    ) -> AsyncIterator[Message]:
        """As :meth:`HistoryExport.iter_history`."""
        ...


@runtime_checkable
class HistoryRepository(
    TurnStore,
    ScopedStateStore,
    SessionLifecycle,
    HistoryExport,
    HistoryImport,
    SessionItemStore,
    HistoryEditing,
    ChatMessageStore,
    Protocol,
):
    """Conversation history keyed by ``(agent_name, session_id)``: every port at once.

    Both agentcore repositories implement it; a caller that needs only part
    of it asks for a smaller port (see the module's docstring).

    Identifiers are non-empty strings of at most 255 characters with no NUL
    byte (anything else raises :class:`~agentcore.errors.InvalidIdentifierError`
    before any I/O). Writes also refuse control characters and line separators
    in ids; reads, ``get_message``, ``list_sessions`` and ``clear_session``
    accept them, so that conversations stored before that rule stay reachable.
    A whole batch is validated before anything is written, and every write is
    atomic. ``session_id=None`` never falls back to a shared
    conversation: reads return ``[]`` and writes store nothing, with a warning.
    """


PORTS: tuple[type, ...] = (
    TurnStore,
    HistoryEditing,
    SessionLifecycle,
    HistoryExport,
    HistoryImport,
    ChatMessageStore,
    SessionItemStore,
    ScopedStateStore,
)
"""The ports whose union is :class:`HistoryRepository`, the storage ones first."""
