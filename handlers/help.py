"""帮助 / 你好 — what this person can do, grouped by workflow, with examples from the organisation.

`帮助` lists the commands the asker may use (a command's `roles` / `members_only`, decided by
`bot.conversation.may_use`), grouped by workflow, one example each; `帮助 借舞台` (any alias of any
command) explains one command: what it does, each field and what it accepts, an example. The
examples name real people, venues, classes and groups from the configuration, never a userid.
`你好` / `？` answers with a short greeting and the three commands this person uses most.

Each command's form template (`forms/<key>.j2`) carries the words: `example` (also used by the
kernel), optionally `brief` (a shorter example for the list), `about` (what it does) and
`accepts_<field>` (what the field accepts).

帮助 without a topic (and the greeting) is the same text for the same reader as long as the
configuration is: it depends on the commands (fixed at start), the templates (read once at start,
bot/render.py; they read no clock), the configuration, and of the person only their roles (which
commands they may use, `allowed`) and the names the examples use (`example_context`: their name,
campus, unit, groups). So the commands a set of roles may use are worked out once per
configuration, the text once per (roles, example names), and a reader asking again gets the kept
text. The configuration object is frozen; a directory sync (bot/directory.py) replaces it, and a
new configuration object starts afresh (there is no other reload).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.config import Config, Person
from bot.context import Ctx
from bot.conversation import handle_text, may_use, role_names
from bot.render import Renderer
from bot.router import Command, Registry, Router, normalise
from handlers.labels import example_names
from storage.models import Conversation

router = Router("help", templates=Path(__file__).with_name("templates") / "help")

# The order of the groups in 帮助 (router names); a router not named here comes after them.
GROUP_ORDER = (
    "faults",
    "stage",
    "activity",
    "footage",
    "cctv_room",
    "computer_room",
    "computers",
    "assets",
    "inventory",
    "publishing",
    "microlessons",
    "groups",
    "approvals",
    "duties",
    "training",
    "reports",
    "registers",
    "find",
    "help",
)
# The three commands a greeting offers: those of the first of these roles the person holds
# (as far as they may use them), then the everyday ones.
TOP_BY_ROLE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("technician", ("pending", "claim_ticket", "complete_ticket")),
    ("cctv_operator", ("pending", "log_footage", "progress")),
    ("platform_editor", ("pending", "publish_draft", "audio_class")),
    ("publicity_reviewer", ("pending", "pass_draft", "return_draft")),
    ("photo_reviewer", ("pending", "pass_draft", "return_draft")),
    ("video_editor", ("activity_schedule", "deliver_activity", "report_fault")),
    ("director", ("pending", "approve", "progress")),
    ("principal", ("pending", "approve", "progress")),
    ("vp_info_center", ("pending", "approve", "progress")),
    ("vp_supervising", ("pending", "approve", "progress")),
    ("vp_campus", ("pending", "approve", "progress")),
    ("committee", ("pending", "approve", "progress")),
    ("dept_head", ("pending", "approve", "report_fault")),
    ("office_lead", ("pending", "approve", "report_fault")),
    ("dept_deputy", ("pending", "approve", "report_fault")),
    ("class_teacher", ("report_fault", "pending", "my_requests")),
    ("group_admin", ("audio_class", "report_fault", "my_requests")),
)
EVERYDAY = ("report_fault", "book_stage", "my_requests", "progress")
# What may follow a greeting and still be only a greeting ("你好啊", "您好！", "hi~").
FILLER = " \t,，.。!！?？~～、啊呀哈嘿哦喔嗯呢吗么"


@router.example_context
def names(ctx: Ctx) -> dict[str, Any]:
    """What the examples and field descriptions name: from the configuration. The kernel renders
    its examples (unknown or malformed command, 修改 of a free-text offer) with it too."""
    cfg = ctx.config
    return {
        "who": example_names(cfg, ctx.person),
        "venues": [v.name for v in cfg.venues if v.kind == "venue"],
        "classes": [c.name for c in cfg.classes],
        "groups": [g.name for g in cfg.groups],
        "not_ours": [{"words": list(e.words), "office": e.office} for e in cfg.faults.not_ours],
        "retention_days": cfg.footage.retention_days,
    }


def _block(ctx: Ctx, cmd: Command, block: str, context: dict[str, Any]) -> str:
    return ctx.renderer.block(cmd.template, block, **context) or ""


def _heading(ctx: Ctx, router_name: str, commands: list[Command]) -> str:
    return ctx.renderer.block("labels_help", f"group_{router_name}") or commands[0].name


def _may(ctx: Ctx, person: Person | None, cmd: Command) -> bool:
    """`may_use` for a person looked up once (ctx.person searches the configured people)."""
    return ctx.registry.may(cmd.roles, cmd.members_only, person, ctx.config)


def _listed_for(ctx: Ctx, person: Person | None, cmd: Command) -> bool:
    return not cmd.help_roles or ctx.registry.may(cmd.help_roles, False, person, ctx.config)


def _groups(ctx: Ctx, context: dict[str, Any], person: Person | None) -> list[dict[str, Any]]:
    """The workflows with the commands this person may use, each command with a short example."""
    return [
        {
            "key": name,
            "heading": _heading(ctx, name, commands),
            "examples": [
                _block(ctx, c, "brief", context) or _block(ctx, c, "example", context) or c.name for c in commands
            ],
        }
        for name, commands in _usable(ctx, person)
    ]


def _topic(ctx: Ctx) -> str:
    """What follows 帮助 in the message (`帮助 借舞台` → 借舞台), greetings before it skipped."""
    text = normalise(ctx.inbound.content)
    while (m := ctx.registry.match(text)) is not None:
        cmd, rest = m
        if cmd.key == "help":
            return rest.strip(FILLER + ":：#“”\"'")
        if cmd.key != "greeting":
            return ""
        text = rest.lstrip(FILLER)
    return ""


# (registry, renderer, configuration) → what was worked out under them: the texts (帮助, the
# greeting) by reader, and by what they depend on. Only the latest few configurations are kept: a
# directory sync makes a new one.
_KEPT: list[tuple[Registry, Renderer, Config, dict[tuple[Any, ...], Any]]] = []
_KEEP_CONFIGS = 4


def _kept_under(ctx: Ctx) -> dict[tuple[Any, ...], Any]:
    """What is kept for this registry, renderer and configuration (identity, not equality: the
    configuration object is replaced, never changed, as it is frozen)."""
    for registry, renderer, config, kept in _KEPT:
        if registry is ctx.registry and renderer is ctx.renderer and config is ctx.config:
            return kept
    fresh: dict[tuple[Any, ...], Any] = {}
    _KEPT.insert(0, (ctx.registry, ctx.renderer, ctx.config, fresh))
    del _KEPT[_KEEP_CONFIGS:]
    return fresh


def _roles_key(person: Person | None) -> frozenset[str] | None:
    """All that decides which commands a person may use (`allowed`): whether a member, the roles."""
    return None if person is None else frozenset(person.roles)


def _usable(ctx: Ctx, person: Person | None) -> list[tuple[str, list[Command]]]:
    """The workflows (router names, in 帮助's order) with the commands this person may use and
    sees in 帮助: worked out once per set of roles under a configuration."""
    kept = _kept_under(ctx)
    key = ("usable", _roles_key(person))
    found: list[tuple[str, list[Command]]] | None = kept.get(key)
    if found is None:
        rank = {name: i for i, name in enumerate(GROUP_ORDER)}
        found = []
        for r in sorted(ctx.registry.routers, key=lambda r: rank.get(r.name, len(rank))):
            commands = [c for c in r.commands if c.in_help and _may(ctx, person, c) and _listed_for(ctx, person, c)]
            if commands:
                found.append((r.name, commands))
        kept[key] = found
    return found


def _kept(ctx: Ctx, template: str, make: Callable[[Ctx, Person | None, dict[str, Any]], str]) -> str:
    """`make(ctx, person, example context)` for this reader. Kept by reader, and by what it depends
    on (roles, the example context, the name), so a reader asking again costs a lookup and one
    asking for the first time renders only what nobody with the same roles and names has."""
    kept = _kept_under(ctx)
    mine = (template, "reader", ctx.user)
    text: str | None = kept.get(mine)
    if text is not None:
        return text
    person = ctx.person
    context = ctx.registry.example_context(ctx)
    key = (template, _roles_key(person), repr(context), person.name if person else None)
    text = kept.get(key)
    if text is None:
        text = kept[key] = make(ctx, person, context)
    if person is not None:  # a non-member's userid is not kept (any text could name one)
        kept[mine] = text
    return text


def _help(ctx: Ctx, person: Person | None, context: dict[str, Any]) -> str:
    name = person.name if person else None
    return ctx.render("help", groups=_groups(ctx, context, person), name=name, one=None)


def _greeting(ctx: Ctx, person: Person | None, context: dict[str, Any]) -> str:
    top = [c for c in (ctx.registry.get(k) for k in _top_keys(person)) if c is not None and _may(ctx, person, c)]
    return ctx.render(
        "greeting",
        name=person.name if person else None,
        examples=[_block(ctx, c, "brief", context) or _block(ctx, c, "example", context) for c in top[:3]],
    )


@router.command("help", aliases=("帮助", "幫助", "help", "菜单", "menu", "使用说明", "怎么用"), in_help=False)
async def show_help(ctx: Ctx, values: dict[str, str]) -> None:
    """帮助 — what I can use, grouped, with examples; 帮助 <指令> — one command explained."""
    topic = _topic(ctx)
    if topic:
        await explain(ctx, topic, ctx.registry.example_context(ctx))
        return
    ctx.send_text(ctx.user, _kept(ctx, "help", _help))


async def explain(ctx: Ctx, topic: str, context: dict[str, Any]) -> None:
    """帮助 借舞台: what the command does, its fields and what each accepts, an example."""
    match = ctx.registry.match(topic)
    if match is None:
        groups = [g for g in _groups(ctx, context, ctx.person) if g["heading"] == topic]
        if groups:
            ctx.reply("help", groups=groups, name=None, one=groups[0]["heading"])
            return
        suggestion = ctx.registry.suggest(topic, may=lambda c: may_use(ctx, c))
        ctx.reply("help_unknown", topic=topic[:20], suggestion=suggestion.name if suggestion else None)
        return
    cmd = match[0]
    if not may_use(ctx, cmd):
        if ctx.person is None:
            ctx.reply("help_not_for_you", command=cmd.name, roles=[])
        else:
            ctx.reply("help_not_for_you", command=cmd.name, roles=role_names(ctx, cmd))
        return
    fields = []
    for f in cmd.fields:
        # Whether it must be given: the form may say (block need_<field>), else the field's flags.
        need = _block(ctx, cmd, f"need_{f.key}", context) or ctx.render(
            "help_need", need="optional" if not f.required else "sometimes" if f.required_if is not None else "required"
        )
        accepts = (
            _block(ctx, cmd, f"accepts_{f.key}", context)
            or _block(ctx, cmd, f"ask_{f.key}", context)
            or (ctx.renderer.block("forms/_common", f"ask_{f.key}") or "")
        )
        fields.append({"label": f.label, "need": need, "accepts": accepts})
    ctx.reply(
        "help_command",
        command=cmd.name,
        about=_block(ctx, cmd, "about", context),
        fields=fields,
        positional=cmd.positional,
        example=_block(ctx, cmd, "example", context),
        aliases=list(cmd.aliases[1:]),
    )


@router.command(
    "greeting", aliases=("你好", "您好", "你们好", "老师好", "嗨", "在吗", "hello", "hi", "?", "？"), in_help=False
)
async def greeting(ctx: Ctx, values: dict[str, str]) -> None:
    """你好 / ？ — a short greeting with the three commands this person uses most. A greeting
    followed by something else ("你好，我想借舞台") is that something else."""
    text = normalise(ctx.inbound.content)
    m = ctx.registry.match(text)
    rest = m[1].strip(FILLER) if m is not None and m[0].key == "greeting" else ""
    if rest and await ctx.session.get(Conversation, ctx.user) is None:
        await handle_text(ctx, rest)
        return
    ctx.send_text(ctx.user, _kept(ctx, "greeting", _greeting))


def _top_keys(person: Person | None) -> list[str]:
    roles = set(person.roles) if person else set()
    mine = next((keys for role, keys in TOP_BY_ROLE if role in roles), ())
    return list(dict.fromkeys((*mine, *EVERYDAY)))
