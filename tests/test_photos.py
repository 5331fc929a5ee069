"""Photos over HTTP: kept past WeCom's 3 days (media/get), shown to who judges them (media/upload
+ message/send image), and the sender told when WeCom no longer had one."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from storage.models import Draft, DraftVersion, MediaFile, OutboxMessage, OutboxStatus
from tests.scene import Scene


def photo_bytes() -> bytes:
    """A fake JPEG, different every time."""
    return b"\xff\xd8\xff\xe0" + secrets.token_bytes(2048) + b"\xff\xd9"


async def send_photo(scene: Scene, userid: str, media_id: str, data: bytes | None) -> None:
    """The member sends a photo WeCom holds as `media_id` (or, with data None, one it never held);
    the bot fetches it and the scheduler carries the result on."""
    if data is not None:
        scene.emu.add_inbound_media(media_id, data)
    posted = await scene.bot.sender.image(userid, media_id)
    assert posted.status == 200
    await scene.bot.settle()
    await scene.tick()


def images_to(scene: Scene, userid: str) -> list[bytes]:
    """The images the member received, as the bytes WeCom holds for each message's media_id."""
    return [scene.emu.media[d.body["image"]["media_id"]] for d in scene.emu.messages_to(userid) if d.msgtype == "image"]


async def media_rows(scene: Scene) -> list[MediaFile]:
    async with scene.bot.app[PIPELINE].sessions() as s:
        return list((await s.execute(select(MediaFile).order_by(MediaFile.id))).scalars())


async def test_a_fault_photo_reaches_the_technician_as_an_image(scene: Scene) -> None:
    await scene.say("zhaolei", "报修 地点:302 设备:投影 描述:画面发黄")
    assert scene.card("zhanglei")["main_title"]["title"] == "报修 #1 · 投影"
    data = photo_bytes()
    scene.emu.expire_tokens()  # media/get refreshes the token like every other call
    await send_photo(scene, "zhaolei", "wx_media_fault_1", data)

    assert scene.got("zhaolei", "照片已附到报修 #1")
    assert images_to(scene, "zhanglei") == [data]
    assert "报修 #1（302）：报修人赵磊发来现场照片" in scene.texts("zhanglei")[-1]  # the note comes first
    (kept,) = await media_rows(scene)
    assert (kept.status, kept.size, kept.sha256) == ("kept", len(data), hashlib.sha256(data).hexdigest())
    assert images_to(scene, "zhaolei") == []  # the reporter is not sent their own photo

    # The technician who takes the ticket over later gets the kept photo too (from the database).
    await scene.say("zhanglei", "接单 #1")
    await scene.say("zhanglei", "转交 #1 许强")
    assert images_to(scene, "xuqiang") == [data]
    sends = [c for c in scene.emu.calls_to("message/send") if c.body.get("msgtype") == "image"]
    assert all(c.body["enable_duplicate_check"] == 1 and "duplicate_check_interval" in c.body for c in sends)
    assert len(scene.emu.calls_to("media/upload")) == 1  # the cached upload served both


async def test_a_draft_photo_reaches_the_photo_reviewer_and_then_the_editor(scene: Scene) -> None:
    await scene.say("zhaolei", "投稿 标题:我校举办技能节 正文:11月20日我校第十届技能节开幕。")
    data = photo_bytes()
    await send_photo(scene, "zhaolei", "wx_media_draft_1", data)
    assert scene.got("zhaolei", "照片已加入稿件 #1（共 1 张）")
    assert images_to(scene, "guoqing") == []  # not before the author submits

    await scene.say("zhaolei", "提交")
    assert scene.card("guoqing")["main_title"]["title"] == "稿件照片审核 #1"
    assert images_to(scene, "guoqing") == [data]
    assert scene.got("guoqing", "稿件 #1《我校举办技能节》的照片，见下图")
    assert images_to(scene, "huangli") == []  # the text reviewer judges the text

    await scene.say("guoqing", "通过 #1 照片")
    await scene.say("huangli", "通过 #1 文字")
    assert scene.card("zhouyan")["main_title"]["title"] == "二次编辑发布 #1"
    assert images_to(scene, "zhouyan") == [data]


async def test_a_photo_still_downloading_at_submit_follows_once(scene: Scene) -> None:
    """Submitted before the bot had the photo: the reviewer gets it when it is kept, once."""
    await scene.say("zhaolei", "投稿 标题:运动会 正文:运动会圆满结束。")
    data = photo_bytes()
    scene.emu.add_inbound_media("wx_media_late", data)
    await scene.bot.sender.image("zhaolei", "wx_media_late")  # the dispatcher has not fetched it yet
    await scene.say("zhaolei", "提交")  # (say delivers the queue, the fetch included, after 提交)
    assert images_to(scene, "guoqing") == []
    await scene.tick()
    await scene.tick()
    assert images_to(scene, "guoqing") == [data]


async def test_a_photo_kept_before_its_timer_fires_goes_once(scene: Scene) -> None:
    """Kept, but its timer had not fired when the author submitted: 提交 sends it, the timer not again."""
    await scene.say("zhaolei", "投稿 标题:运动会 正文:运动会圆满结束。")
    data = photo_bytes()
    scene.emu.add_inbound_media("wx_media_kept", data)
    await scene.bot.sender.image("zhaolei", "wx_media_kept")
    await scene.bot.settle()  # fetched; the scheduler has not run
    await scene.say("zhaolei", "提交")
    assert images_to(scene, "guoqing") == [data]
    await scene.tick()
    assert images_to(scene, "guoqing") == [data]


