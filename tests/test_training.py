"""Digital-campus training and exams (W8, issue 13 point 1): notices, attendance, scores, make-up,
the list for 人资部, the usage check and 我的培训 — over encrypted HTTP on a fake clock."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from bot.emulator.server import Emulator
from storage.models import (
    AttendanceReply,
    OutboxMessage,
    OutboxStatus,
    PlatformUsage,
    Timer,
    TrainingAttendance,
    TrainingReport,
    TrainingScore,
    TrainingSession,
)
from tests.conftest import make_config, start_bot
from tests.scene import Scene
from tests.test_cli_outbox import config_file, run_cli

__all__ = ["config_file"]  # the operator's --config, on the test's database

# The scene starts 2026-11-25 09:00 in Shanghai (a Wednesday). 孙悦 is the 数字化校园建设部 staff,
# 陈浩 the director, 高洁 人资部. 信息技术系: 马军, 杨帆, 张伟, 赵磊.
IT = ["majun", "yangfan", "zhangwei", "zhaolei"]
NOTICE = "培训通知 模块:办公OA 对象:信息技术系 时间:11月27日 14:30 地点:行政楼三楼会议室"


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour - 8, minute, tzinfo=UTC)  # hour >= 8


async def at(scene: Scene, clock: FakeClock, when: datetime) -> None:
    clock.advance((when - clock.now()).total_seconds())
    await scene.tick()


async def rows(scene: Scene, model: type, *where: object) -> list:  # type: ignore[type-arg]
    async with scene.bot.app[PIPELINE].sessions() as s:
        found = list((await s.execute(select(model).where(*where))).scalars())
        for r in found:
            s.expunge(r)
        return found


async def test_notice_cards_leave_with_a_reason_and_sign_in(scene: Scene, clock: FakeClock) -> None:
    reply = await scene.say("sunyue", NOTICE)
    assert "已发布“办公OA”全面培训通知（编号 #1）" in reply and "共通知 4 人" in reply
    for who in IT:
        assert scene.got(who, "“办公OA”模块全面培训（编号 #1）") and scene.got(who, "行政楼三楼会议室")
        card = scene.card(who)
        assert card["main_title"]["title"] == "全面培训通知 · 办公OA"
        assert [b["text"] for b in card["button_list"]] == ["参加", "请假"]
    assert not scene.cards("lihua")  # not in 信息技术系

    assert "已确认您参加" in await scene.click("zhangwei", scene.card("zhangwei"), "参加")
    assert scene.update_labels("zhangwei") == ["已确认参加"]
    asked = await scene.click("zhaolei", scene.card("zhaolei"), "请假")
    assert "请假原因是什么" in asked
    assert "已为您请假" in await scene.say("zhaolei", "外出参加技能大赛")
    assert scene.got("sunyue", "赵磊请假，不参加“办公OA”全面培训（#1") and scene.got("sunyue", "外出参加技能大赛")
    assert "已为您请假" in await scene.say("majun", "請假 #1 校区开会")  # Traditional, text fallback
    answers = {a.userid: (a.reply, a.reason) for a in await rows(scene, TrainingAttendance)}
    assert answers["zhangwei"] == (AttendanceReply.ATTEND, "")
    assert answers["zhaolei"] == (AttendanceReply.LEAVE, "外出参加技能大赛")
    assert answers["yangfan"] == (AttendanceReply.PENDING, "")

    # Signing in: not before the day; the trainer for a list; a trainee for themself on the day.
    assert "只能在当天签到" in await scene.say("yangfan", "签到 #1")
    await at(scene, clock, shanghai(27, 14, 20))
    refused = await scene.say("sunyue", "签到 #1 张伟、李华")
    assert "没有签到：李华 不在" in refused
    assert not [a for a in await rows(scene, TrainingAttendance) if a.present]  # nothing recorded
    assert "已到 1/4 人" in await scene.say("sunyue", "签到 #1 张伟")
    assert "已到 2/4 人" in await scene.say("yangfan", "签到 #1")
    assert "只有信息中心的培训人员" in await scene.say("yangfan", "签到 #1 赵磊")
    present = {a.userid for a in await rows(scene, TrainingAttendance) if a.present}
    assert present == {"zhangwei", "yangfan"}

    # The second session of the module: individual tutoring for those who need it.
    reply = await scene.say(
        "sunyue", "培训通知 模块:办公OA 对象:赵磊、马军 时间:11月30日 15:00 地点:三楼机房 场次:辅导"
    )
    assert "个人辅导通知（编号 #2）" in reply
    assert scene.card("zhaolei")["main_title"]["title"] == "个人辅导通知 · 办公OA"
    mine = await scene.say("zhaolei", "我的培训")
    assert "全面培训 #1" in mine and "请假（外出参加技能大赛）" in mine and "个人辅导 #2" in mine


async def test_bad_notices_change_nothing(scene: Scene) -> None:
    assert "只有数字化校园专员、信息中心主任可以使用" in await scene.say("zhangwei", NOTICE)
    reply = await scene.say("sunyue", "培训通知 模块:办公OA 对象:火星系 时间:11月27日 14:30 地点:会议室")
    assert "没找到“火星系”" in reply
    await scene.say("sunyue", "取消")
    reply = await scene.say("sunyue", "培训通知 模块:办公OA 对象:信息技术系 时间:昨天 14:30 地点:会议室")
    assert "已经过去了" in reply
    await scene.say("sunyue", "取消")
    assert await scene.bot.count(TrainingSession) == 0
    assert "没有找到您参加的培训" in await scene.say("zhangwei", "参加 #9")
    assert "没有发布考核安排" in await scene.say("sunyue", "录入成绩 办公OA 张伟 80 80")


async def exam_with_scores(scene: Scene, clock: FakeClock) -> None:
    """Training for 信息技术系, an exam for all four; scores pasted for three, 赵磊 missed it."""
    await scene.say("sunyue", NOTICE)
    reply = await scene.say("sunyue", "考核安排 模块:办公OA 时间:11月28日 9:30 地点:三楼机房")
    assert "考核通知（编号 #2）" in reply and "共通知 4 人" in reply
    assert scene.got("zhaolei", "考核分理论和实操两部分")
    await at(scene, clock, shanghai(28, 11))
    done = await scene.say(
        "sunyue", "导入成绩 模块:办公OA 成绩单:\n姓名\t理论\t实操\n张伟\t85\t90\n马军\t58\t70\n杨帆\t60\t59.5"
    )
    assert "已导入“办公OA”成绩 3 人：通过 1 人，未通过 2 人" in done


async def test_scores_make_up_and_the_list_for_hr(scene: Scene, clock: FakeClock) -> None:
    await exam_with_scores(scene, clock)
    assert scene.got("zhangwei", "理论 85，实操 90，已通过")
    assert scene.got("majun", "理论 58，实操 70，未通过") and scene.got("majun", "另行通知补考")
    # Before any make-up the list cannot go yet.
    assert "请先发布补考安排" in await scene.say("sunyue", "量化名单 模块:办公OA")

    reply = await scene.say("sunyue", "补考安排 模块:办公OA 时间:12月2日 9:30 地点:三楼机房")
    assert "补考通知（编号 #3）" in reply and "共通知 3 人" in reply
    assert {"majun", "yangfan", "zhaolei"} == {
        u for u in IT if scene.card(u)["main_title"]["title"] == "补考通知 · 办公OA"
    }
    assert scene.card("zhangwei")["main_title"]["title"] != "补考通知 · 办公OA"
    # Make-up results: 马军 passes, 杨帆 fails again (a single entry), 赵磊 missed both.
    assert "通过" in await scene.say("sunyue", "录入成绩 办公OA 马军 75 80")
    assert "未通过" in await scene.say("sunyue", "錄入成績 办公OA 杨帆 50 40")
    scores = {(s.userid, s.attempt): s.passed for s in await rows(scene, TrainingScore)}
    assert scores == {
        ("zhangwei", 1): True,
        ("majun", 1): False,
        ("yangfan", 1): False,
        ("majun", 2): True,
        ("yangfan", 2): False,
    }

    # Who missed or failed the make-up is known once it has been held.
    assert "补考还没有举行" in await scene.say("sunyue", "量化名单 模块:办公OA")
    assert await scene.bot.count(TrainingReport) == 0
    await at(scene, clock, datetime(2026, 12, 2, 3, 0, tzinfo=UTC))  # 11:00, the make-up is over
    submitted = await scene.say("sunyue", "量化名单 模块:办公OA")
    assert "2 人：杨帆、赵磊" in submitted
    assert scene.got("chenhao", "考核量化名单") and scene.got("chenhao", "杨帆、赵磊")
    files = [d for d in scene.emu.messages_to("chenhao") if d.msgtype == "file"]
    assert len(files) == 1
    assert not [d for d in scene.emu.messages_to("gaojie") if d.msgtype == "file"]  # not before approval

    decided = await scene.click("chenhao", scene.card("chenhao"), "同意发送")
    assert "已发送人资部" in decided
    assert scene.got("gaojie", "考核量化名单") and scene.got("gaojie", "杨帆、赵磊")
    sent = [d for d in scene.emu.messages_to("gaojie") if d.msgtype == "file"]
    assert len(sent) == 1
    content = scene.emu.media[sent[0].body["file"]["media_id"]]
    sheet = load_workbook(io.BytesIO(content)).worksheets[0]
    table = list(sheet.iter_rows(values_only=True))
    assert list(table[0][:3]) == ["序号", "姓名", "单位"]
    assert [(r[1], r[6]) for r in table[1:]] == [("杨帆", "补考未通过"), ("赵磊", "两次考核均未参加")]
    assert scene.got("sunyue", "已发送人资部")
    # A second click changes nothing.
    assert "已发送人资部" in await scene.click("chenhao", scene.card("chenhao"), "退回")
    assert [r.status for r in await rows(scene, TrainingReport)] == ["sent"]

    mine = await scene.say("yangfan", "我的培训")
    assert "考核成绩：理论 60，实操 59.5，未通过" in mine and "补考成绩：理论 50，实操 40，未通过" in mine


async def test_a_bad_row_imports_nothing(scene: Scene, clock: FakeClock) -> None:
    await scene.say("sunyue", NOTICE)
    await scene.say("sunyue", "考核安排 模块:办公OA 时间:11月28日 9:30 地点:三楼机房")
    refused = await scene.say(
        "sunyue", "导入成绩 模块:办公OA 成绩单:\n张伟 85 90\n王小二 70 70\n马军 101 80\n张伟 60 60\n杨帆 八十 70"
    )
    assert "一行都没有导入" in refused
    assert "第 2 行：人员名单里没有“王小二”" in refused
    assert "第 3 行：分数 101 不在 0 到 100 之间" in refused
    assert "第 4 行：张伟重复了（第 1 行已有）" in refused
    assert "第 5 行：“八十”不是分数" in refused
    assert await scene.bot.count(TrainingScore) == 0
    assert not scene.got("zhangwei", "您的数字化校园平台")
    # A single entry out of range is asked again, with what is allowed.
    assert "0 到 100 之间" in await scene.say("sunyue", "录入成绩 办公OA 张伟 85 120")
    await scene.say("sunyue", "取消")
    assert await scene.bot.count(TrainingScore) == 0


async def test_usage_check_in_the_second_month_and_state_survives_a_restart(
    scene: Scene, clock: FakeClock, emulator: Emulator, db_url: str, http: aiohttp.ClientSession
) -> None:
    await exam_with_scores(scene, clock)
    timers = await rows(scene, Timer, Timer.kind == "training_usage_check")
    # Passed in November: checked at 09:00 on the first working day of January (1-3 are holidays).
    assert [t.due_at for t in timers] == [datetime(2027, 1, 4, 1, 0, tzinfo=UTC)]
    await scene.bot.stop()

    # The bot restarts; the sessions, answers and scores are still there and the timer fires.
    scene.bot = await start_bot(make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False)
    mine = await scene.say("zhangwei", "我的培训")
    assert "全面培训 #1" in mine and "考核 #2" in mine and "理论 85，实操 90，通过" in mine
    await at(scene, clock, datetime(2027, 1, 5, 2, 0, tzinfo=UTC))
    assert scene.got("sunyue", "请检查各单位的平台使用情况（信息技术系）")
    reply = await scene.say("sunyue", "使用情况 单位:信息技术系 模块:办公OA 情况:每天登录使用")
    assert "已记录信息技术系“办公OA”使用情况" in reply
    assert [(u.unit, u.note) for u in await rows(scene, PlatformUsage)] == [("it", "每天登录使用")]
    assert "没找到单位“火星系”" in await scene.say("sunyue", "使用情况 单位:火星系 模块:办公OA 情况:好")


async def test_scores_imported_from_a_file_on_the_command_line(scene: Scene, tmp_path: Path, config_file: Path) -> None:
    await scene.say("sunyue", NOTICE)
    await scene.say("sunyue", "考核安排 模块:办公OA 时间:11月28日 9:30 地点:三楼机房")
    # A CSV with a bad row: the row is named, nothing is imported.
    bad = tmp_path / "scores.csv"
    bad.write_text("姓名,理论,实操\n张伟,85,90\n马军,85,-3\n", encoding="utf-8")
    code, out = await run_cli(
        "import-scores", str(bad), "--module", "办公OA", "--by", "sunyue", "--config", str(config_file)
    )
    assert code == 1 and "nothing imported" in out and "第 3 行：分数 -3 不在 0 到 100 之间" in out
    assert await scene.bot.count(TrainingScore) == 0
    # The same scores as .xlsx, columns in another order, fixed: imported, each person told.
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (["序号", "实操", "姓名", "理论"], [1, 90, "张伟", 85], [2, 55, "马军", 85]):
        sheet.append(row)
    good = tmp_path / "scores.xlsx"
    book.save(good)
    code, out = await run_cli(
        "import-scores", str(good), "--module", "办公OA", "--by", "sunyue", "--config", str(config_file)
    )
    assert code == 0 and "2 scores imported (1 passed, 1 failed)" in out, out
    # Queued for the running bot (the command line runs on the machine's clock, the bot here on a
    # fake one, so read the queue rather than wait for delivery).
    queued = {
        m.recipient: m.payload["text"]["content"]
        for m in await rows(scene, OutboxMessage, OutboxMessage.status == OutboxStatus.PENDING)
    }
    assert "理论 85，实操 90，已通过" in queued["user:zhangwei"] and "理论 85，实操 55，未通过" in queued["user:majun"]
    # Only the 数字化校园 staff may import.
    code, out = await run_cli(
        "import-scores", str(good), "--module", "办公OA", "--by", "zhangwei", "--config", str(config_file)
    )
    assert code == 2


def xlsx(*rows: list[object]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_a_score_file_sent_in_the_chat(scene: Scene, clock: FakeClock) -> None:
    await scene.say("sunyue", NOTICE)
    await scene.say("sunyue", "考核安排 模块:办公OA 时间:11月28日 9:30 地点:三楼机房")
    assert "分钟内把“办公OA”的成绩表" in await scene.say("sunyue", "导入成绩 模块:办公OA")

    async def send(media_id: str, name: str, data: bytes) -> str:
        before = len(scene.texts("sunyue"))
        scene.emu.add_inbound_media(media_id, data, name)
        assert (await scene.bot.sender.file("sunyue", media_id, name)).status == 200
        await scene.bot.settle()
        await scene.tick()  # the file is downloaded: its `then` timer imports it
        return "\n".join(scene.texts("sunyue")[before:])

    assert "不是 .xlsx 或 .csv" in await send("M1", "成绩.pdf", b"%PDF")
    bad = xlsx(["姓名", "理论", "实操"], ["张伟", 85, 90], ["李四", 70, 70])
    refused = await send("M2", "成绩.xlsx", bad)
    assert "收到“成绩.xlsx”" in refused and "第 3 行：人员名单里没有“李四”" in refused and "一行都没有导入" in refused
    assert await scene.bot.count(TrainingScore) == 0
    # The window closed with that file: the corrected one needs 导入成绩 again.
    good = xlsx(["姓名", "理论", "实操"], ["张伟", 85, 90], ["赵磊", 70, 40])
    await send("M3", "成绩2.xlsx", good)
    assert await scene.bot.count(TrainingScore) == 0
    await scene.say("sunyue", "导入成绩 模块:办公OA")
    done = await send("M4", "成绩2.xlsx", good)
    assert "已导入“办公OA”成绩 2 人：通过 1 人，未通过 1 人" in done
    assert scene.got("zhaolei", "理论 70，实操 40，未通过")
    # A file sent by someone with no window open is not a score file.
    scene.emu.add_inbound_media("M5", good, "成绩2.xlsx")
    await scene.bot.sender.file("zhangwei", "M5", "成绩2.xlsx")
    await scene.bot.settle()
    assert await scene.bot.count(TrainingScore) == 2
