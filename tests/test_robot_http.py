"""Group chats through the smart robot: @mention commands, confidential ones moved to one-to-one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.clock import RunningClock
from bot.emulator.sender import RobotSender
from bot.emulator.server import Emulator
from storage.models import InboundEvent, Request, Ticket
from tests.conftest import Bot, example_raw, make_config, start_bot


@pytest.fixture
async def robot_bot(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, wall_clock: RunningClock
) -> AsyncIterator[Bot]:
    emulator.clock = lambda: wall_clock.now().timestamp()
    b = await start_bot(make_config(emulator.base_url, db_url), http, clock=wall_clock, run_jobs=False)
    yield b
    await b.stop()


@pytest.fixture
def robot(robot_bot: Bot, http: aiohttp.ClientSession) -> RobotSender:
    r = example_raw()["robot"]
    return RobotSender(
        http,
        robot_bot.url + "/wecom/robot",
        token=r["token"],
        encoding_aes_key=r["encoding_aes_key"],
        clock=lambda: robot_bot.clock.now().timestamp(),
    )


def robot_answers(emu: Emulator) -> list[str]:
    return [d.body["markdown"]["content"] for d in emu.delivered if d.to.startswith("robot:")]


async def test_group_mention_runs_the_same_command(robot_bot: Bot, robot: RobotSender, emulator: Emulator) -> None:
    posted = await robot.mention("zhaolei", "报修 地点:302教室 设备:投影 描述:投影仪不亮", emulator.new_response_url())
    assert (posted.status, posted.text) == (200, "")
    await robot_bot.settle()
    [answer] = robot_answers(emulator)
    assert "编号 #1" in answer and "302教室" in answer
    assert await robot_bot.count(Ticket) == 1
    assert emulator.texts_to("zhaolei") == []  # answered in the group, not one-to-one
    assert any(d.msgtype == "template_card" for d in emulator.messages_to("zhanglei"))  # technicians as usual


async def test_confidential_command_in_a_group_moves_to_one_to_one(
    robot_bot: Bot, robot: RobotSender, emulator: Emulator
) -> None:
    await robot.mention("zhaolei", "调监控 地点:实训楼二楼 原因:学生手机丢失", emulator.new_response_url())
    await robot_bot.settle()
    assert robot_answers(emulator) == ["已转私聊处理，请在“信息中心”应用里查看。"]
    assert "哪个时间段" in emulator.texts_to("zhaolei")[-1]
    # The member answers in the group again: still nothing about it goes to the group.
    await robot.mention("zhaolei", "昨天 下午2点到3点", emulator.new_response_url())
    await robot_bot.settle()
    assert robot_answers(emulator)[-1] == "已转私聊处理，请在“信息中心”应用里查看。"
    await robot.mention("zhaolei", "教职工", emulator.new_response_url())
    await robot_bot.settle()
    assert "编号 #1" in emulator.texts_to("zhaolei")[-1]
    everything_in_groups = " ".join(robot_answers(emulator))
    for detail in ("实训楼", "手机", "#1", "14:00"):
        assert detail not in everything_in_groups
    # Asking about a confidential request in a group gets the same treatment.
    await robot.mention("majun", "进度 #1", emulator.new_response_url())
    await robot_bot.settle()
    assert robot_answers(emulator)[-1].startswith("已转私聊处理")
    assert "下一步" in emulator.texts_to("majun")[-1]
    assert await robot_bot.count(Request) == 1


async def test_robot_retries_are_deduped_by_msgid(robot_bot: Bot, robot: RobotSender, emulator: Emulator) -> None:
    url = emulator.new_response_url()
    for _ in range(3):
        assert (await robot.mention("zhaolei", "帮助", url, msgid="CAIQ16HMjQYY")).status == 200
    await robot_bot.settle()
    assert len(robot_answers(emulator)) == 1
    assert await robot_bot.count(InboundEvent) == 1


async def test_robot_signature_and_url_check(robot_bot: Bot, robot: RobotSender, http: aiohttp.ClientSession) -> None:
    query, body = robot.body(
        {
            "msgid": "x1",
            "from": {"userid": "zhaolei"},
            "msgtype": "text",
            "text": {"content": "帮助"},
            "response_url": "http://127.0.0.1:1/x",
        }
    )
    async with http.post(robot.url, params={**query, "msg_signature": "0" * 40}, data=body) as resp:
        assert resp.status == 403
    async with http.post(robot.url, params=query, data="{not json") as resp:
        assert resp.status == 400
    enc = robot.crypto.encrypt("robot-echo")
    ts = query["timestamp"]
    async with http.get(
        robot.url,
        params={"msg_signature": robot.crypto.sign(ts, "5", enc), "timestamp": ts, "nonce": "5", "echostr": enc},
    ) as resp:
        assert (resp.status, await resp.text()) == (200, "robot-echo")
    assert await robot_bot.count(InboundEvent) == 0
