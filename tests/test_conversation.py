"""Commands and conversations as a member experiences them, over real HTTP."""

from __future__ import annotations

import aiohttp
from sqlalchemy import select

from bot.appkeys import PIPELINE
from bot.clock import RunningClock
from bot.context import Ctx
from bot.emulator.server import Emulator
from bot.router import Router
from handlers import ROUTERS
from storage.models import Conversation, InboundEvent, Ticket
from tests.conftest import Bot, make_config, start_bot


async def say(bot: Bot, emulator: Emulator, userid: str, text: str) -> str:
    """The member types `text`; return everything the bot answered (joined)."""
    before = len(emulator.texts_to(userid))
    posted = await bot.sender.text(userid, text)
    assert posted.status == 200
    await bot.settle()
    return "\n".join(emulator.texts_to(userid)[before:])


async def tickets(bot: Bot) -> list[Ticket]:
    async with bot.app[PIPELINE].sessions() as s:
        return list((await s.execute(select(Ticket).order_by(Ticket.id))).scalars())


async def test_all_fields_in_one_message(bot: Bot, emulator: Emulator) -> None:
    reply = await say(bot, emulator, "zhaolei", "报修 地点:302教室 设备:投影 描述:投影仪不亮")
    assert "编号 #1" in reply and "302教室" in reply
    [t] = await tickets(bot)
    assert (t.reporter, t.location, t.category, t.description) == ("zhaolei", "302教室", "projector", "投影仪不亮")


async def test_fields_on_separate_lines_with_fullwidth_colons(bot: Bot, emulator: Emulator) -> None:
    reply = await say(bot, emulator, "zhaolei", "报修\n地点：行政楼 3 楼会议室\n设备：音响\n描述：话筒 没有声音")
    assert "编号 #1" in reply
    [t] = await tickets(bot)
    assert (t.location, t.category, t.description) == ("行政楼 3 楼会议室", "stage", "话筒 没有声音")


async def test_traditional_and_english_aliases(bot: Bot, emulator: Emulator) -> None:
    assert "编号 #1" in await say(bot, emulator, "majun", "報修 地點：機房B 設備：電腦 描述：無法開機")
    assert "编号 #2" in await say(bot, emulator, "majun", "REPAIR location: Lab 3 device: network problem: no wifi")
    t1, t2 = await tickets(bot)
    assert (t1.location, t1.category, t1.description) == ("机房B", "computer", "无法开机")
    assert (t2.location, t2.category) == ("Lab 3", "network")


async def test_missing_fields_are_asked_one_at_a_time(bot: Bot, emulator: Emulator) -> None:
    assert "在哪里" in await say(bot, emulator, "liyan", "报修")
    reply = await say(bot, emulator, "liyan", "学前楼二楼钢琴室")
    assert "哪类设备" in reply and "地点=学前楼二楼钢琴室" in reply
    assert "没认出" in await say(bot, emulator, "liyan", "钢琴")  # not a category: asked again
    assert "描述" in await say(bot, emulator, "liyan", "音响")
    assert "编号 #1" in await say(bot, emulator, "liyan", "左边音箱有杂音")
    assert await bot.count(Conversation) == 0
    [t] = await tickets(bot)
    assert (t.location, t.category, t.description) == ("学前楼二楼钢琴室", "stage", "左边音箱有杂音")


async def test_category_is_recognised_from_the_description(bot: Bot, emulator: Emulator) -> None:
    assert "编号 #1" in await say(bot, emulator, "zhaolei", "报修 地点:305 描述:摄像头 画面 模糊")
    [t] = await tickets(bot)
    assert t.category == "cctv"


async def test_conversation_survives_a_restart(
    bot: Bot, emulator: Emulator, db_url: str, http: aiohttp.ClientSession
) -> None:
    assert "描述" in await say(bot, emulator, "zhangwei", "报修 地点:实训楼101 设备:电脑")
    await bot.stop()
    again = await start_bot(make_config(emulator.base_url, db_url), http, run_jobs=False)
    try:
        assert "编号 #1" in await say(again, emulator, "zhangwei", "教师机蓝屏")
        [t] = await tickets(again)
        assert (t.location, t.category, t.description) == ("实训楼101", "computer", "教师机蓝屏")
    finally:
        await again.stop()


async def test_cancel_drops_the_form(bot: Bot, emulator: Emulator) -> None:
    await say(bot, emulator, "liyan", "报修 地点:琴房")
    assert "已取消" in await say(bot, emulator, "liyan", "取消")
    assert await bot.count(Conversation) == 0
    assert "没有正在填写" in await say(bot, emulator, "liyan", "取消")
    assert await bot.count(Ticket) == 0


