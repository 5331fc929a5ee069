"""Duties that get done (W7, issue 12): each occurrence of a `[[duties]]` entry is a task.

A duty is defined entirely in config (bot/config_workflows.py `Duty`). At each cron time the
assignees (roles, technicians by skill, users) get the duty's text and a card: 完成, one button per
result choice (UPS 正常 / 异常), or one per checklist item plus 全部完成. The first to complete
wins; the other assignees' cards are greyed out. An abnormal result asks for a 说明 and opens a
报修 ticket linked to the task. Not done by the deadline: the assignees are reminded; at the
escalation time the duty's `escalate_to` role (the director by default) is told and the task is
missed. Text fallbacks: `完成任务 #T3 [结果|1,2,3] [说明]` and `我的任务`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select, update

from bot.cardkeys import CardAction
from bot.cards import Button, close_cards, send_cards
from bot.config import Config
from bot.config_workflows import LEGACY_DUTY_KEYS, Duty
from bot.context import Ctx
from bot.conversation import start_form
from bot.router import Field, FieldError, Job, Router, normalise
from bot.timeparse import TimeParseError, local_now, parse_date, parse_moment
from handlers.faults import open_ticket
from handlers.labels import Labels, show_moment
from handlers.numbers import TASK_NUMBER
from storage.models import Card, Task, TaskStatus, Timer

router = Router("duties", templates=Path(__file__).with_name("templates") / "duties")
ON_DUTY = "on_duty"


@router.derived_role(ON_DUTY)
def duty_roles(config: Config) -> set[str]:
    """Every role a configured duty names: its holders find 完成任务 and 我的任务 in 帮助."""
    return {role for duty in config.duties for role in duty.roles}


LABELS = Labels("labels_duties", status=TaskStatus, legacy=LEGACY_DUTY_KEYS)
ALL_WORDS = ("全部", "都", "所有", "all")  # a checklist answer ticking every item
CARD_BUTTONS = 6  # at most six buttons on a card (doc 90236)


class TaskButton(StrEnum):
    DONE = "done"  # 完成 (a plain duty) / 全部完成 (a checklist)
    RESULT = "result"  # one of the duty's results; `choice` is its index
    ITEM = "item"  # one checklist item ticked; `choice` is its index
    ACCEPT = "accept"  # 接受: a handed-down task taken on (the leader is told)


@dataclass(frozen=True)
class TaskClick(CardAction, prefix="task", subject="task"):
    task: int
    button: TaskButton
    choice: int


# -- who and what -----------------------------------------------------------------------------
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


def duty_title(ctx: Ctx, duty: Duty) -> str:
    """The configured title; a legacy entry without one gets its shipped title."""
    return duty.title.strip() or LABELS.name(ctx, "legacy", duty.key)


def duty_text(ctx: Ctx, duty: Duty, userid: str, when: datetime) -> str:
    """What the assignee is told the duty is: the inline text, or a legacy key's shipped text."""
    name = ctx.org.name(userid)
    if duty.text.strip():
        return ctx.render("duty_text", name=name, text=duty.text.strip(), note=duty.note)
    return ctx.render(f"duties/{duty.key}", name=name, date=when, note=duty.note)


def spec_of(ctx: Ctx, duty: Duty) -> dict[str, Any]:
    """What the task keeps of its duty, so a config edit never changes a task in flight."""
    return {
        "results": list(duty.results),
        "abnormal": list(duty.abnormal),
        "checklist": list(duty.checklist),
        "escalate_to": duty.escalate_to,
        "fault_category": duty.fault_category,
        "fault_location": duty.fault_location or duty_title(ctx, duty),
    }


def users_of(task: Task) -> list[str]:
    return list(task.assignees.get("users", []))


def moment(ctx: Ctx, t: datetime) -> str:
    return show_moment(ctx, local_now(t, ctx.config.scheduler.timezone))


