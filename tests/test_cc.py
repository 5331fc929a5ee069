"""抄送 (CC) on approval workflows: told at submission and/or approval, may look, never decides."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import ConfigError, parse_config
from tests.conftest import example_raw
from tests.scene import Scene

FLAGS = "户外:否 校外:否 重大活动:否"
STUDENT_FOOTAGE = "调监控 地点:实训楼二楼走廊 时间:昨天 14:00-15:00 原因:学生手机丢失 类型:学生 班级:24级机电技术2班"


async def test_stage_technicians_are_told_of_an_approved_booking_and_may_look_but_not_decide(scene: Scene) -> None:
    await scene.say("zhaolei", f"借舞台 场地:本部礼堂 日期:明天 时间:14:00-16:00 活动:合唱排练 {FLAGS}")
    assert not scene.got("zhanglei", "抄送给您")  # cc at approval only
    await scene.say("chenhao", "同意 #1")
    for tech in ("zhanglei", "xuqiang"):  # every stage technician, the booking's campus first
        [notice] = [t for t in scene.texts(tech) if "抄送给您" in t]
        assert notice.startswith("抄送给您：赵磊的舞台使用申请 #1 已审批通过。\n")
        assert "合唱排练" in notice and notice.endswith("您只需知悉，无需审批；查看进度请发“进度 申请 #1”。")
    assert "舞台使用申请 #1：已" in await scene.say("zhanglei", "进度 申请 #1")
    assert "您的账号没有这个身份" in await scene.say("zhanglei", "驳回 #1 不行")
    # No approval card, nothing to decide: only the card to claim the booking as its technician.
    assert [c["main_title"]["title"] for c in scene.cards("zhanglei")] == ["舞台值守 申请 #1"]


async def test_class_teacher_hears_the_final_decision_on_a_student_footage_request_as_a_safe_message(
    scene: Scene,
) -> None:
    await scene.say("zhaolei", STUDENT_FOOTAGE)
    await scene.say("liuna", "同意 #1")  # the class teacher decides step 1 …
    await scene.say("songtao", "同意 #1")
    await scene.say("liuyang", "同意 #1")
    [notice] = [
        d for d in scene.emu.messages_to("liuna") if d.msgtype == "text" and "抄送给您" in d.body["text"]["content"]
    ]
    assert notice.body["text"]["content"].startswith(
        "抄送给您：赵磊的监控调取申请 #1 已审批通过。\n地点：实训楼二楼走廊"
    )
    assert notice.body.get("safe") == 1  # footage is confidential


def _with_cc(cc: list[dict[str, Any]]) -> dict[str, Any]:
    raw = example_raw()
    raw["chains"]["stage"]["cc"] = cc
    return raw


@pytest.mark.parametrize(
    "cc",
    [[{"role": "director", "user": "chenhao"}], [{}], [{"role": "director", "skill": "stage"}], [{"role": "janitor"}]],
)
def test_a_cc_entry_names_a_role_or_a_person(cc: list[dict[str, Any]]) -> None:
    with pytest.raises(ConfigError):
        parse_config(_with_cc(cc), environ={})
