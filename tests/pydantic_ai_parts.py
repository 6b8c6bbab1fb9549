"""Pydantic AI messages of every part kind the installed pydantic-ai defines, generated.

The part classes are read from ``ModelRequestPart`` and ``ModelResponsePart``
(the unions Pydantic AI's own ``ModelMessagesTypeAdapter`` validates), and each
is built from its dataclass fields' type hints, every field set (not only the
required ones), so a part kind or a field that a new pydantic-ai release adds
is covered without a change here. Each class is built in several variants:
variant ``k`` takes the ``k``-th alternative of every union (``args`` as a
dict, then a string, then ``None``), and a sequence of a union holds one value
of each alternative (a user prompt with text, images, audio, documents,
video, binary content, uploaded files and cache points). ``text`` is what goes
in every string that takes any text, so hostile text reaches every field.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pydantic
import pydantic_ai.messages
import typing_extensions
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelRequestPart,
    ModelResponse,
    ModelResponsePart,
)

WHEN = datetime.datetime(2026, 5, 9, 12, 30, 15, 123456, tzinfo=datetime.UTC)
BINARY = b"\x89PNG\r\n\x1a\n\x00\xff"
VARIANTS = 3


def part_classes(union: Any) -> list[type]:
    """The part classes of one of Pydantic AI's discriminated part unions, each once."""
    found: list[type] = []
    for alternative in typing.get_args(typing.get_args(union)[0]):
        cls = typing.get_args(alternative)[0]
        if cls not in found:
            found.append(cls)
    return found


REQUEST_PARTS = part_classes(ModelRequestPart)
RESPONSE_PARTS = part_classes(ModelResponsePart)


class Maker:
    """Builds a value of a type hint; ``variant`` picks union alternatives, ``text`` strings."""

    def __init__(self, variant: int, text: str) -> None:
        self.variant = variant
        self.text = text
        self.count = 0  # ints increase: a citation's start comes before its end
        self.depth = 0

    def make(self, hint: Any, bindings: Mapping[Any, Any] | None = None) -> Any:
        self.depth += 1
        try:
            return self._make(hint, bindings or {})
        finally:
            self.depth -= 1

    def _make(self, hint: Any, bindings: Mapping[Any, Any]) -> Any:  # noqa: C901
        if isinstance(hint, str | typing.ForwardRef):  # a forward reference in pydantic-ai
            name = hint if isinstance(hint, str) else hint.__forward_arg__
            hint = getattr(pydantic_ai.messages, name)
        if isinstance(hint, typing.TypeVar):
            hint = bindings.get(hint, hint.__bound__ or str)
        if isinstance(hint, typing_extensions.TypeAliasType):
            return self.make(hint.__value__, bindings)
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is typing.Annotated:
            return self.make(args[0], bindings)
        if origin is typing.Literal:
            return args[self.variant % len(args)]
        if origin in (typing.Union, types.UnionType):
            # A recursive type (tool return content holds tool return content) ends in its first.
            pick = 0 if self.depth > 8 else self.variant % len(args)
            return self.make(args[pick], bindings)
        if origin in (list, Sequence, tuple):
            element = args[0] if args else Any
            if typing.get_origin(element) in (typing.Union, types.UnionType):
                values = [self.make(a, bindings) for a in typing.get_args(element) if a is not None]
            else:
                values = [self.make(element, bindings)]
            return tuple(values) if origin is tuple else values
        if origin in (dict, Mapping) and len(args) == 2:
            return {self.text: self.make(args[1], bindings)}
        if origin is dict or hint is dict:
            return self.json_value()
        if hint is Any or hint is object:
            return self.json_value()
        if isinstance(origin, type) and dataclasses.is_dataclass(origin):
            parameters = getattr(origin, "__parameters__", ())
            return self.instance(origin, dict(zip(parameters, args, strict=True)))
        return self.simple(hint, bindings)

    def simple(self, hint: Any, bindings: Mapping[Any, Any]) -> Any:
        simple: dict[Any, Callable[[], Any]] = {
            str: lambda: self.text,
            int: self.next_int,
            float: lambda: 1e16,
            bool: lambda: True,
            bytes: lambda: BINARY,
            type(None): lambda: None,
            datetime.datetime: lambda: WHEN,
            decimal.Decimal: lambda: decimal.Decimal("0.125"),
            datetime.timedelta: lambda: datetime.timedelta(seconds=1.5),
        }
        if hint in simple:
            return simple[hint]()
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return list(hint)[self.variant % len(hint)]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return self.instance(hint, bindings)
        if isinstance(hint, type) and issubclass(hint, pydantic.BaseModel):
            return hint(**{n: self.make(f.annotation) for n, f in hint.model_fields.items()})
        if typing_extensions.is_typeddict(hint):
            hints = typing.get_type_hints(hint)
            return {key: self.make(hints[key]) for key in hint.__required_keys__}
        raise TypeError(f"no value for {hint!r}")

    def next_int(self) -> int:
        self.count += 1
        return self.count

    def json_value(self) -> Any:
        return {"text": self.text, "n": [1, 2.5, 1e16, None, True], "nested": {"k": self.text}}

    def instance(
        self, cls: type, bindings: Mapping[Any, Any], *, required_only: bool = False, **given: Any
    ) -> Any:
        hints = typing.get_type_hints(cls)
        fields = dict(given)
        for field in dataclasses.fields(cls):
            required = field.default is field.default_factory is dataclasses.MISSING
            if required_only and not required and field.name != "speaker":
                continue
            if field.init and not field.name.startswith("_") and field.name not in given:
                fields[field.name] = self.make(hints[field.name], bindings)
        return cls(**fields)


def part(cls: type, variant: int, text: str = "text") -> Any:
    """An instance of the part class ``cls``, every field set."""
    return Maker(variant, text).instance(cls, {})


def message_with(cls: type, variant: int, text: str = "text") -> ModelMessage:
    """A ``ModelRequest`` or ``ModelResponse`` (every field set) holding one ``cls`` part.

    Where Pydantic AI refuses a part with every field set (a ``CompactionPart``
    in a request may not name a provider, a ``SpeechPart`` there must be the
    user's), the part gets only its required fields, this variant's.
    """
    kind = ModelRequest if cls in REQUEST_PARTS else ModelResponse
    maker = Maker(variant, text)
    try:
        message: ModelMessage = maker.instance(kind, {}, parts=[maker.instance(cls, {})])
    except ValueError:
        maker = Maker(0, text)
        part = maker.instance(cls, {}, required_only=True)
        message = maker.instance(kind, {}, parts=[part])
    return message


def every_part_kind(text: str = "text") -> list[tuple[str, ModelMessage]]:
    """``(id, message)`` for every part class and variant."""
    cases = []
    for cls in [*REQUEST_PARTS, *RESPONSE_PARTS]:
        side = "request" if cls in REQUEST_PARTS else "response"
        for variant in range(VARIANTS):
            cases.append((f"{side}-{cls.__name__}-{variant}", message_with(cls, variant, text)))
    return cases


def dumped(messages: Sequence[ModelMessage]) -> bytes:
    return ModelMessagesTypeAdapter.dump_json(list(messages))
