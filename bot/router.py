"""Command registry: aliases in Simplified, Traditional and English; labelled fields.

Input is normalised before matching: NFKC folds full-width punctuation and spaces (`：` → `:`),
OpenCC t2s folds Traditional characters, so `報修 地點：302` and `报修 地点:302` are the same.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import opencc

if TYPE_CHECKING:
    from bot.context import Ctx

Handler = Callable[["Ctx", dict[str, str]], Awaitable[None]]
# A whole-form check run before the handler: (field to ask again, template block, its context).
Validator = Callable[["Ctx", dict[str, str]], Awaitable["tuple[str, str, dict[str, Any]] | None"]]


class FieldError(Exception):
    """A field value that cannot be used; `block` names the template block explaining why."""

    def __init__(self, block: str, **context: Any) -> None:
        super().__init__(block)
        self.block = block
        self.context = context


@dataclass(frozen=True)
class Field:
    """One labelled value of a command's form, asked for when missing."""

    key: str
    labels: tuple[str, ...]  # first is canonical (Simplified); all normalised forms accepted
    required: bool = True
    parse: Callable[[str, Ctx], str] | None = None  # raise FieldError when unusable
    infer: Callable[[dict[str, str]], str | None] | None = None  # fill from other fields
    show: Callable[[str, Ctx], str] | None = None  # how a parsed value reads back to the user
    required_if: Callable[[dict[str, str]], bool] | None = None  # required only in some cases

    def needed(self, values: dict[str, str]) -> bool:
        return self.required and (self.required_if is None or self.required_if(values))

    @property
    def label(self) -> str:
        return self.labels[0]


@dataclass(frozen=True)
class Command:
    """A command: its words, its form and its handler. Texts live in templates/forms/<key>.j2."""

    key: str
    aliases: tuple[str, ...]  # first is canonical
    handler: Handler
    fields: tuple[Field, ...] = ()
    default_field: str | None = None  # unlabelled text after the command goes here
    in_help: bool = True
    positional: bool = False  # `驳回 #12 原因`: unlabelled words fill the fields in order
    roles: tuple[str, ...] = ()  # shown in 帮助 only to people holding one of these (if any)
    validate: Validator | None = None
    confidential: bool = False  # typed in a group chat: answered one-to-one, the group only told so

    @property
    def name(self) -> str:
        return self.aliases[0]

    @property
    def template(self) -> str:
        return f"forms/{self.key}"

    def field(self, key: str) -> Field:
        return next(f for f in self.fields if f.key == key)

    def shown(self, values: dict[str, str], ctx: Ctx) -> list[tuple[str, str]]:
        """(label, value as the user reads it) for each filled field, in form order."""
        out = []
        for f in self.fields:
            if f.key in values:
                out.append((f.label, f.show(values[f.key], ctx) if f.show else values[f.key]))
        return out


@dataclass
class Router:
    """One router per workflow module; `handlers/__init__.py` lists them explicitly."""

    name: str
    commands: list[Command] = field(default_factory=list)

    def command(
        self,
        key: str,
        aliases: Iterable[str],
        fields: Iterable[Field] = (),
        default_field: str | None = None,
        in_help: bool = True,
        positional: bool = False,
        roles: Iterable[str] = (),
        validate: Validator | None = None,
        confidential: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.commands.append(
                Command(key, tuple(aliases), fn, tuple(fields), default_field, in_help, positional,
                        tuple(roles), validate, confidential)
            )
            return fn

        return register


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


# Chinese punctuation a person wrote stays as written in the values they give (NFKC would turn
# '，' into ','); full-width colons, spaces, letters, digits and '#' are folded for matching.
KEEP = frozenset("，。！？；（）、“”‘’《》【】…—～·")


def normalise(text: str) -> str:
    """Fold full-width forms and Traditional characters; collapse runs of spaces."""
    folded = "".join(ch if ch in KEEP else unicodedata.normalize("NFKC", ch) for ch in text)
    folded = _t2s().convert(folded)
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in folded.splitlines()]
    return "\n".join(line for line in lines if line)


def _norm_alias(alias: str) -> str:
    return normalise(alias).lower()


class Registry:
    """All commands, matched by their (normalised) aliases, longest alias first."""

    def __init__(self, routers: Iterable[Router]) -> None:
        self.commands: list[Command] = [c for r in routers for c in r.commands]
        self._by_key = {c.key: c for c in self.commands}
        if len(self._by_key) != len(self.commands):
            raise ValueError("duplicate command key")
        self._aliases: list[tuple[str, Command]] = sorted(
            ((_norm_alias(a), c) for c in self.commands for a in c.aliases),
            key=lambda p: -len(p[0]),
        )
        seen: dict[str, str] = {}
        for alias, cmd in self._aliases:
            if seen.setdefault(alias, cmd.key) != cmd.key:
                raise ValueError(f"alias {alias!r} used by {seen[alias]} and {cmd.key}")

    def get(self, key: str) -> Command | None:
        return self._by_key.get(key)

    def match(self, text: str) -> tuple[Command, str] | None:
        """The command a normalised message starts with, and the rest of the message."""
        low = text.lower()
        for alias, cmd in self._aliases:
            if low.startswith(alias):
                rest = text[len(alias):]
                # An ASCII alias must end at a word boundary: 'help' but not 'helpdesk'.
                if alias[-1].isascii() and rest[:1].isalnum() and rest[:1].isascii():
                    continue
                return cmd, rest.strip()
        return None

    def suggest(self, text: str) -> Command | None:
        """The command whose alias is closest to the first word of an unknown message."""
        word = text.split()[0].lower() if text.split() else ""
        aliases = [a for a, _ in self._aliases]  # longest first
        # Chinese commands are often typed with extra words glued on: '我要报修电脑'.
        best = [a for a in aliases if len(a) > 1 and a in word][:1]
        if not best:
            best = difflib.get_close_matches(word, aliases, n=1, cutoff=0.4)
        if not best:
            return None
        return next(c for a, c in self._aliases if a == best[0])


class MalformedFields(Exception):
    """Labelled input that does not fit the command's form."""


def parse_fields(cmd: Command, text: str) -> dict[str, str]:
    """Split `字段:值 字段:值` (spaces or newlines between) into {field key: raw value}."""
    if not text:
        return {}
    labels = {_norm_alias(lbl): f.key for f in cmd.fields for lbl in f.labels}
    if labels:
        alt = "|".join(re.escape(lbl) for lbl in sorted(labels, key=len, reverse=True))
        pattern = re.compile(rf"(?:^|(?<=\s))({alt})\s*:\s*", re.IGNORECASE)
        matches = list(pattern.finditer(text))
    else:
        matches = []
    values: dict[str, str] = {}
    head = text[: matches[0].start()] if matches else text
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        key = labels[m.group(1).lower()]
        value = text[m.end():end].strip()
        if key in values:
            raise MalformedFields(f"duplicate:{key}")
        values[key] = value
    head = head.strip()
    if head and cmd.positional and not matches:
        words = head.split(None, len(cmd.fields) - 1) if cmd.fields else [head]
        if len(words) > len(cmd.fields):
            raise MalformedFields("too_many_words")
        return {f.key: w for f, w in zip(cmd.fields, words, strict=False)}  # fewer words: ask the rest
    if head:
        if re.match(r"^[^\s:]{1,8}:", head):
            raise MalformedFields("unknown_label")
        if cmd.default_field is None or cmd.default_field in values:
            raise MalformedFields("unlabelled")
        values[cmd.default_field] = head
    return values

