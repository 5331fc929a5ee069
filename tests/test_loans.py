"""Loans of computers, projectors and speakers (issue 14 point 2): issue by registered asset number,
receipt with the hardware/software check, returns and collections, damage and accountability.

The scene starts 2026-11-25 09:00 in Shanghai (a Wednesday). 赵磊 (zhaolei) teaches in 信息技术系
(chain: 杨帆 → 马军 → 赵敏 → 王建国 → 陈浩); 黄丽 (huangli) works in 校长办公室 (郑梅 → 赵敏 → 王建国 →
陈浩). 张磊 (zhanglei) is the main campus's projector technician, 李华 (lihua) its computer
technician, 陈浩 (chenhao) the director.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from bot.emulator.server import Emulator
from handlers.loans import collection_reasons
from handlers.registers import export, find_register
from storage.models import ComputerIssue, LoanDamage, Ticket
from tests.assets import asset, register_assets
from tests.conftest import Bot, example_raw, start_scene
from tests.scene import Scene

TZ = ZoneInfo("Asia/Shanghai")
DEPARTMENT = ("yangfan", "majun", "zhaomin", "wangjianguo", "chenhao")
OFFICE = ("zhengmei", "zhaomin", "wangjianguo", "chenhao")

Start = Callable[[], Awaitable[Scene]]


@pytest.fixture
async def start(emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock) -> AsyncIterator[Start]:
    """Start (or start again, on the same database) the example bot."""
    bots: list[Bot] = []

    async def go() -> Scene:
        for b in bots:
            await b.stop()
        bots.clear()
        bot = await start_scene(example_raw(), emulator, db_url, http, clock)
        bots.append(bot)
        return Scene(bot, emulator)

    yield go
    for b in bots:
        await b.stop()


async def approved(scene: Scene, who: str, text: str, chain: tuple[str, ...], number: int) -> None:
    await scene.say(who, text)
    for approver in chain:
        await scene.say(approver, f"同意 #{number}")


async def issue_row(scene: Scene, number: int) -> ComputerIssue:
    async with scene.bot.app[PIPELINE].sessions() as s:
        row = (await s.execute(select(ComputerIssue).where(ComputerIssue.request_id == number))).scalar_one()
        s.expunge(row)
        return row


async def tickets(scene: Scene) -> list[Ticket]:
    async with scene.bot.app[PIPELINE].sessions() as s:
        rows = list((await s.execute(select(Ticket).order_by(Ticket.id))).scalars())
        s.expunge_all()
        return rows


def at(clock: FakeClock, when: datetime) -> None:
    clock.advance((when - clock.now()).total_seconds())


async def test_projector_loan_refusals_receipt_problem_and_return_intact(start: Start) -> None:
    scene = await start()
    await register_assets(scene.bot, "projector", "PJ-01", "PJ-02")
    await register_assets(scene.bot, "projector", "PJ-03", state="lent", holder="huangli")
    await register_assets(scene.bot, "computer", "PC-01")
    await approved(scene, "zhaolei", "领投影仪 用途:临时借用 数量:1 配置:3000流明 归还:12月10日", DEPARTMENT, 1)
    card = scene.card("zhanglei")  # the projector technician, not the computer one
    assert card["main_title"]["title"] == "发放投影仪 #1" and scene.cards("lihua") == []
    assert "等发放的设备" in (todo := await scene.say("zhanglei", "待办")) and "（投影仪）" in todo
    assert "等发放的设备" not in await scene.say("lihua", "待办")

    refused = await scene.say("zhanglei", "发放 #1 资产号:PC-01")
    assert "PC-01：不是投影仪（是电脑）" in refused and "没有发放" in refused
    assert "PJ-03：现在借出（黄丽），不在库" in await scene.say("zhanglei", "发放 #1 资产号:PJ-03")
    assert "PJ-99：资产登记里没有这个编号" in await scene.say("zhanglei", "发放 #1 资产号:PJ-99")
    assert "只有" in await scene.say("zhaolei", "发放 #1 资产号:PJ-01")  # technicians only
    assert await scene.bot.count(ComputerIssue) == 0
    assert (await asset(scene.bot, "PJ-01"))[0].state == "in_store"

    assert "已登记申请 #1 的发放：PJ-01" in await scene.say("zhanglei", "发放 #1 资产号:ｐｊ－０１")
    pj, history = await asset(scene.bot, "PJ-01")
    assert (pj.state, pj.holder, pj.unit, history) == ("lent", "zhaolei", "信息技术系", ["registered", "issued"])

    # Receipt: the card asks for the check of hardware and software; 有问题 asks what.
    receipt = scene.card("zhaolei")
    assert receipt["main_title"]["title"] == "领取投影仪 #1" and "硬件和软件" in receipt["main_title"]["desc"]
    assert "硬件还是软件" in await scene.click("zhaolei", receipt, "有问题")
    reply = await scene.say("zhaolei", "硬件 灯泡很暗")
    assert "已确认领取" in reply and "PJ-01（硬件：灯泡很暗，报修 #1）" in reply
    [ticket] = await tickets(scene)
    assert (ticket.asset_id, ticket.category, ticket.reporter, ticket.damage) == (pj.id, "projector", "zhaolei", False)
    assert "灯泡很暗" in ticket.description
    assert scene.got("zhanglei", "领取检查有问题")
    issue = await issue_row(scene, 1)
    assert issue.receipt == {
        "ok": False,
        "items": [{"number": "PJ-01", "hardware": False, "software": True, "note": "灯泡很暗", "ticket": 1}],
    }
    assert (await asset(scene.bot, "PJ-01"))[1][-2:] == ["received", "repair_opened"]

    # Return: the holder announces, the technician checks and collects.
    assert "没有找到申请 #1" in await scene.say("huangli", "归还 #1")  # not hers: not even shown
    assert "已通知张磊" in await scene.say("zhaolei", "歸還 ＃1")
    assert scene.got("zhanglei", "赵磊（信息技术系）要归还申请 #1 的投影仪：PJ-01")
    assert "没看懂回收情况" in await scene.say("zhanglei", "回收 #1 看着还行")
    assert "已全部收回入库" in await scene.say("zhanglei", "回收 #1 完好")
    assert "已全部收回" in await scene.say("zhanglei", "回收 #1 完好")  # nothing left to collect
    pj, history = await asset(scene.bot, "PJ-01")
    assert (pj.state, pj.holder, pj.unit, history[-1]) == ("in_store", None, "", "returned")
    issue = await issue_row(scene, 1)
    assert issue.returned_at is not None and issue.return_announced_at is not None
    assert scene.got("zhaolei", "张磊已收回您领用的投影仪：PJ-01")


async def test_two_computers_one_back_damaged_across_a_restart(start: Start, tmp_path: Path) -> None:
    scene = await start()
    await register_assets(scene.bot, "computer", "PC-01", "PC-02")
    await approved(scene, "huangli", "领电脑 用途:办公 数量:2 配置:i5", OFFICE, 1)
    await scene.say("lihua", "发放 #1 资产号:PC-01 PC-02")
    assert (await asset(scene.bot, "PC-02"))[0].state == "in_use"  # office work: in use, not lent

    scene = await start()  # the same database, a new process
    assert "已记录：硬件、软件完好" in await scene.say("huangli", "确认领取 #1")
    assert "归还时发“归还 #1”" not in scene.last_text("huangli")  # no return date: collected at term end
    assert "损坏请说明情况" in await scene.say("lihua", "回收 #1 PC-02 损坏")
    assert "没看懂回收情况" in await scene.say("lihua", "回收 #1 PC-09 完好")  # not issued here
    reply = await scene.say("lihua", "回收 #1 PC-02 完好 PC-01 损坏 屏幕碎裂")
    assert "已登记收回申请 #1 的电脑：PC-02、PC-01" in reply and "PC-01 屏幕碎裂（报修 #1）" in reply
    [ticket] = await tickets(scene)
    pc1, history = await asset(scene.bot, "PC-01")
    assert ticket.damage and ticket.asset_id == pc1.id and "人为损坏" in ticket.description
    assert history[-2:] == ["returned", "repair_opened"] and pc1.state == "repair" and pc1.holder is None
    assert (await asset(scene.bot, "PC-02"))[0].state == "in_store"
    assert scene.got("chenhao", "借出设备人为损坏：申请 #1 的 PC-01，使用人黄丽，屏幕碎裂")
    card = scene.card("huangli")
    assert card["main_title"]["title"] == "损坏追责 #1" and "待核定" in str(card)

    # The amount, then the holder refuses: recorded and reported to the 校委会 and the director.
    assert "只有" in await scene.say("huangli", "追责 #1 1元")  # technicians and the director only
    assert "赔偿金额 300 元" in await scene.say("lihua", "追责 #1 300元")
    card = scene.card("huangli")
    assert "300 元" in card["main_title"]["desc"]
    assert "原因" in await scene.click("huangli", card, "拒绝")
    assert "上报校委会" in await scene.say("huangli", "领取时屏幕就有裂纹")
    assert scene.got("wangjianguo", "【上报校委会】借出设备损坏拒绝赔偿：申请 #1 的 PC-01")
    assert scene.got("chenhao", "拒绝原因：领取时屏幕就有裂纹")
    assert "已记录：黄丽已付清" in await scene.say("lihua", "追责 #1 已付")
    async with scene.bot.app[PIPELINE].sessions() as s:
        damage = (await s.execute(select(LoanDamage))).scalar_one()
    assert (damage.liable_user, damage.amount_cents, damage.status) == ("huangli", 30000, "refused")
    assert damage.paid_at is not None and damage.ticket_id == ticket.id
    assert (await issue_row(scene, 1)).returned_at is not None

    # The 计算机领取/发放登记表 shows the returns in its 备注 (the form has no column of its own).
    register = find_register("计算机领取/发放登记表")
    assert register is not None
    path = tmp_path / "issues.xlsx"
    async with scene.bot.app[PIPELINE].sessions() as s:
        await export(s, scene.bot.config, register, date(2026, 11, 1), date(2026, 11, 30), path)
    rows = [list(r) for r in load_workbook(path).active.iter_rows(values_only=True)]
    note = rows[2][6]
    assert "PC-02 2026-11-25 09:00收回完好" in note and "PC-01 2026-11-25 09:00收回，人为损坏：屏幕碎裂" in note
    assert "已全部归还" in note


async def test_collection_lists_what_is_out_before_the_new_year_holiday(start: Start, clock: FakeClock) -> None:
    scene = await start()
    await register_assets(scene.bot, "projector", "PJ-01")
    await register_assets(scene.bot, "computer", "NB-01")
    await approved(scene, "zhaolei", "领投影仪 用途:备课 数量:1 配置:便携", DEPARTMENT, 1)
    await scene.say("zhanglei", "发放 #1 资产号:PJ-01")
    await scene.say("zhaolei", "确认领取 #1")
    await approved(scene, "huangli", "领电脑 用途:临时借用 数量:1 配置:笔记本 归还:12月1日", OFFICE, 2)
    await scene.say("lihua", "发放 #2 资产号:NB-01")
    listing = await scene.say("chenhao", "借出清单")
    assert "申请 #1 投影仪 PJ-01 · 赵磊（信息技术系）· 11月25日（周三）起" in listing
    assert "申请 #2 电脑 NB-01 · 黄丽（校长办公室）" in listing and "12月1日（周二）到期" in listing

    # The return date: the holder is reminded; a day later, still out: the technician too.
    at(clock, datetime(2026, 12, 1, 9, tzinfo=TZ))
    await scene.tick()
    assert scene.got("huangli", "今天是12月1日（周二），您借用的电脑") and not scene.got("lihua", "逾期")
    at(clock, datetime(2026, 12, 2, 9, tzinfo=TZ))
    await scene.tick()
    assert scene.got("lihua", "逾期未还：黄丽（校长办公室）借用的电脑（申请 #2，NB-01）")
    await scene.say("lihua", "回收 #2 完好")
    assert "不需要您确认领取" in await scene.say("huangli", "确认领取 #2")  # back before she confirmed

    # 2027-01-01..03 is a holiday in term: collection three workdays before, on 12月29日.
    at(clock, datetime(2026, 12, 28, 9, tzinfo=TZ))
    await scene.tick()
    assert not scene.got("chenhao", "请安排回收检查")
    at(clock, datetime(2026, 12, 29, 9, tzinfo=TZ))
    await scene.tick()
    for who in ("chenhao", "zhanglei"):
        text = scene.last_text(who)
        assert "1月1日（周五）起放假，请安排回收检查" in text and "PJ-01 · 赵磊（信息技术系）" in text, who
        assert "NB-01" not in text  # back already
    assert "1月1日（周五）起放假" in scene.last_text("zhaolei") and "PJ-01" in scene.last_text("zhaolei")
    assert not scene.got("huangli", "起放假")
    await scene.tick()
    assert sum("请安排回收检查" in t for t in scene.texts("chenhao")) == 1  # once
    # The term's end (2027-01-22, a Friday): three workdays before; a one-day holiday has none.
    config = scene.bot.config
    assert [r["why"] for r in collection_reasons(config, date(2027, 1, 20))] == ["term_end"]
    assert collection_reasons(config, date(2027, 1, 21)) == []
    assert not any(collection_reasons(config, date(2027, 6, d)) for d in range(1, 9))
