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
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import opencc
from apscheduler.triggers.cron import CronTrigger

from bot.cardkeys import BadCardKey, CardAction
from bot.config import Config, Person
from storage.models import Card, Timer

if TYPE_CHECKING:  # bot.context builds on the registry defined here; handlers receive a Ctx
    from bot.context import Ctx

A = TypeVar("A", bound=CardAction)
S = TypeVar("S")

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
    # Who may use it, checked before any question is asked: holders of one of `roles` (if any),
    # and only people in the directory when `members_only`.
    roles: tuple[str, ...] = ()
    validate: Validator | None = None
    confidential: bool = False  # typed in a group chat: answered one-to-one, the group only told so
    members_only: bool = False

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


def allowed(roles: tuple[str, ...], members_only: bool, person: Person | None) -> bool:
    """May this person use something declared for `roles` (any of them) / members only?"""
    if (roles or members_only) and person is None:
        return False
    return not roles or person is not None and bool(set(roles) & set(person.roles))


# What else a workflow registers besides commands.
ActionHandler = Callable[["Ctx", "Card", Any], Awaitable[None]]
RefusalHook = Callable[["Ctx", "Card", str], Awaitable[None]]
AttachmentHandler = Callable[["Ctx"], Awaitable[bool]]
TimerHandler = Callable[["Ctx", "Timer"], Awaitable[None]]
JobAction = Callable[["Ctx", datetime], Awaitable[None]]
TickHandler = Callable[["Ctx"], Awaitable[int]]


@dataclass(frozen=True)
class ActionRoute:
    """A card button: its typed key class, the handler and who may press it."""

    cls: type[CardAction]
    handler: ActionHandler
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttachmentRoute:
    """A photo/file handler; tried in `order`, the first that takes the attachment wins."""

    kinds: tuple[str, ...]
    handler: AttachmentHandler
    order: int


@dataclass(frozen=True)
class Job:
    """One recurring job: a stable id (its occurrences are claimed under it), a cron trigger."""

    id: str
    trigger: CronTrigger
    action: JobAction


JobSource = Callable[["Config"], Iterable[Job]]


