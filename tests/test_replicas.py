"""Two replicas (`python -m bot serve`) on one PostgreSQL behind one WeCom.

Callbacks go to either replica at random and some to both (the same MsgId, or the same click,
posted to each: WeCom retries to another address behind a load balancer), while the managed
groups' daily push comes due. Every effect happens once, every push goes out once, and every
outbound message reaches WeCom once (the emulator counts by recipient and content).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import CLOCK_OFFSET_ENV
from bot.emulator.sender import CallbackSender
from bot.emulator.server import Emulator
from storage.db import make_engine, make_sessionmaker
from storage.models import ApprovalAudit, InboundEvent, JobRun, JournalEntry, OutboxMessage, OutboxStatus, Ticket
from tests.conftest import PG_URL, example_raw, postgres_database
from tests.test_process import ROOT, Proc, free_port, procs, wait_healthy, write_config

pytestmark = pytest.mark.skipif(not PG_URL, reason="replicas share a PostgreSQL: set INFODESK_TEST_PG_URL")
__all__ = ["procs"]  # the fixture, imported for this module's tests

SHANGHAI = ZoneInfo("Asia/Shanghai")
# A Wednesday at 19:05, every managed group's push time in the example configuration.
PUSH_AT = datetime(2026, 11, 25, 19, 5, tzinfo=SHANGHAI)
LEAD_SECONDS = 18  # the replicas start this long before the push, on a clock shifted to that instant
SEED = 20261125
REPORTERS = ["zhaolei", "majun", "yangfan", "zhangwei", "liuna", "chenjing", "songtao", "luwei", "fengyu", "liyan"]
HELPERS = ["yeqing", "qianfeng", "zhengmei", "tangjing", "xiaohong", "caiqin"]  # each asks 帮助 once
TICKETS = 24
OTHER_GROUPS = {
    "24级家长群": ["liyan", "guoqing"],
    "24级信息技术在校生群": ["zhangwei", "zhouyan"],
    "毕业生群": ["zhouyan"],
    "社会学员群": ["guoqing"],
}
RIVAL = "zhanglei"  # a technician who types 接单 for tickets whose card went to another
TEACHERS_PUSH = "audio_push:itteachers2024"
NEWS = "推送链接 日期:今天 链接:https://example.edu.cn/news/1125 标题:期末考试安排 群:信息技术组教师群"


@pytest.fixture
async def pg_url() -> str:
    """A fresh PostgreSQL database at the schema's head (the conftest's per-worker copy)."""
    assert PG_URL
    return await postgres_database(PG_URL, empty=False)


class Replicas:
    """Two bot processes, their senders, and the WeCom they share; `post` picks where each callback goes."""

    def __init__(self, emulator: Emulator, senders: list[CallbackSender], seed: int) -> None:
        self.emu = emulator
        self.senders = senders
        self.rng = random.Random(seed)
        self.posted = 0  # distinct callbacks
        self.to_both = 0  # of which posted to both replicas

    async def post(self, plain: str) -> None:
        """One callback to a replica chosen at random; about one in four to both at once."""
        if self.rng.random() < 0.25:
            self.to_both += 1
            targets = self.senders
        else:
            targets = [self.rng.choice(self.senders)]
        self.posted += 1
        answers = await asyncio.gather(*(s.post_plain(plain) for s in targets))
        assert all(a.status == 200 for a in answers), answers

    def cards_to(self, userid: str) -> list[dict[str, Any]]:
        return [d.body["template_card"] for d in self.emu.messages_to(userid) if d.msgtype == "template_card"]

    async def click(self, userid: str, card: dict[str, Any], button: str) -> None:
        key = next(b["key"] for b in card["button_list"] if b["text"] == button)
        code = self.emu.issue_click_code(card["task_id"], userid)
        await self.post(self.senders[0].card_click_xml(userid, card["task_id"], key, code))

    async def claim(self, place: str) -> tuple[str, tuple[str, str]]:
        """The technician who got the 接单 card of the ticket at `place` clicks 接单 while another
        types `接单 #n`, at the same moment, each to a different replica: the first claim wins."""

        def card() -> tuple[str, dict[str, Any]] | None:
            for d in self.emu.delivered:
                if d.msgtype == "template_card" and place in json.dumps(d.body, ensure_ascii=False):
                    return d.to.removeprefix("user:"), d.body["template_card"]
            return None

        await self.emu.wait_for(lambda: card() is not None)
        tech, found = card() or ("", {})
        number = found["main_title"]["title"].split("#")[1].split()[0]
        key = next(b["key"] for b in found["button_list"] if b["text"] == "接单")
        click = self.senders[0].card_click_xml(
            tech, found["task_id"], key, self.emu.issue_click_code(found["task_id"], tech)
        )
        typed, _ = self.senders[0].text_xml(RIVAL, f"接单 #{number}")
        first = self.rng.randrange(2)
        self.posted += 2
        answers = await asyncio.gather(self.senders[first].post_plain(click), self.senders[1 - first].post_plain(typed))
        assert all(a.status == 200 for a in answers), answers
        return place, (tech, RIVAL)


async def until(what: str, check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting: {what}")
        await asyncio.sleep(0.1)


def content_key(msgtype: str, body: dict[str, Any]) -> str:
    """What a member or group sees of one message: its text, its card, or the card update."""
    if msgtype == "update_template_card":  # the click it answers (a response code is single-use), and the new label
        return f"update:{body['response_code']}:" + json.dumps(body.get("button"), ensure_ascii=False)
    content = body[msgtype]
    if msgtype == "template_card":  # its task id aside: a card sent twice would carry two
        content = {k: v for k, v in content.items() if k != "task_id"}
    return f"{msgtype}:" + json.dumps(content, sort_keys=True, ensure_ascii=False)


def expected_deliveries(rows: list[OutboxMessage]) -> Counter[tuple[str, str]]:
    """(recipient, content) of each delivery the sent outbox rows stand for."""
    out: Counter[tuple[str, str]] = Counter()
    by_id = {row.id: row for row in rows}
    for row in rows:
        p = row.payload
        if row.kind == "update_card":
            # A card closed from another event names the card's row; its send returned the code.
            code = p.get("response_code") or (by_id[p["card_outbox_id"]].result or {})["response_code"]
            for u in p["userids"]:
                out[(f"user:{u}", content_key("update_template_card", {**p, "response_code": code}))] += 1
        elif row.kind == "message":
            for u in p["touser"].split("|"):
                out[(f"user:{u}", content_key(p["msgtype"], p))] += 1
        elif row.kind == "appchat":
            out[(f"chat:{p['chatid']}", content_key(p["msgtype"], p))] += 1
        else:
            raise AssertionError(f"an outbox row this test does not expect: {row.kind} {p}")
    return out


def log_events(procs: list[Proc], event: str) -> list[list[dict[str, Any]]]:
    """Each replica's structured log lines of `event`."""
    return [
        [e for ln in p.log.read_text(encoding="utf-8").splitlines() if (e := json.loads(ln))["event"] == event]
        for p in procs
    ]


