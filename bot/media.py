"""Photos and files members send: kept past WeCom's 3 days, and shown to who judges them.

WeCom keeps a member's MediaId for 3 days (doc 96484), so a photo that waits for a reviewer is
gone by the time they look. A handler records a `media_files` row with the message that brought
it and queues a `media_fetch` call in the same transaction (handlers never call the network); the
dispatcher downloads it (media/get) into the row, and the row's `then` timer tells the workflow,
which sends it on (`send_kept`) or tells the sender it could not be kept. A send goes through the
outbox as an `image` / `file` row: the dispatcher uploads the bytes (media/upload, cached on the
row until it nears its own 3 days: outbox.REUPLOAD_AFTER) and sends the upload's media_id with message/send.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import select

from bot.context import Ctx
from bot.outbox import enqueue
from storage.models import MediaFile, MediaStatus, Timer


async def keep(ctx: Ctx, subject: str, then: str, kind: str = "image", filename: str = "") -> MediaFile:
    """Record the sender's photo (or file) for `subject` and queue its download; `then` is the timer
    kind fired once it is kept or could not be (read it with `fetched`)."""
    assert ctx.inbound.media_id, "an attachment without a MediaId"
    media = MediaFile(
        media_id=ctx.inbound.media_id,
        kind=kind,
        owner=ctx.user,
        subject=subject,
        status=MediaStatus.PENDING,
        filename=filename,
        created_at=ctx.now(),
    )
    ctx.session.add(media)
    await ctx.session.flush()
    row = enqueue(
        ctx.session,
        ctx.now(),
        f"media:{media.id}",
        "media_fetch",
        {"media_id": media.media_id, "media_file": media.id},
        caused_by=ctx.event_id,
        then=then,
    )
    await ctx.session.flush()
    media.fetch_call_id = row.id
    return media


async def fetched(ctx: Ctx, timer: Timer) -> MediaFile | None:
    """The file a settled `media_fetch` was about; marked failed if WeCom would not give it."""
    call_id = int(timer.payload["outbox_id"])
    media = (
        await ctx.session.execute(select(MediaFile).where(MediaFile.fetch_call_id == call_id).with_for_update())
    ).scalar_one_or_none()
    if media is not None and not timer.payload.get("ok") and media.status != MediaStatus.FAILED:
        media.status = MediaStatus.FAILED
        media.error = media.error or f"errcode {timer.payload.get('errcode')}"
    return media


async def of_subject(ctx: Ctx, subject: str) -> list[MediaFile]:
    """Every file recorded for `subject` (kept, pending or lost), oldest first."""
    q = select(MediaFile).where(MediaFile.subject == subject).order_by(MediaFile.id)
    return list((await ctx.session.execute(q)).scalars())


async def kept_for(ctx: Ctx, subject: str) -> list[MediaFile]:
    """The files of `subject` that are kept, oldest first."""
    q = select(MediaFile).where(MediaFile.subject == subject, MediaFile.status == MediaStatus.KEPT)
    return list((await ctx.session.execute(q.order_by(MediaFile.id))).scalars())


def made(ctx: Ctx, kind: str, subject: str, filename: str, content: bytes, content_type: str = "") -> MediaFile:
    """A file the bot made (a spreadsheet, a chart), kept like a member's so `send_kept` can send it;
    added to the session (flush before sending: the outbox row names its id)."""
    now = ctx.now()
    media = MediaFile(
        media_id="",
        kind=kind,
        owner=ctx.user,
        subject=subject[:32],
        status=MediaStatus.KEPT,
        filename=filename,
        **({"content_type": content_type} if content_type else {}),
        content=content,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        created_at=now,
        fetched_at=now,
    )
    ctx.session.add(media)
    return media


def send_kept(ctx: Ctx, userids: Sequence[str], media: MediaFile) -> None:
    """Queue the kept file to each member, in order after what they were already sent."""
    assert media.status == MediaStatus.KEPT
    for u in dict.fromkeys(userids):
        enqueue(
            ctx.session,
            ctx.now(),
            f"user:{u}",
            media.kind,
            {
                "touser": u,
                "msgtype": media.kind,
                "media_file": media.id,
                **({"safe": 1} if ctx.confidential else {}),
            },
            caused_by=ctx.event_id,
        )


def show_once(
    ctx: Ctx, userids: Sequence[str], files: Sequence[MediaFile], stage: str, intro: str | None = None
) -> int:
    """Send the judges of `stage` (e.g. 'review:2') each kept file they have not had for it yet,
    after `intro` (a text saying what the photos are); return how many files went."""
    new = [m for m in files if m.status == MediaStatus.KEPT and m.shown != stage]
    if not new or not userids:
        return 0
    for u in dict.fromkeys(userids):
        if intro:
            ctx.send_text(u, intro)
    for media in new:
        send_kept(ctx, userids, media)
        media.shown = stage
    return len(new)


def subject_id(media: MediaFile, prefix: str) -> int | None:
    """The id in a file's subject ('draft:7' → 7) if it belongs to `prefix`."""
    kind, _, number = media.subject.partition(":")
    return int(number) if kind == prefix and number.isdigit() else None