def _facts(ctx: Ctx, task: Task) -> dict[str, Any]:
    """What every task text says about the task."""
    return {
        "number": task.id,
        "title": task.title,
        "deadline": moment(ctx, task.deadline),
        "escalate_at": moment(ctx, task.escalate_at),
        "results": task.spec.get("results", []),
        "checklist": task.spec.get("checklist", []),
    }


# -- what other workflows list in a duty's task -----------------------------------------------
# A workflow may add its own records to a duty's task when it opens (W9: the activity services
# delivered since the previous monthly archive go into the archive task). A feed returns the
# lines to list (none for a duty it does not feed); they are kept in the task's spec.
TaskFeed = Callable[[Ctx, Duty, Task], Awaitable[list[str]]]
FEEDS: list[TaskFeed] = []


def task_feed(fn: TaskFeed) -> TaskFeed:
    """Register a feed (handlers/activity.py's archive listing)."""
    FEEDS.append(fn)
    return fn


# -- an occurrence becomes a task -------------------------------------------------------------
async def open_task(ctx: Ctx, duty: Duty, when: datetime) -> Task | None:
    """Create the task for one occurrence, tell the assignees and send their cards; None if this
    occurrence already has its task. An occurrence fired late gets its full time to do it."""
    found = await ctx.session.execute(select(Task.id).where(Task.duty == duty.key, Task.occurrence_at == when))
    if found.first() is not None:
        return None
    start = max(when, ctx.now())
    deadline = start + timedelta(minutes=duty.deadline_minutes)
    users = recipients(ctx, duty)
    task = Task(
        duty=duty.key,
        title=duty_title(ctx, duty),
        occurrence_at=when,
        assignees={"users": users},
        spec=spec_of(ctx, duty),
        deadline=deadline,
        escalate_at=deadline + timedelta(minutes=duty.escalate_after_minutes),
        status=TaskStatus.OPEN,
        result={},
        checklist={"ticked": {}},
        created_at=ctx.now(),
    )
    ctx.session.add(task)
    await ctx.session.flush()
    listing = [line for feed in FEEDS for line in await feed(ctx, duty, task)]
    if listing:
        task.spec = {**task.spec, "listing": listing}
    ctx.session.add(Timer(kind="task_remind", ref=str(task.id), due_at=task.deadline, payload={}))
    ctx.session.add(Timer(kind="task_escalate", ref=str(task.id), due_at=task.escalate_at, payload={}))
    local = local_now(when, ctx.config.scheduler.timezone)
    for userid in users:
        intro = duty_text(ctx, duty, userid, local)
        ctx.tell(userid, "task_assigned", intro=intro, listing=listing, **_facts(ctx, task))
    await send_task_cards(ctx, task, users)
    return task


async def send_task_cards(ctx: Ctx, task: Task, users: list[str]) -> None:
    """The task's card: 完成, a button per result, or a button per checklist item (when they fit)."""
    block = ctx.renderer.block
    spec = task.spec
    buttons: list[Button] = []
    if spec.get("results"):
        for i, choice in enumerate(spec["results"]):
            style = 2 if choice in spec.get("abnormal", []) else 1
            buttons.append(Button(choice, TaskClick(task.id, TaskButton.RESULT, i), style=style))
    elif spec.get("checklist"):
        items = spec["checklist"]
        if len(items) < CARD_BUTTONS:
            for i, item in enumerate(items):
                label = block("cards_duties", "task_item", n=i + 1, item=item) or item
                buttons.append(Button(label, TaskClick(task.id, TaskButton.ITEM, i), style=2))
        buttons.append(Button(block("cards_duties", "task_all_done") or "", TaskClick(task.id, TaskButton.DONE, 0)))
    else:
        if spec.get("assigned_by"):  # handed down: the assignee takes it on first
            buttons.append(Button(block("cards_duties", "task_accept") or "", TaskClick(task.id, TaskButton.ACCEPT, 0)))
        buttons.append(Button(block("cards_duties", "task_done") or "", TaskClick(task.id, TaskButton.DONE, 0)))
    rows = [(LABELS(ctx, "row_deadline"), moment(ctx, task.deadline))]
    if spec.get("listing"):
        rows.append((LABELS(ctx, "row_listing"), LABELS(ctx, "listing_count", count=len(spec["listing"]))))
    rows += [(str(i + 1), item) for i, item in enumerate(spec.get("checklist", [])[:5])]
    await send_cards(
        ctx,
        users,
        subject_id=task.id,
        purpose="task",
        title=block("cards_duties", "task_title", number=task.id, title=task.title) or "",
        desc=block("cards_duties", "task_desc", **_facts(ctx, task)) or "",
        rows=rows,
        buttons=buttons,
    )


