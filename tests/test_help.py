"""帮助 shows what this person may do, grouped, with examples naming real people; 帮助 <指令>
explains one command; 你好 / ？ greets with the three most used commands (over encrypted HTTP)."""

from __future__ import annotations

import re

import pytest

from bot.config import Person
from bot.render import Renderer
from bot.router import Registry
from handlers import ROUTERS
from handlers.help import GROUP_ORDER
from handlers.labels import example_names
from storage.models import Conversation, Ticket
from tests.conftest import example_raw, make_config
from tests.scene import Scene

USERIDS = [p["userid"] for p in example_raw()["people"]]
REGISTRY = Registry(ROUTERS)
RENDERER = Renderer(REGISTRY.template_dirs)
CONFIG = make_config("http://127.0.0.1:1", "sqlite+aiosqlite:///:memory:")


def headings(reply: str) -> list[str]:
    return re.findall(r"【(.+?)】", reply)


def no_userids(text: str) -> None:
    for userid in USERIDS:
        assert not re.search(rf"(?<![A-Za-z]){userid}(?![A-Za-z])", text), (userid, text)


async def test_a_teacher_without_a_role_sees_only_what_she_can_use(scene: Scene) -> None:
    reply = await scene.say("zhaolei", "帮助")
    assert reply.startswith("赵磊，您好")
    assert headings(reply) == [
        "报修",
        "借舞台",
        "活动服务",
        "调监控",
        "微机室",
        "领电脑",
        "投稿",
        "审批",
        "平台培训",
        "查询",
    ]
    assert "· 报修 地点:302教室 设备:投影 描述:投影仪不亮" in reply
    assert "· 借舞台 场地:本部礼堂" in reply  # the venue on her campus, from the configuration
    for command in (
        "同意",
        "驳回",
        "转审",
        "设置代理",
        "接单",
        "完成 #",
        "转交",
        "公安调取",
        "登记",
        "发放",
        "音频课堂",
    ):
        assert f"· {command}" not in reply, command
    # She has no duties: 完成任务 and 我的任务 are not listed (she may still use them).
    assert "值班任务" not in reply and "【任务" not in reply
    assert "帮助 借舞台" in reply  # how to ask about one command
    no_userids(reply)


async def test_each_role_sees_its_own_commands_with_real_names(scene: Scene) -> None:
    tech = await scene.say("lihua", "帮助")
    assert "· 接单 #3" in tech and "· 完成 #3" in tech
    assert "· 转交 #3 张磊" in tech  # a technician on his campus, by name
    assert "· 同意" not in tech and "【音频课堂】" not in tech
    assert "【任务（值班、交办）】" in tech and "· 确认完成一项值班任务" in tech and "· 暂停 #3 待配件" in tech
    director = await scene.say("chenhao", "帮助")
    assert "· 同意 #12" in director and "· 驳回 #12" in director
    assert "· 转审 #12 刘洋" in director and "· 设置代理 刘洋" in director  # never "liuyang"
    admin = await scene.say("zhangwei", "帮助")
    assert "【音频课堂】" in admin and "群:24级信息技术在校生群" in admin  # the group he runs
    assert "主讲:张伟" in await scene.say("zhangwei", "帮助 音频课堂")  # his own name
    operator = await scene.say("linxue", "帮助")
    assert "· 公安调取" in operator and "· 登记 #12" in operator
    for reply in (tech, director, admin, operator):
        no_userids(reply)
        assert list(dict.fromkeys(headings(reply))) == headings(reply)  # each group once


