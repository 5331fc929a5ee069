"""Duty reminders from the manual (W7): cleaning, UPS, maintenance, reports, inspections, fees."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.config import Config
from bot.config_workflows import Duty
from bot.context import Ctx
from bot.router import Job, Router
from bot.timeparse import local_now

router = Router("duties", templates=Path(__file__).with_name("templates") / "duties")


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
            ctx.tell(userid, f"duties/{duty.key}", name=ctx.org.name(userid), date=local, note=duty.note)

    return action


@router.jobs_from
def duty_jobs(config: Config) -> Iterable[Job]:
    """One recurring job per [[duties]] entry, at its cron time."""
    tz = ZoneInfo(config.scheduler.timezone)
    for d in config.duties:
        yield Job(f"duty:{d.key}", CronTrigger.from_crontab(d.cron, timezone=tz), remind(d))