def remind(duty: Duty) -> Callable[[Ctx, datetime], Awaitable[None]]:
    async def action(ctx: Ctx, when: datetime) -> None:
        day = local_now(when, ctx.config.scheduler.timezone).date()
        if not ctx.config.calendar.runs_on(duty.days, day):
            return  # a holiday, a vacation day: the school calendar says this duty rests
        await open_task(ctx, duty, when)

    return action


@router.jobs_from
def duty_jobs(config: Config) -> Iterable[Job]:
    """One recurring job per [[duties]] entry, at its cron time."""
    tz = ZoneInfo(config.scheduler.timezone)
    for d in config.duties:
        yield Job(f"duty:{d.key}", CronTrigger.from_crontab(d.cron, timezone=tz), remind(d))


# -- completing -------------------------------------------------------------------------------
async def _task(ctx: Ctx, number: int | str) -> Task | None:
    q = select(Task).where(Task.id == int(number)).with_for_update()
    task = (await ctx.session.execute(q)).scalar_one_or_none()
    if task is None or ctx.user not in users_of(task):
        ctx.reply("task_not_found", number=number)
        return None
    return task


def _closed(ctx: Ctx, task: Task) -> bool:
    """A task no longer open: say who did it, or that it was missed."""
    if task.status == TaskStatus.OPEN:
        return False
    ctx.reply(
        "task_closed",
        number=task.id,
        title=task.title,
        status=LABELS.name(ctx, "status", task.status),
        name=ctx.org.name(task.done_by) if task.done_by else "",
    )
    return True


def pick_choice(results: list[str], text: str) -> str | None:
    """The result a person meant: its word (or the start of the answer), or its position (1, 2)."""
    answer = normalise(text).strip()
    if answer.isdigit() and 1 <= int(answer) <= len(results):
        return results[int(answer) - 1]
    return next((r for r in results if answer == r), None) or next((r for r in results if answer.startswith(r)), None)


def pick_items(items: list[str], text: str) -> list[int] | None:
    """Checklist items named by number (`1,2,3`, `1、3`), by name, or all (`全部`); None if any
    word names no item."""
    words = [w for w in re.split(r"[\s,，、;；.。]+", normalise(text)) if w]
    if not words:
        return None
    picked: list[int] = []
    for w in words:
        if w.lower() in ALL_WORDS:
            return list(range(len(items)))
        if w.isdigit() and 1 <= int(w) <= len(items):
            picked.append(int(w) - 1)
        elif w in items:
            picked.append(items.index(w))
        else:
            return None
    return list(dict.fromkeys(picked))


async def check_answer(ctx: Ctx, values: dict[str, str]) -> tuple[str, str, dict[str, Any]] | None:
    """Before 完成任务 runs: the result is one of the duty's choices (an abnormal one with a 说明),
    the checklist items exist. A task that is not the asker's or not open is the handler's to say."""
    task = await ctx.session.get(Task, int(values["number"]))
    if task is None or task.status != TaskStatus.OPEN or ctx.user not in users_of(task):
        return None
    facts = _facts(ctx, task)
    results, checklist = task.spec.get("results", []), task.spec.get("checklist", [])
    if results:
        choice = pick_choice(results, values.get("result", ""))
        if choice is None:
            return "result", "ask_result", facts
        values["result"] = choice
        if choice in task.spec.get("abnormal", []) and not values.get("note", "").strip():
            return "note", "ask_note", {**facts, "choice": choice}
    elif checklist and pick_items(checklist, f"{values.get('result', '')} {values.get('note', '')}") is None:
        values.pop("note", None)  # the whole answer is asked again, as one
        return "result", "ask_items", facts
    return None


