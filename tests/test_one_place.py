"""Proof that a workflow is declared in one place.

The "key loan" workflow below is defined entirely in this file and its template folder
(tests/one_place_templates): a command with a form, a typed card action, a database timer and
a recurring job. It is added to the bot by including its router, nothing else, and driven end
to end over encrypted HTTP against the WeCom emulator.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select

from bot.cardkeys import CardAction
from bot.cards import Button, close_cards, send_card
from bot.clock import FakeClock
from bot.config import Config
from bot.context import Ctx
from bot.emulator.server import Emulator
from bot.render import Renderer
from bot.router import Field, FieldError, Job, Registry, Router
from bot.timeparse import local_now
from handlers import ROUTERS
from storage.models import Card, Conversation, Timer
from tests.conftest import make_config, start_bot
from tests.scene import Scene

# -- the workflow ---------------------------------------------------------------------------------
keys = Router("keys", templates=Path(__file__).with_name("one_place_templates"))
KEEPER = "lihua"  # the key keeper (a technician in the example organisation)


class KeyButton(StrEnum):
    HANDED = "handed"


@dataclass(frozen=True)
class KeyClick(CardAction, prefix="key", subject="keyloan"):
    loan: int  # the loan's return timer
    button: KeyButton


def parse_until(value: str, ctx: Ctx) -> str:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
    now = local_now(ctx.now(), ctx.config.scheduler.timezone)
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise FieldError("invalid_until")
    due = now.replace(hour=int(m.group(1)), minute=int(m.group(2)), second=0, microsecond=0)
    if due <= now:
        raise FieldError("invalid_until")
    return due.isoformat()


@keys.command(
    "borrow_key",
    aliases=("借钥匙", "借鑰匙", "borrow key"),
    members_only=True,
    fields=(Field("room", ("房间", "房間", "room")), Field("until", ("归还", "歸還", "until"), parse=parse_until)),
)
async def borrow_key(ctx: Ctx, values: dict[str, str]) -> None:
    due = datetime.fromisoformat(values["until"])
    timer = Timer(kind="key_return", ref=ctx.user, due_at=due, payload={"room": values["room"], "borrower": ctx.user})
    ctx.session.add(timer)
    await ctx.session.flush()
    until = f"{due:%H:%M}"
    block = ctx.renderer.block
    await send_card(
        ctx,
        KEEPER,
        subject_id=timer.id,
        purpose="handover",
        title=block("key_card", "title", room=values["room"]) or "",
        desc=block("key_card", "desc", borrower=ctx.org.name(ctx.user), until=until) or "",
        buttons=[Button(block("key_card", "button") or "", KeyClick(timer.id, KeyButton.HANDED))],
    )
    ctx.reply("key_recorded", room=values["room"], until=until, keeper=ctx.org.name(KEEPER))


@keys.action(KeyClick, roles=("technician",))
async def key_handed(ctx: Ctx, card: Card, click: KeyClick) -> None:
    timer = await ctx.session.get(Timer, click.loan)
    assert timer is not None
    await close_cards(
        ctx, "keyloan", click.loan, ctx.renderer.block("key_card", "handed", name=ctx.org.name(ctx.user)) or ""
    )
    ctx.tell(timer.payload["borrower"], "key_handed", keeper=ctx.org.name(ctx.user), room=timer.payload["room"])


@keys.timer("key_return")
async def key_return_due(ctx: Ctx, timer: Timer) -> None:
    ctx.tell(timer.payload["borrower"], "key_return_due", room=timer.payload["room"])


async def key_report(ctx: Ctx, when: datetime) -> None:
    since = when - timedelta(hours=12)
    rows = (await ctx.session.execute(select(Timer).where(Timer.kind == "key_return", Timer.due_at >= since))).scalars()
    rooms = [t.payload["room"] for t in rows]
    if rooms:
        ctx.tell(KEEPER, "key_report", rooms=rooms)


@keys.jobs_from
def key_jobs(config: Config) -> Iterable[Job]:
    yield Job("keys:report", CronTrigger(hour=17, minute=30, timezone=ZoneInfo(config.scheduler.timezone)), key_report)


# -- the test -------------------------------------------------------------------------------------
@pytest.fixture
async def scene(emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock) -> AsyncIterator[Scene]:
    emulator.clock = lambda: clock.now().timestamp()
    bot = await start_bot(
        make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False, routers=(*ROUTERS, keys)
    )  # the only line that adds the workflow
    yield Scene(bot, emulator)
    await bot.stop()


async def test_a_workflow_declared_in_one_place_runs_end_to_end(scene: Scene, clock: FakeClock) -> None:
    # 09:00 Wednesday. The form asks for what is missing, one field at a time.
    assert "借哪个房间的钥匙" in await scene.say("zhaolei", "借钥匙")
    assert "几点归还" in await scene.say("zhaolei", "实训楼301")
    assert "不是今天还没过去的时间" in await scene.say("zhaolei", "8:00")
    assert await scene.bot.count(Conversation) == 1
    assert "已登记借用实训楼301的钥匙，请在 16:00 前归还" in await scene.say("zhaolei", "16:00")

    # The keeper's card; its button key is the typed action, packed.
    card = scene.card(KEEPER)
    assert card["main_title"]["title"] == "借钥匙 · 实训楼301"
    assert re.fullmatch(r"key:\d+:handed", card["button_list"][0]["key"])
    # Someone the card was not sent to cannot use it.
    assert "已失效或不是发给您的" in await scene.click("zhaolei", card, "已交钥匙")
    await scene.click(KEEPER, card, "已交钥匙")
    assert scene.last_text("zhaolei") == "李华已把实训楼301的钥匙交给您。"
    assert scene.update_labels(KEEPER) == ["已交·李华"]

    # The database timer fires at the return time, the recurring job at 17:30.
    clock.advance(7 * 3600)  # 16:00
    await scene.tick()
    assert scene.last_text("zhaolei") == "到时间了：请归还实训楼301的钥匙。"
    clock.advance(90 * 60)  # 17:30
    await scene.tick()
    assert scene.last_text(KEEPER) == "今天借出的钥匙：实训楼301。"

    # 帮助 shows the new command with the example from its template.
    assert "借钥匙 房间:实训楼301 归还:16:00" in await scene.say("zhaolei", "帮助")


async def test_someone_outside_the_directory_cannot_borrow(scene: Scene) -> None:
    scene.emu.known_users = {*(scene.emu.known_users or set()), "visitor"}
    assert "不在信息中心的人员名单里" in await scene.say("visitor", "借钥匙 房间:301")
    assert await scene.bot.count(Timer) == 0


def test_clashes_are_refused_when_the_bot_starts(tmp_path: Path) -> None:
    twin = Router("twin")

    @twin.action(KeyClick)
    async def other(ctx: Ctx, card: Card, click: KeyClick) -> None: ...

    with pytest.raises(ValueError, match="prefix 'key'"):
        Registry((keys, twin))
    (tmp_path / "ask.j2").write_text("shadows the kernel's text", encoding="utf-8")
    with pytest.raises(ValueError, match=r"'ask\.j2' is in both"):
        Renderer([tmp_path])