@pytest.mark.parametrize("ask", ["帮助 借舞台", "幫助 預約舞台", "help stage", "帮助：借礼堂", "帮助 “借舞台”"])
async def test_one_command_explained_in_any_alias(scene: Scene, ask: str) -> None:
    reply = await scene.say("zhaolei", ask)
    assert reply.startswith("【借舞台】预约礼堂、报告厅或舞台")
    assert "场地（必填）：可选：本部礼堂、本部报告厅、东湖校区舞台、西山校区礼堂、南岸校区舞台" in reply
    assert "日期（视情况）：" in reply and "下周三" in reply
    assert "时间（必填）：14:00-16:00、下午2点到4点" in reply
    assert "仍要申请（可不填）" in reply
    assert "例：借舞台 场地:本部礼堂 日期:12月1日 时间:14:00-16:00" in reply
    assert "也可以写作：預約舞台、预约舞台、借礼堂、借禮堂、stage、book" in reply
    assert await scene.bot.count(Conversation) == 0  # explaining starts nothing


async def test_positional_commands_and_names_in_the_explanation(scene: Scene) -> None:
    reply = await scene.say("chenhao", "帮助 转审")
    assert "按顺序写" in reply and "编号（必填）" in reply and "转给（必填）：对方在通讯录里的姓名，例如：刘洋" in reply
    assert "例：转审 #12 刘洋" in reply
    no_userids(reply)
    report = await scene.say("zhaolei", "帮助 repair")
    assert "【报修】" in report and "地点（必填）" in report and "设备（必填）" in report and "描述（必填）" in report
    assert "空调、打印机、复印机、饮水机等找总务处" in report  # what the center does not repair, from config


async def test_help_for_a_command_someone_may_not_use_or_that_does_not_exist(scene: Scene) -> None:
    assert "“接单”只有技术员可以使用" in await scene.say("zhaolei", "帮助 接单")
    assert "“同意”只有" in await scene.say("zhaolei", "帮助 同意")
    reply = await scene.say("zhaolei", "帮助 借舞太")
    assert "没有“借舞太”这条指令" in reply and "您是想问“借舞台”吗" in reply
    reply = await scene.say("zhaolei", "帮助 接丹")
    assert "接单" not in reply  # never suggests a technician's command to a teacher
    group = await scene.say("chenhao", "帮助 审批")
    assert group.startswith("“审批”相关的指令") and "· 同意 #12" in group and "【报修】" not in group


@pytest.mark.parametrize("hello", ["你好", "您好！", "？", "hi", "你好啊", "在吗"])
async def test_greeting_with_the_three_most_used_commands(scene: Scene, hello: str) -> None:
    reply = await scene.say("zhaolei", hello)
    assert reply.startswith("赵磊，您好！")
    assert re.findall(r"^· (\S+)", reply, re.M) == ["报修", "借舞台", "我的申请"]
    assert "发“帮助”" in reply


async def test_greetings_follow_the_role(scene: Scene) -> None:
    assert re.findall(r"^· (\S+)", await scene.say("lihua", "你好"), re.M) == ["待办", "接单", "完成"]
    assert re.findall(r"^· (\S+)", await scene.say("chenhao", "您好"), re.M) == ["待办", "同意", "进度"]
    assert re.findall(r"^· (\S+)", await scene.say("huangli", "hi"), re.M) == ["待办", "通过", "退回"]


async def test_people_with_the_same_roles_each_get_their_own_help(scene: Scene) -> None:
    """帮助 is kept once worked out (by roles and the names its examples use): asking in turn and
    again, two teachers without a role each see their own name, and the same commands."""
    first = await scene.say("zhaolei", "帮助")
    other = await scene.say("yeqing", "帮助")
    again = await scene.say("zhaolei", "帮助")
    assert first.startswith("赵磊，您好") and again == first
    assert other.startswith("叶青，您好")
    assert headings(other) == headings(first)
    assert await scene.say("yeqing", "你好") != await scene.say("zhaolei", "你好")


async def test_a_greeting_before_a_command_is_the_command(scene: Scene) -> None:
    reply = await scene.say("zhaolei", "你好，报修 地点:302教室 设备:投影 描述:不亮")
    assert "报修编号 #1" in reply and await scene.bot.count(Ticket) == 1
    assert "【借舞台】" in await scene.say("zhaolei", "您好 帮助 借舞台")
    # While a form waits, a greeting is only a greeting: the question is asked again.
    await scene.say("zhaolei", "报修 地点:302")
    reply = await scene.say("zhaolei", "你好")
    assert "您好" in reply and "还在填写" in reply