@router.command(
    "complete_task",
    aliases=("完成任务", "完成任務", "完成 任务", "完成 任務", "任务完成", "任務完成", "task done", "done task"),
    positional=True,
    help_roles=(ON_DUTY,),
    fields=(
        TASK_NUMBER,
        Field("result", ("结果", "結果", "result"), required=False),
        Field("note", ("说明", "說明", "note"), required=False),
    ),
    validate=check_answer,
)
async def complete_task(ctx: Ctx, values: dict[str, str]) -> None:
    """完成任务 #T编号 [结果 或 清单序号] [说明]"""
    task = await _task(ctx, values["number"])
    if task is None or _closed(ctx, task):
        return
    checklist = task.spec.get("checklist", [])
    if checklist:
        picked = pick_items(checklist, f"{values.get('result', '')} {values.get('note', '')}") or []
        await tick(ctx, task, picked)
        return
    if task.spec.get("results"):
        await complete(ctx, task, values.get("result", ""), values.get("note", "").strip())
    else:  # a plain duty: whatever follows the number is a note
        await complete(ctx, task, "", f"{values.get('result', '')} {values.get('note', '')}".strip())


async def tick(ctx: Ctx, task: Task, picked: list[int]) -> None:
    """Tick checklist items; the last one completes the task."""
    items = task.spec.get("checklist", [])
    ticked = dict(task.checklist.get("ticked", {}))
    for i in picked:
        ticked.setdefault(str(i), ctx.user)
    task.checklist = {"ticked": ticked}
    left = [item for i, item in enumerate(items) if str(i) not in ticked]
    if left:
        ctx.reply("task_ticked", left=left, done=len(items) - len(left), total=len(items), **_facts(ctx, task))
        return
    await complete(ctx, task, "", "")


async def complete(ctx: Ctx, task: Task, choice: str, note: str) -> None:
    """Close the task as done by the sender (first one wins), open a ticket for an abnormal
    result, and grey out every assignee's card."""
    result = {"choice": choice, "note": note} if choice or note else {}
    done = await ctx.session.execute(
        update(Task)
        .where(Task.id == task.id, Task.status == TaskStatus.OPEN)
        .values(status=TaskStatus.DONE, done_by=ctx.user, done_at=ctx.now(), result=result)
        .execution_options(synchronize_session=False)
    )
    await ctx.session.refresh(task)
    if getattr(done, "rowcount", 0) != 1:
        _closed(ctx, task)
        return
    ticket = None
    if choice and choice in task.spec.get("abnormal", []):
        ticket = await open_ticket(
            ctx,
            task.spec.get("fault_location") or task.title,
            task.spec.get("fault_category", "other"),
            ctx.render("task_fault_description", number=task.id, title=task.title, choice=choice, note=note),
        )
        task.ticket_id = ticket.id
    label = ctx.renderer.block("cards_duties", "task_done_by", name=ctx.org.name(ctx.user), choice=choice) or ""
    await close_cards(ctx, "task", task.id, label)
    ctx.reply("task_done", choice=choice, ticket=ticket.id if ticket else None, **_facts(ctx, task))
    leader = task.spec.get("assigned_by")
    if leader and leader != ctx.user:
        ctx.tell(leader, "task_done_for_leader", name=ctx.org.name(ctx.user), note=note, **_facts(ctx, task))