@dataclass
class Router:
    """Everything one workflow module has, registered on one object.

    `handlers/__init__.py` only lists the routers; the pipeline, the click dispatcher and the
    schedulers find commands, card actions, attachments, timers, jobs and approval workflows
    through the `Registry` built from them, and the renderer finds the router's templates.
    """

    name: str
    templates: Path | None = None  # this workflow's template folder (forms/, replies, cards)
    commands: list[Command] = field(default_factory=list)
    actions: list[ActionRoute] = field(default_factory=list)
    refusal_hooks: dict[str, RefusalHook] = field(default_factory=dict)  # card subject → audit hook
    attachments: list[AttachmentRoute] = field(default_factory=list)
    timers: dict[str, TimerHandler] = field(default_factory=dict)
    jobs: list[JobSource] = field(default_factory=list)
    ticks: list[TickHandler] = field(default_factory=list)
    chains: dict[str, str] = field(default_factory=dict)  # approval chain key → who needs it
    approvals: list[Any] = field(default_factory=list)  # approval workflow specs (handlers.approvals)

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
        members_only: bool = False,
    ) -> Callable[[Handler], Handler]:
        """A text command with its aliases and form."""

        def register(fn: Handler) -> Handler:
            self.commands.append(
                Command(key, tuple(aliases), fn, tuple(fields), default_field, in_help, positional,
                        tuple(roles), validate, confidential, members_only)
            )
            return fn

        return register

    def action(self, cls: type[A], roles: Iterable[str] = ()) -> Callable[[Callable[[Ctx, Card, A], Awaitable[None]]], Callable[[Ctx, Card, A], Awaitable[None]]]:
        """A card button whose key is a `cls` (a typed CardAction); the handler gets it unpacked."""

        def register(fn: Callable[[Ctx, Card, A], Awaitable[None]]) -> Callable[[Ctx, Card, A], Awaitable[None]]:
            self.actions.append(ActionRoute(cls, fn, tuple(roles)))
            return fn

        return register

    def on_refused_click(self, subject: str) -> Callable[[RefusalHook], RefusalHook]:
        """Called (in the refusing transaction) when a click on a `subject` card is refused."""

        def register(fn: RefusalHook) -> RefusalHook:
            self.refusal_hooks[subject] = fn
            return fn

        return register

    def attachment(self, kinds: Iterable[str] = ("image",), order: int = 100) -> Callable[[AttachmentHandler], AttachmentHandler]:
        """A photo/file handler: returns True when it took the attachment."""

        def register(fn: AttachmentHandler) -> AttachmentHandler:
            self.attachments.append(AttachmentRoute(tuple(kinds), fn, order))
            return fn

        return register

    def timer(self, kind: str) -> Callable[[TimerHandler], TimerHandler]:
        """The handler of database timers (`timers` rows) of this kind."""

        def register(fn: TimerHandler) -> TimerHandler:
            if kind in self.timers:
                raise ValueError(f"timer kind {kind!r} registered twice in {self.name}")
            self.timers[kind] = fn
            return fn

        return register

    def jobs_from(self, source: JobSource) -> JobSource:
        """Recurring jobs, built from the configuration at start (e.g. one per [[duties]])."""
        self.jobs.append(source)
        return source

    def every_tick(self, fn: TickHandler) -> TickHandler:
        """Run on every scheduler tick in its own transaction; returns how many things it did."""
        self.ticks.append(fn)
        return fn

    def requires_chain(self, key: str, label: str) -> None:
        """An approval chain (`[chains.<key>]`) this workflow submits to; checked at start."""
        self.chains[key] = label

    def approval(self, spec: S) -> S:
        """An approval workflow spec (see handlers.approvals.WorkflowSpec), found by its key."""
        self.approvals.append(spec)
        return spec


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
    """What every included router registered; commands matched by alias, longest first.

    Built once at start; a clash (two commands with one alias or key, two actions with one
    prefix, two handlers for one timer kind, two approval specs with one key) is an error then.
    """

    def __init__(self, routers: Iterable[Router]) -> None:
        self.routers: tuple[Router, ...] = tuple(routers)
        rs = self.routers
        if len({r.name for r in rs}) != len(rs):
            raise ValueError("two routers share a name")
        self.commands: list[Command] = [c for r in rs for c in r.commands]
        self._by_key = {c.key: c for c in self.commands}
        if len(self._by_key) != len(self.commands):
            raise ValueError("duplicate command key")
        self._actions: dict[str, ActionRoute] = {}
        for route in (a for r in rs for a in r.actions):
            if route.cls.prefix in self._actions:
                raise ValueError(f"card action prefix {route.cls.prefix!r} registered twice")
            self._actions[route.cls.prefix] = route
        self.refusal_hooks: dict[str, RefusalHook] = {k: v for r in rs for k, v in r.refusal_hooks.items()}
        self.attachments: list[AttachmentRoute] = sorted((a for r in rs for a in r.attachments),
                                                         key=lambda a: a.order)
        self.timers: dict[str, TimerHandler] = {}
        for r in rs:
            for kind, fn in r.timers.items():
                if kind in self.timers:
                    raise ValueError(f"timer kind {kind!r} registered twice")
                self.timers[kind] = fn
        self.job_sources: list[JobSource] = [j for r in rs for j in r.jobs]
        self.ticks: list[TickHandler] = [t for r in rs for t in r.ticks]
        self.required_chains: dict[str, str] = {k: v for r in rs for k, v in r.chains.items()}
        self._approvals: dict[str, Any] = {}
        for spec in (s for r in rs for s in r.approvals):
            if spec.key in self._approvals:
                raise ValueError(f"approval workflow {spec.key!r} registered twice")
            self._approvals[spec.key] = spec
        self.template_dirs: list[Path] = [r.templates for r in rs if r.templates is not None]
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

    def action(self, key: str) -> tuple[ActionRoute, CardAction] | None:
        """The route of a card button key and the key unpacked; None if unknown or malformed."""
        route = self._actions.get(key.split(":", 1)[0])
        if route is None:
            return None
        try:
            return route, route.cls.unpack(key)
        except BadCardKey:
            return None

    def approval(self, key: str) -> Any:
        """The approval workflow spec stored in `requests.workflow` as `key`."""
        return self._approvals[key]

    def jobs(self, config: Config) -> list[Job]:
        """Every recurring job the configuration asks for, from every router."""
        jobs = [job for source in self.job_sources for job in source(config)]
        if len({j.id for j in jobs}) != len(jobs):
            raise ValueError("two recurring jobs share an id")
        return jobs

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

