"""One way to find anything: tickets (报修), requests (申请) and drafts (稿件) keep their own
numbers; 进度 takes a number with or without its kind, 我的申请 lists all three, 待办 shows each
person what waits for them (over encrypted HTTP)."""

from __future__ import annotations

import pytest

from bot.clock import FakeClock
from bot.router import FieldError
from handlers.numbers import Kind, Ref, parse_ref
from storage.models import Ticket, TicketStatus
from tests.assets import register_assets
from tests.scene import Scene

FLAGS = "户外:否 校外:否 重大活动:否"
STAGE = f"借舞台 场地:本部礼堂 日期:明天 时间:14:00-16:00 活动:合唱排练 {FLAGS}"


async def three_kinds_numbered_one(scene: Scene) -> None:
    """赵磊 has 报修 #1 (a projector), 申请 #1 (the stage) and 稿件 #1."""
    assert "报修编号 #1" in await scene.say("zhaolei", "报修 地点:302教室 设备:投影 描述:投影仪不亮")
    assert "申请编号 #1" in await scene.say("zhaolei", STAGE)
    assert "已建稿 #1" in await scene.say("zhaolei", "投稿 标题:合唱节 正文:今天举办合唱节。")


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("#12", Ref(None, 12)),
        ("12", Ref(None, 12)),
        ("#B12", Ref(Kind.TICKET, 12)),
        ("b12", Ref(Kind.TICKET, 12)),
        ("报修 #12", Ref(Kind.TICKET, 12)),
        ("报修单#12", Ref(Kind.TICKET, 12)),
        ("#S7", Ref(Kind.REQUEST, 7)),
        ("申请 #7", Ref(Kind.REQUEST, 7)),
        ("申请#S7", Ref(Kind.REQUEST, 7)),
        ("#G3", Ref(Kind.DRAFT, 3)),
        ("稿件 3", Ref(Kind.DRAFT, 3)),
        ("draft #3", Ref(Kind.DRAFT, 3)),
        ("编号 #5", Ref(None, 5)),
        ("#W3", Ref(Kind.MICROLESSON, 3)),
        ("微课 #3", Ref(Kind.MICROLESSON, 3)),
        ("#H2", Ref(Kind.ACTIVITY, 2)),
        ("活动服务 #2", Ref(Kind.ACTIVITY, 2)),
    ],
)
def test_numbers_with_or_without_their_kind(text: str, ref: Ref) -> None:
    assert parse_ref(text) == ref


@pytest.mark.parametrize("text", ["", "#", "报修", "#X12", "报修 #S12", "十二", "#12a"])
def test_what_is_not_a_number(text: str) -> None:
    with pytest.raises(FieldError):
        parse_ref(text)


async def test_progress_without_a_kind_lists_the_matches_to_pick_from(scene: Scene) -> None:
    await three_kinds_numbered_one(scene)
    reply = await scene.say("zhaolei", "进度 #1")
    assert reply.startswith("编号 #1 有 3 件：")
    assert "· 报修 #1 投影 · 302教室 — 待接单" in reply
    assert "· 申请 #1 舞台使用申请 — 审批中，等待陈浩" in reply
    assert "· 稿件 #1《合唱节》 — 待提交" in reply
    assert "“进度 报修 #1”或“进度 申请 #1”或“进度 稿件 #1”" in reply and "#B1、#S1、#G1" in reply


@pytest.mark.parametrize("ask", ["进度 #B1", "进度 报修 #1", "進度 報修 #1", "status #b1", "进度 报修#1"])
async def test_progress_of_a_ticket_by_its_kind(scene: Scene, ask: str) -> None:
    await three_kinds_numbered_one(scene)
    reply = await scene.say("zhaolei", ask)
    assert reply.startswith("报修 #1（投影，302教室）：待接单")


async def test_progress_of_a_request_and_a_draft_by_their_kind(scene: Scene) -> None:
    await three_kinds_numbered_one(scene)
    for ask in ("进度 #S1", "进度 申请 #1"):
        reply = await scene.say("zhaolei", ask)
        assert reply.startswith("舞台使用申请 #1：审批中") and "下一步：等待陈浩审批" in reply
    for ask in ("进度 #G1", "进度 稿件 #1"):
        reply = await scene.say("zhaolei", ask)
        assert reply.startswith("稿件 #1《合唱节》（第1版）：待提交") and "提交 #1" in reply