@router.action(TaskClick)
async def task_click(ctx: Ctx, card: Card, click: TaskClick) -> None:
    task = await _task(ctx, click.task)
    if task is None or _closed(ctx, task):
        return
    spec = task.spec
    if click.button is TaskButton.RESULT and click.choice < len(spec.get("results", [])):
        choice = spec["results"][click.choice]
        if choice in spec.get("abnormal", []):  # ask for the 说明 first
            await start_form(ctx, "complete_task", {"number": str(task.id), "result": choice})
            return
        await complete(ctx, task, choice, "")
    elif click.button is TaskButton.ITEM and click.choice < len(spec.get("checklist", [])):
        await tick(ctx, task, [click.choice])
    elif click.button is TaskButton.ACCEPT:
        accept(ctx, task)
    elif click.button is TaskButton.DONE:
        checklist = spec.get("checklist", [])
        await (tick(ctx, task, list(range(len(checklist)))) if checklist else complete(ctx, task, "", ""))
    else:
        ctx.reply("card_unknown")


# -- not done in time -------------------------------------------------------------------------
@router.timer("task_remind")
async def remind_task(ctx: Ctx, timer: Timer) -> None:
    """The deadline passed: remind the assignees, unless it is already time to escalate (the bot
    was down past both: the escalation says it)."""
    task = await ctx.session.get(Task, int(timer.ref))
    if task is None or task.status != TaskStatus.OPEN or ctx.now() >= task.escalate_at:
        return
    leader = task.spec.get("assigned_by")
    role = ctx.org.name(leader) if leader else ctx.render("role_name", role=task.spec.get("escalate_to", "director"))
    for userid in users_of(task):
        ctx.tell(userid, "task_reminder", name=ctx.org.name(userid), role=role, **_facts(ctx, task))


@router.timer("task_escalate")
async def escalate_task(ctx: Ctx, timer: Timer) -> None:
    """Still not done: the task is missed and the escalation role is told who had it. A task a
    leader handed down stays open (it still has to be done): the leader is told it is overdue."""
    handed = await ctx.session.get(Task, int(timer.ref))
    if handed is not None and handed.spec.get("assigned_by") and handed.status == TaskStatus.OPEN:
        names = [ctx.org.name(u) for u in users_of(handed)]
        accepted = [ctx.org.name(u) for u in accepted_by(handed)]
        ctx.tell(
            handed.spec["assigned_by"], "task_overdue_for_leader", names=names, accepted=accepted, **_facts(ctx, handed)
        )
        return
    missed = await ctx.session.execute(
        update(Task)
        .where(Task.id == int(timer.ref), Task.status == TaskStatus.OPEN)
        .values(status=TaskStatus.MISSED)
        .execution_options(synchronize_session=False)
    )
    if getattr(missed, "rowcount", 0) != 1:
        return
    task = await ctx.session.get(Task, int(timer.ref), populate_existing=True)
    if task is None:
        return
    await close_cards(ctx, "task", task.id, ctx.renderer.block("cards_duties", "task_missed") or "")
    names = [ctx.org.name(u) for u in users_of(task)]
    for userid in ctx.org.with_role(task.spec.get("escalate_to", "director")):
        ctx.tell(userid, "task_missed_escalated", names=names, **_facts(ctx, task))


# -- 我的任务 ----------------------------------------------------------------------------------
async def open_tasks_of(ctx: Ctx, userid: str) -> list[Task]:
    """Open tasks assigned to `userid`, oldest deadline first (few are open at a time)."""
    q = select(Task).where(Task.status == TaskStatus.OPEN).order_by(Task.deadline, Task.id)
    return [t for t in (await ctx.session.execute(q)).scalars() if userid in users_of(t)]


@router.command("my_tasks", aliases=("我的任务", "我的任務", "my tasks"), help_roles=(ON_DUTY,))
async def my_tasks(ctx: Ctx, values: dict[str, str]) -> None:
    """我的任务 — the open tasks (duties, 交办) waiting for me, and my 活动服务 and 微课 not done yet."""
    # Imported here: both modules build on this one (the archive duty's feed, the task cards).
    from handlers import activity, microlessons

    work = [*await activity.work_of(ctx, ctx.user), *await microlessons.work_of(ctx, ctx.user)]
    tasks = await open_tasks_of(ctx, ctx.user)
    rows = []
    for t in tasks:
        ticked = t.checklist.get("ticked", {})
        left = [item for i, item in enumerate(t.spec.get("checklist", [])) if str(i) not in ticked]
        rows.append({**_facts(ctx, t), "left": left, "overdue": ctx.now() >= t.deadline})
    ctx.reply("my_tasks", tasks=rows, work=work)


