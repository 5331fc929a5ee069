"""Command registry: aliases in Simplified, Traditional and English; labelled fields.

Input is normalised before matching: NFKC folds full-width punctuation and spaces (`：` → `:`),
OpenCC t2s folds Traditional characters, so `報修 地點：302` and `报修 地点:302` are the same.
"""

from __future__ import annotations

import difflib
import os
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

# Command words are compared by each character's own reading; pypinyin's phrase dictionary
# (~45 MB resident, ~0.5 s to load) would only refine readings of whole phrases.
os.environ.setdefault("PYPINYIN_NO_PHRASES", "1")
from pypinyin import lazy_pinyin  # after the setting above

from bot.cardkeys import BadCardKey, CardAction
from bot.config import Config, Person
from bot.config_base import ROLES
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
    infer: Callable[[dict[str, str], Ctx], str | None] | None = None  # fill from other fields
    show: Callable[[str, Ctx], str] | None = None  # how a parsed value reads back to the user
    required_if: Callable[[dict[str, str]], bool] | None = None  # required only in some cases
    # Typed in order without labels (`同意 申请 #7 好`): how much of the text is this field's value
    # (`申请 #7`) and what is left for the next; None, or no match, takes one word.
    take: Callable[[str], tuple[str, str] | None] | None = None

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
    # and only people in the directory when `members_only`. A role may be one a router derives
    # from the configuration (`Router.derived_role`, e.g. "approver"): `Registry.may` expands it.
    roles: tuple[str, ...] = ()
    validate: Validator | None = None
    confidential: bool = False  # typed in a group chat: answered one-to-one, the group only told so
    members_only: bool = False
    # Another command that takes the text instead, by what follows the word: `完成 #T3` is a
    # duty task's 完成, not a ticket's (returns that command's key, or None to keep this one).
    redirect: Callable[[str], str | None] | None = None
    # Listed in 帮助 only for holders of one of these roles (a derived role too), though anyone
    # may use it: 完成任务 for people with duties; someone handed a task is told it in that message.
    help_roles: tuple[str, ...] = ()

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
    """May this person use something declared for `roles` (any of them) / members only?

    Roles as a person holds them; a derived role is expanded by `Registry.may` first (here it
    matches nobody, so a command declared for one is refused rather than open to all)."""
    if (roles or members_only) and person is None:
        return False
    return not roles or (person is not None and bool(set(roles) & set(person.roles)))


# What else a workflow registers besides commands.
ActionHandler = Callable[["Ctx", "Card", Any], Awaitable[None]]
RefusalHook = Callable[["Ctx", "Card", str], Awaitable[None]]
AttachmentHandler = Callable[["Ctx"], Awaitable[bool]]
TimerHandler = Callable[["Ctx", "Timer"], Awaitable[None]]
JobAction = Callable[["Ctx", datetime], Awaitable[None]]
TickHandler = Callable[["Ctx"], Awaitable[int]]


@dataclass(frozen=True)
class Offer:
    """What a free-text message probably meant: a command with the values recognised in it.

    `score` orders competing offers (the most specific wins); `values` are raw field values, parsed
    by the command's own fields when the member confirms.
    """

    command: str
    values: dict[str, str]
    score: int = 1
    # Run at once, without asking: only for what records nothing (e.g. referring a fault the center
    # does not handle to the office that does).
    direct: bool = False


