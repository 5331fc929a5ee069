"""Chaos: 500 encrypted callbacks over real HTTP, some posted up to three times, while WeCom fails
about 30% of the bot's outbound calls (HTTP 5xx, -1, 45009, 42001, answers lost after the work,
1-3 s delays) and the bot, a real `python -m bot serve`, is SIGKILLed twice and restarted on its
database.

The mix: 报修 (a ticket, a reply, a card to the campus's technician), 报修 of what another office
repairs (a reply, no ticket), 帮助, 你好, 我的报修, and the technicians' 接单 clicks on the first
20 tickets' cards (a claim, a card update, two replies). Every effect happens once (one ticket per
distinct 报修 MsgId, one owner per clicked card), every outbound message reaches WeCom exactly once
(the emulator's deliveries, counted by recipient and request JSON: none missing, none twice), and
nothing is lost (every callback is processed and answered).

About a minute on SQLite: the one 45009 (the first send, to a member who sends nothing else) holds
its row the minute WeCom's frequency blocks last, through both kills; a 45009 at random could hold
a busy member's queue a minute late in the run, so the random faults leave it out. On PostgreSQL
it runs with INFODESK_TEST_PG_ALL=1 (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from bot.emulator.server import CHAOS_KINDS, Delivered, Emulator
from bot.outbox import TASK_ID_USED, message_request
from storage.db import make_engine, make_sessionmaker
from storage.models import InboundEvent, OutboxMessage, OutboxStatus, Ticket
from tests.conftest import Bot, example_raw
from tests.test_process import Proc, free_port, procs, sender_for, wait_healthy, write_config

__all__ = ["procs"]  # the fixture, imported for this module's tests

SEED = 20261201
CALLBACKS = 500
KILL_AFTER = (170, 340)  # SIGKILL once this many callbacks have been answered
ARRIVAL_SECONDS = 0.03  # a callback every 30 ms: the posting spans ~15 s, the kills fall inside it
# Where tickets go: (the reporter's campus, the equipment): one technician each (the card's
# recipient), so no technician gets more than WeCom's 30 messages a minute.
TICKET_SLOTS = (("main", "电脑"), ("main", "投影"), ("donghu", "电脑"), ("xishan", "电脑"), ("nanan", "电脑"))
FIRST = "yeqing"  # sends the first callback only: its reply meets the 45009
# Teachers added to the example's people, so that no member gets more than WeCom's 30 messages a
# minute (帮助 answers with two): (userid, campus, unit).
CAMPUS_UNITS = (("main", "it"), ("donghu", "mech"), ("xishan", "biz"), ("nanan", "preschool"))
STAFF = [(f"chaos{i:02d}", *CAMPUS_UNITS[i % 4]) for i in range(60)]
RANDOM_FAULTS = tuple(k for k in CHAOS_KINDS if k != "45009")
CLAIMS = 20  # the first tickets' technicians click 接单 on their card once it arrives


@dataclass
class Callback:
    """One member's message: its plaintext XML (posted again with the same MsgId on a retry)."""

    n: int
    user: str
    kind: str  # ticket | not_ours | help | my_tickets | hello | claim (a click on a ticket's card)
    content: str
    xml: str = ""
    msg_id: str = ""
    extra_posts: int = 0  # WeCom's repeats of a callback the bot did answer
    concurrent: bool = False  # the repeat arrives while the first is still being handled
    posts: int = 0
    answered: bool = False


def plan(rng: random.Random) -> list[Callback]:
    people = example_raw()["people"] + [{"userid": u, "campus": c} for u, c, _ in STAFF]
    members = [p for p in people if "technician" not in p.get("roles", []) and p["userid"] != FIRST]
    by_campus: dict[str, list[str]] = {}
    for p in members:
        by_campus.setdefault(p["campus"], []).append(p["userid"])
    everyone = [p["userid"] for p in members]
    out = [Callback(0, FIRST, "help", "帮助")]
    tickets = 0
    for n in range(1, CALLBACKS):
        kind = rng.choices(["ticket", "not_ours", "help", "my_tickets", "hello"], [14, 4, 36, 23, 23])[0]
        if kind == "ticket":
            campus, equipment = TICKET_SLOTS[tickets % len(TICKET_SLOTS)]
            tickets += 1
            user = rng.choice(by_campus[campus])
            content = f"报修 地点:{campus}楼{n}室 设备:{equipment} 描述:混沌{n}号坏了"
        elif kind == "not_ours":
            user = rng.choice(everyone)
            content = f"报修 地点:行政楼{n}室 设备:空调 描述:混沌{n}号不制冷"
        else:
            user = rng.choice(everyone)
            content = {"help": "帮助", "my_tickets": "我的报修", "hello": "你好"}[kind]
        cb = Callback(n, user, kind, content)
        if rng.random() < 0.15:
            cb.extra_posts = rng.choice((1, 2))
            cb.concurrent = rng.random() < 0.5
        out.append(cb)
    return out


