"""Approval scenarios over HTTP with encrypted callbacks from each approver's userid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from storage.models import ApprovalAudit, ComputerIssue, FootageLog, Request, Timer
from tests.assets import register_assets
from tests.conftest import Bot
from tests.scene import Scene

# 2026-11-25 10:00 Asia/Shanghai, a Wednesday.
START = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
STUDENT_FOOTAGE = "调监控 地点:实训楼二楼走廊 时间:昨天 14:00-15:00 原因:学生手机丢失 类型:学生 班级:24级机电技术2班"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


async def request_row(bot: Bot, number: int) -> Request:
    async with bot.app[PIPELINE].sessions() as s:
        req = await s.get(Request, number)
        assert req is not None
        return req


async def audit_actions(bot: Bot, number: int) -> list[tuple[str, str]]:
    async with bot.app[PIPELINE].sessions() as s:
        rows = (
            await s.execute(select(ApprovalAudit).where(ApprovalAudit.request_id == number).order_by(ApprovalAudit.id))
        ).scalars()
        return [(r.actor, r.action) for r in rows]


async def test_student_footage_chain_to_handover(scene: Scene) -> None:
    reply = await scene.say("zhaolei", STUDENT_FOOTAGE)
    assert "编号 #1" in reply and "班主任 → 系主任 → 信息中心主管校长" in reply and "刘娜" in reply
    card = scene.card("liuna")
    assert card["main_title"]["title"] == "监控调取申请 #1"
    assert "赵磊" in card["main_title"]["desc"]
    assert [b["text"] for b in card["button_list"]] == ["同意", "驳回", "转审"]
    assert ("地点", "实训楼二楼走廊") in [(h["keyname"], h["value"]) for h in card["horizontal_content_list"]]
    assert "剩29天覆盖" in [h["value"] for h in card["horizontal_content_list"]]

    assert "已同意" in await scene.click("liuna", card, "同意")
    assert scene.update_labels("liuna") == ["已同意·刘娜"]
    assert "宋涛" in scene.last_text("zhaolei")  # the requester hears who is next
    await scene.click("songtao", scene.card("songtao"), "同意")
    await scene.click("liuyang", scene.card("liuyang"), "同意")
    assert "已审批通过" in scene.last_text("zhaolei")

    # The CCTV operators get a card to retrieve and log the handover.
    op_card = scene.card("linxue")
    assert op_card["main_title"]["title"] == "调取监控 #1" and scene.card("wangpeng")
    assert "调取人" in await scene.click("linxue", op_card, "登记交付")
    await scene.say("linxue", "张伟")
    await scene.say("linxue", "11月25日 11:00")
    await scene.say("linxue", "实训楼二楼走廊摄像头 14:00-15:00")
    assert "已登记申请 #1" in await scene.say("linxue", "U盘拷贝")
    assert "U盘拷贝" in scene.last_text("zhaolei")
    assert scene.update_labels("wangpeng") == ["已登记·林雪"]  # the other operator's card closes
    req = await request_row(scene.bot, 1)
    assert (req.status, req.stage) == ("approved", "done")
    async with scene.bot.app[PIPELINE].sessions() as s:
        log = (await s.execute(select(FootageLog))).scalar_one()
    assert (log.request_id, log.retriever, log.delivery, log.police) == (1, "张伟", "U盘拷贝", False)
    assert [a for _, a in await audit_actions(scene.bot, 1)] == [
        "submit",
        "approve",
        "approve",
        "approve",
        "footage_logged",
    ]
    assert scene.group_deliveries() == []  # nothing about footage ever reaches a group


async def test_staff_footage_chain_with_text_commands(scene: Scene) -> None:
    await scene.say("zhaolei", "调监控 地点:302教室 时间:今天 8:00-9:00 原因:教师物品丢失 类型:教职工")
    assert scene.card("majun")
    assert "下一步由刘洋审批" in await scene.say("majun", "同意 #1")
    assert scene.update_labels("majun") == ["已同意·马军"]  # the text decision closes the card too
    await scene.say("liuyang", "同意 #1 尽快处理")
    assert (await request_row(scene.bot, 1)).status == "approved"


async def test_class_teacher_asking_about_own_class_skips_to_next_level(scene: Scene) -> None:
    await scene.say("zhangwei", "调监控 地点:机房 时间:昨天 9:00-10:00 原因:设备损坏 类型:学生 班级:it2401")
    assert scene.cards("zhangwei") == []
    assert scene.card("majun")


async def test_footage_questions_one_at_a_time_and_retention_warning(scene: Scene) -> None:
    assert "哪里" in await scene.say("zhaolei", "调监控")
    await scene.say("zhaolei", "校门口")
    assert "不确定是上午还是下午" in await scene.say("zhaolei", "10月1日 2点到3点")
    assert "原因" in await scene.say("zhaolei", "10月1日 下午2点到3点")
    await scene.say("zhaolei", "校外车辆剐蹭")
    reply = await scene.say("zhaolei", "教职工")
    assert "编号 #1" in reply and "可能已被覆盖" in reply
    assert "可能已被覆盖" in [h["value"] for h in scene.card("majun")["horizontal_content_list"]]


async def test_footage_is_invisible_to_others(scene: Scene) -> None:
    await scene.say("zhaolei", STUDENT_FOOTAGE)
    assert "没有找到编号 #1" in await scene.say("lihua", "进度 #1")
    assert "没有找到申请 #1" in await scene.say("majun", "同意 #1")
    progress = await scene.say("linxue", "进度 #1")  # operators may see it
    assert "审批中" in progress and "刘娜" in progress
    progress = await scene.say("zhaolei", "进度 #1")
    assert "下一步：等待刘娜审批" in progress


async def test_rejection_by_card_asks_for_a_reason(scene: Scene) -> None:
    await scene.say("zhaolei", STUDENT_FOOTAGE)
    assert "驳回原因" in await scene.click("liuna", scene.card("liuna"), "驳回")
    assert (await request_row(scene.bot, 1)).status == "pending"
    await scene.say("liuna", "时间段不对，应该是周一")
    assert "原因：时间段不对，应该是周一" in scene.last_text("zhaolei")
    assert scene.update_labels("liuna") == ["已驳回·刘娜"]  # updated with the click's response code
    assert (await request_row(scene.bot, 1)).status == "rejected"
    assert scene.cards("songtao") == []
    assert "已经被驳回" in await scene.say("liuna", "同意 #1")


async def test_stale_replayed_and_unauthorized_clicks_change_nothing(scene: Scene) -> None:
    await scene.say("zhaolei", STUDENT_FOOTAGE)
    first = scene.card("liuna")
    await scene.say("zhaolei", "催办 #1")  # liuna gets a second, fresh card
    second = scene.card("liuna")
    assert second["task_id"] != first["task_id"]

    # Unauthorized: majun clicks with liuna's card (a forged task id).
    code = scene.emu.issue_click_code(first["task_id"], "majun")
    await scene.bot.sender.card_click("majun", first["task_id"], first["button_list"][0]["key"], code)
    await scene.bot.settle()
    assert "不是发给您的" in scene.last_text("majun")
    assert (await request_row(scene.bot, 1)).flow["current"] == 0

    stamp = int(scene.bot.sender.clock())  # the clock is frozen: the click below has this CreateTime
    await scene.click("liuna", second, "同意")
    assert scene.card("songtao")

    # Replayed: the same click callback delivered again (WeCom retry or attacker) has no effect.
    before = len(scene.emu.delivered), len(await audit_actions(scene.bot, 1))
    for _ in range(2):
        posted = await scene.bot.sender.card_click(
            "liuna", second["task_id"], second["button_list"][0]["key"], "rc_replay", create_time=stamp
        )
        assert posted.status == 200
    await scene.bot.settle()
    assert (len(scene.emu.delivered), len(await audit_actions(scene.bot, 1))) == before

    # Stale: the older card, now that the step has moved on: refused politely, card refreshed.
    reply = await scene.click("liuna", first, "同意")
    assert "已经处理过了" in reply
    assert scene.update_labels("liuna")[-1] == "此步已处理"
    req = await request_row(scene.bot, 1)
    assert req.flow["current"] == 1 and req.status == "pending"
    actions = [a for _, a in await audit_actions(scene.bot, 1)]
    assert actions.count("approve") == 1
    assert actions.count("refused_approve") == 1 and "refused_click" in actions


async def test_withdraw_closes_every_card(scene: Scene) -> None:
    await scene.say("zhaolei", "调监控 地点:302 时间:今天 8:00-9:00 原因:丢失 类型:教职工")
    assert "只有申请人本人可以撤销" in await scene.say("majun", "撤销 #1")
    assert "已撤销" in await scene.say("zhaolei", "撤销 #1")
    assert scene.update_labels("majun") == ["申请已撤销"]
    assert "撤销" in scene.last_text("majun")
    assert "已经撤销" in await scene.click("majun", scene.card("majun"), "同意")


async def test_transfer_and_nudge_and_todo(scene: Scene, clock: FakeClock) -> None:
    await scene.say("zhaolei", "调监控 地点:302 时间:今天 8:00-9:00 原因:丢失 类型:教职工")
    assert "#1 监控调取申请 · 赵磊" in await scene.say("majun", "待办")
    assert "不能转给" in await scene.say("majun", "转审 #1 赵磊")
    assert "已转给杨帆" in await scene.say("majun", "转审 #1 杨帆")
    assert scene.card("yangfan") and scene.update_labels("majun") == ["已转审·杨帆"]
    assert "杨帆" in scene.last_text("zhaolei")
    assert "目前没有" in await scene.say("majun", "待办")
    assert "已提醒杨帆" in await scene.say("zhaolei", "催办 #1")
    assert len(scene.cards("yangfan")) == 2 and "催办" in scene.last_text("yangfan")
    assert "分钟后" in await scene.say("zhaolei", "催办 #1")
    clock.advance(4 * 3600 + 1)
    assert "已提醒" in await scene.say("zhaolei", "催办 #1")
    assert "只能由申请人" in await scene.say("yangfan", "催办 #1")
    await scene.say("yangfan", "评论 #1 需要哪个机位？")
    assert "需要哪个机位" in scene.last_text("zhaolei")


async def test_the_kind_word_may_come_before_the_number_and_the_rest_is_the_comment(scene: Scene) -> None:
    await scene.say("zhaolei", "调监控 地点:302 时间:今天 8:00-9:00 原因:丢失 类型:教职工")
    # 申请 before #1 names the kind; 好 is the comment, not part of the number.
    assert "下一步由刘洋审批" in await scene.say("majun", "同意 申请 #1 好")
    # Not this kind: said so, nothing decided.
    reply = await scene.say("liuyang", "同意 报修 #1 好")
    assert "是报修的编号，这里要填申请编号" in reply
    assert (await request_row(scene.bot, 1)).status == "pending"
    assert "已同意" in await scene.say("liuyang", "同意 #S1，尽快处理 谢谢")  # a kind letter still works
    async with scene.bot.app[PIPELINE].sessions() as s:
        rows = (await s.execute(select(ApprovalAudit).where(ApprovalAudit.action == "approve"))).scalars()
        assert [(r.actor, r.detail["reason"]) for r in rows] == [("majun", "好"), ("liuyang", "尽快处理 谢谢")]
    assert (await request_row(scene.bot, 1)).status == "approved"
    # The same for the other commands that take a number first.
    await scene.say("zhaolei", "调监控 地点:机房 时间:今天 8:00-9:00 原因:丢失 类型:教职工")
    assert "已转给杨帆" in await scene.say("majun", "转审 申请 #2 杨帆")
    await scene.say("yangfan", "驳回 申请 #2 时间段写得不清楚")
    assert "时间段写得不清楚" in scene.last_text("zhaolei")
    assert (await request_row(scene.bot, 2)).status == "rejected"


async def test_office_computer_chain_issue_and_receipt(scene: Scene) -> None:
    await register_assets(scene.bot, "computer", "PC-001", "PC-002")
    reply = await scene.say("huangli", "领电脑 用途:办公 数量:2 配置:i5/16G")
    assert "科室负责人 → 主管副校长 → 校长 → 信息中心主任" in reply
    for who in ("zhengmei", "zhaomin", "wangjianguo", "chenhao"):
        await scene.click(who, scene.card(who), "同意")
    tech_card = scene.card("lihua")  # a computer technician on the requester's campus
    assert tech_card["main_title"]["title"] == "发放电脑 #1"
    assert scene.cards("hejun") == []  # the other campus's technician is not bothered
    assert "资产号" in await scene.click("lihua", tech_card, "登记发放")
    assert "2 台" in await scene.say("lihua", "PC-001")
    assert "已登记申请 #1" in await scene.say("lihua", "发放 #1 资产号:PC-001 PC-002")
    assert "确认领取 #1" in scene.card("huangli")["main_title"]["desc"]  # the receipt card, with the check
    assert "已确认领取" in await scene.say("huangli", "确认领取 #1")
    async with scene.bot.app[PIPELINE].sessions() as s:
        issue = (await s.execute(select(ComputerIssue))).scalar_one()
        timers = list((await s.execute(select(Timer).order_by(Timer.due_at))).scalars())
    assert issue.assets["numbers"] == ["PC-001", "PC-002"] and issue.confirmed_at is not None
    assert timers == []  # no return date; the term-end and holiday collections follow the calendar
    assert (await request_row(scene.bot, 1)).stage == "done"


async def test_department_loan_chain_with_return_reminder(scene: Scene, clock: FakeClock) -> None:
    await register_assets(scene.bot, "computer", "NB-007")
    assert "归还日期" in await scene.say("zhaolei", "领电脑 用途:临时借用 数量:1 配置:笔记本")
    reply = await scene.say("zhaolei", "12月1日")
    assert "系主管副主任 → 系主任 → 校区督导副校长 → 校长 → 信息中心主任" in reply
    for who in ("yangfan", "majun", "zhaomin", "wangjianguo", "chenhao"):
        await scene.say(who, "同意 #1")
    await scene.say("lihua", "发放 #1 资产号:NB-007")
    await scene.say("zhaolei", "确认领取 #1")
    assert "12月1日（周二）前归还" in scene.last_text("zhaolei")
    clock.advance(timedelta(days=6, hours=-1).total_seconds())  # 2026-12-01 09:00 Shanghai
    await scene.tick()
    assert scene.got("zhaolei", "今天是12月1日（周二），您借用的电脑")
    assert not scene.got("lihua", "逾期")  # the holder first
    await scene.tick()  # fired once only
    assert sum("到期" in t for t in scene.texts("zhaolei")) == 1
    clock.advance(timedelta(days=1).total_seconds())
    await scene.tick()
    assert scene.got("lihua", "逾期未还：赵磊（信息技术系）借用的电脑（申请 #1，NB-007）")


async def test_rejection_at_a_later_computer_step(scene: Scene) -> None:
    await scene.say("zhaolei", "领电脑 用途:备课 数量:1 配置:台式机")
    await scene.say("yangfan", "同意 #1")
    assert "已驳回" in await scene.say("majun", "驳回 #1 系里已有备用机")
    assert "系里已有备用机" in scene.last_text("zhaolei")
    assert scene.cards("zhaomin") == []


async def test_substitute_receives_steps_while_away(scene: Scene) -> None:
    assert "转给宋涛" in await scene.say("majun", "设置代理 宋涛 今天 后天")
    assert "期间其审批由您代为处理" in scene.last_text("songtao")
    await scene.say("zhaolei", "领电脑 用途:备课 数量:1 配置:台式机")
    await scene.say("yangfan", "同意 #1")
    card = scene.card("songtao")
    assert "代 马军" in card["sub_title_text"] and scene.cards("majun") == []
    await scene.click("songtao", card, "同意")
    assert scene.card("zhaomin")


async def test_idle_steps_get_reminded_then_escalated(scene: Scene, clock: FakeClock) -> None:
    await scene.say("zhaolei", "调监控 地点:302 时间:今天 8:00-9:00 原因:丢失 类型:教职工")
    clock.advance(23 * 3600)
    await scene.tick()
    assert len(scene.cards("majun")) == 1
    clock.advance(2 * 3600)
    await scene.tick()
    assert len(scene.cards("majun")) == 2 and scene.got("majun", "已等待您审批 25 小时")
    await scene.tick()
    assert len(scene.cards("majun")) == 2  # reminded once per step
    clock.advance(24 * 3600)
    await scene.tick()
    assert scene.card("liuyang")["main_title"]["title"] == "监控调取申请 #1"  # majun's next level
    assert scene.got("liuyang", "升级")
    await scene.click("liuyang", scene.cards("liuyang")[0], "同意")
    assert "已同意" in scene.last_text("liuyang")
    req = await request_row(scene.bot, 1)
    assert req.flow["current"] == 1  # the escalated step is done; the VP's own step follows


async def test_a_request_whose_flow_cannot_be_read_does_not_stop_the_others_reminders(
    scene: Scene, clock: FakeClock
) -> None:
    await scene.say("zhaolei", "调监控 地点:302 时间:今天 8:00-9:00 原因:丢失 类型:教职工")
    await scene.say("zhaolei", "调监控 地点:303 时间:今天 8:00-9:00 原因:丢失 类型:教职工")
    async with scene.bot.app[PIPELINE].sessions() as s, s.begin():  # request #1 changed by hand
        await s.execute(text("UPDATE requests SET flow = '{}' WHERE id = 1"))
    clock.advance(25 * 3600)
    await scene.tick()
    assert scene.got("majun", "监控调取申请 #2") and scene.got("majun", "已等待您审批 25 小时")
    assert (await request_row(scene.bot, 2)).reminded_at is not None


async def test_police_retrieval_is_logged_by_operators_only(scene: Scene) -> None:
    cmd = "公安调取 地点:校门口 时间:11月20日 18:00-19:00 单位:城东派出所 案由:交通事故 内容:校门口录像 交付方式:U盘"
    assert "只有监控室" in await scene.say("zhaolei", cmd)
    assert "已登记公安调取" in await scene.say("wangpeng", cmd)
    async with scene.bot.app[PIPELINE].sessions() as s:
        log = (await s.execute(select(FootageLog))).scalar_one()
    assert log.police and log.request_id is None and log.retriever == "城东派出所"
    assert await scene.bot.count(Request) == 0


async def test_two_approvers_clicking_at_once_decide_exactly_once(scene: Scene) -> None:
    import asyncio

    await scene.say("wangjianguo", "领电脑 用途:办公 数量:1 配置:笔记本")
    await scene.say("zhengmei", "同意 #1")
    await scene.say("zhaomin", "同意 #1")
    # The principal asked: his step goes up to the committee (any one of them decides).
    cards = {u: scene.card(u) for u in ("liuyang", "zhaomin")}
    assert all(c["sub_title_text"].startswith("第 3/4 步 · 校委会") for c in cards.values())
    posts = []
    for u, card in cards.items():
        key = next(b["key"] for b in card["button_list"] if b["text"] == "同意")
        posts.append(
            scene.bot.sender.card_click(u, card["task_id"], key, scene.emu.issue_click_code(card["task_id"], u))
        )
    assert [p.status for p in await asyncio.gather(*posts)] == [200, 200]
    await scene.bot.settle()
    actions = [a for _, a in await audit_actions(scene.bot, 1)]
    assert actions.count("approve") == 3 and actions.count("refused_approve") == 1
    assert (await request_row(scene.bot, 1)).status == "pending"  # the director's step is next
    await scene.say("chenhao", "同意 #1")
    assert (await request_row(scene.bot, 1)).status == "approved"
    assert len(scene.cards("lihua")) == 1  # the technician is asked to issue once


async def test_transfer_and_substitutes_only_to_people_who_approve(scene: Scene) -> None:
    await scene.say("zhaolei", "调监控 地点:302 时间:今天 8:00-9:00 原因:丢失 类型:教职工")
    reply = await scene.say("majun", "转审 #1 张伟")  # a class teacher: may approve
    assert "已转给张伟" in reply
    reply = await scene.say("zhangwei", "转审 #1 李华")  # a technician: may not
    assert "不能转给李华：李华没有审批权限" in reply and "转审 #12 刘洋" in reply
    assert "通讯录里没找到“lihua2”" in await scene.say("zhangwei", "转审 #1 lihua2")
    assert "“同意”只有" in await scene.say("lihua", "同意 #1")  # approving is for those who approve
    assert "已同意" in await scene.say("zhangwei", "同意 #1")
