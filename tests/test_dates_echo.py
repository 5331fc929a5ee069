"""Every date the bot reads back reads like 12月4日（周五）, times like 14:00-16:00: the stage slot,
the footage span, the audio-class day, the loan return date, delegation dates, deadlines — one
format across all texts and cards (over encrypted HTTP). The scene starts on Wednesday
2026-11-25 09:00 in Shanghai."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from bot.render import Renderer
from bot.router import Registry
from handlers import ROUTERS
from handlers.labels import show_day, show_moment, show_span
from tests.scene import Scene

RENDERER = Renderer(Registry(ROUTERS).template_dirs)
SHANGHAI = ZoneInfo("Asia/Shanghai")
FLAGS = "户外:否 校外:否 重大活动:否"


def everything(scene: Scene) -> list[str]:
    """Every text and card the bot sent, as text."""
    return [json.dumps(d.body, ensure_ascii=False) for d in scene.emu.delivered]


def one_format(scene: Scene) -> None:
    """No date without its weekday, no ISO date, no 11-26 09:00 anywhere the bot wrote (examples of
    what to type, after 例如 or 例：, are input, not a date read back)."""
    for text in everything(scene):
        for m in re.finditer(r"\d{1,2}月\d{1,2}日", text):
            line = re.split(r"\\n|。", text[: m.start()])[-1]
            if any(w in line for w in ("例如", "例：", "这样写")):
                continue
            assert text[m.end() : m.end() + 2] == "（周", (m.group(0), text)
        assert not re.search(r"\d{4}-\d{2}-\d{2}", text), text
        assert not re.search(r"(?<![\d:])\d{2}-\d{2} \d{2}:\d{2}", text), text


def test_the_format() -> None:
    assert show_day(RENDERER, date(2026, 12, 4)) == "12月4日（周五）"
    assert show_day(RENDERER, date(2026, 11, 30)) == "11月30日（周一）"
    assert show_day(RENDERER, date(2026, 11, 29)) == "11月29日（周日）"
    start, end = datetime(2026, 12, 4, 14, 0, tzinfo=SHANGHAI), datetime(2026, 12, 4, 16, 0, tzinfo=SHANGHAI)
    assert show_span(RENDERER, start, end) == "12月4日（周五）14:00-16:00"
    assert show_moment(RENDERER, datetime(2026, 12, 4, 9, 5, tzinfo=SHANGHAI)) == "12月4日（周五）09:05"


async def test_stage_booking_reads_back_the_day_and_the_slot(scene: Scene) -> None:
    reply = await scene.say("zhaolei", "借舞台 场地:本部礼堂 日期:周五 活动:合唱排练")
    assert "日期=11月27日（周五）" in reply  # a bare weekday is the next one
    reply = await scene.say("zhaolei", f"时间:下午2点到4点 {FLAGS}")
    assert "本部礼堂，11月27日（周五）14:00-16:00" in reply
    card = scene.card("chenhao")
    assert ("时间", "11月27日（周五）14:00-16:00") in [
        (h["keyname"], h["value"]) for h in card["horizontal_content_list"]
    ]
    reply = await scene.say("songtao", "借舞台 场地:本部礼堂 日期:下周五 活动:技能展示")
    assert "日期=12月4日（周五）" in reply
    await scene.say("songtao", "取消")
    reply = await scene.say("liyan", "借舞台 场地:本部报告厅 时间:12月1日 14:00-16:00 活动:讲座")
    assert "时间=12月1日（周二）14:00-16:00" in reply
    one_format(scene)


async def test_a_clash_offers_free_slots_in_the_same_format(scene: Scene) -> None:
    await scene.say("zhaolei", f"借舞台 场地:本部礼堂 日期:明天 时间:14:00-16:00 活动:合唱排练 {FLAGS}")
    reply = await scene.say("songtao", f"借舞台 场地:本部礼堂 日期:明天 时间:15:00-17:00 活动:展示 {FLAGS}")
    assert "11月26日（周四）14:00-16:00，审批中" in reply and "· 11月26日（周四）16:00-18:00" in reply
    assert "可回复“时间:16:00-18:00”" in reply
    one_format(scene)


async def test_footage_span_is_read_back_with_its_weekday(scene: Scene) -> None:
    reply = await scene.say("zhaolei", "调监控 地点:实训楼二楼走廊 时间:昨天 下午2点到3点")
    assert "时间=11月24日（周二）14:00-15:00" in reply
    await scene.say("zhaolei", "原因:学生手机丢失 类型:教职工")
    assert "实训楼二楼走廊，11月24日（周二）14:00-15:00" in scene.last_text("zhaolei")
    card = scene.card("majun")
    assert ("时段", "11月24日（周二）14:00-15:00") in [
        (h["keyname"], h["value"]) for h in card["horizontal_content_list"]
    ]
    one_format(scene)


async def test_audio_class_day_is_read_back_with_its_weekday(scene: Scene) -> None:
    reply = await scene.say("zhangwei", "音频课堂 日期:明天 时间:19:30 标题:Excel 入门")
    assert "日期=11月26日（周四）" in reply
    await scene.say("zhangwei", "主讲:周燕 链接:https://example.edu.cn/a/1 群:24级信息技术在校生群")
    assert "11月26日（周四）推送到24级信息技术在校生群" in scene.last_text("zhangwei")
    card = scene.card("liuyang")
    assert ("日期", "11月26日（周四）") in [(h["keyname"], h["value"]) for h in card["horizontal_content_list"]]
    one_format(scene)


async def test_loan_return_date_is_read_back_with_its_weekday(scene: Scene) -> None:
    reply = await scene.say("zhaolei", "领电脑 用途:临时借用 数量:1 配置:笔记本")
    assert "用途=临时借用" in reply and "归还日期" in reply
    reply = await scene.say("zhaolei", "下周五")
    assert "临时借用 1 台，12月4日（周五）归还" in reply
    card = scene.card("yangfan")
    assert ("归还", "12月4日（周五）") in [(h["keyname"], h["value"]) for h in card["horizontal_content_list"]]
    one_format(scene)


async def test_delegation_dates_are_read_back_with_their_weekdays(scene: Scene) -> None:
    reply = await scene.say("chenhao", "设置代理 刘洋 明天 下周一")
    assert "11月26日（周四）至11月30日（周一）期间" in reply and "刘洋" in reply
    assert "陈浩在11月26日（周四）至11月30日（周一）期间不在" in scene.last_text("liuyang")
    assert "没有审批权限" in await scene.say("chenhao", "设置代理 赵磊 明天 后天")
    one_format(scene)


async def test_deadlines_and_waiting_times_use_the_same_format(scene: Scene) -> None:
    reply = await scene.say("zhaolei", "报修 地点:机房A 设备:电脑 描述:无法开机")
    assert "最晚 11月26日（周四）09:00" in reply
    card = scene.card("lihua")
    assert ("时限", "11月26日（周四）09:00") in [(h["keyname"], h["value"]) for h in card["horizontal_content_list"]]
    assert "最晚 11月26日（周四）09:00 前处理完成" in await scene.say("zhaolei", "进度 #1")
    await scene.say("zhaolei", f"借舞台 场地:本部礼堂 日期:明天 时间:14:00-16:00 活动:排练 {FLAGS}")
    assert "11月25日（周三）09:00起" in await scene.say("chenhao", "待办")
    one_format(scene)