async def test_progress_finds_only_what_the_asker_may_see(scene: Scene) -> None:
    await three_kinds_numbered_one(scene)
    # Someone else sees nothing (and learns nothing about what exists).
    assert "没有找到编号 #1 的报修、申请或稿件" in await scene.say("songtao", "进度 #1")
    assert "没有找到编号 #1 的报修" in await scene.say("songtao", "进度 #B1")
    # A computer technician may not see a projector ticket; the stage technician sees the ticket
    # and the stage booking (but not the draft).
    assert "没有找到编号 #1" in await scene.say("lihua", "进度 #1")
    reply = await scene.say("zhanglei", "进度 #1")
    assert (
        "编号 #1 有 2 件" in reply and "报修 #1" in reply and "申请 #1" in reply and "稿件" not in reply.split("：")[1]
    )
    # The director may see all three.
    assert "编号 #1 有 3 件" in await scene.say("chenhao", "进度 #1")


async def test_one_match_shows_its_progress_at_once(scene: Scene) -> None:
    await scene.say("zhaolei", "报修 地点:机房A 设备:电脑 描述:无法开机")
    reply = await scene.say("zhaolei", "进度 #1")
    assert reply.startswith("报修 #1（电脑，机房A）：待接单") and "最晚 11月26日（周四）09:00" in reply
    await scene.say("lihua", "接单 #1")
    assert "处理中，技术员 李华" in await scene.say("zhaolei", "进度 1")


async def test_a_command_about_one_kind_refuses_another_kinds_number(scene: Scene) -> None:
    await three_kinds_numbered_one(scene)
    reply = await scene.say("zhanglei", "接单 #S1")
    assert "“#S1”是申请的编号，这里要填报修编号" in reply
    assert await scene.bot.count(Ticket, Ticket.status == TicketStatus.OPEN) == 1
    assert "您已接单 报修 #1" in await scene.say("zhanglei", "#B1")  # the question is asked again
    assert "是报修的编号，这里要填申请编号" in await scene.say("chenhao", "同意 报修#1")
    await scene.say("chenhao", "取消")
    assert "已同意" in await scene.say("chenhao", "同意 #S1")
    assert "是申请的编号，这里要填稿件编号" in await scene.say("zhaolei", "提交 #S1")
    await scene.say("zhaolei", "取消")
    assert "稿件 #1（第1版）已提交" in await scene.say("zhaolei", "提交 稿件 #1")


async def test_my_requests_lists_tickets_requests_and_drafts_newest_first(scene: Scene) -> None:
    await three_kinds_numbered_one(scene)
    await scene.say("zhaolei", "报修 地点:机房A 设备:电脑 描述:无法开机")
    reply = await scene.say("zhaolei", "我的申请")
    assert reply.index("您的报修：") < reply.index("您的申请：") < reply.index("您的稿件：")
    assert reply.index("报修 #2 电脑 · 机房A — 待接单") < reply.index("报修 #1 投影 · 302教室 — 待接单")
    assert "申请 #1 舞台使用申请 — 审批中，等待陈浩" in reply
    assert "稿件 #1《合唱节》 — 待提交" in reply
    await scene.say("chenhao", "同意 #1")
    assert "申请 #1 舞台使用申请 — 已通过（已预约）" in await scene.say("zhaolei", "我的申请")
    assert await scene.say("zhaolei", "进度") == await scene.say("zhaolei", "我的申请")  # 进度 alone: everything
    assert "您还没有报修、申请或稿件" in await scene.say("songtao", "我的申请")


async def test_todo_for_a_technician_claimable_first_on_his_campus_then_his_own(scene: Scene) -> None:
    await scene.say("zhaolei", "报修 地点:机房A 设备:电脑 描述:无法开机")  # main campus
    await scene.say("songtao", "报修 地点:东湖实训楼 设备:电脑 描述:蓝屏")  # donghu
    await scene.say("songtao", "报修 地点:东湖实训楼 设备:投影 描述:不亮")  # not his skill
    reply = await scene.say("wangpeng", "待办")  # donghu: cctv and computer
    assert "可以接的报修（回复“接单 #编号”）" in reply
    assert reply.index("报修 #2 电脑 · 东湖实训楼") < reply.index("报修 #1 电脑 · 机房A（其他校区）")
    assert "报修 #3" not in reply
    await scene.say("wangpeng", "接单 #2")
    reply = await scene.say("wangpeng", "待办")
    assert "您正在处理的报修" in reply and "· 报修 #2 电脑 · 东湖实训楼" in reply
    assert reply.count("报修 #2") == 1  # no longer claimable
    assert "目前没有待办事项" in await scene.say("zhaolei", "待办")


