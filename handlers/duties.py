"""Duty reminders from the manual (W7): cleaning, UPS, maintenance, reports, inspections, fees."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.config import Duty
from bot.context import Ctx
from bot.timeparse import local_now


def recipients(ctx: Ctx, duty: Duty) -> list[str]:
    """The configured users plus everyone holding the roles (technicians filtered by skill)."""
    people: list[str] = list(duty.users)
    for role in duty.roles:
        for userid in ctx.org.with_role(role):
            person = ctx.org.person(userid)
            if role == "technician" and duty.skills and person and not set(duty.skills) & set(person.skills):
                continue
            people.append(userid)
    return list(dict.fromkeys(people))


def remind(duty: Duty) -> Callable[[Ctx, datetime], Awaitable[None]]:
    async def action(ctx: Ctx, when: datetime) -> None:
        local = local_now(when, ctx.config.scheduler.timezone)
        for userid in recipients(ctx, duty):
            ctx.tell(userid, f"duties/{duty.key}", name=ctx.org.name(userid), date=local.strftime("%m月%d日"),
                     note=duty.note)

    return action