Recogniser = Callable[["Ctx", str], Offer | None]
# The names the commands' examples use (people, venues, classes, groups of the organisation).
ExampleContext = Callable[["Ctx"], dict[str, Any]]
# The configured roles a derived role stands for (e.g. every role an approval chain names).
DerivedRole = Callable[[Config], Iterable[str]]


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
    recognisers: list[Recogniser] = field(default_factory=list)  # free text → an offered command
    example_contexts: list[ExampleContext] = field(default_factory=list)  # what examples name
    derived_roles: dict[str, DerivedRole] = field(default_factory=dict)  # role → from the config

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
        redirect: Callable[[str], str | None] | None = None,
        help_roles: Iterable[str] = (),
    ) -> Callable[[Handler], Handler]:
        """A text command with its aliases and form."""

        def register(fn: Handler) -> Handler:
            self.commands.append(
                Command(
                    key,
                    tuple(aliases),
                    fn,
                    tuple(fields),
                    default_field,
                    in_help,
                    positional,
                    tuple(roles),
                    validate,
                    confidential,
                    members_only,
                    redirect,
                    tuple(help_roles),
                )
            )
            return fn

        return register

    def action(
        self, cls: type[A], roles: Iterable[str] = ()
    ) -> Callable[[Callable[[Ctx, Card, A], Awaitable[None]]], Callable[[Ctx, Card, A], Awaitable[None]]]:
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

    def attachment(
        self, kinds: Iterable[str] = ("image",), order: int = 100
    ) -> Callable[[AttachmentHandler], AttachmentHandler]:
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

    def free_text(self, fn: Recogniser) -> Recogniser:
        """Recognise a message that is no command ("三楼机房3号电脑开不了机"): return an Offer of a
        command with the values found, or None. The member confirms before anything happens."""
        self.recognisers.append(fn)
        return fn

    def example_context(self, fn: ExampleContext) -> ExampleContext:
        """What the commands' `example` / `brief` blocks are rendered with (real names from the
        organisation), wherever an example is shown: 帮助, and the kernel's replies to an unknown or
        malformed command and to 修改 of a free-text offer."""
        self.example_contexts.append(fn)
        return fn

    def derived_role(self, name: str) -> Callable[[DerivedRole], DerivedRole]:
        """A role people hold by holding one of the configured roles `fn(config)` returns (e.g.
        "approver": whoever an approval chain can name); commands may be declared for it."""
        if name in ROLES or name in self.derived_roles:
            raise ValueError(f"derived role {name!r} is a configured role or registered twice")

        def register(fn: DerivedRole) -> DerivedRole:
            self.derived_roles[name] = fn
            return fn

        return register

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
        self.attachments: list[AttachmentRoute] = sorted((a for r in rs for a in r.attachments), key=lambda a: a.order)
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
        self.recognisers: list[Recogniser] = [f for r in rs for f in r.recognisers]
        self.example_contexts: list[ExampleContext] = [f for r in rs for f in r.example_contexts]
        self.derived_roles: dict[str, DerivedRole] = {}
        for name, derive in ((n, d) for r in rs for n, d in r.derived_roles.items()):
            if name in self.derived_roles:
                raise ValueError(f"derived role {name!r} registered twice")
            self.derived_roles[name] = derive
        # Derived roles, computed once per configuration (a bot has one; tests a few).
        self._derived: list[tuple[Config, dict[str, tuple[str, ...]], dict[tuple[str, ...], tuple[str, ...]]]] = []
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

    def roles(self, declared: Iterable[str], config: Config) -> tuple[str, ...]:
        """The configured roles `declared` stands for: each derived role replaced by its roles."""
        declared = tuple(declared)
        derived, expanded = self._derived_for(config)
        found = expanded.get(declared)
        if found is None:
            found = expanded[declared] = tuple(dict.fromkeys(r for d in declared for r in derived.get(d, (d,))))
        return found

    def may(self, roles: tuple[str, ...], members_only: bool, person: Person | None, config: Config) -> bool:
        """`allowed`, with derived roles expanded; a derived role the configuration gives to no
        role admits nobody (never everybody)."""
        expanded = self.roles(roles, config)
        return (bool(expanded) or not roles) and allowed(expanded, members_only, person)

    def _derived_for(self, config: Config) -> tuple[dict[str, tuple[str, ...]], dict[tuple[str, ...], tuple[str, ...]]]:
        """The derived roles under `config`, and the expansions `roles` worked out under it so far."""
        for seen, derived, expanded in self._derived:
            if seen is config:
                return derived, expanded
        order = {r: i for i, r in enumerate(ROLES)}
        derived = {
            name: tuple(sorted(set(fn(config)), key=lambda r: order.get(r, len(order))))
            for name, fn in self.derived_roles.items()
        }
        self._derived = [*self._derived[-3:], (config, derived, {})]
        return derived, self._derived[-1][2]

    def example_context(self, ctx: Ctx) -> dict[str, Any]:
        """What the examples name for this reader (see `Router.example_context`)."""
        context: dict[str, Any] = {}
        for fn in self.example_contexts:
            context.update(fn(ctx))
        return context

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
                rest = text[len(alias) :]
                # An ASCII alias must end at a word boundary: 'help' but not 'helpdesk'.
                if alias[-1].isascii() and rest[:1].isalnum() and rest[:1].isascii():
                    continue
                return cmd, rest.strip()
        return None

    def typo(self, text: str) -> tuple[Command, str, str] | None:
        """A message whose first word is one typo (a wrong, missing, extra or swapped character)
        away from a command word: (the command, its alias, the rest). Stricter than `suggest`: it
        decides whether an answer to a form question was really meant as a command."""
        low = text.lower()
        token = re.split(r"[\s:]", low, maxsplit=1)[0]
        for alias, cmd in self._aliases:
            if len(alias) < (4 if alias.isascii() else 2) or " " in alias:
                continue
            candidates = [token]
            # Glued to its fields ("保修地点:302"): the same length as the alias, then a label.
            head, tail = low[: len(alias)], low[len(alias) :]
            if any(tail.startswith(_norm_alias(lbl)) for f in cmd.fields for lbl in f.labels):
                candidates.append(head)
            for word in candidates:
                if word != alias and _typo_of(word, alias):
                    return cmd, cmd.name, text[len(word) :].strip().lstrip(":").strip()
        return None

    def recognise(self, ctx: Ctx, text: str) -> Offer | None:
        """The best offer the registered recognisers make for a free-text message."""
        offers = [o for fn in self.recognisers if (o := fn(ctx, text)) is not None and o.command in self._by_key]
        return max(offers, key=lambda o: o.score) if offers else None

    def suggest(self, text: str, may: Callable[[Command], bool] = lambda c: True) -> Command | None:
        """The command whose alias is closest to the first word of an unknown message, among those
        `may` allows (never a technician's command to a teacher)."""
        word = text.split()[0].lower() if text.split() else ""
        aliases = [a for a, c in self._aliases if may(c)]  # longest first
        # Chinese commands are often typed with extra words glued on: '我要报修电脑'.
        best = [a for a in aliases if len(a) > 1 and a in word][:1]
        if not best:
            best = difflib.get_close_matches(word, aliases, n=1, cutoff=0.4)
        if not best:
            return None
        return next(c for a, c in self._aliases if a == best[0])