def may_see(ctx: Ctx, task: Task) -> bool:
    """The assignees, and whoever the task escalates to."""
    if ctx.user in users_of(task) or ctx.user == task.spec.get("assigned_by"):
        return True
    return ctx.user in ctx.org.with_role(str(task.spec.get("escalate_to", "director")))


def status_name(ctx: Ctx, task: Task) -> str:
    return LABELS.name(ctx, "status", task.status)


def show_task(ctx: Ctx, task: Task) -> None:
    """进度 #T3: where a task stands."""
    ctx.reply(
        "task_progress",
        **_facts(ctx, task),
        status=status_name(ctx, task),
        done_by=ctx.org.name(task.done_by) if task.done_by else "",
        done_at=moment(ctx, task.done_at) if task.done_at else "",
        choice=task.result.get("choice", ""),
        note=task.result.get("note", ""),
        ticket=task.ticket_id,
        assignees=[ctx.org.name(u) for u in users_of(task)],
        accepted=[ctx.org.name(u) for u in accepted_by(task)],
        handed=bool(task.spec.get("assigned_by")),
    )


# -- tasks handed down by a leader (校委会/领导交付的其它工作) ------------------------------------
LEADERS = (
    "director",
    "principal",
    "committee",
    "vp_supervising",
    "vp_campus",
    "vp_info_center",
    "dept_head",
    "office_lead",
)
OVERDUE_GRACE = timedelta(hours=24)  # the assignee is reminded at the due time, the leader told a day later


def parse_assignees(value: str, ctx: Ctx) -> str:
    """People by name or userid, or a unit by name (its people), separated by 、 , or spaces."""
    users: list[str] = []
    for part in (p for p in re.split(r"[\s,，、;；]+", value.strip().lstrip("@")) if p):
        part = part.lstrip("@")
        if ctx.org.person(part) is not None:
            users.append(part)
            continue
        named = [p.userid for p in ctx.config.people if p.name == part]
        unit = next((u for u in ctx.config.units if part in (u.name, u.key)), None)
        if len(named) == 1:
            users.append(named[0])
        elif unit is not None:
            users.extend(p.userid for p in ctx.config.people if p.unit == unit.key)
        else:
            raise FieldError("invalid_assignee")
    users = [u for u in dict.fromkeys(users) if u != ctx.user]
    if not users:
        raise FieldError("invalid_assignee")
    return " ".join(users)


def parse_due(value: str, ctx: Ctx) -> str:
    now = local_now(ctx.now(), ctx.config.scheduler.timezone)
    try:
        due = parse_moment(value, now)
    except TimeParseError:
        try:
            due = datetime.combine(parse_date(value, now.date()), time(17, 0), now.tzinfo)  # a day: by 17:00
        except TimeParseError:
            raise FieldError("invalid_due") from None
    if due <= now:
        raise FieldError("invalid_due_past")
    return due.isoformat()


