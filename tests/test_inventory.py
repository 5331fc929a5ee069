"""财产盘查 over HTTP (issue 14 point 3): a round per campus snapshots the assets expected in each
room; the technicians confirm on the room cards or by text, mark one missing and one found
elsewhere (the asset moves); the round survives a restart and ends with the discrepancy list sent
to the director; a round whose last asset is checked ends by itself; a teacher may start none."""

from __future__ import annotations

import aiohttp
from sqlalchemy import select

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from bot.emulator.server import Emulator
from storage.models import AssetEvent, InventoryItem, InventoryRound
from tests.conftest import make_config, start_bot
from tests.scene import Scene

ASSETS = (
    "资产登记 PC-0101 计算机 联想启天M720 302机房",
    "资产登记 PC-0102 计算机 联想启天M720 302机房",
    "资产登记 PC-0103 计算机 联想启天M720 302机房",
    "资产登记 TY-0201 投影仪 爱普生CB-X05 201教室",
    "资产登记 编号:DH-0001 类别:计算机 型号:戴尔OptiPlex 地点:东湖101 校区:东湖",
)


async def events(scene: Scene, kind: str) -> list[AssetEvent]:
    async with scene.bot.app[PIPELINE].sessions() as s:
        return list((await s.execute(select(AssetEvent).where(AssetEvent.kind == kind))).scalars())


async def test_a_round_with_one_missing_and_one_moved_survives_a_restart(
    scene: Scene, emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    for line in ASSETS:
        assert "已登记" in await scene.say("lihua", line)
    # A teacher may not start one; the director starts the main campus's.
    assert "只有" in await scene.say("zhaolei", "开始盘点 本部")
    assert await scene.bot.count(InventoryRound) == 0
    assert "没有“火星”这个校区" in await scene.say("chenhao", "开始盘点 火星")
    await scene.say("chenhao", "取消")
    reply = await scene.say("chenhao", "開始盤點 本部")
    assert "已开始本部校区财产盘查：盘点 #1，2 个房间，共 4 件" in reply and "李华、张磊" in reply
    assert "已有进行中的盘点 #1" in await scene.say("lihua", "开始盘点 本部")
    # Each technician on the campus: the checklist as text, and a card per room.
    checklist = scene.last_text("zhanglei")
    assert (
        "【201教室】1 件" in checklist
        and "【302机房】3 件" in checklist
        and "· PC-0103 计算机 联想启天M720" in checklist
    )
    assert "DH-0001" not in checklist
    room = next(c for c in scene.cards("lihua") if c["main_title"]["title"] == "盘点 #1 · 302机房")
    assert [b["text"] for b in room["button_list"]] == ["PC-0101 在", "PC-0102 在", "PC-0103 在", "全部在位"]

    # On the card: PC-0101 is there. By text: a number not in the register records nothing.
    reply = await scene.click("lihua", room, "PC-0101 在")
    assert "· PC-0101：在位\n应盘 4 件：在位 1，移位 0，缺失 0，未盘 3" in reply
    reply = await scene.say("lihua", "盘点 #1 缺 PC-0102 XX-9")
    assert "这条没有记录" in reply and "XX-9：资产登记里没有这个编号" in reply
    assert "DH-0001：不在盘点 #1 的清单里（登记在东湖校区 东湖101）" in await scene.say("lihua", "盘点 #1 在 DH-0001")
    assert "没看懂" in await scene.say("lihua", "盘点 #1 找找 PC-0102")
    await scene.say("lihua", "取消")
    assert "PC-0102：缺失" in await scene.say("lihua", "盘点 #1 缺 PC-0102")
    assert len(await events(scene, "missing")) == 1

    # The bot restarts in the middle of the round: nothing is lost.
    await scene.bot.stop()
    scene.bot = await start_bot(make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False)
    reply = await scene.say("zhanglei", "盘点 #1 移 TY-0201 203教室")
    assert "TY-0201：移位，在 203教室（已更新位置）" in reply
    assert "位置：本部校区 203教室" in await scene.say("zhanglei", "资产 TY-0201")
    assert "位置变更（张磊）：地点 201教室→203教室；盘点 #1：应在 201教室，在 203教室 找到" in await scene.say(
        "zhanglei", "资产 TY-0201"
    )
    reply = await scene.say("zhanglei", "盘点")  # the one open round
    assert "【201教室】已盘完\n【302机房】未盘 1/3：PC-0103\n" in reply

    # 结束盘点: the director gets the discrepancy list, the sender the same.
    reply = await scene.say("zhanglei", "结束盘点 #1")
    assert "本部校区财产盘查（盘点 #1）已结束" in reply
    report = scene.last_text("chenhao")
    assert "张磊" in report and "应盘 4 件：在位 1，移位 1，缺失 1，未盘 1" in report
    assert "缺失 1 件：\n· PC-0102 计算机 联想启天M720，应在 302机房（李华 核对）" in report
    assert "在别处找到 1 件（位置已更新）：\n· TY-0201 投影仪 爱普生CB-X05：201教室 → 203教室" in report
    assert "未盘 1 件：\n· PC-0103 计算机 联想启天M720，应在 302机房" in report
    assert "盘点已结束" in scene.update_labels("lihua")
    assert "已经结束了" in await scene.say("lihua", "盘点 #1 在 PC-0103")

    # 东湖: its technician ticks the only room's 全部在位; the round ends by itself, nothing amiss.
    await scene.say("chenhao", "开始盘点 东湖")
    card = scene.card("wangpeng")
    reply = await scene.click("wangpeng", card, "全部在位")
    assert "DH-0001：在位" in reply and "东湖校区财产盘查（盘点 #2）已结束" in reply
    assert "账实相符，没有差异" in scene.last_text("chenhao")
    async with scene.bot.app[PIPELINE].sessions() as s:
        items = list((await s.execute(select(InventoryItem).order_by(InventoryItem.id))).scalars())
    assert [(i.number, i.result) for i in items] == [
        ("TY-0201", "moved"),
        ("PC-0101", "found"),
        ("PC-0102", "missing"),
        ("PC-0103", ""),
        ("DH-0001", "found"),
    ]