async def test_help_inside_a_conversation_keeps_the_form(bot: Bot, emulator: Emulator) -> None:
    await say(bot, emulator, "liyan", "报修 地点:琴房")
    reply = await say(bot, emulator, "liyan", "帮助")
    assert "报修 地点:302教室" in reply and "还在填写" in reply
    assert "编号 #1" in await say(bot, emulator, "liyan", "设备:音响 描述:没声音")


async def test_help_lists_every_command_with_an_example(bot: Bot, emulator: Emulator) -> None:
    reply = await say(bot, emulator, "zhaolei", "help")
    assert "赵磊" in reply
    for cmd in (c for r in ROUTERS for c in r.commands if c.in_help and not c.roles and not c.help_roles):
        assert cmd.name in reply
    assert "公安调取" not in reply  # operators' commands are listed to operators only
    assert "· 报修 地点:302教室" in reply
    assert "公安调取" in await say(bot, emulator, "linxue", "帮助")


async def test_unknown_command_gets_closest_suggestion(bot: Bot, emulator: Emulator) -> None:
    reply = await say(bot, emulator, "zhangwei", "保修")
    assert "您是想“报修”吗" in reply and "例：报修" in reply
    reply = await say(bot, emulator, "zhangwei", "hepl")
    assert "您是想“帮助”吗" in reply


async def test_malformed_command_gets_expected_form_and_example(bot: Bot, emulator: Emulator) -> None:
    reply = await say(bot, emulator, "zhangwei", "报修 颜色:红")
    assert "格式不对" in reply and "地点、设备、描述" in reply and "例：报修" in reply
    assert await bot.count(Conversation) == 0 and await bot.count(Ticket) == 0


async def test_handler_error_rolls_back_and_apologises(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, wall_clock: RunningClock
) -> None:
    broken = Router("broken")

    @broken.command("explode", aliases=("爆炸",))
    async def explode(ctx: Ctx, values: dict[str, str]) -> None:
        ctx.session.add(
            Ticket(
                reporter=ctx.user,
                location="x",
                category="computer",
                description="half",
                status="open",
                created_at=ctx.now(),
            )
        )
        await ctx.session.flush()
        ctx.reply("nothing_to_cancel")
        raise RuntimeError("bug in a handler")

    emulator.clock = lambda: wall_clock.now().timestamp()
    bot = await start_bot(
        make_config(emulator.base_url, db_url), http, clock=wall_clock, routers=(*ROUTERS, broken), run_jobs=False
    )
    try:
        reply = await say(bot, emulator, "zhaolei", "爆炸")
        assert "错误编号" in reply and "没有正在填写" not in reply
        assert await bot.count(Ticket) == 0
        event = await _only_event(bot)
        assert event.error_id and event.error_id in reply
    finally:
        await bot.stop()


async def _only_event(bot: Bot) -> InboundEvent:
    async with bot.app[PIPELINE].sessions() as s:
        return (await s.execute(select(InboundEvent))).scalar_one()


async def test_a_typed_command_while_a_question_waits_is_never_written_into_a_field(
    bot: Bot, emulator: Emulator
) -> None:
    assert "在哪里" in await say(bot, emulator, "liyan", "报修 设备:电脑 描述:不开机")
    # A typo'd new report while the bot waits for the place: asked, not taken as the place.
    reply = await say(bot, emulator, "liyan", "保修 地点:302 设备:投影 描述:投影仪不亮")
    assert "看起来是一条新的“报修”" in reply and "回复“是”" in reply and "描述=不开机" in reply
    assert await bot.count(Ticket) == 0
    reply = await say(bot, emulator, "liyan", "是")
    assert "编号 #1" in reply and "302" in reply and "投影" in reply
    async with bot.app[PIPELINE].sessions() as s:
        ticket = (await s.execute(select(Ticket))).scalar_one()
    assert (ticket.location, ticket.category, ticket.description) == ("302", "projector", "投影仪不亮")
    assert await bot.count(Conversation) == 0


async def test_keeping_the_open_form_asks_its_question_again(bot: Bot, emulator: Emulator) -> None:
    await say(bot, emulator, "liyan", "报修 设备:音响 描述:没声音")
    assert "回复“是”" in await say(bot, emulator, "liyan", "借舞台 场地:本部礼堂")
    assert "请回复“是”或“否”" in await say(bot, emulator, "liyan", "嗯？")
    reply = await say(bot, emulator, "liyan", "否")
    assert "在哪里" in reply and "还在填写“报修”" in reply
    assert "编号 #1" in await say(bot, emulator, "liyan", "学前楼钢琴室")


async def test_plain_answers_still_fill_the_field(bot: Bot, emulator: Emulator) -> None:
    await say(bot, emulator, "liyan", "报修 地点:学前楼 描述:没声音")
    assert "编号 #1" in await say(bot, emulator, "liyan", "音响")  # not mistaken for a command