def _typo_of(word: str, alias: str) -> bool:
    """Is `word` a slip for the command word `alias`? Chinese is typed through a pinyin IME, so the
    usual slip is a homophone (保修 for 报修); a wrong character counts in words of three or more
    characters, a missing or extra one from four. English words: one edit, four letters or more."""
    if alias.isascii():
        return len(alias) >= 4 and _one_edit(word, alias)
    if len(word) == len(alias) and _sounds(word) == _sounds(alias):
        return True
    if len(alias) >= 3 and len(word) == len(alias) and _one_edit(word, alias):
        return True
    return len(alias) >= 4 and _one_edit(word, alias)


@lru_cache(maxsize=4096)
def _sounds(word: str) -> tuple[str, ...]:
    """How a word is typed on a pinyin keyboard: 报修 → ('bao', 'xiu'); the command words' own are
    kept, as every form answer is checked against all of them."""
    return tuple(lazy_pinyin(word))


def _one_edit(a: str, b: str) -> bool:
    """Whether a and b differ by exactly one substitution, insertion, deletion or adjacent swap."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (
            len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


class MalformedFields(Exception):
    """Labelled input that does not fit the command's form."""


# Between two fields people put spaces, newlines, Chinese or ASCII commas, enumeration commas,
# semicolons — or nothing at all.
SEPARATORS = " \t\n，、；,;"