@router.command(
    "assign_task",
    aliases=("交办", "交辦", "派任务", "派任務", "布置任务", "佈置任務", "assign"),
    roles=LEADERS,
    fields=(
        Field("to", ("给", "給", "交给", "交給", "负责人", "to"), parse=parse_assignees),
        Field("title", ("内容", "內容", "任务", "任務", "事项", "task"), parse=lambda v, c: v.strip()[:200]),
        Field("due", ("截止", "期限", "due"), parse=parse_due, show=lambda v, c: moment(c, datetime.fromisoformat(v))),
    ),
)
async def assign_task(ctx: Ctx, values: dict[str, str]) -> None:
    """交办 给:姓名或单位 内容:… 截止:日期时间 — a task handed down; the assignee confirms it done."""
    users = values["to"].split()
    deadline = datetime.fromisoformat(values["due"])
    task = Task(
        duty="assigned",
        title=values["title"],
        occurrence_at=None,
        assignees={"users": users},
        spec={"assigned_by": ctx.user, "escalate_to": "director"},
        deadline=deadline,
        escalate_at=deadline + OVERDUE_GRACE,
        status=TaskStatus.OPEN,
        result={},
        checklist={"ticked": {}},
        created_at=ctx.now(),
    )
    ctx.session.add(task)
    await ctx.session.flush()
    ctx.session.add(Timer(kind="task_remind", ref=str(task.id), due_at=task.deadline, payload={}))
    ctx.session.add(Timer(kind="task_escalate", ref=str(task.id), due_at=task.escalate_at, payload={}))
    leader = ctx.org.name(ctx.user)
    for userid in users:
        ctx.tell(userid, "task_handed_down", leader=leader, **_facts(ctx, task))
    await send_task_cards(ctx, task, users)
    ctx.reply("task_handed_down_you", names=[ctx.org.name(u) for u in users], **_facts(ctx, task))


def accepted_by(task: Task) -> dict[str, str]:
    """Who took a handed-down task on, and when (ISO): {userid: at}."""
    return dict(task.result.get("accepted", {}))


def accept(ctx: Ctx, task: Task) -> None:
    """接受: the assignee takes the task on; the leader hears it once per person."""
    leader = task.spec.get("assigned_by")
    if not leader:
        ctx.reply("task_no_leader", **_facts(ctx, task))
        return
    taken = accepted_by(task)
    if ctx.user in taken:
        at = moment(ctx, datetime.fromisoformat(taken[ctx.user]))
        ctx.reply("task_accepted_already", at=at, **_facts(ctx, task))
        return
    task.result = {**task.result, "accepted": {**taken, ctx.user: ctx.now().isoformat()}}
    ctx.tell(leader, "task_accepted_for_leader", name=ctx.org.name(ctx.user), **_facts(ctx, task))
    ctx.reply("task_accepted", leader=ctx.org.name(leader), **_facts(ctx, task))


@router.command(
    "accept_task",
    aliases=("接受任务", "接受任務", "接受", "接收任务", "接收任務", "accept task", "accept"),
    positional=True,
    in_help=False,  # named in the handed-down task's own message
    fields=(TASK_NUMBER,),
)
async def accept_task(ctx: Ctx, values: dict[str, str]) -> None:
    """接受 #T编号 — take on a task a leader handed down (the card's 接受 does the same)."""
    task = await _task(ctx, values["number"])
    if task is not None and not _closed(ctx, task):
        accept(ctx, task)


@router.command(
    "task_progress_note",
    aliases=("进展", "進展", "汇报", "匯報", "task update"),
    positional=True,
    in_help=False,  # named in the handed-down task's own message
    fields=(TASK_NUMBER, Field("note", ("进展", "說明", "说明", "note"), parse=lambda v, c: v.strip()[:500])),
)
async def task_progress_note(ctx: Ctx, values: dict[str, str]) -> None:
    """进展 #T编号 说明 — tell the leader how a handed-down task is going."""
    task = await _task(ctx, values["number"])
    if task is None:
        return
    leader = task.spec.get("assigned_by")
    if not leader:
        ctx.reply("task_no_leader", **_facts(ctx, task))
        return
    notes = list(task.result.get("updates", []))
    notes.append({"by": ctx.user, "at": ctx.now().isoformat(), "note": values["note"]})
    task.result = {**task.result, "updates": notes}
    ctx.tell(leader, "task_update_for_leader", name=ctx.org.name(ctx.user), note=values["note"], **_facts(ctx, task))
    ctx.reply("task_update_sent", leader=ctx.org.name(leader), **_facts(ctx, task))
