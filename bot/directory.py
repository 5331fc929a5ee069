"""The organisation from WeCom's directory (通讯录): `sync-directory`, a daily sync, and the people
the bot works with.

`fetch` reads departments (`department/list`, with their leaders), their members (`user/list`,
one call per department) and tags (`tag/list`, `tag/get`). `store` keeps them in `directory_members` and says
who joined and who left since the last sync. `with_directory` turns the configuration's
`[[people]]` plus the directory into the people the bot uses (`[directory]` in bot/config.py):

- a member of a department mapped to a unit who is not in `[[people]]` joins as a person of that
  unit: name from WeCom, roles and skills from their tags;
- a `[[people]]` entry WeCom lists gets the roles and skills of their tags too (the TOML's own
  stay: it says what WeCom does not know);
- a `[[people]]` entry that gives only the userid (and roles or skills) takes its name, unit and
  campus from WeCom; until WeCom lists them in a department mapped to a unit it is no person;
- a unit whose configured head is no person (left WeCom, or not listed yet) takes as head its
  department's leader (部门负责人) in WeCom, and every unit does so with `heads_from_wecom`;
- someone WeCom no longer lists (or lists as disabled) is not a person any more: they hold no
  role, a chain step naming them goes up a level (bot/org.py), and the approvals they were
  deciding are passed up by the idle-approval sweep at its next tick (handlers/approvals.py).

The director hears who joined and who left, through the outbox, in the transaction that records
it. The running bot re-reads the stored directory every minute (`directory_service`), so a
`python -m bot sync-directory` from the command line takes effect without a restart; with
several replicas each syncs at `sync_time` (the writes are idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.appkeys import API, CLOCK, PIPELINE
from bot.config import Config, Person, Unit
from bot.logs import log
from bot.org import Org
from bot.outbox import enqueue
from bot.pipeline import Pipeline
from bot.timeparse import local_now
from bot.wecom_api import WeComAPI, WeComError
from storage.models import DirectoryMember

logger = logging.getLogger("infodesk.directory")
ACTIVE = 1  # user/list status: 1 active, 2 disabled, 4 not yet activated, 5 quit


@dataclass(frozen=True)
class Listed:
    """A member as WeCom lists them."""

    userid: str
    name: str
    departments: tuple[str, ...]  # names, the main department first
    tags: tuple[str, ...]
    active: bool
    leads: tuple[tuple[str, int], ...] = ()  # (department name, place among its leaders)


@dataclass
class SyncReport:
    listed: int = 0
    joined: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str, str]] = field(default_factory=list)  # userid, old, new


async def fetch(api: WeComAPI) -> list[Listed]:
    """Every member of every department, with their tags."""
    departments = (await api.call("GET", "/cgi-bin/department/list")).get("department") or []
    names = {int(d["id"]): str(d["name"]) for d in departments}
    leads: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for d in departments:
        for place, userid in enumerate(d.get("department_leader") or []):
            leads[str(userid)].append((str(d["name"]), place))
    users: dict[str, dict[str, Any]] = {}
    for d in departments:
        got = await api.call("GET", "/cgi-bin/user/list", params={"department_id": d["id"]})
        for u in got.get("userlist") or []:
            users.setdefault(str(u["userid"]), u)
    tagged: dict[str, list[str]] = defaultdict(list)
    for t in (await api.call("GET", "/cgi-bin/tag/list")).get("taglist") or []:
        got = await api.call("GET", "/cgi-bin/tag/get", params={"tagid": t["tagid"]})
        for u in got.get("userlist") or []:
            tagged[str(u["userid"])].append(str(t["tagname"]))
    listed = []
    for userid, u in users.items():
        ids = [int(i) for i in u.get("department") or []]
        main = u.get("main_department")
        ids.sort(key=lambda i: i != main)
        listed.append(
            Listed(
                userid=userid,
                name=str(u.get("name") or userid),
                departments=tuple(names.get(i, str(i)) for i in ids),
                tags=tuple(tagged.get(userid, ())),
                active=int(u.get("status", ACTIVE)) == ACTIVE,
                leads=tuple(leads.get(userid, ())),
            )
        )
    return listed


async def store(s: AsyncSession, listed: Sequence[Listed], now: datetime) -> SyncReport:
    """Record the listing; who joined, left or was renamed since the last one."""
    report = SyncReport(listed=len(listed))
    rows = {m.userid: m for m in (await s.execute(select(DirectoryMember))).scalars()}
    first = not rows
    seen = set()
    for m in listed:
        seen.add(m.userid)
        row = rows.get(m.userid)
        # leads: [department name, place among its leaders], for `_heads`
        departments: dict[str, Any] = {"names": list(m.departments), "leads": [list(lead) for lead in m.leads]}
        values: dict[str, dict[str, Any]] = {"departments": departments, "tags": {"names": list(m.tags)}}
        if row is None:
            s.add(DirectoryMember(userid=m.userid, name=m.name, active=m.active, synced_at=now, **values))
            if m.active and not first:
                report.joined.append(m.userid)
            continue
        if row.name != m.name:
            report.renamed.append((m.userid, row.name, m.name))
        if row.active and not m.active:
            report.left.append(m.userid)
        elif m.active and not row.active:
            report.joined.append(m.userid)
        row.name, row.departments, row.tags, row.synced_at = m.name, values["departments"], values["tags"], now
        row.left_at = None if m.active else (row.left_at or now)
        row.active = m.active
    for userid, row in rows.items():
        if userid not in seen and row.active:
            row.active, row.left_at = False, now
            report.left.append(userid)
    return report


def with_directory(config: Config, members: Sequence[DirectoryMember]) -> Config:
    """The configuration with the people the directory adds, extends and removes."""
    d = config.directory
    if not d.enabled:
        return config
    listed = {m.userid: m for m in members}
    active = {u: m for u, m in listed.items() if m.active}
    units = {u.key: u for u in config.units}

    def from_tags(m: DirectoryMember) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        tags = (m.tags or {}).get("names", [])
        roles = tuple(d.role_tags[t] for t in tags if t in d.role_tags)
        skills = tuple(d.skill_tags[t] for t in tags if t in d.skill_tags)
        return roles, skills

    def unit_of(m: DirectoryMember) -> str | None:
        names = (m.departments or {}).get("names", [])
        return next((d.departments[n] for n in names if d.departments.get(n) in units), None)

    people: list[Person] = []
    for p in config.people:
        if p.userid in listed and p.userid not in active:
            continue  # left WeCom
        m = active.get(p.userid)
        if m is None:
            if not p.partial:
                people.append(p)
            continue  # a partial entry is no person until WeCom lists them
        roles, skills = from_tags(m)
        update: dict[str, Any] = {
            "roles": tuple(dict.fromkeys((*p.roles, *roles))),
            "skills": tuple(dict.fromkeys((*p.skills, *skills))),
        }
        if p.partial:
            unit_key = p.unit or unit_of(m)
            if unit_key is None:
                continue  # WeCom lists them, but in no department the bot serves
            update |= {"name": p.name or m.name, "unit": unit_key, "campus": p.campus or units[unit_key].campus}
        people.append(p.model_copy(update=update))
    configured = {p.userid for p in config.people}
    for m in active.values():
        if m.userid in configured:
            continue
        unit_key = unit_of(m)
        if unit_key is None:
            continue  # a department the bot does not serve
        roles, skills = from_tags(m)
        people.append(
            Person.model_construct(
                userid=m.userid,
                name=m.name,
                campus=units[unit_key].campus,
                unit=unit_key,
                roles=tuple(dict.fromkeys(roles)),
                skills=tuple(dict.fromkeys(skills)),
            )
        )
    persons = {p.userid for p in people}
    return config.model_copy(update={"people": tuple(people), "units": tuple(_heads(config, active.values(), persons))})


def _heads(config: Config, members: Iterable[DirectoryMember], persons: set[str]) -> Iterator[Unit]:
    """The units, each headed by its department's leader in WeCom where that is called for: the
    configured head is no person (left, or a partial entry WeCom does not list), or
    `heads_from_wecom`. A leader who is no person (in no department the bot serves) heads nothing."""
    d = config.directory
    leaders: dict[str, list[tuple[int, str]]] = defaultdict(list)  # unit key -> (place, userid)
    for m in members:
        if m.userid not in persons:
            continue
        for department, place in (m.departments or {}).get("leads", []):
            if department in d.departments:
                leaders[d.departments[department]].append((int(place), m.userid))
    for u in config.units:
        if leaders[u.key] and (d.heads_from_wecom or u.head not in persons):
            head = min(leaders[u.key])[1]
            if head != u.head:
                log(logger, logging.INFO, "unit_head_from_directory", unit=u.key, head=head, configured=u.head)
                u = u.model_copy(update={"head": head})
        yield u


async def latest_sync(s: AsyncSession) -> datetime | None:
    """When the stored directory was last written (by any process)."""
    return (await s.execute(select(func.max(DirectoryMember.synced_at)))).scalar_one_or_none()


def use(pipeline: Pipeline, config: Config) -> None:
    """Make the pipeline work with this organisation (the configuration with the directory)."""
    pipeline.config, pipeline.org = config, Org(config)


async def sync(pipeline: Pipeline, api: WeComAPI) -> SyncReport:
    """One sync: fetch, store, tell the director, and use the new organisation at once."""
    listed = await fetch(api)
    async with pipeline.sessions() as s, s.begin():
        now = pipeline.clock.now()
        report = await store(s, listed, now)
        await s.flush()
        members = list((await s.execute(select(DirectoryMember))).scalars())
        config = with_directory(pipeline.base_config, members)
        tell_director(s, pipeline.renderer, Org(config), members, report, now)
    use(pipeline, config)  # committed: the new organisation from now on
    log(
        logger, logging.INFO, "directory_synced", listed=report.listed, joined=len(report.joined), left=len(report.left)
    )
    return report


def tell_director(
    s: AsyncSession, renderer: Any, org: Org, members: Sequence[DirectoryMember], report: SyncReport, now: datetime
) -> None:
    """One message to the director about who joined, left or was renamed (nothing if no one)."""
    if not (report.joined or report.left or report.renamed):
        return
    names = {m.userid: m.name for m in members}
    served = {p.userid for p in org.config.people}
    text = renderer.text(
        "directory_changes",
        joined=[f"{names.get(u, u)}（{u}）" for u in report.joined if u in served],
        others=len([u for u in report.joined if u not in served]),
        left=[f"{names.get(u, u)}（{u}）" for u in report.left],
        renamed=[{"userid": u, "old": old, "new": new} for u, old, new in report.renamed],
    )
    for director in org.with_role("director"):
        enqueue(
            s, now, f"user:{director}", "message", {"touser": director, "msgtype": "text", "text": {"content": text}}
        )


async def refresh(pipeline: Pipeline) -> datetime | None:
    """Make the pipeline use the stored directory; the time of its latest sync."""
    async with pipeline.sessions() as s:
        members = list((await s.execute(select(DirectoryMember))).scalars())
        latest = await latest_sync(s)
    use(pipeline, with_directory(pipeline.base_config, members))
    return latest


def directory_service(check_seconds: float = 60.0) -> Any:
    """A background service: use the stored directory at start, re-read it when a sync (this
    process, another replica, the command line) changed it, and sync daily at `sync_time`."""

    async def service(app: web.Application) -> AsyncIterator[None]:
        pipeline = app[PIPELINE]
        cfg = pipeline.base_config.directory
        latest = await refresh(pipeline)

        async def loop() -> None:
            nonlocal latest
            clock = app[CLOCK]
            tz = pipeline.base_config.scheduler.timezone
            while True:
                await asyncio.sleep(check_seconds)
                try:
                    now = clock.now()
                    hh, mm = (int(x) for x in cfg.sync_time.split(":"))
                    local = local_now(now, tz)
                    due = local.replace(hour=hh, minute=mm, second=0, microsecond=0)
                    synced_today = latest is not None and local_now(latest, tz) >= due
                    if local >= due and not synced_today and local - due < timedelta(hours=12):
                        await sync(pipeline, app[API])
                    async with app[PIPELINE].sessions() as s:
                        stored = await latest_sync(s)
                    if stored != latest:
                        latest = await refresh(pipeline)
                except (WeComError, OSError) as exc:
                    log(logger, logging.WARNING, "directory_sync_failed", error=str(exc))
                except Exception:
                    logger.exception("directory_service_failed")

        task = asyncio.create_task(loop(), name="directory")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return service
