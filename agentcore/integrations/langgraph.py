"""agentcore as a LangGraph checkpointer: :class:`AgentcoreSaver`.

Needs the ``langgraph-checkpoint`` package: ``pip install 'agentcore-history[langgraph]'``.
Its tables come with agentcore's migrations (``agentcore.migrations.apply(dsn)``).
How it stores a thread, and what that costs, is in ``docs/integrations.md``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from typing import Any, TypeVar, cast

from agentcore import (
    MESSAGES_TYPE,
    ChannelVersion,
    MissingDependencyError,
    NewMessage,
    PostgresCheckpointStore,
    StoredCheckpoint,
    check_thread_id,
)

try:
    from langchain_core.messages import BaseMessage
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        WRITES_IDX_MAP,
        BaseCheckpointSaver,
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
        get_checkpoint_id,
        get_serializable_checkpoint_metadata,
    )
    from langgraph.checkpoint.serde.base import SerializerProtocol
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError(
        "agentcore.integrations.langgraph needs the langgraph-checkpoint package: "
        "pip install 'agentcore-history[langgraph]'"
    ) from exc

_ROLES = {
    "human": "user",
    "ai": "assistant",
    "AIMessageChunk": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
}
_RANGE = re.compile(r"\[(-?\d+),(-?\d+)\)")
_VERSIONS_KEPT = 8
"""Recent versions of a messages channel remembered per thread, to append to."""

Ranges = tuple[tuple[int, int], ...]
Digests = list[bytes]
_T = TypeVar("_T")


class AgentcoreSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer whose storage grows linearly with the conversation.

    A thread is an agentcore conversation (``agent_name``, ``session_id`` =
    ``thread_id``). Each message of a messages channel (a channel whose value
    is a list of LangChain messages, such as ``MessagesState``'s
    ``messages``) is stored once, as a row of that conversation, and a
    checkpoint refers to the rows that make up its list; other channels'
    values are stored per version, only when they change. When a new list is
    not an older one plus new messages (``RemoveMessage``, an update by id, a
    fork), its messages are written again as new rows: exact, at the cost of
    the whole list once. Deleting the conversation (``adelete_thread``,
    ``aprune(strategy="delete")``, agentcore's idle purge) deletes its
    checkpoints.

    The async methods are the interface. The sync ones (``get_tuple``,
    ``list``, ``put``, ``put_writes``, ``delete_thread``, ...) are for
    ``graph.invoke`` callers on other threads: they run the async method on
    the event loop the saver was made on, as LangGraph's ``AsyncPostgresSaver``
    does, and refuse to run on that loop's own thread.

    Args:
        pool: An open ``psycopg_pool.AsyncConnectionPool``, owned by the caller,
            on a database migrated by ``agentcore.migrations.apply(dsn)``.
        serde: LangGraph's serializer (default: ``JsonPlusSerializer``).
        agent_name: The agentcore agent the threads' conversations belong to.
        cached_threads: Threads whose latest message lists the saver remembers
            (digests only) to recognise an append without reading the database.

    Raises:
        InvalidInputError: ``pool`` is not an ``AsyncConnectionPool``.
        RuntimeError: no event loop is running (make it inside ``async`` code).
    """

    def __init__(
        self,
        pool: Any,
        *,
        serde: SerializerProtocol | None = None,
        agent_name: str = "langgraph",
        cached_threads: int = 1024,
    ) -> None:
        super().__init__(serde=serde)
        self.store = PostgresCheckpointStore(pool, agent_name=agent_name)
        self.loop = asyncio.get_running_loop()
        self._cached_threads = cached_threads
        self._lists: OrderedDict[tuple[str, str, str], dict[str, tuple[Ranges, Digests]]] = (
            OrderedDict()
        )

    # -- the async interface -------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names (its ``checkpoint_id``, else the latest)."""
        configurable = config["configurable"]
        rows = await self.store.list_checkpoints(
            thread_id=check_thread_id(configurable["thread_id"]),
            checkpoint_ns=configurable.get("checkpoint_ns", ""),
            checkpoint_id=get_checkpoint_id(config),
            limit=1,
        )
        return self._tuple(rows[0]) if rows else None

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first, filtered as ``BaseCheckpointSaver.alist`` says."""
        configurable = config["configurable"] if config else {}
        thread_id = configurable.get("thread_id")
        rows = await self.store.list_checkpoints(
            thread_id=None if thread_id is None else check_thread_id(thread_id),
            checkpoint_ns=configurable.get("checkpoint_ns"),
            checkpoint_id=configurable.get("checkpoint_id"),
            filter=filter,
            before=get_checkpoint_id(before) if before else None,
            limit=None if limit is None else int(limit),
        )
        for row in rows:
            yield self._tuple(row)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and the channel versions it introduces, in one statement."""
        configurable = config["configurable"]
        thread_id = check_thread_id(configurable["thread_id"])
        checkpoint_ns = configurable.get("checkpoint_ns", "")
        copy = cast(dict[str, Any], dict(checkpoint))
        inline = dict(checkpoint["channel_values"])
        blob_values = {
            k: inline.pop(k)
            for k, v in checkpoint["channel_values"].items()
            if not (v is None or isinstance(v, str | int | float | bool))
        }
        copy["channel_values"] = inline
        versions: list[ChannelVersion] = []
        messages: list[NewMessage] = []
        appended: dict[str, tuple[Ranges, Digests, int, int]] = {}
        for channel, version in new_versions.items():
            if channel not in blob_values:
                continue
            value = blob_values[channel]
            key = (thread_id, checkpoint_ns, channel)
            if _is_message_list(value):
                dumped = [self.serde.dumps_typed(m) for m in value]
                digests = [_digest(t, b) for t, b in dumped]
                base, known = self._base(key, digests)
                start = len(messages)
                messages.extend(
                    _new_message(m, d) for m, d in zip(value[known:], dumped[known:], strict=True)
                )
                count = len(messages) - start
                appended[channel] = (base, digests, start, count)
                versions.append(
                    ChannelVersion(
                        channel, str(version), MESSAGES_TYPE, None, _text(base), start, count
                    )
                )
            else:
                kind, blob = self.serde.dumps_typed(value)
                versions.append(ChannelVersion(channel, str(version), kind, blob))
        first_seq = await self.store.put_checkpoint(
            thread_id=thread_id,
            checkpoint_ns=checkpoint_ns,
            checkpoint_id=checkpoint["id"],
            parent_checkpoint_id=configurable.get("checkpoint_id"),
            checkpoint=copy,
            metadata=cast(dict[str, Any], get_serializable_checkpoint_metadata(config, metadata)),
            versions=versions,
            messages=messages,
        )
        for channel, (base, digests, start, count) in appended.items():
            ranges = _joined(base, (first_seq + start, first_seq + start + count))
            self._remember(
                (thread_id, checkpoint_ns, channel), str(new_versions[channel]), ranges, digests
            )
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes to the checkpoint ``config`` names."""
        configurable = config["configurable"]
        dumped = [
            (WRITES_IDX_MAP.get(channel, idx), channel, *self.serde.dumps_typed(value))
            for idx, (channel, value) in enumerate(writes)
        ]
        await self.store.put_writes(
            thread_id=check_thread_id(configurable["thread_id"]),
            checkpoint_ns=configurable.get("checkpoint_ns", ""),
            checkpoint_id=configurable["checkpoint_id"],
            task_id=task_id,
            task_path=task_path,
            writes=dumped,
            replace=all(w[0] in WRITES_IDX_MAP for w in writes),
        )

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete a thread: its checkpoints, writes and conversation."""
        await self.store.delete_threads([check_thread_id(thread_id)])
        self._forget([str(thread_id)])

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their pending writes) these runs made."""
        await self.store.delete_for_runs([str(r) for r in run_ids])

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's checkpoints, writes and messages to another thread."""
        await self.store.copy_thread(
            check_thread_id(source_thread_id), check_thread_id(target_thread_id)
        )

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep each namespace's latest checkpoint (``"keep_latest"``), or nothing (``"delete"``).

        Raises:
            TypeError: ``thread_ids`` is one string.
            ValueError: an unknown ``strategy``.
        """
        if isinstance(thread_ids, str):
            raise TypeError("thread_ids must be a sequence of thread IDs, not a str")
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"Unknown prune strategy: {strategy!r}")
        ids = [check_thread_id(t) for t in thread_ids]
        if not ids:
            return
        if strategy == "delete":
            await self.store.delete_threads(ids)
            self._forget(ids)
        else:
            await self.store.prune_keep_latest(ids)

    def get_next_version(self, current: str | None, channel: None = None) -> str:
        """A version after ``current``: its number plus one, and a random tie-breaker."""
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            number = int(current.split(".")[0])
        return f"{number + 1:032}.{random.random():016}"

    # -- the sync interface, for graph.invoke on other threads -----------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Sync :meth:`aget_tuple`, from a thread other than the saver's loop."""
        return self._sync(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Sync :meth:`alist`, from a thread other than the saver's loop."""

        async def collect() -> list[CheckpointTuple]:
            return [t async for t in self.alist(config, filter=filter, before=before, limit=limit)]

        yield from self._sync(collect())

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Sync :meth:`aput`, from a thread other than the saver's loop."""
        return self._sync(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Sync :meth:`aput_writes`, from a thread other than the saver's loop."""
        self._sync(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Sync :meth:`adelete_thread`, from a thread other than the saver's loop."""
        self._sync(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Sync :meth:`adelete_for_runs`, from a thread other than the saver's loop."""
        self._sync(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Sync :meth:`acopy_thread`, from a thread other than the saver's loop."""
        self._sync(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Sync :meth:`aprune`, from a thread other than the saver's loop."""
        self._sync(self.aprune(thread_ids, strategy=strategy))

    def _sync(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            coroutine.close()
            raise asyncio.InvalidStateError(
                "AgentcoreSaver's sync methods run on another thread than the saver's event "
                "loop; on that loop use the async ones (await graph.ainvoke(...), "
                "await saver.aget_tuple(...))"
            )
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    # -- reading back ----------------------------------------------------------

    def _tuple(self, row: StoredCheckpoint) -> CheckpointTuple:
        values: dict[str, Any] = dict(row.checkpoint.get("channel_values") or {})
        for channel, kind, data, ranges in row.channel_values:
            if kind == "empty":
                continue
            if kind == MESSAGES_TYPE:
                items = json.loads(data or b"[]")
                dumped = [(i["t"], base64.b64decode(i["b"])) for i in items]
                values[channel] = [self.serde.loads_typed(d) for d in dumped]
                version = row.checkpoint["channel_versions"][channel]
                self._remember(
                    (row.thread_id, row.checkpoint_ns, channel),
                    str(version),
                    _parsed(ranges or "{}"),
                    [_digest(t, b) for t, b in dumped],
                )
            else:
                values[channel] = self.serde.loads_typed((kind, data or b""))
        writes = sorted(row.pending_writes, key=lambda w: (w[4], w[0], w[5]))
        return CheckpointTuple(
            {
                "configurable": {
                    "thread_id": row.thread_id,
                    "checkpoint_ns": row.checkpoint_ns,
                    "checkpoint_id": row.checkpoint_id,
                }
            },
            cast(Checkpoint, {**row.checkpoint, "channel_values": values}),
            cast(CheckpointMetadata, row.metadata),
            (
                {
                    "configurable": {
                        "thread_id": row.thread_id,
                        "checkpoint_ns": row.checkpoint_ns,
                        "checkpoint_id": row.parent_checkpoint_id,
                    }
                }
                if row.parent_checkpoint_id
                else None
            ),
            [(t, c, self.serde.loads_typed((k, b))) for t, c, k, b, _, _ in writes],
        )

    # -- the remembered lists ----------------------------------------------------

    def _base(self, key: tuple[str, str, str], digests: Digests) -> tuple[Ranges, int]:
        """The stored list the new one extends the most: its ranges and length."""
        best: tuple[Ranges, int] = ((), 0)
        for ranges, known in self._lists.get(key, {}).values():
            if len(known) > best[1] and digests[: len(known)] == known:
                best = (ranges, len(known))
        return best

    def _remember(
        self, key: tuple[str, str, str], version: str, ranges: Ranges, digests: Digests
    ) -> None:
        versions = self._lists.pop(key, {})
        versions[version] = (ranges, digests)
        while len(versions) > _VERSIONS_KEPT:
            del versions[next(iter(versions))]
        self._lists[key] = versions
        while len(self._lists) > self._cached_threads:
            self._lists.popitem(last=False)

    def _forget(self, thread_ids: Sequence[str]) -> None:
        gone = set(thread_ids)
        for key in [k for k in self._lists if k[0] in gone]:
            del self._lists[key]


def _is_message_list(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, BaseMessage) and m.type in _ROLES for m in value)
    )


def _new_message(message: BaseMessage, dumped: tuple[str, bytes]) -> NewMessage:
    content = message.content if isinstance(message.content, str) else json.dumps(message.content)
    # The row's content is what agentcore readers see; the item is exact.
    readable = content.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    item = {"t": dumped[0], "b": base64.b64encode(dumped[1]).decode("ascii")}
    return NewMessage(_ROLES[message.type], readable, item)


def _digest(kind: str, blob: bytes) -> bytes:
    return hashlib.blake2b(kind.encode() + b"\x00" + blob, digest_size=16).digest()


def _joined(base: Ranges, new: tuple[int, int]) -> Ranges:
    if new[0] == new[1]:
        return base
    if base and base[-1][1] == new[0]:
        return (*base[:-1], (base[-1][0], new[1]))
    return (*base, new)


def _text(ranges: Ranges) -> str:
    return "{" + ",".join(f"[{lo},{hi})" for lo, hi in ranges) + "}"


def _parsed(text: str) -> Ranges:
    return tuple((int(lo), int(hi)) for lo, hi in _RANGE.findall(text))
