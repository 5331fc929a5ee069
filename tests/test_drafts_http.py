"""投稿 over HTTP: parallel reviews, a return and a new version, the phone rule, publication, cadence."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from handlers.publishing import has_phone
from storage.models import Draft, DraftVersion, Publication
from tests.scene import Scene

START = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # Wednesday 09:00 in Shanghai


async def versions(scene: Scene) -> list[DraftVersion]:
    async with scene.bot.app[PIPELINE].sessions() as s:
        return list((await s.execute(select(DraftVersion).order_by(DraftVersion.version))).scalars())


async def draft(scene: Scene) -> Draft:
    async with scene.bot.app[PIPELINE].sessions() as s:
        return (await s.execute(select(Draft))).scalar_one()


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("招生咨询电话：13812345678", True),
        ("咨询 138-1234-5678", True),
        ("电话 0571-87654321", True),
        ("热线 400-123-4567", True),
        ("800 888 6666", True),
        ("学号 2024013812345678", False),
        ("11月20日举办第10届技能节", False),
    ],
)
def test_phone_numbers(text: str, found: bool) -> None:
    assert has_phone(text) is found


async def test_draft_return_revision_and_publication(scene: Scene) -> None:
    assert "已建稿 #1" in await scene.say("zhaolei", "投稿 标题:我校举办技能节 正文:11月20日我校第十届技能节开幕。")
    await scene.bot.sender.image("zhaolei", "photo_1")
    await scene.bot.settle()
    assert scene.got("zhaolei", "照片已加入稿件 #1（共 1 张）")
    assert "黄丽、郭庆审核中" in await scene.say("zhaolei", "提交")
    text_card, photo_card = scene.card("huangli"), scene.card("guoqing")
    assert (
        text_card["main_title"]["title"] == "稿件文字审核 #1" and photo_card["main_title"]["title"] == "稿件照片审核 #1"
    )

    await scene.click("guoqing", photo_card, "通过")
    assert "退回意见" in await scene.click("huangli", text_card, "退回")
    await scene.say("huangli", "第十届应为第十一届")
    assert scene.got("zhaolei", "意见：第十届应为第十一届")
    assert scene.update_labels("huangli") == ["已退回·黄丽"]

    assert "第2版" in await scene.say("zhaolei", "修改 #1 正文:11月20日我校第十一届技能节开幕。")
    reply = await scene.say("zhaolei", "提交 #1")
    assert "黄丽审核中" in reply and "郭庆" not in reply  # unchanged photos keep their pass
    await scene.say("huangli", "通过 #1 文字")
    assert scene.card("zhouyan")["main_title"]["title"] == "二次编辑发布 #1"
    assert scene.got("zhaolei", "文字和照片均已审核通过")

    await scene.say("zhouyan", "预览 #1 网站:https://www.school.edu.cn/p/1 公众号:https://mp.weixin.qq.com/s/p1")
    assert scene.got("zhaolei", "网站版：https://www.school.edu.cn/p/1")
    assert "还差：公众号" in await scene.say("zhouyan", "发布 #1 网站 https://www.school.edu.cn/news/1")
    assert "两个平台都已发布" in await scene.say("zhouyan", "发布 #1 公众号 https://mp.weixin.qq.com/s/1")
    assert scene.got("zhaolei", "已在公众号发布")
    v1, v2 = await versions(scene)
    assert "第十届" in v1.body and "第十一届" in v2.body  # every version is kept
    assert (v1.text_review["status"], v2.text_review["status"]) == ("returned", "passed")
    assert (await draft(scene)).status == "published"


async def test_phone_number_needs_the_committee_before_publication(scene: Scene) -> None:
    await scene.say("zhaolei", "投稿 标题:2027年招生简章 正文:欢迎报考！招生咨询电话：0571-87654321")
    assert "校委会批准" in await scene.say("zhaolei", "提交")
    await scene.say("huangli", "通过 #1 文字")
    assert (await draft(scene)).status == "committee"
    assert scene.got("zhaolei", "已提交校委会审批")
    assert "校委会批准前不能发布" in await scene.say("zhouyan", "发布 #1 网站 https://www.school.edu.cn/news/2")
    card = scene.card("liuyang")  # a committee member
    assert card["main_title"]["title"].startswith("含联系电话稿件审批")
    await scene.click("liuyang", card, "同意")
    assert (await draft(scene)).status == "editing"
    assert "还差：公众号" in await scene.say("zhouyan", "发布 #1 网站 https://www.school.edu.cn/news/2")


async def test_cadence_reminders(scene: Scene, clock: FakeClock) -> None:
    clock.advance(7 * 3600)  # 16:00 Wednesday, no website post today
    await scene.tick()
    assert scene.got("zhouyan", "今天是11月25日（周三），网站还没有发布新内容")
    async with scene.bot.app[PIPELINE].sessions() as s, s.begin():
        for i in range(4):
            s.add(
                Draft(id=100 + i, author="zhouyan", status="published", created_at=clock.now(), updated_at=clock.now())
            )
            await s.flush()
            s.add(
                Publication(
                    draft_id=100 + i, platform="oa", link=f"https://mp/{i}", editor="zhouyan", published_at=clock.now()
                )
            )
    clock.advance(18 * 3600)  # Thursday 10:00: four official-account posts this week → no reminder
    await scene.tick()
    assert not scene.got("zhouyan", "公众号本周已发")
    clock.advance(7 * 24 * 3600)  # the next Thursday: none that week
    await scene.tick()
    assert scene.got("zhouyan", "公众号本周已发 0 篇，要求每周不少于 4 篇")