async def test_todo_for_approvers_reviewers_editors_and_requesters(scene: Scene, clock: FakeClock) -> None:
    await scene.say("zhaolei", STAGE)
    assert "· 申请 #1 舞台使用申请 · 赵磊 · 11月25日（周三）09:00起" in await scene.say("chenhao", "待办")
    await scene.say("zhaolei", "投稿 标题:合唱节 正文:今天举办合唱节。")
    await scene.say("zhaolei", "提交")
    reply = await scene.say("huangli", "待办")
    assert "等您审核的稿件" in reply and "· 稿件 #1《合唱节》 — 文字" in reply
    await scene.say("huangli", "通过 #1 文字")
    assert "等您编辑发布的稿件" in await scene.say("zhouyan", "待办")
    # After the event, the requester is asked how the equipment ran.
    await scene.say("chenhao", "同意 #1")
    assert "目前没有待办事项" in await scene.say("zhaolei", "待办")
    clock.advance(2 * 86400)
    assert "请反馈设备运转情况" in await scene.say("zhaolei", "待办")


async def test_todo_for_operators_and_computer_requests(scene: Scene) -> None:
    await register_assets(scene.bot, "computer", "PC-1")
    await scene.say("huangli", "领电脑 用途:办公 数量:1 配置:i5")
    for who in ("zhengmei", "zhaomin", "wangjianguo", "chenhao"):
        await scene.say(who, "同意 #1")
    assert "等发放的设备" in await scene.say("lihua", "待办")
    await scene.say("lihua", "发放 #1 资产号:PC-1")
    reply = await scene.say("huangli", "待办")
    assert "等您确认领取的设备" in reply and "申请 #1 计算机领取申请（电脑）" in reply
    await scene.say("zhaolei", "调监控 地点:302 时间:昨天 14:00-15:00 原因:丢失 类型:教职工")
    await scene.say("majun", "同意 #2")
    await scene.say("liuyang", "同意 #2")
    assert "等监控室调取的申请" in await scene.say("linxue", "待办")


async def test_progress_and_my_tasks_know_micro_lessons_and_activity_services(scene: Scene) -> None:
    plan = "微课计划 教师:张伟 课程:Python程序设计 主题:循环语句 时间:11月27日 14:00-14:40 地点:本部录播室"
    assert "微课 #1 已排期" in await scene.say("sunyu", plan)  # 孙宇 plans, 张伟 teaches
    ask = "活动服务 活动:技能节开幕式 地点:本部礼堂 日期:明天 时间:9:00-11:00 类型:拍照 联系人:赵磊 电话:13800001234"
    assert "已安排微课视频编辑部郭庆负责" in await scene.say("zhaolei", ask)

    progress = await scene.say("zhangwei", "进度 #W1")
    assert "微课 #1 Python程序设计《循环语句》（张伟）：已排期" in progress
    assert "负责：孙宇；下一步：已录制" in progress
    progress = await scene.say("zhaolei", "进度 活动服务 #1")
    assert "活动服务 #1“技能节开幕式”：已安排" in progress and "负责：郭庆" in progress
    assert "没有找到编号 #1 的微课" in await scene.say("zhaolei", "进度 微课 #1")  # not his
    choices = await scene.say("chenhao", "进度 #1")  # the director may see both
    assert "· 微课 #1 Python程序设计《循环语句》 — 已排期" in choices
    assert "· 活动服务 #1 技能节开幕式 — 已安排" in choices

    assert "已交办 任务 #T1" in await scene.say("chenhao", "交办 给:孙宇 内容:整理素材库 截止:明天 17:00")
    mine = await scene.say("sunyu", "我的任务")  # next to the tasks handed down and the duties
    assert "任务 #T1 整理素材库" in mine and "微课 #1 Python程序设计《循环语句》 — 已排期，下一步：已录制" in mine
    assert "11月27日（周五）14:00-14:40 在本部录播室录制" in await scene.say("zhangwei", "我的任务")
    assert "活动服务 #1 11月26日（周四）09:00-11:00 技能节开幕式" in await scene.say("guoqing", "我的任务")
    assert "您现在没有待完成的任务" in await scene.say("liting", "我的任务")
    await scene.say("zhaolei", "取消活动服务 #H1")  # the letter is understood by the service's own commands
    assert "活动服务" not in await scene.say("guoqing", "我的任务")
