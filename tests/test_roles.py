"""Who may use a command is checked before the form asks anything (over encrypted HTTP)."""

from __future__ import annotations

import pytest

from bot.config import Person
from bot.router import Command, Registry, allowed
from handlers import ROUTERS
from storage.models import Conversation, FootageLog, Request
from tests.scene import Scene

REGISTRY = Registry(ROUTERS)
ROLE_COMMANDS = [c for c in REGISTRY.commands if c.roles]


def test_role_gated_commands_are_declared() -> None:
    # The operators', technicians', reviewers' and editors' commands are all gated by role.
    gated = {c.name for c in ROLE_COMMANDS}
    assert {"公安调取", "登记", "接单", "转交", "完成", "发放", "通过", "退回", "预览", "发布", "音频课堂"} <= gated


def test_allowed_rules() -> None:
    teacher = Person(userid="t", name="老师", campus="main", unit="it", roles=[])
    tech = Person(userid="x", name="技术员", campus="main", unit="it", roles=["technician"], skills=["computer"])
    assert allowed((), False, None) and allowed((), True, teacher) and not allowed((), True, None)
    assert allowed(("technician",), False, tech) and not allowed(("technician",), False, teacher)
    assert not allowed(("technician",), False, None)


@pytest.mark.parametrize("command", ROLE_COMMANDS, ids=lambda c: c.key)
async def test_command_refused_at_once_for_someone_without_the_role(scene: Scene, command: Command) -> None:
    # 赵磊 is a teacher with no role: one reply naming who may, no question, no half-filled form.
    reply = await scene.say("zhaolei", command.name)
    assert f"“{command.name}”只有" in reply and "可以使用" in reply
    assert len(scene.texts("zhaolei")) == 1
    assert await scene.bot.count(Conversation) == 0


async def test_police_retrieval_asks_nothing_of_a_non_operator(scene: Scene) -> None:
    reply = await scene.say("zhaolei", "公安调取")
    assert "只有监控室可以使用" in reply and "哪里" not in reply
    assert "没有正在填写" in await scene.say("zhaolei", "取消")  # nothing was started
    # An operator is asked for the form's first field.
    assert "调取哪里的监控" in await scene.say("linxue", "公安调取")
    assert await scene.bot.count(FootageLog) == 0


async def test_refusal_keeps_an_open_form(scene: Scene) -> None:
    await scene.say("zhaolei", "报修 地点:302教室")
    assert "只有技术员" in await scene.say("zhaolei", "接单 #1")
    assert "编号 #1" in await scene.say("zhaolei", "设备:投影 描述:不亮")  # the report goes on


async def test_someone_outside_the_directory_is_told_before_any_question(scene: Scene) -> None:
    scene.emu.known_users = {*(scene.emu.known_users or set()), "stranger"}
    reply = await scene.say("stranger", "调监控")
    assert "不在信息中心的人员名单里" in reply and "陈浩" in reply and "哪里" not in reply
    for text in ("借舞台", "领电脑"):  # the same answer again arrives again (distinct rows, distinct JSON)
        assert "不在信息中心的人员名单里" in await scene.say("stranger", text)
    assert await scene.bot.count(Conversation) == 0 and await scene.bot.count(Request) == 0
