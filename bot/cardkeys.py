"""Typed card button keys, in the shape of aiogram's `CallbackData`.

A template card's button carries one string `key` (at most 1024 bytes, doc 90236) that WeCom
sends back in the click event. Each kind of button is one small frozen dataclass with a prefix
and typed fields; `pack()` and `unpack()` are the only places a key is built or read:

    @dataclass(frozen=True)
    class Claim(CardAction, prefix="tk", subject="ticket"):
        ticket: int
        action: TicketButton        # a StrEnum

    Claim(7, TicketButton.CLAIM).pack() == "tk:7:claim"
    Claim.unpack("tk:7:claim") == Claim(7, TicketButton.CLAIM)

The first field is the id of the card's subject (a request, a ticket, a draft): the click
dispatcher checks it against the stored card before any handler runs. Anything that does not
unpack exactly — unknown prefix, wrong field count, a non-number where a number belongs, a value
outside its enum — raises `BadCardKey`.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from enum import StrEnum
from typing import Any, ClassVar, Self

SEP = ":"
MAX_KEY_BYTES = 1024
_INT = re.compile(r"-?[0-9]{1,12}")
_TEXT = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


class BadCardKey(ValueError):
    """A button key that is not one of ours, or not well-formed."""


class CardAction:
    """Base of every typed button key; subclasses are frozen dataclasses."""

    prefix: ClassVar[str]
    subject: ClassVar[str]  # what the card is about: 'request', 'ticket', 'draft', …

    def __init_subclass__(cls, prefix: str = "", subject: str = "", **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,15}", prefix):
            raise TypeError(f"{cls.__name__}: prefix must be 1-16 lowercase letters/digits, got {prefix!r}")
        if not subject:
            raise TypeError(f"{cls.__name__}: say what the card is about (subject=...)")
        cls.prefix = prefix
        cls.subject = subject

    @classmethod
    def _fields(cls) -> list[tuple[str, type]]:
        hints = typing.get_type_hints(cls)
        return [(f.name, hints[f.name]) for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @property
    def subject_id(self) -> int:
        """The id of the request/ticket/draft this button acts on (the first field)."""
        value = getattr(self, self._fields()[0][0])
        assert isinstance(value, int)
        return value

    def pack(self) -> str:
        parts = [self.prefix]
        for name, kind in self._fields():
            value = getattr(self, name)
            text = str(value.value if isinstance(value, StrEnum) else value)
            if (kind is int and not _INT.fullmatch(text)) or (kind is not int and not _TEXT.fullmatch(text)):
                raise ValueError(f"{type(self).__name__}.{name}: {text!r} cannot go into a card key")
            parts.append(text)
        key = SEP.join(parts)
        if len(key.encode()) > MAX_KEY_BYTES:
            raise ValueError(f"{type(self).__name__}: key longer than {MAX_KEY_BYTES} bytes")
        return key

    @classmethod
    def unpack(cls, key: str) -> Self:
        if not isinstance(key, str) or len(key.encode()) > MAX_KEY_BYTES:
            raise BadCardKey("not a key")
        prefix, *parts = key.split(SEP)
        fields = cls._fields()
        if prefix != cls.prefix or len(parts) != len(fields):
            raise BadCardKey(f"not a {cls.__name__} key")
        values: dict[str, Any] = {}
        for (name, kind), text in zip(fields, parts, strict=True):
            if kind is int:
                if not _INT.fullmatch(text):
                    raise BadCardKey(f"{name}: not a number")
                values[name] = int(text)
            elif isinstance(kind, type) and issubclass(kind, StrEnum):
                try:
                    values[name] = kind(text)
                except ValueError:
                    raise BadCardKey(f"{name}: not one of {[m.value for m in kind]}") from None
            else:
                if not _TEXT.fullmatch(text):
                    raise BadCardKey(f"{name}: bad text")
                values[name] = text
        return cls(**values)
