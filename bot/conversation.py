"""Turn a text message into a command run, asking for missing fields one at a time.

A half-filled form is a `conversations` row (one per user), so it survives restarts and works
across several bot processes sharing a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import delete, select

from bot.cardkeys import CardAction
from bot.cards import Button, close_cards, send_card
from bot.context import Ctx
from bot.router import Command, FieldError, MalformedFields, Router, normalise, parse_fields
from storage.models import Card, Conversation

CANCEL_WORDS = frozenset({"取消", "cancel", "算了", "退出", "quit"})
YES_WORDS = frozenset({"是", "是的", "对", "好", "好的", "确认", "开始", "y", "yes", "ok"})
NO_WORDS = frozenset({"否", "不", "不是", "不用", "继续", "n", "no"})
SWITCH = "__switch__"  # `awaiting` while the member decides between the open form and a new command
OFFER = "__offer__"  # `awaiting` while the member confirms what the bot read in a free-text message
EDIT_WORDS = frozenset({"修改", "改", "不对", "edit"})


class OfferChoice(StrEnum):
    CONFIRM = "confirm"
    EDIT = "edit"


@dataclass(frozen=True)
class OfferClick(CardAction, prefix="of", subject="offer"):
    """确认/修改 on the card offering a command read from free text (the message's event id)."""

    event: int
    choice: OfferChoice


kernel = Router("kernel")  # what the kernel itself registers; always included


async def handle_text(ctx: Ctx, text: str) -> None:
    """Route one text message from a member."""
    norm = normalise(text)
    conv = await _load(ctx)
    if norm.lower() in CANCEL_WORDS:
        if conv is not None:
            await _drop(ctx)
            cmd = ctx.registry.get(conv.command)
            ctx.reply("cancelled", command=cmd.name if cmd else conv.command)
        else:
            ctx.reply("nothing_to_cancel")
        return
    if conv is not None and conv.awaiting == SWITCH:
        await _decide_switch(ctx, conv, norm)
        return
    if conv is not None and conv.awaiting == OFFER:
        if await _decide_offer(ctx, conv, norm):
            return
        await _drop(ctx)  # something else entirely: the offer lapses
        conv = None
    match = ctx.registry.match(norm)
    if conv is not None and (switch := _new_command(ctx, conv, norm, match)) is not None:
        await _ask_switch(ctx, conv, *switch)
        return
    if match is None and conv is not None:
        current = ctx.registry.get(conv.command)
        if current is not None and current.confidential:
            ctx.go_private()
            ctx.confidential = True
    if match is not None:
        cmd, rest = match
        if cmd.redirect is not None and (other := ctx.registry.get(cmd.redirect(rest) or "")) is not None:
            cmd = other
        if cmd.confidential:
            ctx.go_private()
            ctx.confidential = True
        if not permitted(ctx, cmd):
            return  # refused before any question; a form already open stays open
        if not cmd.fields:
            await cmd.handler(ctx, {})
            if conv is not None:
                await _ask(ctx, conv.command, conv.values, conv.awaiting, still_open=True)
            return
        try:
            values = parse_fields(cmd, rest)
        except MalformedFields:
            _malformed(ctx, cmd)
            return
        if conv is not None and conv.command != cmd.key:
            await _drop(ctx)
        await _advance(ctx, cmd, {}, values)
        return
    if conv is not None:
        cmd = ctx.registry.get(conv.command)
        if cmd is not None:
            try:
                values = parse_fields(cmd, norm) if _labelled(cmd, norm) else {conv.awaiting: norm}
            except MalformedFields:
                values = {conv.awaiting: norm}
            await _advance(ctx, cmd, dict(conv.values), values)
            return
    if conv is None and await _offer(ctx, norm):
        return
    suggestion = ctx.registry.suggest(norm, may=lambda c: may_use(ctx, c))
    ctx.reply(
        "unknown_command",
        text=norm[:20],
        suggestion=suggestion.name if suggestion else None,
        example=example(ctx, suggestion) if suggestion else None,
    )


def may_use(ctx: Ctx, cmd: Command) -> bool:
    """Whether the sender may use `cmd` (its roles, derived roles expanded from the config)."""
    return ctx.registry.may(cmd.roles, cmd.members_only, ctx.person, ctx.config)


def role_names(ctx: Ctx, cmd: Command) -> list[str]:
    """Who may use `cmd`, as people call the roles (a derived role: the configured ones)."""
    return [ctx.render("role_name", role=r) for r in ctx.registry.roles(cmd.roles, ctx.config)]


def example(ctx: Ctx, cmd: Command, block: str = "example") -> str | None:
    """The command's example, naming real people, venues, classes and groups of the organisation
    (what `Router.example_context` gives, the same as in 帮助), never a userid."""
    return ctx.renderer.block(cmd.template, block, **ctx.registry.example_context(ctx))


def _new_command(
    ctx: Ctx, conv: Conversation, norm: str, match: tuple[Command, str] | None
) -> tuple[str, Command, bool] | None:
    """While a form waits: the message is another command with a form (or one typo away from a
    command word). Returns (the command text to run, the command, whether it was a typo)."""
    if match is not None:
        cmd = match[0]
        if cmd.key == conv.command or not cmd.fields or not may_use(ctx, cmd):
            return None  # the same form again, a command that answers at once, or one refused anyway
        return norm, cmd, False
    fixed = ctx.registry.typo(norm)
    if fixed is None or not may_use(ctx, fixed[0]):
        return None
    cmd, alias, rest = fixed
    return f"{alias} {rest}".strip(), cmd, True


async def _ask_switch(ctx: Ctx, conv: Conversation, text: str, cmd: Command, typo: bool) -> None:
    """Never write a command into a field: ask whether to drop the open form for the new one."""
    current = ctx.registry.get(conv.command)
    values = dict(conv.values)
    values[SWITCH] = {"text": text, "awaiting": conv.awaiting}
    conv.values, conv.awaiting, conv.updated_at = values, SWITCH, ctx.now()
    ctx.reply(
        "switch_form",
        current=current.name if current else conv.command,
        new=cmd.name,
        typo=typo,
        typed=text[:20],
        filled=current.shown(_fields(values), ctx) if current else [],
    )


async def _decide_switch(ctx: Ctx, conv: Conversation, norm: str) -> None:
    pending = conv.values.get(SWITCH) or {}
    answer = _short_answer(norm)
    if answer in YES_WORDS:
        await _drop(ctx)
        await handle_text(ctx, str(pending.get("text", "")))
        return
    values = _fields(conv.values)
    if answer in NO_WORDS:
        conv.values, conv.awaiting, conv.updated_at = values, str(pending.get("awaiting", "")), ctx.now()
        await _ask(ctx, conv.command, values, conv.awaiting, still_open=True)
        return
    current = ctx.registry.get(conv.command)
    new = ctx.registry.match(str(pending.get("text", "")))
    ctx.reply(
        "switch_form",
        current=current.name if current else conv.command,
        new=new[0].name if new else "",
        typo=False,
        typed="",
        filled=[],
        again=True,
    )


def _short_answer(norm: str) -> str:
    """A one-word answer (是 / 否 / 修改) as typed, without case or closing punctuation."""
    return norm.strip().lower().rstrip("。.!！")


def _fields(values: dict[str, object]) -> dict[str, str]:
    """The form's own values (without the switch question's bookkeeping)."""
    return {k: str(v) for k, v in values.items() if k != SWITCH}


def permitted(ctx: Ctx, cmd: Command) -> bool:
    """Whether the sender may use `cmd`; if not, one reply says who may (nothing else happens)."""
    if may_use(ctx, cmd):
        return True
    if ctx.person is None:
        ctx.reply("not_in_directory", command=cmd.name)
    else:
        ctx.reply("not_allowed", command=cmd.name, roles=role_names(ctx, cmd))
    return False


def _labelled(cmd: Command, text: str) -> bool:
    first = text.split(":", 1)[0].strip().lower() if ":" in text else ""
    return any(first == normalise(lbl).lower() for f in cmd.fields for lbl in f.labels)


def _malformed(ctx: Ctx, cmd: Command) -> None:
    ctx.reply(
        "malformed",
        command=cmd.name,
        labels=[f.label for f in cmd.fields],
        example=example(ctx, cmd),
    )


async def _advance(ctx: Ctx, cmd: Command, known: dict[str, str], new: dict[str, str]) -> None:
    """Validate the new values, then run the command or ask for the next missing field."""
    values = dict(known)
    problem: tuple[str, str, FieldError] | None = None
    for key, raw in new.items():
        field = cmd.field(key)
        try:
            values[key] = field.parse(raw, ctx) if field.parse else raw
        except FieldError as err:
            values.pop(key, None)
            problem = problem or (key, raw, err)  # keep the other values; ask about the first bad one
    if problem is not None:
        bad_key, bad_raw, bad = problem
        msg = ctx.renderer.block(cmd.template, bad.block, value=bad_raw, **bad.context) or ctx.renderer.block(
            "forms/_common", bad.block, value=bad_raw, **bad.context
        )
        await _save(ctx, cmd, values, bad_key)
        ctx.send_text(ctx.user, msg or ctx.render("invalid_value", label=cmd.field(bad_key).label, value=bad_raw))
        return
    for field in cmd.fields:
        if field.key not in values and field.infer is not None:
            guess = field.infer(values, ctx)
            if guess is not None:
                values[field.key] = guess
    missing = [f for f in cmd.fields if f.needed(values) and not values.get(f.key)]
    if missing:
        await _save(ctx, cmd, values, missing[0].key)
        await _ask(ctx, cmd.key, values, missing[0].key)
        return
    if cmd.validate is not None:
        refusal = await cmd.validate(ctx, values)
        if refusal is not None:
            key, block, context = refusal
            values.pop(key, None)
            await _save(ctx, cmd, values, key)
            ctx.send_text(
                ctx.user,
                ctx.renderer.block(cmd.template, block, **context)
                or ctx.render("ask_default", label=cmd.field(key).label),
            )
            return
    await _drop(ctx)
    await cmd.handler(ctx, values)


async def _ask(ctx: Ctx, command: str, values: dict[str, str], awaiting: str, still_open: bool = False) -> None:
    cmd = ctx.registry.get(command)
    if cmd is None:
        return
    field = cmd.field(awaiting)
    prompt = (
        ctx.renderer.block(cmd.template, f"ask_{awaiting}")
        or ctx.renderer.block("forms/_common", f"ask_{awaiting}")
        or ctx.render("ask_default", label=field.label)
    )
    ctx.reply("ask", command=cmd.name, prompt=prompt, still_open=still_open, filled=cmd.shown(values, ctx))


async def _load(ctx: Ctx) -> Conversation | None:
    conv = (await ctx.session.execute(select(Conversation).where(Conversation.userid == ctx.user))).scalar_one_or_none()
    if conv is None:
        return None
    timeout = timedelta(minutes=ctx.config.conversation.timeout_minutes)
    if ctx.now() - conv.updated_at > timeout:
        await ctx.session.delete(conv)
        return None
    return conv


async def _save(ctx: Ctx, cmd: Command, values: dict[str, str], awaiting: str) -> None:
    conv = await ctx.session.get(Conversation, ctx.user)
    if conv is None:
        ctx.session.add(
            Conversation(userid=ctx.user, command=cmd.key, values=values, awaiting=awaiting, updated_at=ctx.now())
        )
    else:
        conv.command, conv.values, conv.awaiting, conv.updated_at = cmd.key, values, awaiting, ctx.now()


async def _drop(ctx: Ctx) -> None:
    await ctx.session.execute(delete(Conversation).where(Conversation.userid == ctx.user))


async def start_form(ctx: Ctx, command: str, values: dict[str, str]) -> None:
    """Begin a command's form with some values known (e.g. a card's 驳回 button: ask the reason)."""
    cmd = ctx.registry.get(command)
    if cmd is None:
        raise KeyError(command)
    if not permitted(ctx, cmd):
        return
    await _drop(ctx)
    await _advance(ctx, cmd, {}, values)


# -- free text: "三楼机房3号电脑开不了机" is offered as a 报修 ------------------------------------------
async def _offer(ctx: Ctx, norm: str) -> bool:
    """Offer the command a recogniser read in a free-text message; True if one was offered."""
    offer = ctx.registry.recognise(ctx, norm)
    cmd = ctx.registry.get(offer.command) if offer else None
    if offer is None or cmd is None or not may_use(ctx, cmd):
        return False
    values = {k: v for k, v in offer.values.items() if any(f.key == k for f in cmd.fields)}
    if offer.direct:
        await _advance(ctx, cmd, {}, values)
        return True
    event = ctx.event_id or 0
    ctx.session.add(
        Conversation(
            userid=ctx.user,
            command=cmd.key,
            awaiting=OFFER,
            updated_at=ctx.now(),
            values={OFFER: {"values": values, "event": event}},
        )
    )
    rows = cmd.shown(_shown_values(ctx, cmd, values), ctx)
    ctx.reply("offer", command=cmd.name, filled=rows, in_group=ctx.robot_replies is not None)
    if ctx.robot_replies is None and event:  # in the app: a card, one tap to confirm
        block = ctx.renderer.block
        await send_card(
            ctx,
            ctx.user,
            subject_id=event,
            purpose="offer",
            rows=rows,
            title=block("cards", "offer_title", command=cmd.name) or cmd.name,
            buttons=[
                Button(block("cards", "offer_confirm") or "", OfferClick(event, OfferChoice.CONFIRM)),
                Button(block("cards", "offer_edit") or "", OfferClick(event, OfferChoice.EDIT), style=2),
            ],
        )
    return True


def _shown_values(ctx: Ctx, cmd: Command, values: dict[str, str]) -> dict[str, str]:
    """The recognised values as the form would read them back (parsed where they parse)."""
    out = {}
    for f in cmd.fields:
        if f.key in values:
            try:
                out[f.key] = f.parse(values[f.key], ctx) if f.parse else values[f.key]
            except FieldError:
                out[f.key] = values[f.key]
    return out


async def _decide_offer(ctx: Ctx, conv: Conversation, norm: str) -> bool:
    """是 runs the offered command, 修改 hands its text back to edit; False: not an answer."""
    answer = _short_answer(norm)
    if answer in YES_WORDS:
        await _accept_offer(ctx, conv, OfferChoice.CONFIRM)
        return True
    if answer in NO_WORDS | EDIT_WORDS:
        await _accept_offer(ctx, conv, OfferChoice.EDIT)
        return True
    return False


async def _accept_offer(ctx: Ctx, conv: Conversation, choice: OfferChoice) -> None:
    offer = conv.values.get(OFFER) or {}
    cmd = ctx.registry.get(conv.command)
    event = int(offer.get("event") or 0)
    await _drop(ctx)
    if event:
        label = ctx.renderer.block("cards", f"offer_{choice.value}ed") or ""
        await close_cards(ctx, "offer", event, label)
    if cmd is None or not permitted(ctx, cmd):
        return
    values = {str(k): str(v) for k, v in (offer.get("values") or {}).items()}
    if choice is OfferChoice.CONFIRM:
        await _advance(ctx, cmd, {}, values)
        return
    labelled = " ".join(f"{f.label}:{values[f.key]}" for f in cmd.fields if f.key in values)
    ctx.reply(
        "offer_edit",
        command=cmd.name,
        text=f"{cmd.name} {labelled}".strip(),
        example=example(ctx, cmd),
    )


@kernel.action(OfferClick)
async def offer_click(ctx: Ctx, card: Card, click: OfferClick) -> None:
    conv = await _load(ctx)
    offer = (conv.values.get(OFFER) or {}) if conv is not None and conv.awaiting == OFFER else {}
    if conv is None or int(offer.get("event") or 0) != click.event:
        ctx.reply("card_unknown")  # the offer lapsed (answered, replaced, timed out)
        return
    await _accept_offer(ctx, conv, click.choice)