def _label_hits(labels: dict[str, str], text: str) -> list[tuple[int, int, str, bool]]:
    """Every place a known label starts in `text`: (start, end, field key, colon follows)."""
    alt = "|".join(re.escape(lbl) for lbl in sorted(labels, key=len, reverse=True))
    hits = []
    for m in re.finditer(rf"({alt})", text, re.IGNORECASE):
        colon = re.match(r"\s*:", text[m.end() :]) is not None
        hits.append((m.start(), m.end(), labels[m.group(1).lower()], colon))
    return hits


def parse_fields(cmd: Command, text: str) -> dict[str, str]:
    """Split a command's fields out of what people type, into {field key: raw value}.

    `地点:302 设备:投影`, `地点：302，设备：投影`, `地点 302 设备 投影`, `地点302设备投影` and
    `地点:302设备:投影描述:不亮` all give the same fields. Labels are known words: when any label in the
    message is followed by a colon, only labels followed by a colon count (so a description may say
    "设备" freely); without colons a label counts after a separator, or — when the message starts
    with a label and has no separators at all — wherever it stands. A value keeps its inner
    punctuation; separators around it are dropped. A colon right after the command is ignored.
    """
    text = text.strip().lstrip(":").strip()
    if not text:
        return {}
    labels = {_norm_alias(lbl): f.key for f in cmd.fields for lbl in f.labels}
    hits = _label_hits(labels, text) if labels else []
    if any(colon for *_, colon in hits):
        chosen = [h for h in hits if h[3]]
    else:
        after_sep = [
            h
            for h in hits
            if (h[0] == 0 or text[h[0] - 1] in SEPARATORS) and (h[1] < len(text) and text[h[1]] in SEPARATORS)
        ]
        compact = bool(hits) and hits[0][0] == 0 and not any(c in SEPARATORS for c in text)
        chosen = hits if compact else after_sep
    # Overlapping hits (a label inside a longer one) and repeats of a field already seen at the
    # same place are dropped; the longest label at a position wins.
    matches: list[tuple[int, int, str]] = []
    for start, end, key, _ in sorted(chosen, key=lambda h: (h[0], -(h[1] - h[0]))):
        if matches and start < matches[-1][1]:
            continue
        matches.append((start, end, key))
    if not any(colon for *_, colon in hits) and cmd.positional:
        matches = []  # `驳回 #12 原因很长…`: words in order, not labels
    values: dict[str, str] = {}
    for i, (_, end, key) in enumerate(matches):
        stop = matches[i + 1][0] if i + 1 < len(matches) else len(text)
        value = text[end:stop].lstrip().lstrip(":").strip(SEPARATORS)
        if key in values:
            raise MalformedFields(f"duplicate:{key}")
        values[key] = value
    head = (text[: matches[0][0]] if matches else text).strip(SEPARATORS)
    if head and cmd.positional and not matches:
        if not cmd.fields:
            raise MalformedFields("too_many_words")
        return _in_order(cmd.fields, head)  # fewer words than fields: the form asks the rest
    if head:
        if re.match(r"^[^\s:]{1,8}:", head):
            raise MalformedFields("unknown_label")
        if cmd.default_field is None or cmd.default_field in values:
            raise MalformedFields("unlabelled")
        values[cmd.default_field] = head
    return values


def _in_order(fields: tuple[Field, ...], text: str) -> dict[str, str]:
    """Unlabelled words fill the fields in order, the last field the rest of the text; a field
    with `take` says how much is its own (`申请 #7` of `申请 #7 好`), otherwise it is one word."""
    values: dict[str, str] = {}
    rest = text
    for i, f in enumerate(fields):
        rest = rest.strip(SEPARATORS)
        if not rest:
            break
        if i == len(fields) - 1:
            values[f.key] = rest
            break
        taken = f.take(rest) if f.take is not None else None
        if taken is None:
            words = rest.split(None, 1)
            taken = (words[0], words[1] if len(words) > 1 else "")
        values[f.key], rest = taken
    return values