# -- every command is explained ----------------------------------------------------------------
def _context(person: Person | None) -> dict[str, object]:
    return {
        "who": example_names(CONFIG, person),
        "venues": [v.name for v in CONFIG.venues],
        "classes": [c.name for c in CONFIG.classes],
        "groups": [g.name for g in CONFIG.groups],
        "not_ours": [{"words": list(e.words), "office": e.office} for e in CONFIG.faults.not_ours],
        "retention_days": CONFIG.footage.retention_days,
    }


@pytest.mark.parametrize("command", REGISTRY.commands, ids=lambda c: c.key)
def test_every_command_says_what_it_does_and_what_each_field_accepts(command) -> None:  # type: ignore[no-untyped-def]
    context = _context(CONFIG.person("zhaolei"))
    assert RENDERER.block(command.template, "about", **context), command.key
    for field in command.fields:
        assert RENDERER.block(command.template, f"accepts_{field.key}", **context), (command.key, field.key)
    for block in ("example", "brief", "about", *(f"accepts_{f.key}" for f in command.fields)):
        no_userids(RENDERER.block(command.template, block, **context) or "")


def test_every_router_with_commands_has_a_heading() -> None:
    for router in ROUTERS:
        if any(c.in_help for c in router.commands):
            assert router.name in GROUP_ORDER and RENDERER.block("labels_help", f"group_{router.name}"), router.name


def test_example_names_come_from_the_organisation() -> None:
    names = example_names(CONFIG, CONFIG.person("zhaolei"))
    assert names == {
        "approver": "刘洋",
        "tech": "李华",
        "me": "赵磊",
        "venue": "本部礼堂",
        "klass": "24级计算机应用1班",
        "group": "24级信息技术在校生群",
    }
    assert example_names(CONFIG, CONFIG.person("liuyang"))["approver"] == "王建国"  # never oneself
    assert example_names(CONFIG, CONFIG.person("songtao"))["venue"] == "东湖校区舞台"
    assert example_names(CONFIG, None)["approver"] == "刘洋"


# -- the kernel's examples name the organisation too ----------------------------------------------
PLACEHOLDERS = ("对方姓名", "代理人姓名", "技术员姓名", "领取人姓名", "主讲人姓名", "班级名称", "场地名称", "群名称")


def real_names_only(reply: str) -> None:
    no_userids(reply)
    for placeholder in PLACEHOLDERS:
        assert placeholder not in reply, (placeholder, reply)


async def test_examples_in_the_kernels_replies_name_real_people_and_places(scene: Scene) -> None:
    # A malformed command: what was expected, and an example with the venue on her campus.
    reply = await scene.say("songtao", "借舞台 颜色:红")
    assert "格式不对" in reply and "例：借舞台 场地:东湖校区舞台 日期:12月1日" in reply
    real_names_only(reply)
    reply = await scene.say("zhaolei", "调监控 颜色:红")
    assert "格式不对" in reply and "班级:24级计算机应用1班" in reply  # a class of his department
    real_names_only(reply)
    # Unknown input: the closest command this person may use, its example naming real people.
    reply = await scene.say("chenhao", "转申 #12 刘洋")
    assert "您是想“转审”吗" in reply and "例：转审 #12 刘洋" in reply
    real_names_only(reply)
    reply = await scene.say("zhangwei", "音频课 明天")
    assert "您是想“音频课堂”吗" in reply and "主讲:张伟" in reply and "群:24级信息技术在校生群" in reply
    real_names_only(reply)
    # 修改 of a free-text offer hands back the line to correct, with the same example.
    assert "您是要“借舞台”吗" in await scene.say("songtao", "想借舞台")
    reply = await scene.say("songtao", "修改")
    assert "格式示例：借舞台 场地:东湖校区舞台" in reply
    real_names_only(reply)
    assert await scene.bot.count(Conversation) == 0
