"""Exact items as JSON text that UTF-8 and PostgreSQL's ``json`` type both hold.

A message's ``item`` may hold any Python text, U+0000 and lone surrogates
included (a tool that returns a binary file's header; a framework that reads
text with ``surrogateescape``). Neither fits in PostgreSQL ``text`` or
``jsonb``, and a lone surrogate cannot be encoded as UTF-8 at all, but both
fit in ``json`` as escapes: ``json`` keeps its text as written, so
``"\\u0000"`` and ``"\\ud800"`` stay escapes there and ``json.loads`` reads
them back as the very characters. The text written here is compact JSON,
UTF-8 unescaped (as PostgreSQL and an export keep it), except lone surrogates,
which are written as ``\\udXXX`` escapes, six ASCII characters each.

One consequence is JSON's own: a high surrogate followed by a low one is
read back as the one character the pair encodes (``"\\ud83d\\ude00"`` is
``"😀"``). Validation stores items in that form in both repositories
(:func:`agentcore.validation.prepare_messages`), as ``json.dumps`` and
``json.loads`` (the OpenAI Agents SDK's ``SQLiteSession``) do.
"""

from __future__ import annotations

import json
import re
from typing import Any

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_SURROGATES = re.compile("[\ud800-\udfff]")


def has_surrogates(text: str) -> bool:
    """Whether ``text`` holds a surrogate code point (which UTF-8 cannot encode)."""
    return not text.isascii() and _SURROGATES.search(text) is not None


def exact_json(value: Any) -> str:
    """``value`` (JSON types only) as compact JSON text that UTF-8 can encode.

    Raises:
        ValueError: ``value`` holds NaN or Infinity.
        TypeError: ``value`` holds something JSON cannot.
    """
    text = _ENCODER.encode(value)
    if not has_surrogates(text):
        return text
    # A surrogate in JSON text written unescaped can only be inside a string
    # (a key or a value), where its escape means the same character. The
    # codec writes it as \udXXX, in C (a regex with a Python callback took
    # 2 µs per surrogate).
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def needs_text_carrier(text: str) -> bool:
    """Whether PostgreSQL can take the JSON ``text`` only as a string inside other JSON.

    The append statements read each message out of one ``json`` array with
    ``->``, which decodes every string it passes and fails on ``\\u0000`` and
    on a lone surrogate's escape. Such an item travels as its own JSON text,
    in a string, and is cast to ``json`` by itself. An escaped backslash
    followed by ``u0000`` or ``ud`` takes that way too, at no harm.
    """
    return "\\u0000" in text or "\\ud" in text
