"""Customer groups (客户群): pushes as enterprise mass sends the owner confirms, followed to the end.

Over real HTTP against the emulator, on a fake clock: the owner confirms (the group receives it),
or never does (WeCom reminds three times, the bot once, then the task is cancelled and the
director told); a lost answer never creates the task twice; the receive limit holds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from bot.appkeys import DISPATCHER, PIPELINE
from bot.clock import FakeClock
from bot.config import ConfigError, parse_config
from bot.emulator.server import Emulator
from infodesk.app import TIMERS
from storage.models import Draft, DraftVersion, GroupSend, GroupSendStatus, Publication
from tests.conftest import example_raw, start_bot
from tests.scene import Scene

START = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # Wednesday 09:00 in Shanghai
PARENTS = "wrOgQhDgAAparents2024AAAAA"
PUSH = datetime(2026, 11, 25, 11, 5, tzinfo=UTC)  # 19:05 in Shanghai
AUDIO = "音频课堂 日期:今天 时间:19:30 标题:家庭教育第一课 主讲:周燕 链接:https://example.edu.cn/a/12 群:24级家长群"


async def settle_round(scene: Scene, rounds: int = 3) -> None:
    """Timers fire, the outbox sends, WeCom's answers come back as timers: a few ticks."""
    for _ in range(rounds):
        await scene.tick()


async def approved_and_pushed(scene: Scene, clock: FakeClock) -> None:
    await scene.say("liyan", AUDIO)
    await scene.say("liuyang", "同意 #1")
    clock.advance((PUSH - clock.now()).total_seconds())
    await settle_round(scene)


async def test_owner_confirms_and_the_group_receives_it_once(scene: Scene, clock: FakeClock) -> None:
    await approved_and_pushed(scene, clock)
    [task] = scene.emu.customer.waiting("liyan")
    assert task.chat_ids == [PARENTS]
    assert "【今日音频课堂】家庭教育第一课" in task.text and "主讲：周燕" in task.text
    assert task.attachments == [
        {
            "msgtype": "link",
            "link": {
                "title": "家庭教育第一课",
                "url": "https://example.edu.cn/a/12",
                "desc": "主讲：周燕，19:30，点击收听",
            },
        }
    ]
    scene.emu.customer.confirm("liyan")
    clock.advance(600)
    await settle_round(scene)
    assert len(scene.emu.customer.sent_to(PARENTS)) == 1
    async with scene.bot.app[PIPELINE].sessions() as s:
        [send] = (await s.execute(GroupSend.__table__.select())).all()
    assert send.status == GroupSendStatus.SENT and send.msgid == task.msgid
    polls = len(scene.emu.calls_to("externalcontact/get_groupmsg_send_result"))
    clock.advance(3600)
    await settle_round(scene)
    assert len(scene.emu.calls_to("externalcontact/get_groupmsg_send_result")) == polls  # settled: no more polling
    assert scene.emu.calls_to("externalcontact/remind_groupmsg_send") == []
    assert not any("群发" in t for t in scene.texts("chenhao"))  # nothing to report


async def test_unconfirmed_send_is_reminded_then_cancelled_and_reported(scene: Scene, clock: FakeClock) -> None:
    await approved_and_pushed(scene, clock)
    [task] = scene.emu.customer.waiting("liyan")
    for _ in range(30):  # 5 hours in 10-minute steps; the owner never confirms
        clock.advance(600)
        await settle_round(scene, 2)
    reminders = scene.emu.calls_to("externalcontact/remind_groupmsg_send")
    assert len(reminders) == 3 and {c.body["msgid"] for c in reminders} == {task.msgid}  # WeCom's limit
    owner_dm = [t for t in scene.texts("liyan") if "还在等您确认" in t]
    assert len(owner_dm) == 1 and "24级家长群" in owner_dm[0] and "23:05 前未发送" in owner_dm[0]
    report = [t for t in scene.texts("chenhao") if "群发没有发出" in t]
    assert len(report) == 1 and "24级家长群" in report[0] and "李燕" in report[0] and "家庭教育第一课" in report[0]
    assert [c.body for c in scene.emu.calls_to("externalcontact/cancel_groupmsg_send")] == [{"msgid": task.msgid}]
    assert scene.emu.customer.tasks[task.msgid].cancelled
    polls = len(scene.emu.calls_to("externalcontact/get_groupmsg_send_result"))
    clock.advance(3600)
    await settle_round(scene)
    assert len(scene.emu.calls_to("externalcontact/get_groupmsg_send_result")) == polls  # not retried forever
    assert scene.emu.customer.sent_to(PARENTS) == []


