"""Who may use a command is checked before the form asks anything (over encrypted HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.clock import FakeClock
from bot.config import Config, Person
from bot.config_base import ROLES
from bot.emulator.server import Emulator
from bot.router import Command, Registry, Router, allowed
from handlers import ROUTERS
from handlers.approval_commands import APPROVER, approver_roles
from storage.models import ApprovalAudit, Conversation, FootageLog, Request
from tests.conftest import make_config, start_bot
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


# -- approver commands follow the configured chains ------------------------------------------------
def test_the_example_organisations_approvers_are_the_roles_its_chains_name() -> None:
    config = make_config("http://127.0.0.1:1", "sqlite+aiosqlite:///:memory:")
    # Everyone a chain step or an escalation can name; not the workers who carry requests out.
    workers = {"technician", "cctv_operator", "platform_editor", "publicity_reviewer", "photo_reviewer", "video_editor"}
    assert set(approver_roles(config)) == set(ROLES) - workers - {"group_admin", "sysadmin"}
    assert REGISTRY.roles((APPROVER, "technician"), config)[-1] == "technician"


def test_a_derived_role_is_computed_once_per_config_and_empty_admits_nobody() -> None:
    router = Router("probe")
    calls: list[Config] = []

    @router.derived_role("probe_approver")
    def nobody(config: Config) -> tuple[str, ...]:
        calls.append(config)
        return ()

    registry = Registry([router])
    config = make_config("http://127.0.0.1:1", "sqlite+aiosqlite:///:memory:")
    chenhao = config.person("chenhao")
    assert not registry.may(("probe_approver",), False, chenhao, config)  # nobody, never everybody
    assert not registry.may(("probe_approver",), False, chenhao, config)
    assert registry.may((), False, chenhao, config)
    assert calls == [config]
    with pytest.raises(ValueError):
        router.derived_role("director")  # a configured role cannot be redefined


# A school whose footage requests go to the CCTV room and then the director: no chain names a class
# teacher any more, and the CCTV operators approve.
CCTV_FIRST = {
    "footage_student": {"needs_class": True, "steps": [{"role": "cctv_operator"}, {"role": "director"}]},
    "footage_staff": {"steps": [{"role": "cctv_operator"}, {"role": "director"}]},
}


@pytest.fixture
async def cctv_first(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> AsyncIterator[Scene]:
    emulator.clock = lambda: clock.now().timestamp()
    config = make_config(emulator.base_url, db_url, chains=CCTV_FIRST)
    bot = await start_bot(config, http, clock=clock, run_dispatcher=False)
    yield Scene(bot, emulator)
    await bot.stop()


async def test_approver_commands_follow_the_configured_chains(cctv_first: Scene) -> None:
    scene = cctv_first
    await scene.say("zhaolei", "调监控 地点:302 时间:今天 8:00-9:00 原因:丢失 类型:教职工")
    assert scene.card("linxue")
    # The CCTV operator approves in this school: she sees the approver commands and may use them.
    operator = await scene.say("linxue", "帮助")
    assert "· 同意 #12" in operator and "· 转审 #12" in operator
    assert "下一步由陈浩审批" in await scene.say("linxue", "同意 #1")
    # A class teacher approves nothing here: not listed, refused naming who may, nothing recorded.
    teacher = await scene.say("zhangwei", "帮助")
    assert "· 同意" not in teacher and "· 驳回" not in teacher and "· 设置代理" not in teacher
    refusal = await scene.say("zhangwei", "同意 #1")
    assert "“同意”只有" in refusal and "监控室" in refusal and "班主任" not in refusal
    assert "只有" in await scene.say("zhangwei", "帮助 同意")
    # Nobody may hand a step to someone who approves nothing.
    assert "张伟没有审批权限" in await scene.say("chenhao", "转审 #1 张伟")
    assert "已同意" in await scene.say("chenhao", "同意 #1")
    assert await scene.bot.count(ApprovalAudit, ApprovalAudit.action == "approve") == 2
