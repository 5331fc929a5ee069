"""Interactive template cards: build, send, refresh and close them; dispatch their clicks.

Every card a workflow sends is a `cards` row (task_id, who it went to, what it is about), so a
click is checked against what was really sent before any workflow code runs: the card must
exist, be addressed to the clicker, and its button key must unpack (a typed `CardAction`) to an
action about that card's subject. Anything else is refused, logged and handed to the subject's
refusal hook (the approval service writes an audit row). Response codes (doc 94945) are single
use and live 72 h: the click's code is kept for the card's next update; before any click, the
send's own code is used once.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.cardkeys import CardAction
from bot.context import Ctx
from bot.logs import log
from bot.router import allowed
from storage.models import Card

logger = logging.getLogger("infodesk.cards")

# A response code is valid for 72 h (doc 94945); an older card cannot be updated any more.
RESPONSE_CODE_LIFETIME = timedelta(hours=71)


@dataclass(frozen=True)
class Button:
    label: str
    action: CardAction
    style: int = 1  # 1 blue, 2 grey, 3 red, 4 … (doc 90236)


def content_row(ctx: Ctx, key: str, value: str) -> dict[str, Any]:
    """One card row: keyname ≤ 5 chars, value ≤ 30 (doc 90236); a link becomes a tappable row."""
    value = str(value)
    if re.fullmatch(r"https?://\S+", value):
        return {
            "type": 1,
            "keyname": key[:5],
            "value": ctx.renderer.block("cards", "open_link") or value[:30],
            "url": value,
        }
    return {"keyname": key[:5], "value": value[:30]}


def new_task_id(subject: str, subject_id: int, purpose: str) -> str:
    """Unique per app, only [A-Za-z0-9_@-], at most 128 bytes (doc 90236)."""
    return f"{subject[:1]}{subject_id}_{re.sub(r'[^A-Za-z0-9]', '', purpose)[:5]}_{secrets.token_hex(6)}"


def button_card(
    ctx: Ctx,
    *,
    task_id: str,
    title: str,
    desc: str = "",
    sub_title: str = "",
    rows: Sequence[tuple[str, str]] = (),
    buttons: Sequence[Button],
) -> dict[str, Any]:
    """A button_interaction card: source, title, up to 6 rows, buttons with packed keys."""
    card: dict[str, Any] = {
        "card_type": "button_interaction",
        "source": {"desc": ctx.renderer.block("cards", "source"), "desc_color": 0},
        "main_title": {"title": title, **({"desc": desc} if desc else {})},
        "horizontal_content_list": [content_row(ctx, k, v) for k, v in rows][:6],
        "task_id": task_id,
        "button_list": [{"text": b.label, "style": b.style, "key": b.action.pack()} for b in buttons],
    }
    if sub_title:
        card["sub_title_text"] = sub_title
    return card


async def send_card(
    ctx: Ctx,
    userid: str,
    *,
    subject_id: int,
    purpose: str,
    buttons: Sequence[Button],
    title: str,
    desc: str = "",
    sub_title: str = "",
    rows: Sequence[tuple[str, str]] = (),
    step: int = 0,
) -> Card:
    """Queue one card to one member and record it (so its clicks can be checked)."""
    subjects = {b.action.subject for b in buttons}
    if len(subjects) != 1:
        raise ValueError("a card's buttons must all be about one subject")
    subject = subjects.pop()
    task_id = new_task_id(subject, subject_id, purpose)
    body = button_card(ctx, task_id=task_id, title=title, desc=desc, sub_title=sub_title, rows=rows, buttons=buttons)
    row = ctx.send_card(userid, body)
    await ctx.session.flush()  # the outbox row's id: the dispatcher keeps the send's response_code there
    card = Card(
        task_id=task_id,
        subject=subject,
        request_id=subject_id,
        purpose=purpose,
        step=step,
        userid=userid,
        outbox_id=row.id,
        created_at=ctx.now(),
    )
    ctx.session.add(card)
    return card


async def send_cards(ctx: Ctx, userids: Sequence[str], **card: Any) -> None:
    """The same card to each person (each gets its own task_id)."""
    for u in userids:
        await send_card(ctx, u, **card)


async def close_cards(
    ctx: Ctx,
    subject: str,
    subject_id: int,
    label: str,
    *,
    purpose: str | None = None,
    userids: Sequence[str] | None = None,
) -> None:
    """Grey out the active cards about one subject (of one purpose, for some people) with `label`."""
    q = select(Card).where(Card.subject == subject, Card.request_id == subject_id, Card.active.is_(True))
    if purpose is not None:
        q = q.where(Card.purpose == purpose)
    if userids is not None:
        q = q.where(Card.userid.in_(list(userids)))
    for card in (await ctx.session.execute(q.order_by(Card.created_at))).scalars():
        refresh_card(ctx, card, label)
        card.active = False


def refresh_card(ctx: Ctx, card: Card, label: str) -> None:
    """Replace the card's buttons with `label` (response codes are single-use: use a fresh one)."""
    body: dict[str, Any] = {"userids": [card.userid], "button": {"replace_name": label[:10]}}
    now = ctx.now()
    if card.click_code and (card.click_at is None or now - card.click_at < RESPONSE_CODE_LIFETIME):
        body["response_code"] = card.click_code
        card.click_code = None
    elif not card.send_code_used and card.outbox_id is not None and now - card.created_at < RESPONSE_CODE_LIFETIME:
        body["card_outbox_id"] = card.outbox_id  # the dispatcher reads the send's response_code
        card.send_code_used = True
    else:
        return  # no unused code left: the card stays as it is; the server refuses stale clicks
    ctx.update_card(card.userid, body)


async def handle_click(ctx: Ctx) -> None:
    """A template_card_event: check it against the stored card, then run the registered action."""
    ib = ctx.inbound
    key = ib.event_key or ""
    card = await ctx.session.get(Card, ib.task_id) if ib.task_id else None
    found = ctx.registry.action(key)
    reason = ""
    if card is None:
        reason = "unknown_card"
    elif card.userid != ctx.user:
        reason = "not_addressee"
    elif found is None:
        reason = "bad_key"
    elif found[0].cls.subject != card.subject or found[1].subject_id != card.request_id:
        reason = "key_not_of_card"
    elif not allowed(found[0].roles, False, ctx.person):
        reason = "role"
    if reason:
        await _refuse(ctx, card, reason, key)
        return
    assert card is not None and found is not None
    route, action = found
    if ib.response_code:
        card.click_code = ib.response_code  # fresh, single-use: for this card's next update
        card.click_at = ctx.now()
    await route.handler(ctx, card, action)


async def _refuse(ctx: Ctx, card: Card | None, reason: str, key: str) -> None:
    log(
        logger,
        logging.WARNING,
        "card_click_refused",
        reason=reason,
        task_id=(ctx.inbound.task_id or "")[:128],
        key=key[:100],
        from_user=ctx.user,
    )
    ctx.reply("card_unknown")
    if card is not None:
        hook = ctx.registry.refusal_hooks.get(card.subject)
        if hook is not None:
            await hook(ctx, card, reason)