class Run:
    """The bot process (restarted on SIGKILL) and WeCom posting callbacks to it."""

    def __init__(self, cfg: Path, url: str, tmp_path: Path, http: aiohttp.ClientSession, procs: list[Proc]) -> None:
        self.cfg, self.url, self.tmp_path, self.http, self.procs = cfg, url, tmp_path, http, procs
        self.sender = sender_for(http, url)
        self.up = asyncio.Event()
        self.up.set()
        self.answered = 0
        self.refused: Counter[str] = Counter()  # posts that got no 200, by why
        self.kills: list[int] = []  # callbacks answered at each kill

    async def post(self, cb: Callback) -> bool:
        """One post of the callback; a connection the kill broke, or no 200, is False."""
        cb.posts += 1
        try:
            posted = await self.sender.post_plain(cb.xml, cb.msg_id)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.refused[type(exc).__name__] += 1
            return False
        if posted.status != 200:
            self.refused[f"http {posted.status}"] += 1
            return False
        return True

    async def deliver(self, cb: Callback) -> None:
        """Post as WeCom does: on no 200, retry up to three times once the bot answers again."""
        for _ in range(4):
            if await self.post(cb):
                cb.answered = True
                self.answered += 1
                return
            await asyncio.wait_for(self.up.wait(), 30)

    async def repeat(self, cb: Callback) -> None:
        """WeCom's repeats of an answered callback (its answer came late, or got lost)."""
        for _ in range(cb.extra_posts):
            await self.post(cb)

    async def kill_and_restart(self) -> None:
        proc = self.procs[-1]
        self.up.clear()
        await asyncio.to_thread(proc.kill)
        self.procs.append(Proc(self.cfg, self.tmp_path / f"bot{len(self.procs) + 1}.log"))
        await wait_healthy(self.http, self.url)
        self.up.set()

    async def killer(self) -> None:
        for at in KILL_AFTER:
            while self.answered < at:
                await asyncio.sleep(0.01)
            self.kills.append(self.answered)
            await self.kill_and_restart()

    async def outbox_drained(self, timeout: float) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            health = await wait_healthy(self.http, self.url)
            if health["inbound"]["pending"] == 0 and health["outbox"]["pending"] == 0:
                return dict(health)
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"outbox still busy: {health['outbox']}")
            await asyncio.sleep(0.2)


def description_on(card: Delivered) -> str:
    """The 描述 row of a ticket's card."""
    rows = card.body["template_card"].get("horizontal_content_list") or []
    return next((str(r.get("value")) for r in rows if r.get("keyname") == "描述"), "")


def request_key(to: str, body: dict[str, Any]) -> tuple[str, str]:
    return to, json.dumps(body, sort_keys=True, ensure_ascii=False)


WEBHOOK_KEYS = {g["chat_id"]: g["webhook_key"] for g in example_raw()["groups"] if "webhook_key" in g}


def requests_of(row: OutboxMessage, rows: dict[int, OutboxMessage], agent_id: int) -> list[tuple[str, str]]:
    """What WeCom records as delivered for a sent row: (recipient, request JSON) per member."""
    if row.kind == "message":
        body = {**message_request(row), "agentid": agent_id}
        return [request_key(f"user:{u}", body) for u in str(row.payload["touser"]).split("|")]
    if row.kind == "update_card":
        body = dict(row.payload)
        if "card_outbox_id" in body:  # the code the card's send returned
            body["response_code"] = (rows[int(body.pop("card_outbox_id"))].result or {})["response_code"]
        users = body.get("userids") or [row.recipient.split(":", 1)[1]]
        return [request_key(f"user:{u}", {**body, "agentid": agent_id}) for u in users]
    if row.kind == "appchat":
        return [request_key(f"chat:{row.payload['chatid']}", row.payload)]
    if row.kind == "webhook":
        return [request_key(f"webhook:{WEBHOOK_KEYS[row.recipient.split(':', 1)[1]]}", row.payload)]
    return []  # customer-group calls, media: not what the chaos is about


