"""Card clicks (template_card_event): authorise against the stored card, then dispatch."""

from __future__ import annotations

from bot.context import Ctx
from handlers import approvals, faults, publishing
from storage.models import Card, Request


async def handle_click(ctx: Ctx) -> None:
    """Only the member a card was sent to may act through it; anything else changes nothing."""
    ib = ctx.inbound
    card = await ctx.session.get(Card, ib.task_id or "")
    parts = (ib.event_key or "").split(":")
    if card is None or card.userid != ctx.user or len(parts) < 3:
        # Someone else's card, a forged task id or a key we never issued.
        ctx.reply("card_unknown")
        if card is not None and card.subject == "request":
            req = await ctx.session.get(Request, card.request_id)
            if req is not None:
                approvals.refused_click(ctx, req)
        return
    if card.subject == "ticket":
        await faults.ticket_click(ctx, card, parts)
    elif card.subject == "draft":
        await publishing.draft_click(ctx, card, parts)
    else:
        await approvals.request_click(ctx, card, parts)