async def test_an_expired_photo_is_reported_to_the_reporter(scene: Scene, clock: FakeClock) -> None:
    scene.emu.add_inbound_media("wx_media_old", photo_bytes())
    clock.advance(3 * 24 * 3600 + 60)  # WeCom keeps it 3 days; the bot was down meanwhile
    await scene.say("zhaolei", "报修 地点:302 设备:投影 描述:画面发黄")
    await send_photo(scene, "zhaolei", "wx_media_old", None)

    assert scene.got("zhaolei", "报修 #1 的一张照片没能保存：企业微信只保留临时图片 3 天")
    assert images_to(scene, "zhanglei") == []
    (lost,) = await media_rows(scene)
    assert lost.status == "failed" and "40007" in (lost.error or "")
    assert [c.errcode for c in scene.emu.calls_to("media/get")] == [40007]  # refused for good: asked once


async def test_an_unknown_draft_photo_is_dropped_and_the_author_told(scene: Scene) -> None:
    await scene.say("zhaolei", "投稿 标题:校园开放日 正文:欢迎参观。")
    await send_photo(scene, "zhaolei", "wx_media_never", None)
    assert scene.got("zhaolei", "稿件 #1 的一张照片没能保存")
    assert scene.got("zhaolei", "已从稿件中去掉这张照片（现有 0 张）")
    async with scene.bot.app[PIPELINE].sessions() as s:
        v = (await s.execute(select(DraftVersion))).scalar_one()
    assert v.photos == {"items": []}
    reply = await scene.say("zhaolei", "提交")
    assert "郭庆" not in reply  # no photos left: no photo review
    async with scene.bot.app[PIPELINE].sessions() as s:
        failed = (await s.execute(select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED))).scalars()
        assert [r.kind for r in failed] == ["media_fetch"]  # no image was ever queued for it


async def test_the_upload_is_reused_then_renewed_before_it_expires(scene: Scene, clock: FakeClock) -> None:
    await scene.say("zhaolei", "投稿 标题:社团招新 正文:社团招新开始了。")
    data = photo_bytes()
    await send_photo(scene, "zhaolei", "wx_media_club", data)
    await scene.say("zhaolei", "提交")
    assert images_to(scene, "guoqing") == [data]

    async def return_and_resubmit(round_: int) -> None:
        await scene.say("guoqing", f"退回 #1 照片 第{round_}轮：请换一张更清楚的")
        await scene.say("huangli", "通过 #1 文字")
        await scene.say("zhaolei", f"修改 #1 正文:社团招新开始了（第{round_ + 1}版）。")
        await scene.say("zhaolei", "提交 #1")

    await return_and_resubmit(1)  # the same day: the upload is still fresh
    assert images_to(scene, "guoqing") == [data, data]
    assert len(scene.emu.calls_to("media/upload")) == 1

    clock.advance(3 * 24 * 3600 + 3600)  # past WeCom's 3 days for the first upload
    await return_and_resubmit(2)
    assert images_to(scene, "guoqing") == [data, data, data]  # the emulator refuses an expired media_id
    assert len(scene.emu.calls_to("media/upload")) == 2
    (kept,) = await media_rows(scene)
    assert kept.uploaded_at is not None and kept.uploaded_at > clock.now() - timedelta(minutes=1)
    async with scene.bot.app[PIPELINE].sessions() as s:
        assert (await s.execute(select(Draft.version))).scalar_one() == 3


async def test_a_photo_of_a_police_letter_goes_with_the_footage_request_to_each_approver(scene: Scene) -> None:
    """A self-built app receives no file messages: a letter arrives as its photo, sent right after
    the request. Each step's approvers see it, as a confidential (safe) image."""
    await scene.say("zhaolei", "调监控 地点:302教室 时间:今天 8:00-9:00 原因:教师物品丢失 类型:教职工")
    letter = photo_bytes()
    await send_photo(scene, "zhaolei", "wx_media_letter", letter)
    assert scene.got("zhaolei", "照片已加入监控调取申请 #1（共 1 张）")
    assert images_to(scene, "majun") == [letter]
    [sent] = [d for d in scene.emu.messages_to("majun") if d.msgtype == "image"]
    assert sent.body.get("safe") == 1  # confidential: no forwarding, watermarked
    assert "监控调取申请 #1 附有 1 张照片" in scene.texts("majun")[-1]
    await scene.say("majun", "同意 #1")
    assert images_to(scene, "liuyang") == [letter]  # the next step sees it with its card
    assert images_to(scene, "majun") == [letter]  # once


async def test_a_photo_long_after_the_request_is_not_attached(scene: Scene, clock: FakeClock) -> None:
    await scene.say("zhaolei", "调监控 地点:302教室 时间:今天 8:00-9:00 原因:教师物品丢失 类型:教职工")
    clock.advance(3600)
    await send_photo(scene, "zhaolei", "wx_media_late_letter", photo_bytes())
    assert images_to(scene, "majun") == []
    assert not scene.got("zhaolei", "照片已加入")
