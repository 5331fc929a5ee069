"""微课 over HTTP (W10): the published plan and its reminders, clashes, production steps, external
videos through the draft review engine (pass / re-record), clicks, the monthly summary, the
register, and a restart in the middle."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
from openpyxl import load_workbook
from sqlalchemy import select

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from bot.emulator.server import Emulator
from handlers.registers import export, find_register
from storage.models import Draft, DraftVersion, MicroLesson, MicroLessonClicks, Timer
from tests.conftest import make_config, start_bot
from tests.scene import Scene

TZ = ZoneInfo("Asia/Shanghai")  # the scene starts Wednesday 2026-11-25 09:00 there
PLAN = "微课计划 教师:张伟 课程:Python程序设计 主题:循环语句 时间:11月27日 14:00-14:40 地点:本部录播室"
VIDEO = "微课投稿 教师:王芳（市实验幼儿园） 课程:幼儿心理学 主题:儿童注意力的发展 视频:https://pan.example.cn/s/abc123"


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ)


async def go(scene: Scene, clock: FakeClock, when: datetime) -> None:
    clock.advance((when - clock.now()).total_seconds())
    await scene.tick()


async def lessons(scene: Scene) -> list[MicroLesson]:
    async with scene.bot.app[PIPELINE].sessions() as s:
        return list((await s.execute(select(MicroLesson).order_by(MicroLesson.id))).scalars())


def buttons(card: dict[str, object]) -> list[str]:
    return [b["text"] for b in card["button_list"]]  # type: ignore[index, union-attr]


async def test_plan_published_reminded_produced_uploaded_and_summarised(
    scene: Scene, clock: FakeClock, tmp_path: Path
) -> None:
    reply = await scene.say("sunyu", PLAN)
    assert (
        "微课 #1 已排期并公示给张伟老师：Python程序设计《循环语句》，11月27日（周五）14:00-14:40，本部录播室" in reply
    )
    assert "11月26日（周四）16:00（前一天）、13:30（开始前 30 分钟）" in reply
    assert scene.got("zhangwei", "【微课录制安排】张伟老师，您好！孙宇为您安排了微课录制")
    card = scene.card("zhangwei")
    assert card["main_title"]["title"] == "微课录制安排 #1" and buttons(card) == ["收到"]
    assert "已确认" in await scene.click("zhangwei", card, "收到")
    assert scene.update_labels("zhangwei") == ["已确认收到"]
    assert (await lessons(scene))[0].acknowledged_at is not None

    await go(scene, clock, at(26, 16))
    assert scene.got("zhangwei", "提醒：明天有您的微课录制——Python程序设计《循环语句》")
    await go(scene, clock, at(27, 13, 30))
    assert scene.got("zhangwei", "提醒：您的微课录制马上开始")
    assert scene.got("sunyu", "提醒：微课 #1 马上开始录制")

    # After the slot the planner gets the next step as a card; the steps go in order.
    await go(scene, clock, at(27, 14, 40))
    step = scene.card("sunyu")
    assert step["main_title"]["title"] == "微课 #1《循环语句》" and buttons(step) == ["已录制"]
    assert "下一步：已剪辑" in await scene.click("sunyu", step, "已录制")
    reply = await scene.say("sunyu", "微课进度 #1 已上传 信息技术/Python基础")
    assert "下一步应登记“已剪辑”，不能直接登记“已上传”" in reply
    assert buttons(scene.card("sunyu")) == ["已剪辑"]
    await scene.click("sunyu", scene.card("sunyu"), "已剪辑")
    assert "已经登记过“已剪辑”" in await scene.say("liting", "微课进度 #1 剪辑")
    assert "下一步：已上传" in await scene.say("liting", "微課進度 #1 格式转换")
    assert "网校的哪个分类" in await scene.click("liting", scene.card("liting"), "已上传")
    assert "全部完成，已通知张伟老师" in await scene.say("liting", "信息技术/Python基础")
    assert scene.got("zhangwei", "您的微课《循环语句》（Python程序设计）已上传网校，分类：信息技术/Python基础")
    [m] = await lessons(scene)
    assert (m.stage, m.category) == ("uploaded", "信息技术/Python基础")
    assert m.recorded_at and m.edited_at and m.converted_at and m.uploaded_at

    # Clicks are the 网校's running total: validated, never lower than the last entry.
    assert "累计 120 次（比上次多 120 次），评论：讲解清楚" in await scene.say(
        "sunyu", "微课点击 #1 次数:120 评论:讲解清楚"
    )
    assert "上次登记的是 120 次，这次是 100 次" in await scene.say("sunyu", "微课点击 #1 次数:100")
    assert "点击量要写整数" in await scene.say("sunyu", "微课点击 #1 次数:很多")
    await scene.say("sunyu", "取消")
    assert await scene.bot.count(MicroLessonClicks) == 1

    # On the 1st the head of 教学教研中心 gets last month's summary.
    await go(scene, clock, at(1, 9, 30, month=12))
    summary = "\n".join(scene.texts("yeqing"))
    assert "【2026年11月微课情况】（教学教研中心）" in summary
    assert "本月录制 1 节，上传网校 1 节。" in summary
    assert "· #1 张伟 Python程序设计《循环语句》 120 / +120；评论：讲解清楚" in summary

    async with scene.bot.app[PIPELINE].sessions() as s:
        path = tmp_path / "micro.xlsx"
        assert (
            await export(
                s, scene.bot.config, find_register("微课录制情况登记表"), date(2026, 11, 1), date(2026, 11, 30), path
            )
            == 1
        )  # type: ignore[arg-type]
    ws = load_workbook(path).active
    assert [c.value for c in ws[2]] == [
        "序号", "教师", "课程", "主题", "录制时间", "地点", "剪辑", "格式转换", "上传/网校分类", "点击量", "备注"
    ]  # fmt: skip
    row = [c.value for c in ws[3]]
    assert row[:6] == [1, "张伟", "Python程序设计", "循环语句", "2026-11-27 14:00-14:40", "本部录播室"]
    assert row[6] and row[7] and row[8].endswith("信息技术/Python基础") and row[9] == 120
    assert row[10] == "评论：讲解清楚"


async def test_a_room_or_teacher_already_booked_is_refused_with_the_clash(scene: Scene, clock: FakeClock) -> None:
    await scene.say("sunyu", PLAN)
    reply = await scene.say(
        "liting", "微课计划 教师:李燕 课程:幼儿歌曲 主题:律动 时间:11月27日 14:20-15:00 地点:本部录播室"
    )
    assert "这个安排有冲突" in reply
    assert "微课 #1 张伟老师《循环语句》，11月27日（周五）14:00-14:40，本部录播室（本部录播室已被占用）" in reply
    assert "或换地点" in reply
    assert len(await lessons(scene)) == 1
    # A new time (a start only: the configured 40 minutes) plans it.
    assert "微课 #2 已排期" in await scene.say("liting", "时间:11月27日 15:00")
    second = (await lessons(scene))[1]
    assert (second.start_at, second.end_at) == (at(27, 15), at(27, 15, 40))

    # The same teacher in another room at the same time is a clash too.
    reply = await scene.say(
        "liting", "微课计划 教师:张伟 课程:Python程序设计 主题:函数 时间:11月27日 14:30-15:10 地点:东湖校区录播室"
    )
    assert "张伟老师这时已有录制" in reply and "或换地点" not in reply
    assert "已取消" in await scene.say("liting", "取消")
    assert len(await lessons(scene)) == 2
    assert not scene.got("zhangwei", "函数")

    # A cancelled plan frees its slot and tells the teacher; it is never reminded.
    assert "这个时段已释放" in await scene.say("sunyu", "取消微课 #1")
    assert scene.got("zhangwei", "孙宇取消了您的微课录制：Python程序设计《循环语句》")
    assert scene.update_labels("zhangwei") == ["已取消"]
    assert "只有还没录制的排期可以取消" in await scene.say("sunyu", "取消微课 #1")
    assert "微课 #3 已排期" in await scene.say(
        "liting", "微课计划 教师:张伟 课程:Python程序设计 主题:函数 时间:11月27日 14:00-14:40 地点:本部录播室"
    )
    await go(scene, clock, at(27, 13, 30))
    reminded = [t for t in scene.texts("zhangwei") if "马上开始" in t]
    assert len(reminded) == 1 and "《函数》" in reminded[0]


async def test_bad_input_gets_the_form_and_an_example_and_changes_nothing(scene: Scene) -> None:
    reply = await scene.say("sunyu", "微课计划 教师:王大锤 课程:数学 主题:函数 时间:11月27日 14:00 地点:本部录播室")
    assert "没找到“王大锤”这位本校教师" in reply and "微课投稿" in reply
    assert "请写上日期" in await scene.say(
        "liting", "微课计划 教师:李燕 课程:音乐 主题:节奏 时间:14:00 地点:本部录播室"
    )
    assert "已经过去" in await scene.say("liting", "时间:11月24日 14:00")
    assert "没找到“操场”这个录制地点。可选：本部录播室、东湖校区录播室" in await scene.say(
        "guoqing", "微课计划 教师:李燕 课程:音乐 主题:节奏 时间:明天 10:00 地点:操场"
    )
    malformed = await scene.say("guoqing", "微课计划 随便写点什么")
    assert "微课计划 教师:张伟 课程:Python程序设计 主题:循环语句 时间:12月3日 14:00-14:40 地点:本部录播室" in malformed
    assert "“微课计划”只有微课视频编辑部可以使用" in await scene.say("zhaolei", PLAN)
    await scene.say("sunyu", "取消")
    assert "没有找到微课 #9" in await scene.say("sunyu", "微课进度 #9 已剪辑")
    assert "没看懂“做好了”" in await scene.say("sunyu", "微课进度 #9 做好了")
    assert (
        await scene.bot.count(MicroLesson) == 0 and await scene.bot.count(Timer, Timer.kind.like("microlesson%")) == 0
    )
    assert not scene.texts("zhangwei") and not scene.texts("liyan")


async def test_external_video_is_reviewed_with_a_new_version_after_re_recording(scene: Scene) -> None:
    reply = await scene.say("sunyu", VIDEO)
    assert "校外教师王芳（市实验幼儿园）的微课视频已登记为微课 #1：幼儿心理学《儿童注意力的发展》" in reply
    assert "郭庆、孙宇、李婷审核" in reply
    card = scene.card("liting")
    assert card["main_title"]["title"] == "校外微课视频审核" and buttons(card) == ["通过", "重新录制"]
    assert "要等视频审核通过后才能登记进度" in await scene.say("sunyu", "微课进度 #1 已剪辑")

    assert "· 稿件 #1《儿童注意力的发展》" in await scene.say("liting", "待办")  # the draft the review runs on
    assert "请写重录意见" in await scene.click("liting", card, "重新录制")
    assert "已要求重新录制" in await scene.say("liting", "声音太小，后半段画面模糊")
    assert scene.got("sunyu", "被李婷要求重新录制。\n意见：声音太小，后半段画面模糊")
    assert scene.update_labels("guoqing") == ["已要求重录·李婷"]  # every reviewer's card closes
    assert (await lessons(scene))[0].stage == "redo"
    reply = await scene.say("sunyu", "微课重交 #1 视频:https://pan.example.cn/s/def456")
    assert "微课 #1（第2版）" in reply and "郭庆、孙宇、李婷审核" in reply
    assert "只有被要求重新录制的视频才能重交" in await scene.say("sunyu", "微课重交 #1 视频:https://pan.example.cn/s/x")

    await scene.click("guoqing", scene.card("guoqing"), "通过")
    assert scene.got("sunyu", "第2版）审核通过")
    assert buttons(scene.card("sunyu")) == ["已剪辑"]  # recorded by the teacher: editing is next
    assert "现在是“已录制”，没有待审核的视频" in await scene.say("liting", "微课通过 #1")
    async with scene.bot.app[PIPELINE].sessions() as s:
        d = (await s.execute(select(Draft))).scalar_one()
        versions = list((await s.execute(select(DraftVersion).order_by(DraftVersion.version))).scalars())
    assert (d.kind, d.status) == ("microlesson", "accepted")
    assert [v.text_review["status"] for v in versions] == ["returned", "passed"]
    assert "abc123" in versions[0].body and "def456" in versions[1].body  # every version kept
    [m] = await lessons(scene)
    assert (m.stage, m.link, m.external) == ("recorded", "https://pan.example.cn/s/def456", True)
    assert "“微课重录”只有微课视频编辑部可以使用" in await scene.say("zhaolei", "微课重录 #1 不行")


async def test_the_plan_and_its_reminders_survive_a_restart(
    scene: Scene, clock: FakeClock, emulator: Emulator, db_url: str, http: aiohttp.ClientSession
) -> None:
    await scene.say("sunyu", PLAN)
    card = scene.card("zhangwei")
    await scene.bot.stop()
    bot = await start_bot(make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False)
    try:
        again = Scene(bot, emulator)
        assert "已确认" in await again.click("zhangwei", card, "收到")
        await go(again, clock, at(26, 16))
        assert again.got("zhangwei", "提醒：明天有您的微课录制")
        await go(again, clock, at(27, 14, 40))
        assert "下一步：已剪辑" in await again.click("sunyu", again.card("sunyu"), "已录制")
        assert "· #1 张伟 Python程序设计《循环语句》 已录制" in await again.say("sunyu", "微课列表")
    finally:
        await bot.stop()


async def test_several_lines_plan_several_lessons_or_none(scene: Scene) -> None:
    bad = await scene.say(
        "sunyu",
        "微课计划\n"
        "教师:张伟 课程:Python程序设计 主题:循环语句 时间:11月27日 14:00-14:40 地点:本部录播室\n"
        "教师:李燕 课程:幼儿歌曲 主题:律动 时间:11月27日 14:30 地点:本部录播室",
    )
    assert "第 2 行有冲突（整份计划都没有保存）" in bad and "与第 1 行同一时间" in bad
    assert "缺少：地点" in await scene.say(
        "sunyu",
        "微课计划\n教师:张伟 课程:Python 主题:循环 时间:11月27日 14:00\n"
        "教师:李燕 课程:歌曲 主题:律动 时间:11月28日 10:00",
    )
    wrong = await scene.say(
        "sunyu",
        "微课计划\n"
        "教师:张伟 课程:Python程序设计 主题:循环语句 时间:11月27日 14:00-14:40 地点:本部录播室\n"
        "教师:王大锤 课程:数学 主题:函数 时间:11月28日 10:00 地点:本部录播室",
    )
    assert "第 2 行没有排期（整份计划都没有保存）" in wrong and "没找到“王大锤”这位本校教师" in wrong
    assert await scene.bot.count(MicroLesson) == 0 and not scene.texts("zhangwei")
    reply = await scene.say(
        "sunyu",
        "微课计划\n"
        "教师:张伟 课程:Python程序设计 主题:循环语句 时间:11月27日 14:00-14:40 地点:本部录播室\n"
        "教师:李燕 课程:幼儿歌曲 主题:律动 时间:11月27日 14:00-14:40 地点:东湖校区录播室",
    )
    assert "已排期 2 节微课" in reply and "· #2 李燕 幼儿歌曲《律动》" in reply
    assert scene.card("zhangwei")["main_title"]["title"] == "微课录制安排 #1"
    assert scene.card("liyan")["main_title"]["title"] == "微课录制安排 #2"
