"""Typed card keys, and clicks checked against the stored card before any workflow code runs."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from enum import StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from bot.appkeys import PIPELINE
from bot.cardkeys import BadCardKey, CardAction
from bot.clock import FakeClock
from bot.router import Registry
from handlers import ROUTERS
from storage.models import ApprovalAudit, Request
from tests.scene import Scene

REGISTRY = Registry(ROUTERS)
ACTIONS = [route.cls for r in ROUTERS for route in r.actions]
STUDENT_FOOTAGE = "调监控 地点:实训楼二楼走廊 时间:昨天 14:00-15:00 原因:学生手机丢失 类型:学生 班级:24级机电技术2班"


class Door(StrEnum):
    OPEN = "open"
    SHUT = "shut"


@dataclass(frozen=True)
class DoorClick(CardAction, prefix="door", subject="room"):
    room: int
    door: Door
    note: str


def test_keys_pack_and_unpack_in_one_place() -> None:
    click = DoorClick(12, Door.OPEN, "east-1")
    assert click.pack() == "door:12:open:east-1"
    assert DoorClick.unpack("door:12:open:east-1") == click and click.subject_id == 12
    for bad in (
        "door:12:ajar:x",
        "door:x:open:x",
        "door:12:open",
        "door:12:open:x:y",
        "ap:12:open:x",
        "door:12:open:a b",
        "door:1234567890123:open:x",
        "",
    ):
        with pytest.raises(BadCardKey):
            DoorClick.unpack(bad)
    with pytest.raises(ValueError):
        DoorClick(1, Door.OPEN, "has:colon").pack()  # what cannot round-trip is never sent


def test_every_registered_action_has_its_own_prefix() -> None:
    assert len({a.prefix for a in ACTIONS}) == len(ACTIONS) >= 6
    assert {a.prefix for a in ACTIONS} >= {"ap", "tk", "dr", "ft", "pc", "sg"}


@given(st.text(max_size=60))
def test_any_text_either_unpacks_to_a_key_that_packs_back_or_is_refused(text: str) -> None:
    found = REGISTRY.action(text)
    if found is not None:
        assert found[1].pack() == text


@given(st.sampled_from(ACTIONS), st.lists(st.text(max_size=12), max_size=5))
def test_forged_keys_with_a_real_prefix_never_crash(cls: type[CardAction], parts: list[str]) -> None:
    key = ":".join([cls.prefix, *parts])
    with contextlib.suppress(BadCardKey):
        assert cls.unpack(key).pack() == key


async def _audit(scene: Scene, number: int) -> list[ApprovalAudit]:
    async with scene.bot.app[PIPELINE].sessions() as s:
        return list(
            (
                await s.execute(
                    select(ApprovalAudit).where(ApprovalAudit.request_id == number).order_by(ApprovalAudit.id)
                )
            ).scalars()
        )


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("ap:999:0:approve", "key_not_of_card"),  # a well-formed key about another request
        ("tk:1:claim", "key_not_of_card"),  # a key of another kind of card
        ("ap:1:x:approve", "bad_key"),  # malformed
        ("zz:1:approve", "bad_key"),  # unknown prefix
    ],
)
async def test_forged_key_on_a_real_card_is_refused_and_audited(scene: Scene, key: str, reason: str) -> None:
    await scene.say("zhaolei", STUDENT_FOOTAGE)
    card = scene.card("liuna")
    code = scene.emu.issue_click_code(card["task_id"], "liuna")
    posted = await scene.bot.sender.card_click("liuna", card["task_id"], key, code)
    assert posted.status == 200
    await scene.bot.settle()
    assert "已失效或不是发给您的" in scene.last_text("liuna")
    async with scene.bot.app[PIPELINE].sessions() as s:
        req = await s.get(Request, 1)
        assert req is not None and req.status == "pending" and req.flow["current"] == 0
    refused = [a for a in await _audit(scene, 1) if a.action == "refused_click"]
    assert len(refused) == 1 and refused[0].actor == "liuna" and refused[0].detail["reason"] == reason
    # The real button still works afterwards.
    assert "已同意" in await scene.click("liuna", card, "同意")


async def test_a_click_code_older_than_72_hours_is_never_used(scene: Scene, clock: FakeClock) -> None:
    await scene.say("zhaolei", STUDENT_FOOTAGE)
    for approver in ("liuna", "songtao", "liuyang"):
        await scene.say(approver, "同意 #1")
    card = scene.card("linxue")
    assert "调取人" in await scene.click("linxue", card, "登记交付")  # the click's code is kept
    await scene.say("linxue", "取消")
    clock.advance(73 * 3600)
    before = len(scene.emu.calls_to("message/update_template_card"))
    reply = await scene.say("linxue", "登记 #1 调取人:赵磊 调取时间:周一 10:30 内容:走廊录像 交付方式:U盘")
    assert "已登记" in reply
    assert len(scene.emu.calls_to("message/update_template_card")) == before  # no stale code sent
    health = await scene.bot.health()
    assert health["outbox"]["failed"] == 0


async def test_confidential_texts_go_out_with_safe(scene: Scene) -> None:
    """Footage matters are sent as WeCom 保密消息 (safe = 1); ordinary replies are not."""
    await scene.say(
        "linxue", "公安调取 地点:校门口 时间:昨天 18:00-19:00 单位:城东派出所 案由:事故 内容:录像 交付方式:U盘"
    )
    await scene.say("zhaolei", "调监控")
    await scene.say("zhaolei", "报修 地点:302 设备:投影 描述:不亮")
    bodies = {
        d.body["text"]["content"][:4]: d.body
        for d in scene.emu.messages_to("linxue") + scene.emu.messages_to("zhaolei")
        if d.msgtype == "text"
    }
    safe = [b.get("safe") for b in bodies.values()]
    assert safe.count(1) == 2 and None in safe  # the police log and the footage question; not the 报修 reply


async def test_messages_about_a_footage_request_are_safe_all_along(scene: Scene) -> None:
    """Approvers' texts, the operator's and the requester's: every text about it has safe = 1."""
    await scene.say("zhaolei", STUDENT_FOOTAGE)
    await scene.click("liuna", scene.card("liuna"), "同意")  # a click
    await scene.say("songtao", "同意 #1")  # a text fallback
    texts = [d.body for u in ("zhaolei", "liuna", "songtao") for d in scene.emu.messages_to(u) if d.msgtype == "text"]
    assert texts and all(b.get("safe") == 1 for b in texts)
