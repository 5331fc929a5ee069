"""Free text that is no command is offered as the command it reads as; nothing happens unconfirmed."""

from __future__ import annotations

from sqlalchemy import select

from bot.appkeys import PIPELINE
from storage.models import Conversation, Request, Ticket
from tests.scene import Scene


async def _ticket(scene: Scene) -> Ticket:
    async with scene.bot.app[PIPELINE].sessions() as s:
        return (await s.execute(select(Ticket))).scalar_one()


async def test_a_fault_in_plain_words_is_offered_as_a_report_and_confirmed_by_card(scene: Scene) -> None:
    reply = await scene.say("zhaolei", "三楼机房3号电脑开不了机")
    assert "您是要“报修”吗" in reply and "地点：三楼机房" in reply and "设备：电脑" in reply
    assert await scene.bot.count(Ticket) == 0  # nothing until confirmed
    card = scene.card("zhaolei")
    assert card["main_title"]["title"] == "要报修吗？"
    reply = await scene.click("zhaolei", card, "确认")
    assert "编号 #1" in reply
    t = await _ticket(scene)
    assert (t.location, t.category, t.description) == ("三楼机房", "computer", "三楼机房3号电脑开不了机")
    assert scene.update_labels("zhaolei") == ["已确认"]
    assert scene.card("lihua")  # the computer technician gets the 接单 card as usual


async def test_yes_confirms_and_missing_fields_are_asked(scene: Scene) -> None:
    reply = await scene.say("liyan", "投影仪不亮了")
    assert "您是要“报修”吗" in reply
    assert "在哪里" in await scene.say("liyan", "是")  # no place was recognised: the form asks
    assert "编号 #1" in await scene.say("liyan", "学前楼201")


async def test_edit_hands_back_the_text_to_correct(scene: Scene) -> None:
    await scene.say("zhaolei", "302投影仪不亮了")
    reply = await scene.say("zhaolei", "修改")
    assert "报修 地点:302 设备:投影 描述:302投影仪不亮了" in reply.replace("设备:302投影仪不亮了", "设备:投影")
    assert await scene.bot.count(Ticket) == 0 and await scene.bot.count(Conversation) == 0


async def test_stage_and_footage_intents_start_their_forms(scene: Scene) -> None:
    assert "您是要“借舞台”吗" in await scene.say("songtao", "下周五想借本部礼堂")
    reply = await scene.say("songtao", "是")
    assert "场地=本部礼堂" in reply and "几点到几点" in reply  # venue and date known: the form asks the time
    await scene.say("songtao", "取消")
    assert "您是要“调监控”吗" in await scene.say("majun", "想调一下监控")
    assert await scene.bot.count(Request) == 0


async def test_something_else_after_an_offer_lets_it_lapse(scene: Scene) -> None:
    await scene.say("zhaolei", "三楼机房3号电脑开不了机")
    assert "可以使用" not in await scene.say("zhaolei", "帮助")  # handled as itself
    assert await scene.bot.count(Conversation) == 0
    card = scene.card("zhaolei")
    assert "已失效" in await scene.click("zhaolei", card, "确认")
    assert await scene.bot.count(Ticket) == 0


async def test_chatter_is_not_offered_anything(scene: Scene) -> None:
    reply = await scene.say("zhaolei", "今天天气不错")
    assert "您是要" not in reply and "没看懂" in reply


async def test_a_fault_the_center_does_not_handle_is_referred_at_once(scene: Scene) -> None:
    reply = await scene.say("zhaolei", "办公室空调坏了")
    assert "不归信息中心维修" in reply and "总务处" in reply and "您是要" not in reply
    assert await scene.bot.count(Ticket) == 0 and await scene.bot.count(Conversation) == 0