async def test_lost_answer_does_not_ask_the_owner_twice(scene: Scene, clock: FakeClock) -> None:
    # WeCom created the task but the answer was lost (a proxy's 502): the retry finds it.
    scene.emu.inject_lost_answers("externalcontact/add_msg_template", 502)
    await scene.say("liyan", AUDIO)
    await scene.say("liuyang", "同意 #1")
    clock.advance((PUSH - clock.now()).total_seconds())
    await scene.bot.app[TIMERS].tick()  # the push: the mass send is queued …
    await scene.bot.app[DISPATCHER].drain_once()  # … and its answer is lost
    assert len(scene.emu.calls_to("externalcontact/add_msg_template")) == 1
    clock.advance(120)  # the outbox's backoff
    await settle_round(scene)
    assert len(scene.emu.calls_to("externalcontact/add_msg_template")) == 1
    assert len(scene.emu.calls_to("externalcontact/get_groupmsg_list_v2")) == 1
    [task] = scene.emu.customer.waiting("liyan")
    scene.emu.customer.confirm("liyan")
    clock.advance(600)
    await settle_round(scene)
    async with scene.bot.app[PIPELINE].sessions() as s:
        [send] = (await s.execute(GroupSend.__table__.select())).all()
    assert send.status == GroupSendStatus.SENT and send.msgid == task.msgid


async def test_a_group_past_its_monthly_limit_is_not_sent_and_reported(scene: Scene, clock: FakeClock) -> None:
    async with scene.bot.app[PIPELINE].sessions() as s, s.begin():
        for day in range(1, 31):  # November: 30 days, 30 mass sends already received
            s.add(
                GroupSend(
                    chat_id=PARENTS,
                    owner="liyan",
                    day=f"2026-11-{day:02d}",
                    slot="07:05",
                    status=GroupSendStatus.SENT,
                    items={"ids": []},
                    created_at=START - timedelta(days=30),
                )
            )
    await approved_and_pushed(scene, clock)
    assert scene.emu.calls_to("externalcontact/add_msg_template") == []
    for who in ("chenhao", "liyan"):
        assert scene.got(who, "本月已收到 30 条群发，达到企业微信的接收上限（30 条）")


async def test_news_link_goes_to_the_audience_it_names(scene: Scene, clock: FakeClock) -> None:
    answer = await scene.say(
        "zhouyan",
        "推送链接 日期:今天 标题:我校学子获省技能大赛一等奖 链接:https://example.edu.cn/news/88 受众:家长、毕业生",
    )
    assert "编号 #1" in answer and "24级家长群、毕业生群" in answer
    clock.advance((PUSH - clock.now()).total_seconds())
    await settle_round(scene)
    assert scene.emu.customer.waiting("liyan") == [] and scene.group_deliveries() == []  # not approved: nothing
    await scene.say("liuyang", "同意 #1")
    clock.advance(24 * 3600)  # the day has passed: yesterday's news is not pushed today
    await settle_round(scene)
    assert scene.group_deliveries() == []


async def test_approved_news_link_reaches_customer_group_and_group_robot(scene: Scene, clock: FakeClock) -> None:
    await scene.say(
        "zhouyan",
        "推送链接 日期:今天 标题:我校学子获省技能大赛一等奖 链接:https://example.edu.cn/news/88 受众:家长、毕业生",
    )
    await scene.say("liuyang", "同意 #1")
    clock.advance((PUSH - clock.now()).total_seconds())
    await settle_round(scene)
    [task] = scene.emu.customer.waiting("liyan")
    assert task.text.startswith("【推荐阅读】我校学子获省技能大赛一等奖")
    assert task.attachments[0]["link"]["url"] == "https://example.edu.cn/news/88"
    [robot] = [d for d in scene.emu.delivered if d.to.startswith("webhook:")]
    assert "我校学子获省技能大赛一等奖" in robot.body["markdown"]["content"]