async def test_two_replicas_apply_each_callback_once_and_push_once(
    emulator: Emulator,
    pg_url: str,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    procs: list[Proc],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Bytecode compiled once, before the clock starts running: a machine that writes no bytecode
    # (PYTHONDONTWRITEBYTECODE) would otherwise compile the whole bot in each replica within the lead.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path / "pycache"))
    warm = await asyncio.create_subprocess_exec(sys.executable, "-c", "import infodesk.cli, infodesk.app", cwd=ROOT)
    assert await warm.wait() == 0
    # Both replicas read the time from one shifted clock, LEAD_SECONDS before the push, whatever the date.
    offset = (PUSH_AT - timedelta(seconds=LEAD_SECONDS)).timestamp() - time.time()

    def now() -> float:
        return time.time() + offset

    emulator.clock = now
    monkeypatch.setenv(CLOCK_OFFSET_ENV, repr(offset))
    urls = []
    for n in (1, 2):
        port = free_port()
        cfg = tmp_path / f"replica{n}.toml"
        write_config(cfg, emulator.base_url, pg_url, port)
        # Ticks five times a second: the push goes out within moments of its time.
        text = cfg.read_text(encoding="utf-8").replace("tick_seconds = 30 ", "tick_seconds = 0.2 ")
        cfg.write_text(text, encoding="utf-8")
        procs.append(Proc(cfg, tmp_path / f"replica{n}.log"))
        urls.append(f"http://127.0.0.1:{port}")
    await asyncio.gather(*(wait_healthy(http, u) for u in urls))
    w = example_raw()["wecom"]
    senders = [
        CallbackSender(
            http,
            u + "/wecom/callback",
            token=w["token"],
            encoding_aes_key=w["encoding_aes_key"],
            corp_id=w["corp_id"],
            agent_id=w["agent_id"],
            clock=now,
        )
        for u in urls
    ]
    r = Replicas(emulator, senders, SEED)
    engine = make_engine(pg_url)
    try:
        await scenario(r, engine, now, procs)
    finally:
        await engine.dispose()


async def scenario(r: Replicas, engine: AsyncEngine, now: Callable[[], float], procs: list[Proc]) -> None:
    emu = r.emu
    # A group admin submits a news link for the teachers' group; the leader approves it on the card.
    await r.post(r.senders[0].text_xml("zhangwei", NEWS)[0])
    await emu.wait_for(lambda: r.cards_to("liuyang"))
    [card] = r.cards_to("liuyang")
    await r.click("liuyang", card, "同意")
    await emu.wait_for(lambda: any("已审批通过" in t for t in emu.texts_to("zhangwei")))
    assert now() < PUSH_AT.timestamp() - 1, f"the replicas took too long to start: raise LEAD_SECONDS ({LEAD_SECONDS})"

    # Fault reports (a third raced for by two technicians), and help, paced to run across the push time.
    plan = [("report", i) for i in range(TICKETS)] + [("help", i) for i in range(len(HELPERS))]
    r.rng.shuffle(plan)
    reports: dict[str, tuple[str, str]] = {}  # MsgId -> (reporter, location)
    gap = max(PUSH_AT.timestamp() + 1.5 - now(), 0) / len(plan)
    posts, claims = [], []
    for kind, n in plan:
        if kind == "report":
            user, place = r.rng.choice(REPORTERS), f"实验楼{n + 101}室"
            plain, mid = r.senders[0].text_xml(user, f"报修 地点:{place} 设备:电脑 描述:第{n}台电脑开不了机")
            reports[mid] = (user, place)
            if n % 3 == 0:
                claims.append(asyncio.create_task(r.claim(place)))
        else:
            plain, _ = r.senders[0].text_xml(HELPERS[n], "帮助")
        posts.append(asyncio.create_task(r.post(plain)))
        await asyncio.sleep(gap)
    await asyncio.gather(*posts)
    claimed = dict(await asyncio.gather(*claims))  # location -> the two technicians who raced for it

    async def settled() -> bool:
        async with engine.connect() as c:
            # The journal first: what is applied after this read has its messages in the outbox by then.
            waiting = await c.scalar(select(func.count()).select_from(JournalEntry))
            pushed = await c.scalar(
                select(func.count()).select_from(JobRun).where(JobRun.job_id == TEACHERS_PUSH, JobRun.status == "done")
            )
            pending = await c.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == OutboxStatus.PENDING)
            )
        return bool(pushed) and waiting == 0 and pending == 0

    await until("the push and every outbound message", settled)
    await asyncio.sleep(0.5)  # nothing more comes (a tick or two later)
    assert await settled()

    async with make_sessionmaker(engine)() as c:
        events = (await c.execute(select(InboundEvent.dedupe_key, InboundEvent.error_id))).all()
        tickets = (
            await c.execute(
                select(Ticket.id, Ticket.reporter, Ticket.location, Ticket.owner, InboundEvent.dedupe_key).join(
                    InboundEvent, InboundEvent.id == Ticket.source_event
                )
            )
        ).all()
        audits = (await c.execute(select(ApprovalAudit.action, ApprovalAudit.source))).all()
        runs = (await c.execute(select(JobRun.job_id, JobRun.scheduled_at, JobRun.status))).all()
        rows = list((await c.execute(select(OutboxMessage))).scalars())

    # Every callback applied once, on one replica or the other, and none failed.
    assert r.posted == len(events) == len({k for k, _ in events}), (r.posted, len(events))
    assert [k for k, e in events if e] == []
    applied = [len(x) for x in log_events(procs, "inbound_applied")]
    duplicates = [len(x) for x in log_events(procs, "inbound_duplicate")]
    assert all(applied), applied  # both replicas did work
    # A copy posted to both while the first still waited in the journal was absorbed there (one row
    # per dedupe key); one that came after the apply was applied as a duplicate.
    assert sum(applied) == r.posted and sum(duplicates) <= r.to_both, (applied, duplicates, r.to_both)

    # One ticket per distinct 报修 MsgId, with that message's reporter and place.
    assert sorted(t.dedupe_key for t in tickets) == sorted(f"msg:{m}" for m in reports)
    assert {t.dedupe_key: (t.reporter, t.location) for t in tickets} == {f"msg:{m}": v for m, v in reports.items()}
    # Each raced claim was won once: one owner, one confirmation, one "already taken", the reporter told once.
    assert {t.location for t in tickets if t.owner} == set(claimed)
    for t in tickets:
        if t.location in claimed:
            pair = claimed[t.location]
            assert t.owner in pair
            seen = [x for u in pair for x in emu.texts_to(u)]
            assert sum(x.startswith(f"您已接单 报修 #{t.id}：") for x in seen) == 1
            assert sum(x.startswith(f"报修 #{t.id} 已由") for x in seen) == 1
            assert sum(x.startswith(f"您的报修 #{t.id} 已由技术员") for x in emu.texts_to(t.reporter)) == 1
    # The approval was decided once.
    assert [a.action for a in audits].count("approve") == 1, audits

    # The push fired once, on one replica, into the group (the approved news), and every other
    # occurrence due (the 18:05 prompts, caught up at start; the other groups' 19:05) once too.
    fired = [(e["job"], e["scheduled_at"]) for x in log_events(procs, "job_fired") for e in x]
    assert len(fired) == len(set(fired)) == len([x for x in runs if x.status == "done"])
    assert (TEACHERS_PUSH, PUSH_AT.isoformat()) in fired
    pushed = [d for d in emu.delivered if d.to == "chat:itteachers2024"]
    assert len(pushed) == 1 and "期末考试安排" in pushed[0].body["markdown"]["content"]
    # The other groups had nothing approved: their admins were told at 18:05 and at 19:05, once each.
    for group, admins in OTHER_GROUPS.items():
        for fragment in (f"{group}今天 19:05 的推送", f"{group}没有推送音频课堂"):
            told = sorted(d.to for d in emu.delivered if d.msgtype == "text" and fragment in d.body["text"]["content"])
            assert told == sorted(f"user:{u}" for u in admins), (fragment, told)

    # Every outbound message was written once, and reached WeCom once: the emulator's count by
    # recipient and content equals the sent rows', one each.
    assert {row.status for row in rows} == {OutboxStatus.SENT}
    delivered = Counter((d.to, content_key(d.msgtype, d.body)) for d in emu.delivered)
    assert delivered == expected_deliveries(rows)
    assert [k for k, n in delivered.items() if n > 1] == []
    assert emu.dropped == []
    # What the members see: each reporter one confirmation per ticket, each asker one answer.
    for t in tickets:
        assert sum(f"报修编号 #{t.id}。" in x for x in emu.texts_to(t.reporter)) == 1
    for u in HELPERS:
        assert sum("您可以找我办这些事" in x for x in emu.texts_to(u)) == 1
