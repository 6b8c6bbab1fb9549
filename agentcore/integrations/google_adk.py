"""agentcore as a Google ADK session service: :class:`AgentcoreSessionService`.

Needs the ``google-adk`` package: ``pip install 'agentcore-history[google-adk]'``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from agentcore import (
    MessageInput,
    MissingDependencyError,
    NotFoundError,
    Role,
    ScopedSession,
    ScopedStateStore,
    SessionExistsError,
    StaleStateError,
)

try:
    from google.adk.errors.already_exists_error import AlreadyExistsError
    from google.adk.errors.session_not_found_error import SessionNotFoundError
    from google.adk.events.event import Event
    from google.adk.platform import time as platform_time
    from google.adk.sessions import _session_util
    from google.adk.sessions.base_session_service import (
        BaseSessionService,
        GetSessionConfig,
        ListSessionsResponse,
    )
    from google.adk.sessions.session import Session
    from google.adk.sessions.state import State
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError(
        "agentcore.integrations.google_adk needs the google-adk package: "
        "pip install 'agentcore-history[google-adk]'"
    ) from exc

try:
    from google.adk.errors._stale_session_error import StaleSessionError
except ImportError:  # pragma: no cover - google-adk releases before StaleSessionError
    StaleSessionError = ValueError  # type: ignore[assignment,misc]

_MARKER = "agentcore:"
"""How a session this service read or wrote names its revision (its ``_storage_update_marker``)."""

_STALE = (
    "The session has been modified in storage since it was loaded. "
    "Please reload the session before appending more events."
)


class AgentcoreSessionService(BaseSessionService):
    """A Google ADK ``BaseSessionService`` whose sessions live in an agentcore repository.

    ADK's ``(app_name, user_id, session_id)`` is agentcore's conversation
    ``(agent_name=app_name, session_id=f"{len(user_id)}:{user_id}:{session_id}")``,
    owned by ``user_id`` (its metadata ``owner``): two users may each have a
    session of the same id, as in ADK, and the key reads back unambiguously. Each event is one
    message that carries the event verbatim (``Event.model_dump(mode="json",
    exclude_none=True)``, as ADK's ``DatabaseSessionService`` stores it), so
    it reads back equal: content parts, function calls and responses,
    actions, ids and timestamps.

    State is ADK's: a session's own keys, ``user:`` keys shared by a user's
    sessions of the app, ``app:`` keys shared by all its sessions, merged into
    ``session.state`` on every read; ``temp:`` keys are never stored. They are
    agentcore's scoped state (:class:`agentcore.ScopedStateStore`, migration
    0007): ``append_event`` stores the event and its state delta in one
    transaction, both or neither, and refuses (``StaleSessionError``) a
    session object that another writer has overtaken since it was read, as
    ``DatabaseSessionService`` does.

    ``get_session``'s ``GetSessionConfig`` (``num_recent_events``,
    ``after_timestamp``) is done in SQL: it reads only the events it returns.
    ``list_sessions`` reads no event.

    Args:
        repository: An agentcore repository (PostgreSQL, or the in-memory
            fake in tests), owned by the caller.
    """

    def __init__(self, repository: ScopedStateStore) -> None:
        if not isinstance(repository, ScopedStateStore):
            raise TypeError(
                f"{type(repository).__name__} keeps no scoped state: use "
                "PostgresHistoryRepository or InMemoryHistoryRepository"
            )
        self._store: ScopedStateStore = repository

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Create an empty session; ``user:`` and ``app:`` keys of ``state`` go to their scopes.

        Raises:
            AlreadyExistsError: ``session_id`` is taken in this app.
        """
        session_id = session_id.strip() if session_id else None
        session_id = session_id or str(uuid.uuid4())
        deltas = _session_util.extract_json_safe_state_delta(state or {})
        try:
            created = await self._store.create_scoped_session(
                app_name,
                conversation_id(user_id, session_id),
                owner=user_id,
                update_time=platform_time.get_time(),
                state=deltas["session"],
                owner_state=deltas["user"],
                agent_state=deltas["app"],
            )
        except SessionExistsError:
            raise AlreadyExistsError(f"Session with id {session_id} already exists.") from None
        return _session(created, [])

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """The session with its events (those ``config`` selects, read in SQL), or ``None``."""
        limit = None if config is None else config.num_recent_events
        after = None if config is None else config.after_timestamp
        since = None if after is None else datetime.fromtimestamp(after, UTC)
        found = await self._store.get_scoped_session(
            app_name, conversation_id(user_id, session_id), owner=user_id, limit=limit, since=since
        )
        if found is None:
            return None
        scoped, messages = found
        events = [Event.model_validate(m.item) for m in messages if m.item is not None]
        if after is not None:
            # A timestamp is stored to the microsecond: an event a fraction of
            # one before ``after_timestamp`` is not returned.
            events = [e for e in events if e.timestamp >= after]
        return _session(scoped, events)

    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        """The app's (or the user's) sessions, least recently updated first, without events."""
        listed = await self._store.list_scoped_sessions(app_name, owner=user_id)
        return ListSessionsResponse(sessions=[_session(s, []) for s in listed])

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Delete the session, its events and its own state (``user:``/``app:`` state stays)."""
        await self._store.delete_scoped_session(
            app_name, conversation_id(user_id, session_id), owner=user_id
        )

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        """The user's ``user:`` state, without the prefix."""
        return await self._store.get_owner_state(app_name, user_id)

    async def append_event(self, session: Session, event: Event) -> Event:
        """Store ``event`` and its state delta in one transaction; apply both to ``session``.

        A partial (streaming) event is returned unstored, as ADK does.

        Raises:
            SessionNotFoundError: the session is not stored (or not the user's).
            StaleSessionError: the stored session was written since ``session`` was read.
        """
        if event.partial:
            return event
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        deltas = _session_util.extract_json_safe_state_delta(event.actions.state_delta or {})
        expected = await self._expected_revision(session)
        message: dict[str, Any] = {
            "role": _role(event),
            "item": event.model_dump(exclude_none=True, mode="json"),
            "created_at": datetime.fromtimestamp(event.timestamp, UTC),
        }
        batch: list[MessageInput] = [message]
        try:
            written = await self._store.append_with_state(
                session.app_name,
                conversation_id(session.user_id, session.id),
                batch,
                owner=session.user_id,
                update_time=event.timestamp,
                expected_revision=expected,
                state=deltas["session"],
                owner_state=deltas["user"],
                agent_state=deltas["app"],
            )
        except StaleStateError:
            raise StaleSessionError(_STALE) from None
        except NotFoundError:
            raise SessionNotFoundError(f"Session {session.id} not found.") from None
        session.last_update_time = written.update_time
        session._storage_update_marker = f"{_MARKER}{written.revision}"
        return self._commit_event_to_session(session, event)

    async def _expected_revision(self, session: Session) -> int:
        """The stored revision ``session`` was read at.

        A session this service returned names it. Another one (built by hand,
        or by another service) is checked as ``DatabaseSessionService`` checks
        a session without its marker: stale when storage was updated after
        ``session.last_update_time`` and its last event is not the session's.
        """
        marker = session._storage_update_marker
        if marker is not None and marker.startswith(_MARKER):
            return int(marker.removeprefix(_MARKER))
        found = await self._store.get_scoped_session(
            session.app_name,
            conversation_id(session.user_id, session.id),
            owner=session.user_id,
            limit=1,
        )
        if found is None:
            raise SessionNotFoundError(f"Session {session.id} not found.")
        stored, last = found
        if stored.update_time > session.last_update_time:
            last_id = last[0].item.get("id") if last and last[0].item else None
            mine = session.events[-1].id if session.events else None
            if last_id != mine:
                raise StaleSessionError(_STALE)
        return stored.revision


def _session(scoped: ScopedSession, events: list[Event]) -> Session:
    """An ADK session: its own state with the ``app:`` and ``user:`` state merged in."""
    state = dict(scoped.state)
    state.update({State.APP_PREFIX + k: v for k, v in scoped.agent_state.items()})
    state.update({State.USER_PREFIX + k: v for k, v in scoped.owner_state.items()})
    session = Session(
        app_name=scoped.agent_name,
        user_id=scoped.owner,
        id=scoped.session_id.removeprefix(conversation_id(scoped.owner, "")),
        state=state,
        events=events,
        last_update_time=scoped.update_time,
    )
    session._storage_update_marker = f"{_MARKER}{scoped.revision}"
    return session


def conversation_id(user_id: str, session_id: str) -> str:
    """agentcore's session id for ADK's ``(user_id, session_id)``.

    ``"{len(user_id)}:{user_id}:{session_id}"``: the length makes it
    unambiguous whatever the ids hold.
    """
    return f"{len(user_id)}:{user_id}:{session_id}"


def _role(event: Event) -> Role:
    """agentcore's role for an event: the user's, a tool's output, or the agent's."""
    if event.author == "user":
        return "user"
    if event.get_function_responses():
        return "tool"
    return "assistant"