def _raw_with(**group: Any) -> dict[str, Any]:
    raw = example_raw()
    raw["groups"] = [g for g in raw["groups"] if g["chat_id"] != group.get("chat_id")] + [
        {"name": "测试群", "admins": ["liyan"], **group}
    ]
    return raw


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        (
            {"chat_id": "parentsA", "audience": "家长", "channel": "appchat"},
            "群 \"测试群\"：受众 '家长' 是外部联系人，而应用群聊（appchat）只能有本单位成员",
        ),
        (
            {"chat_id": "bad-id_with-dash", "audience": "教职工", "channel": "appchat"},
            "应用群聊的 chat_id 是 1-32 个字母或数字（现在是 'bad-id_with-dash'）",
        ),
        (
            {"chat_id": "parents2024", "audience": "家长", "channel": "customer_group", "owner": "liyan"},
            "客户群的 chat_id 是企业微信给它的 id，以 'wr' 开头",
        ),
        (
            {"chat_id": "wrOgQhDgAAxyzAAAA", "audience": "家长", "channel": "customer_group"},
            "需要 owner（确认群发的群主）",
        ),
        (
            {
                "chat_id": "wrOgQhDgAAxyzAAAA",
                "audience": "家长",
                "channel": "customer_group",
                "owner": "liyan",
                "push_time": ["07:05", "19:05"],
            },
            "推送安排每月最多推送 62 次，但客户群每月最多只能收到 31 条群发",
        ),
        (
            {
                "chat_id": "wrOgQhDgAAxyzAAAA",
                "audience": "家长",
                "channel": "customer_group",
                "owner": "nobody",
            },
            '群 "测试群" 的群主 owner "nobody" 不在 [[people]] 里',
        ),
    ],
)
def test_config_refuses_groups_wecom_would_refuse(group: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_raw_with(**group), environ={})
    assert expected in str(err.value)


def test_config_accepts_a_schedule_within_the_weekly_limit() -> None:
    group = {
        "chat_id": "wrOgQhDgAAxyzAAAA",
        "audience": "家长",
        "channel": "customer_group",
        "owner": "liyan",
        "push_time": ["07:05", "19:05"],
        "push_weekdays": [1, 3, 5],
        "receive_limit": "week",
    }
    cfg = parse_config(_raw_with(**group), environ={})
    assert cfg.groups[-1].most_pushes() == (6, 7)


async def test_unknown_sender_fails_and_the_director_hears(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """The configured owner does not own the group in WeCom: fail_list, reported, not retried."""
    emulator.customer.groups[PARENTS].owner = "guoqing"
    raw = example_raw()
    raw["wecom"]["api_base"], raw["database"] = emulator.base_url, {"url": db_url}
    emulator.clock = lambda: clock.now().timestamp()
    bot = await start_bot(parse_config(raw, environ={}), http, clock=clock, run_dispatcher=False)
    scene = Scene(bot, emulator)
    try:
        await approved_and_pushed(scene, clock)
        assert scene.got("chenhao", "24级家长群11月25日（周三）的群发被企业微信拒绝")
        clock.advance(3600)
        await settle_round(scene)
        assert len(emulator.calls_to("externalcontact/add_msg_template")) == 1
        assert emulator.calls_to("externalcontact/get_groupmsg_send_result") == []
    finally:
        await bot.stop()


async def test_a_published_draft_is_pushed_by_its_number(scene: Scene, clock: FakeClock) -> None:
    """`推送链接 稿件:#G1`: the published article's website link and title, no copying by hand."""
    now = clock.now()
    async with scene.bot.app[PIPELINE].sessions() as s, s.begin():
        s.add(Draft(id=1, author="zhaolei", status="published", version=2, created_at=now, updated_at=now))
        s.add(Draft(id=2, author="zhaolei", status="in_review", version=1, created_at=now, updated_at=now))
        for v, title in ((1, "技能节开幕"), (2, "我校举办第十一届技能节")):
            s.add(DraftVersion(draft_id=1, version=v, title=title, body="…", photos={"items": []}, created_at=now))
        await s.flush()
        s.add(
            Publication(
                draft_id=1, platform="oa", link="https://mp.weixin.qq.com/s/1", editor="zhouyan", published_at=now
            )
        )
        s.add(
            Publication(
                draft_id=1,
                platform="website",
                link="https://www.school.edu.cn/news/1",
                editor="zhouyan",
                published_at=now,
            )
        )
    unpublished = await scene.say("zhouyan", "推送链接 日期:今天 稿件:#G2 受众:家长")
    assert "稿件 #G2 还没有发布" in unpublished
    answer = await scene.say("zhouyan", "推送链接 日期:今天 稿件:#G1 受众:家长")
    assert "链接推送申请已提交" in answer
    card = scene.card("liuyang")
    rows = {r["keyname"]: r for r in card["horizontal_content_list"]}
    assert (
        rows["标题"]["value"] == "我校举办第十一届技能节" and rows["链接"]["url"] == "https://www.school.edu.cn/news/1"
    )
    await scene.say("liuyang", "同意 #1")
    clock.advance((PUSH - clock.now()).total_seconds())
    await settle_round(scene)
    [task] = scene.emu.customer.waiting("liyan")
    assert task.text == "【推荐阅读】我校举办第十一届技能节"
