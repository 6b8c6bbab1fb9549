"""Iterating plain and async iterables alike (no I/O of its own)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TypeVar

T = TypeVar("T")


async def each(items: AsyncIterable[T] | Iterable[T]) -> AsyncIterator[T]:
    """Yield the items of an async iterable or of a plain one."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