async def test_chaos_every_effect_and_message_exactly_once(
    emulator: Emulator, db_url: str, tmp_path: Path, http: aiohttp.ClientSession, procs: list[Proc]
) -> None:
    rng = random.Random(SEED)
    callbacks = plan(rng)
    port = free_port()
    cfg = tmp_path / "bot.toml"
    write_config(cfg, emulator.base_url, db_url, port)
    with cfg.open("a", encoding="utf-8") as f:
        for userid, campus, unit in STAFF:
            f.write(f'\n[[people]]\nuserid = "{userid}"\nname = "{userid}"\ncampus = "{campus}"\nunit = "{unit}"\n')
    assert emulator.known_users is not None
    emulator.known_users |= {u for u, _, _ in STAFF}
    url = f"http://127.0.0.1:{port}"
    procs.append(Proc(cfg, tmp_path / "bot1.log"))
    await wait_healthy(http, url)
    run = Run(cfg, url, tmp_path, http, procs)
    for cb in callbacks:
        cb.xml, cb.msg_id = run.sender.text_xml(cb.user, cb.content)
    # WeCom's frequency limit answers the first send (a minute's wait, across both restarts) …
    emulator.inject_errcodes("message/send", 45009)
    await run.deliver(callbacks[0])
    await emulator.wait_for(
        lambda: any(c.errcode == 45009 and c.body["touser"] == FIRST for c in emulator.calls_to("message/send"))
    )
    # … then about 30% of the sends fail at random.
    emulator.chaos(rate=0.3, seed=SEED, kinds=RANDOM_FAULTS)

    start = asyncio.get_running_loop().time()

    async def one(cb: Callback) -> None:
        if cb.n < CALLBACKS:
            await asyncio.sleep(max(0.0, start + cb.n * ARRIVAL_SECONDS - asyncio.get_running_loop().time()))
        if cb.extra_posts and cb.concurrent:
            await asyncio.gather(run.deliver(cb), run.repeat(cb))
        else:
            await run.deliver(cb)
            await run.repeat(cb)

    reports = [cb for cb in callbacks if cb.kind == "ticket"]
    claims: dict[int, Callback] = {}  # ticket callback n -> the technician's click

    async def claim(report: Callback, card: Delivered) -> None:
        """The technician clicks 接单 on the report's card."""
        tech, task_id = card.to.split(":", 1)[1], card.body["template_card"]["task_id"]
        key = card.body["template_card"]["button_list"][0]["key"]
        code = emulator.issue_click_code(task_id, tech)
        cb = Callback(CALLBACKS + report.n, tech, "claim", "", extra_posts=1 if report.n % 3 == 0 else 0)
        cb.xml = run.sender.card_click_xml(tech, task_id, key, code)
        claims[report.n] = cb
        await one(cb)

    async def clicker() -> None:
        """Each of the first reports' card is clicked as soon as WeCom has shown it."""
        waiting = {f"混沌{r.n}号坏了": r for r in reports[:CLAIMS]}
        seen, clicks = 0, []
        while waiting:
            await emulator.wait_for(lambda n=seen: len(emulator.delivered) > n, timeout=40)
            new, seen = emulator.delivered[seen:], len(emulator.delivered)
            for d in new:
                report = waiting.pop(description_on(d), None) if d.msgtype == "template_card" else None
                if report is not None:
                    clicks.append(asyncio.create_task(claim(report, d)))
        await asyncio.gather(*clicks)

    killer = asyncio.create_task(run.killer())
    await asyncio.gather(*(one(cb) for cb in callbacks[1:]), clicker())
    await killer
    health = await run.outbox_drained(timeout=90)

    # Nothing lost: every callback was answered (by the third retry at the latest), and the kills
    # fell while callbacks were still arriving.
    assert [cb.n for cb in [*callbacks, *claims.values()] if not cb.answered] == []
    assert len(claims) == CLAIMS
    assert len(run.kills) == 2 and all(at <= n < CALLBACKS for at, n in zip(KILL_AFTER, run.kills, strict=True))
    assert len(procs) == 3
    assert sum(cb.posts for cb in callbacks) > CALLBACKS  # repeats and retries were posted
    injected = emulator.chaos_injected
    assert set(injected) == set(RANDOM_FAULTS), injected  # every kind of fault happened

    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as s:
            events = {e.dedupe_key: e for e in (await s.execute(select(InboundEvent))).scalars()}
            tickets = list((await s.execute(select(Ticket))).scalars())
            rows = list((await s.execute(select(OutboxMessage))).scalars())
    finally:
        await engine.dispose()

    # Each callback was processed once: one inbound event per MsgId, at least one reply caused by it.
    assert sorted(k for k in events if k.startswith("msg:")) == sorted(f"msg:{cb.msg_id}" for cb in callbacks)
    clicks = [e for k, e in events.items() if k.startswith("evt:")]
    assert sorted(e.from_user for e in clicks) == sorted(cb.user for cb in claims.values())
    replied = {(r.caused_by, r.recipient) for r in rows}
    unanswered = [cb.n for cb in callbacks if (events[f"msg:{cb.msg_id}"].id, f"user:{cb.user}") not in replied]
    assert unanswered == []

    # Every effect once: one ticket per distinct 报修 MsgId, none for what another office repairs.
    by_event = Counter(t.source_event for t in tickets)
    assert len(tickets) == len(reports)
    for cb in reports:
        assert by_event[events[f"msg:{cb.msg_id}"].id] == 1, cb
    assert Counter(t.description for t in tickets) == Counter(f"混沌{cb.n}号坏了" for cb in reports)
    # Each click claimed its ticket once, for the technician who clicked; the others stay open.
    owners = {t.description: (t.status, t.owner) for t in tickets}
    for cb in reports:
        click = claims.get(cb.n)
        assert owners[f"混沌{cb.n}号坏了"] == (("claimed", click.user) if click else ("open", None)), cb

    # Every outbound message reached WeCom exactly once: the deliveries, by recipient and request
    # JSON, are exactly the sent rows' requests, each once (a retry after a lost answer or a kill
    # carried WeCom's duplicate check; a card's repeated task_id read as delivered). Scheduled
    # jobs may add rows of their own (the served bot runs at test_process.QUIET_AT, when none is due): they count too.
    # None failed: a card refused after a lost answer and a known error still counts as delivered
    # (test_card_refused_after_a_lost_answer_and_a_known_error_counts_as_delivered).
    assert {r.status for r in rows} == {OutboxStatus.SENT}, [r for r in rows if r.status != OutboxStatus.SENT]
    assert health["outbox"]["failed"] == 0
    by_id = {r.id: r for r in rows}
    expected = Counter(key for r in rows for key in requests_of(r, by_id, emulator.agent_id))
    delivered = Counter(
        request_key(d.to, d.body) for d in emulator.delivered if d.to.startswith(("user:", "chat:", "webhook:"))
    )
    assert emulator.dropped == []  # nothing over WeCom's per-member limits (dropped unannounced)
    assert [k for k, n in delivered.items() if n > 1] == []  # no duplicates
    assert delivered == expected  # none missing, none extra
    # And as the members see it: each reporter's confirmation once, one technician's card once.
    cards = [json.dumps(d.body, ensure_ascii=False) for d in emulator.delivered if d.msgtype == "template_card"]
    for cb in reports:
        mine = [t for t in emulator.texts_to(cb.user) if f"混沌{cb.n}号坏了" in t]
        assert len(mine) == 1, (cb, mine)
        assert len([c for c in cards if f'"混沌{cb.n}号坏了"' in c]) == 1, cb
        # The technician who claimed it: "you have it" once (the card itself is no text).
        click = claims.get(cb.n)
        if click:
            assert len([t for t in emulator.texts_to(click.user) if f"混沌{cb.n}号坏了" in t]) == 1, cb
    updates = Counter(d.to for d in emulator.delivered if d.msgtype == "update_template_card")
    assert sum(updates.values()) == CLAIMS  # each claimed card greyed out once
    for cb in callbacks:
        if cb.kind == "not_ours":
            assert [t for t in emulator.texts_to(cb.user) if "总务处" in t], cb  # the office that repairs it


async def test_card_refused_after_a_lost_answer_and_a_known_error_counts_as_delivered(
    bot: Bot, emulator: Emulator
) -> None:
    # Both rows of the report (the reporter's reply, the technician's card) are delivered on their
    # first send but the answer is lost; their second send meets "system busy".
    emulator.inject_lost_answers("message/send", 502, 502)
    assert (await bot.sender.text("zhaolei", "报修 地点:302 设备:电脑 描述:蓝屏")).status == 200
    await emulator.wait_for(lambda: [c.status for c in emulator.calls_to("message/send")] == [502, 502])
    emulator.inject_errcodes("message/send", -1, -1)
    await bot.settle()
    cards = [d for d in emulator.delivered if d.msgtype == "template_card"]
    assert [d.to for d in cards] == ["user:lihua"]  # delivered once
    assert len([t for t in emulator.texts_to("zhaolei") if "蓝屏" in t]) == 1
    assert [c.errcode for c in emulator.calls_to("message/send")][-1:] in ([0], [TASK_ID_USED])
    assert (await bot.health())["outbox"]["failed"] == 0
