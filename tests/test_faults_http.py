"""Fault tickets over HTTP: report → claim → complete, concurrent claims, SLA across a restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from bot.config import ConfigError, parse_config
from bot.emulator.server import Emulator
from storage.models import Conversation, Ticket
from tests.conftest import example_raw, make_config, start_bot
from tests.scene import Scene

START = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


async def ticket(scene: Scene, number: int = 1) -> Ticket:
    async with scene.bot.app[PIPELINE].sessions() as s:
        t = (await s.execute(select(Ticket).where(Ticket.id == number))).scalar_one()
        return t


async def test_report_claim_complete(scene: Scene, clock: FakeClock) -> None:
    reply = await scene.say("zhaolei", "报修 地点:302教室 描述:投影仪开机没有画面")
    assert "报修编号 #1" in reply and "24 小时内" in reply
    card = scene.card("zhanglei")  # projector technician on the reporter's campus
    assert card["main_title"]["title"] == "报修 #1 · 投影"
    assert scene.cards("xuqiang") == []  # another campus's projector technician is not bothered
    assert "您已接单" in await scene.click("zhanglei", card, "接单")
    assert "已由技术员张磊接单" in scene.last_text("zhaolei")
    assert scene.update_labels("zhanglei") == ["已由张磊接单"]
    clock.advance(3 * 3600 + 1800)
    assert "维修时长 3.5 小时" in await scene.say("zhanglei", "完成 #1 更换灯泡，已恢复")
    assert "用时 3.5 小时" in scene.last_text("zhaolei") and "更换灯泡" in scene.last_text("zhaolei")
    t = await ticket(scene)
    assert (t.status, t.owner, t.damage, t.resolution) == ("done", "zhanglei", False, "更换灯泡，已恢复")
    assert "已完成" in await scene.say("zhaolei", "我的报修")


async def test_concurrent_claims_give_exactly_one_owner(scene: Scene) -> None:
    await scene.say("zhangwei", "报修 地点:西山校区礼堂 设备:舞台 描述:调音台无声")  # main campus reporter
    # Both stage technicians (main campus zhanglei; xishan xuqiang only if none local) — make both try.
    cards = {u: scene.cards(u) for u in ("zhanglei", "xuqiang")}
    posts = [scene.bot.sender.text("zhanglei", "接单 #1"), scene.bot.sender.text("xuqiang", "接单 #1")]
    assert [p.status for p in await asyncio.gather(*posts)] == [200, 200]
    await scene.bot.settle()
    t = await ticket(scene)
    assert t.status == "claimed" and t.owner in ("zhanglei", "xuqiang")
    loser = "xuqiang" if t.owner == "zhanglei" else "zhanglei"
    assert "已由" in scene.last_text(loser) and "接单了" in scene.last_text(loser)
    assert cards["zhanglei"]  # the card went to the local technician
    assert sum("已由技术员" in m for m in scene.texts("zhangwei")) == 1  # the reporter is told once


async def test_hand_over_and_damage_flag(scene: Scene) -> None:
    await scene.say("zhaolei", "报修 地点:机房A 设备:电脑 描述:主机冒烟")
    await scene.say("lihua", "接单 #1")
    assert "不是技术员" in await scene.say("lihua", "转交 #1 赵磊")
    assert "已把报修 #1 转交给许强" in await scene.say("lihua", "转交 #1 许强")
    assert "转交给您" in scene.last_text("xuqiang")
    assert "不在您名下" in await scene.say("lihua", "完成 #1 好了")
    assert "人为损坏" in await scene.say("xuqiang", "完成 #1 学生踢坏电源，人为损坏，已更换")
    assert "追责" in scene.last_text("zhaolei") and "需追责" in scene.last_text("chenhao")
    assert (await ticket(scene)).damage


async def test_photos_within_ten_minutes_attach(scene: Scene, clock: FakeClock) -> None:
    await scene.say("zhaolei", "报修 地点:302 设备:投影 描述:画面发黄")
    await scene.bot.sender.image("zhaolei", "media_1")
    await scene.bot.settle()
    assert "照片已附到报修 #1" in scene.last_text("zhaolei")
    clock.advance(11 * 60)
    await scene.bot.sender.image("zhaolei", "media_2")
    await scene.bot.settle()
    assert "先发“报修" in scene.last_text("zhaolei")
    assert [p["media_id"] for p in (await ticket(scene)).photos["items"]] == ["media_1"]


async def test_wrong_category_is_corrected_and_rerouted(scene: Scene) -> None:
    await scene.say("zhaolei", "报修 地点:302 设备:网络 描述:投影仪连不上电脑")
    assert scene.card("lihua")
    assert "已改派给张磊" in await scene.say("zhaolei", "改类别 #1 投影")
    assert scene.update_labels("lihua") == ["已改派其他类别"]
    assert scene.card("zhanglei")["main_title"]["title"] == "报修 #1 · 投影"
    assert (await ticket(scene)).category == "projector"


async def test_recategorise_between_categories_with_the_same_sla(scene: Scene, clock: FakeClock) -> None:
    """Projector → computer (both 24 h): the deadline and its timers stay; the warning still comes."""
    await scene.say("zhaolei", "报修 地点:302 设备:投影 描述:投影仪连不上电脑")
    reply = await scene.say("zhaolei", "改类别 #1 电脑")
    assert "出错" not in reply and "已改派给" in reply
    t = await ticket(scene)
    assert t.category == "computer" and t.deadline == t.created_at + timedelta(hours=24)
    clock.advance(18 * 3600 + 60)  # 75 % of 24 h
    await scene.tick()
    assert any("报修 #1" in m for m in scene.texts("lihua"))


async def test_sla_warning_and_escalation_across_a_restart(
    scene: Scene, emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    await scene.say("zhaolei", "报修 地点:机房A 设备:电脑 描述:三台无法开机")
    await scene.bot.stop()  # the bot is down while the 75% mark (18 h) passes
    clock.advance(19 * 3600)
    bot = await start_bot(make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False)
    again = Scene(bot, emulator)
    try:
        await again.tick()  # the first tick at start-up fires what came due while down
        for tech in ("lihua", "wangpeng", "xuqiang", "hejun"):  # unclaimed: every computer technician
            assert again.got(tech, "还没有人接单"), tech
        await again.tick()
        assert sum("还没有人接单" in m for m in again.texts("lihua")) == 1  # fired once
        await again.say("lihua", "接单 #1")
        clock.advance(5 * 3600 + 1)
        await again.tick()
        card = again.card("chenhao")
        assert card["main_title"]["title"] == "报修超时 #1" and "李华" in card["main_title"]["desc"]
        assert again.got("lihua", "已超过处理时限")
        assert "处理中" in await again.click("chenhao", card, "查看进度")
    finally:
        await bot.stop()
        scene.bot.runner = bot.runner  # the fixture's stop() is now a no-op on a cleaned runner


async def test_health_shows_timers_the_scheduler_has_not_fired(scene: Scene, clock: FakeClock) -> None:
    await scene.say("zhaolei", "报修 地点:机房A 设备:电脑 描述:无法开机")
    clock.advance(25 * 3600)
    assert (await scene.bot.health())["overdue_timers"] == 2  # the 75 % warning and the deadline
    await scene.tick()
    assert (await scene.bot.health())["overdue_timers"] == 0


# -- what the center does not repair, and 其他 --------------------------------------------------
async def test_what_another_office_handles_gets_that_office_not_a_ticket(scene: Scene) -> None:
    reply = await scene.say("zhaolei", "报修 地点:行政楼 设备:打印机 描述:卡纸")
    assert "“打印机”不归信息中心维修，请联系总务处（总务处报修电话 8001，行政楼一楼）" in reply
    # Named only in the description: answered at once, nothing more is asked.
    reply = await scene.say("zhaolei", "报修 办公室空调不制冷")
    assert "“空调”不归信息中心维修" in reply and "在哪里" not in reply
    assert "“饭卡”不归信息中心维修，请联系财务处" in await scene.say("zhaolei", "报修 地点:食堂 描述:饭卡刷不了")
    assert await scene.bot.count(Ticket) == 0 and await scene.bot.count(Conversation) == 0


async def test_answering_the_category_question_with_something_not_ours_ends_the_form(scene: Scene) -> None:
    assert "哪类设备" in await scene.say("zhaolei", "报修 地点:302 描述:坏了")
    reply = await scene.say("zhaolei", "饮水机")
    assert "“饮水机”不归信息中心维修，请联系总务处" in reply and "哪类设备" not in reply
    assert await scene.bot.count(Ticket) == 0 and await scene.bot.count(Conversation) == 0


async def test_our_equipment_wins_over_a_word_another_office_has(scene: Scene) -> None:
    reply = await scene.say("zhaolei", "报修 地点:302 描述:投影仪的插座没电了")
    assert "报修编号 #1" in reply and "设备：投影" in reply


async def test_other_goes_to_the_computer_technicians(scene: Scene) -> None:
    assert "都不是请回复“其他”" in await scene.say("zhaolei", "报修 地点:302 描述:门口的电子班牌黑了")
    reply = await scene.say("zhaolei", "其他")
    assert "报修编号 #1" in reply and "设备：其他" in reply and "24 小时内" in reply
    assert scene.card("lihua")["main_title"]["title"] == "报修 #1 · 其他"  # computer technician, same campus
    assert scene.cards("wangpeng") == []
    assert "您已接单" in await scene.say("lihua", "接单 #1")
    t = await ticket(scene)
    assert (t.category, t.owner) == ("other", "lihua")


async def test_recategorise_to_something_not_ours_leaves_the_ticket(scene: Scene) -> None:
    await scene.say("zhaolei", "报修 地点:302 设备:投影 描述:不亮")
    reply = await scene.say("zhaolei", "改类别 #1 空调")
    assert "“空调”不归信息中心维修" in reply and "报修 #1 的类别没有改动" in reply
    assert (await ticket(scene)).category == "projector"


def test_not_ours_is_validated_with_the_fix() -> None:
    raw = example_raw()
    raw["faults"]["not_ours"] = [{"words": [], "office": "总务处"}]
    assert config_problems(raw) == [
        '不归信息中心维修的 "总务处" 的 words：要列出大家对这些东西的叫法，例如 words = ["空调", "打印机"]'
    ]
    raw["faults"]["not_ours"] = [{"words": ["空调"], "office": " "}]
    assert any('office = "总务处"' in p for p in config_problems(raw))
    raw["faults"]["not_ours"] = [{"words": ["空调"], "office": "总务处"}, {"words": ["空调"], "office": "后勤处"}]
    assert any("'空调' 同时列在 '总务处' 和 '后勤处' 下" in p for p in config_problems(raw))
    raw["faults"]["not_ours"] = [{"words": ["空调"], "office": "总务处", "phone": "1"}]
    assert any(p.startswith("不归信息中心维修的 \"总务处\"：未知的键 'phone'") for p in config_problems(raw))


def config_problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(raw, environ={})
    return err.value.problems
