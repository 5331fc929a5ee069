"""投稿 — news drafts to the website and the official account (W4, 网站及微信发布流程).

The author gives 标题 and 正文, sends photos, and 提交. The text goes to a publicity reviewer and
the photos to a photo reviewer, in parallel, each with a card (通过 / 退回 + 意见). A return goes
back to the author, who revises (修改): a new version, every version kept. Both passed → a draft
with a phone number first needs the school committee (the manual fines publishing without it) →
a platform editor previews both versions to the author and records each publication.

The review engine (versions, parts reviewed in parallel, 通过 / 退回 cards, 修改 and 提交) also
serves other kinds of draft: a `DraftKind` names who reviews each part, the words of its review
cards, and what happens on a return and once every part has passed (handlers/microlessons.py
reviews external teachers' micro-lesson videos with it).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select

from bot import media as media_files
from bot.cardkeys import CardAction
from bot.cards import Button, close_cards, send_cards
from bot.config import Config
from bot.context import Ctx
from bot.conversation import start_form
from bot.router import Field, FieldError, Job, Router
from bot.timeparse import local_now
from handlers.approval_commands import parse_required
from handlers.approvals import WorkflowSpec, submit
from handlers.labels import Labels
from handlers.numbers import DRAFT_NUMBER, Kind, number_field
from storage.models import (
    Card,
    Draft,
    DraftStatus,
    DraftVersion,
    MediaStatus,
    Platform,
    Publication,
    Request,
    Timer,
)

router = Router("publishing", templates=Path(__file__).with_name("templates") / "publishing")
router.requires_chain("draft_phone", "投稿 (含联系电话)")


class DraftPart(StrEnum):
    TEXT = "text"
    PHOTO = "photo"
    EDIT = "edit"


class DraftButton(StrEnum):
    PASS = "pass"
    RETURN = "return"
    HOWTO = "howto"


@dataclass(frozen=True)
class DraftClick(CardAction, prefix="dr", subject="draft"):
    """A reviewer's or editor's button on a draft: which version, which part, which verdict."""

    draft: int
    version: int
    part: DraftPart
    button: DraftButton


class ReviewStatus(StrEnum):
    """`draft_versions.text_review` / `photo_review` status."""

    PENDING = "pending"
    PASSED = "passed"
    RETURNED = "returned"


class Verdict(StrEnum):
    """A reviewer's decision on one part."""

    PASS = "pass"
    RETURN = "return"


@dataclass(frozen=True)
class DraftKind:
    """What one kind of draft (`drafts.kind`) changes in the review engine."""

    key: str
    reviewers: Mapping[DraftPart, str]  # the role that reviews each part (TEXT: the content)
    cards: str  # the template with the review cards' blocks (as in cards_publishing.j2)
    on_returned: Callable[[Ctx, Draft, DraftVersion, DraftPart, str], Awaitable[None]]  # tell the author
    on_passed: Callable[[Ctx, Draft, DraftVersion], Awaitable[None]]  # every part passed
    # The review card's rows (None: version, author, title, and the text or the photos).
    rows: Callable[[Ctx, Draft, DraftVersion], Awaitable[list[tuple[str, str]]]] | None = None
    # A review card's 退回: ask for the comment (None: the 退回 form of 投稿).
    on_return_click: Callable[[Ctx, Draft, DraftPart], Awaitable[None]] | None = None


KINDS: dict[str, DraftKind] = {}


def draft_kind(kind: DraftKind) -> DraftKind:
    """Register a kind of draft; its key is what `drafts.kind` stores."""
    if kind.key in KINDS:
        raise ValueError(f"draft kind {kind.key!r} registered twice")
    KINDS[kind.key] = kind
    return kind


def kind_of(d: Draft) -> DraftKind:
    return KINDS[d.kind or NEWS_KIND]


NEWS_KIND = "news"
LABELS = Labels("labels_publishing", platform=Platform, part=(DraftPart.TEXT, DraftPart.PHOTO), status=DraftStatus)
NUMBER = DRAFT_NUMBER

# Drafts an author is still writing: new photos attach to them, 提交 sends them.
OPEN = (DraftStatus.COLLECTING, DraftStatus.REVISING)

PLATFORMS = {
    "网站": Platform.WEBSITE,
    "官网": Platform.WEBSITE,
    "website": Platform.WEBSITE,
    "web": Platform.WEBSITE,
    "公众号": Platform.OA,
    "微信": Platform.OA,
    "公众平台": Platform.OA,
    "oa": Platform.OA,
    "wechat": Platform.OA,
}
PARTS = {
    "文字": DraftPart.TEXT,
    "文稿": DraftPart.TEXT,
    "text": DraftPart.TEXT,
    "照片": DraftPart.PHOTO,
    "图片": DraftPart.PHOTO,
    "photo": DraftPart.PHOTO,
}
# Mainland mobiles, landlines with area code, and 400/800 numbers, with or without separators.
PHONE_RE = re.compile(
    r"(?<!\d)(?:1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}|0\d{2,3}[\s-]?\d{7,8}|[48]00[\s-]?\d{3}[\s-]?\d{4})(?!\d)"
)


def has_phone(*texts: str) -> bool:
    """True if the text carries a phone number the homepage rule is about."""
    return any(PHONE_RE.search(t) for t in texts)


def parse_part(value: str, ctx: Ctx) -> DraftPart:
    part = PARTS.get(value.strip().lower())
    if part is None:
        raise FieldError("invalid_part")
    return part


def parse_platform(value: str, ctx: Ctx) -> Platform:
    p = PLATFORMS.get(value.strip().lower())
    if p is None:
        raise FieldError("invalid_platform")
    return p


def parse_link(value: str, ctx: Ctx) -> str:
    if not re.fullmatch(r"https?://\S{3,490}", value.strip()):
        raise FieldError("invalid_link")
    return value.strip()


async def _draft(ctx: Ctx, number: str) -> Draft | None:
    d = (await ctx.session.execute(select(Draft).where(Draft.id == int(number)).with_for_update())).scalar_one_or_none()
    if d is None:
        ctx.reply("draft_not_found", number=number)
    return d


async def _version(ctx: Ctx, d: Draft, version: int | None = None) -> DraftVersion:
    return (
        await ctx.session.execute(
            select(DraftVersion).where(DraftVersion.draft_id == d.id, DraftVersion.version == (version or d.version))
        )
    ).scalar_one()


def _has_role(ctx: Ctx, role: str) -> bool:
    return ctx.person is not None and role in ctx.person.roles


def platform_name(ctx: Ctx, platform: str) -> str:
    return LABELS.name(ctx, "platform", platform)


def _photos(ctx: Ctx, v: DraftVersion) -> str:
    return LABELS(ctx, "photos", count=len(v.photos.get("items", [])))


@router.command(
    "submit_draft_new",
    aliases=("投稿", "投稿件", "draft"),
    fields=(
        Field("title", ("标题", "標題", "title"), parse=parse_required),
        Field("body", ("正文", "内容", "內容", "body"), parse=parse_required),
    ),
)
async def new_draft(ctx: Ctx, values: dict[str, str]) -> None:
    """投稿 标题:… 正文:… — start a news draft; then send photos and 提交."""
    now = ctx.now()
    d = Draft(author=ctx.user, status=DraftStatus.COLLECTING, version=1, created_at=now, updated_at=now, kind=NEWS_KIND)
    ctx.session.add(d)
    await ctx.session.flush()
    ctx.session.add(
        DraftVersion(
            draft_id=d.id, version=1, title=values["title"], body=values["body"], photos={"items": []}, created_at=now
        )
    )
    ctx.reply("draft_started", number=d.id, title=values["title"])


@router.attachment(order=10)  # before faults: a draft being written takes the photo first
async def attach_photo(ctx: Ctx) -> bool:
    """A photo from an author with a draft being written attaches to its current version."""
    d = (
        await ctx.session.execute(
            select(Draft)
            .where(
                Draft.author == ctx.user,
                Draft.status.in_(OPEN),
                Draft.kind == NEWS_KIND,
                Draft.updated_at >= ctx.now() - timedelta(hours=2),
            )
            .order_by(Draft.updated_at.desc())
            .limit(1)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if d is None:
        return False
    v = await _version(ctx, d)
    media = await media_files.keep(ctx, f"draft:{d.id}", then="draft_photo_kept")
    items = list(v.photos.get("items", []))
    items.append({"media_id": ctx.inbound.media_id, "pic_url": ctx.inbound.pic_url, "media_file": media.id})
    v.photos = {"items": items}
    d.updated_at = ctx.now()
    ctx.reply("draft_photo_added", number=d.id, count=len(items))
    return True


def _photo_judges(ctx: Ctx, d: Draft, v: DraftVersion) -> tuple[str, list[str]] | None:
    """Who looks at the photos now, and the stage they look at: the photo reviewers while the
    photo review of this version is pending, the platform editors once it is with them."""
    if d.status == DraftStatus.IN_REVIEW and v.photo_review.get("status") == ReviewStatus.PENDING:
        return f"review:{v.version}", ctx.org.with_role("photo_reviewer")
    if d.status == DraftStatus.EDITING:
        return f"edit:{v.version}", ctx.org.with_role("platform_editor")
    return None


async def _show_photos(ctx: Ctx, d: Draft, v: DraftVersion) -> None:
    """Send the version's kept photos to whoever judges them now (each once per stage); a photo
    still being downloaded follows when it arrives (`draft_photo_kept`)."""
    judges = _photo_judges(ctx, d, v)
    if judges is None:
        return
    stage, people = judges
    ids = {item.get("media_file") for item in v.photos.get("items", [])}
    files = [m for m in await media_files.kept_for(ctx, f"draft:{d.id}") if m.id in ids]
    count = len([m for m in files if m.shown != stage])
    intro = ctx.render(
        "draft_photos_for_judge", number=d.id, title=v.title, count=count, editing=stage.startswith("edit")
    )
    media_files.show_once(ctx, people, files, stage, intro=intro)


@router.timer("draft_photo_kept")
async def photo_kept(ctx: Ctx, timer: Timer) -> None:
    """A draft's photo was downloaded (to its judges, if it is with them), or WeCom no longer had
    it: the author hears, and a draft still being written drops it."""
    media = await media_files.fetched(ctx, timer)
    number = media_files.subject_id(media, "draft") if media is not None else None
    if media is None or number is None:
        return
    d = (await ctx.session.execute(select(Draft).where(Draft.id == number).with_for_update())).scalar_one_or_none()
    if d is None:
        return
    v = await _version(ctx, d)
    if media.status == MediaStatus.KEPT:
        await _show_photos(ctx, d, v)
        return
    items = list(v.photos.get("items", []))
    if d.status in OPEN:
        items = [item for item in items if item.get("media_file") != media.id]
        v.photos = {"items": items}
    ctx.tell(d.author, "draft_photo_lost", number=d.id, count=len(items), dropped=d.status in OPEN)


async def _send_review_cards(ctx: Ctx, d: Draft, v: DraftVersion, part: DraftPart, userids: list[str]) -> None:
    author = ctx.org.name(d.author)
    unit = ctx.org.unit_of(d.author)
    rows = [
        (LABELS(ctx, "row_version"), LABELS(ctx, "version", version=v.version)),
        (LABELS(ctx, "row_author"), f"{author} {unit.name if unit else ''}".strip()),
        (LABELS(ctx, "row_title"), v.title),
    ]
    rows.append(
        (LABELS(ctx, "row_body"), v.body) if part is DraftPart.TEXT else (LABELS(ctx, "row_photos"), _photos(ctx, v))
    )
    kind = kind_of(d)
    if kind.rows is not None:
        rows = await kind.rows(ctx, d, v)
    cards, block = kind.cards, ctx.renderer.block
    await send_cards(
        ctx,
        userids,
        subject_id=d.id,
        purpose=f"review_{part.value}",
        step=d.version,
        rows=rows,
        title=block(cards, f"draft_review_{part.value}", number=d.id) or "",
        desc=block(cards, "draft_review_desc", number=d.id, title=v.title) or "",
        buttons=[
            Button(block(cards, "draft_pass") or "", DraftClick(d.id, v.version, part, DraftButton.PASS)),
            Button(
                block(cards, "draft_return") or "",
                DraftClick(d.id, v.version, part, DraftButton.RETURN),
                style=2,
            ),
        ],
    )


async def _close(ctx: Ctx, d: Draft, purpose: str, label: str) -> None:
    await close_cards(ctx, "draft", d.id, label, purpose=purpose)


@router.command(
    "submit_draft",
    aliases=("提交", "提交稿件", "submit"),
    positional=True,
    fields=(number_field(Kind.DRAFT, required=False),),
)
async def submit_draft(ctx: Ctx, values: dict[str, str]) -> None:
    """提交 [#编号] — send the draft to the text and photo reviewers."""
    if values.get("number"):
        d = await _draft(ctx, values["number"])
    else:
        d = (
            await ctx.session.execute(
                select(Draft)
                .where(Draft.author == ctx.user, Draft.status.in_(OPEN), Draft.kind == NEWS_KIND)
                .order_by(Draft.updated_at.desc())
                .limit(1)
                .with_for_update()
            )
        ).scalar_one_or_none()
        if d is None:
            ctx.reply("draft_none_open")
            return
    if d is None:
        return
    if d.author != ctx.user or d.status not in OPEN:
        ctx.reply("draft_cannot_submit", number=d.id, status=d.status)
        return
    reviewers = await send_for_review(ctx, d)
    v = await _version(ctx, d)
    ctx.reply(
        "draft_submitted", number=d.id, version=v.version, reviewers=[ctx.org.name(u) for u in reviewers], phone=d.phone
    )
    await _after_review(ctx, d, v)


async def send_for_review(ctx: Ctx, d: Draft) -> list[str]:
    """The current version to the reviewers of each part still to review; returns who got it.

    The caller then tells the author and runs `_after_review` (every part may have kept its pass)."""
    kind = kind_of(d)
    v = await _version(ctx, d)
    previous = await _version(ctx, d, d.version - 1) if d.version > 1 else None
    # A part passed in the previous round and unchanged keeps its pass; the rest is reviewed.
    keep_text = (
        previous is not None
        and previous.text_review.get("status") == ReviewStatus.PASSED
        and (previous.title, previous.body) == (v.title, v.body)
    )
    keep_photo = (
        previous is not None
        and previous.photo_review.get("status") == ReviewStatus.PASSED
        and previous.photos == v.photos
    )
    now = ctx.now()
    v.submitted_at = now
    v.text_review = dict(previous.text_review) if keep_text and previous else {"status": ReviewStatus.PENDING}
    if not v.photos.get("items"):
        v.photo_review = {"status": ReviewStatus.PASSED, "by": "", "comment": "no photos"}
    else:
        v.photo_review = dict(previous.photo_review) if keep_photo and previous else {"status": ReviewStatus.PENDING}
    d.status, d.updated_at = DraftStatus.IN_REVIEW, now
    d.phone = has_phone(v.title, v.body)
    reviewers: list[str] = []
    if v.text_review["status"] == ReviewStatus.PENDING:
        people = ctx.org.with_role(kind.reviewers[DraftPart.TEXT])
        await _send_review_cards(ctx, d, v, DraftPart.TEXT, people)
        reviewers += people
    if v.photo_review["status"] == ReviewStatus.PENDING:
        people = ctx.org.with_role(kind.reviewers[DraftPart.PHOTO])
        await _send_review_cards(ctx, d, v, DraftPart.PHOTO, people)
        await _show_photos(ctx, d, v)
        reviewers += people
    return reviewers


async def review(
    ctx: Ctx, d: Draft, part: DraftPart, verdict: Verdict, comment: str, version: int | None = None
) -> None:
    """通过/退回 one part of the current version."""
    kind = kind_of(d)
    if not _has_role(ctx, kind.reviewers.get(part, "")):
        ctx.reply("draft_not_reviewer", part=part)
        return
    v = await _version(ctx, d)
    state = v.text_review if part is DraftPart.TEXT else v.photo_review
    if (
        d.status != DraftStatus.IN_REVIEW
        or (version is not None and version != d.version)
        or state.get("status") != ReviewStatus.PENDING
    ):
        ctx.reply("draft_review_stale", number=d.id, status=d.status)
        return
    passed = verdict is Verdict.PASS
    result = {
        "status": ReviewStatus.PASSED if passed else ReviewStatus.RETURNED,
        "by": ctx.user,
        "comment": comment,
        "at": ctx.now().isoformat(),
    }
    if part is DraftPart.TEXT:
        v.text_review = result
    else:
        v.photo_review = result
    label = ctx.renderer.block(kind.cards, f"draft_done_{verdict}", name=ctx.org.name(ctx.user)) or ""
    await _close(ctx, d, f"review_{part}", label)
    if kind.key == NEWS_KIND:
        ctx.reply("draft_review_saved", number=d.id, part=part, verdict=verdict)
    if not passed:
        d.status, d.updated_at = DraftStatus.REVISING, ctx.now()
        other = DraftPart.PHOTO if part is DraftPart.TEXT else DraftPart.TEXT
        await _close(ctx, d, f"review_{other}", ctx.renderer.block(kind.cards, "draft_returned_elsewhere") or "")
        await kind.on_returned(ctx, d, v, part, comment)
        return
    await _after_review(ctx, d, v)


async def _news_returned(ctx: Ctx, d: Draft, v: DraftVersion, part: DraftPart, comment: str) -> None:
    ctx.tell(
        d.author,
        "draft_returned",
        number=d.id,
        part=part,
        name=ctx.org.name(ctx.user),
        comment=comment,
        version=v.version,
    )


async def _after_review(ctx: Ctx, d: Draft, v: DraftVersion) -> None:
    """Both parts passed: what the draft's kind does next."""
    if (
        d.status != DraftStatus.IN_REVIEW
        or v.text_review.get("status") != ReviewStatus.PASSED
        or v.photo_review.get("status") != ReviewStatus.PASSED
    ):
        return
    await kind_of(d).on_passed(ctx, d, v)


async def _news_passed(ctx: Ctx, d: Draft, v: DraftVersion) -> None:
    """A news draft: the committee if there is a phone number, else the editors."""
    if d.phone:
        d.status = DraftStatus.COMMITTEE
        req = await _submit_for_author(ctx, d, v)
        d.committee_request = req.id
        ctx.tell(d.author, "draft_to_committee", number=d.id)
        return
    await _to_editors(ctx, d, v)


async def _submit_for_author(ctx: Ctx, d: Draft, v: DraftVersion) -> Request:
    """The committee request is the author's, even when the last reviewer's click triggers it."""
    author_ctx = Ctx(
        ctx.session,
        ctx.clock,
        ctx.config,
        ctx.renderer,
        ctx.registry,
        dc_replace(ctx.inbound, from_user=d.author),
        ctx.event_id,
        ctx.org,
    )
    return await submit(
        author_ctx, COMMITTEE_SPEC, "draft_phone", {"draft": d.id, "title": v.title, "body": v.body[:200]}
    )


async def _to_editors(ctx: Ctx, d: Draft, v: DraftVersion) -> None:
    d.status, d.updated_at = DraftStatus.EDITING, ctx.now()
    editors = ctx.org.with_role("platform_editor")
    block = ctx.renderer.block
    await send_cards(
        ctx,
        editors,
        subject_id=d.id,
        purpose="edit",
        step=d.version,
        title=block("cards_publishing", "draft_edit_title", number=d.id) or "",
        desc=block("cards_publishing", "draft_review_desc", number=d.id, title=v.title) or "",
        rows=[
            (LABELS(ctx, "row_author"), ctx.org.name(d.author)),
            (LABELS(ctx, "row_title"), v.title),
            (LABELS(ctx, "row_photos"), _photos(ctx, v)),
        ],
        buttons=[
            Button(
                block("cards_publishing", "draft_edit_button") or "",
                DraftClick(d.id, v.version, DraftPart.EDIT, DraftButton.HOWTO),
            )
        ],
    )
    await _show_photos(ctx, d, v)
    ctx.tell(d.author, "draft_passed", number=d.id, editors=[ctx.org.name(u) for u in editors])


async def on_committee_approved(ctx: Ctx, req: Request) -> None:
    d = await ctx.session.get(Draft, int(req.fields["draft"]))
    if d is not None and d.status == DraftStatus.COMMITTEE:
        await _to_editors(ctx, d, await _version(ctx, d))


async def on_committee_closed(ctx: Ctx, req: Request) -> None:
    d = await ctx.session.get(Draft, int(req.fields["draft"]))
    if d is not None and d.status == DraftStatus.COMMITTEE:
        d.status = DraftStatus.REVISING  # the author removes the number (or argues) and submits again


COMMITTEE_SPEC = router.approval(
    WorkflowSpec(
        key="draft_phone",
        labels=LABELS,
        confidential=False,
        facts=lambda ctx, req: [
            (LABELS(ctx, "row_draft"), f"#{req.fields['draft']}"),
            (LABELS(ctx, "row_title"), req.fields["title"]),
            (LABELS(ctx, "row_body"), req.fields["body"]),
        ],
        on_approved=on_committee_approved,
        on_closed=on_committee_closed,
        viewers=lambda ctx, req: ctx.org.with_role("platform_editor"),
    )
)


REVIEWER = "draft_reviewer"  # whoever reviews a part of some kind of draft (通过 / 退回)


@router.derived_role(REVIEWER)
def reviewer_roles(config: Config) -> Iterable[str]:
    """The roles the kinds of draft name as reviewers."""
    return {role for kind in KINDS.values() for role in kind.reviewers.values()}


NEWS = draft_kind(
    DraftKind(
        key=NEWS_KIND,
        reviewers={DraftPart.TEXT: "publicity_reviewer", DraftPart.PHOTO: "photo_reviewer"},
        cards="cards_publishing",
        on_returned=_news_returned,
        on_passed=_news_passed,
    )
)


@router.action(DraftClick)
async def draft_click(ctx: Ctx, card: Card, click: DraftClick) -> None:
    d = await _draft(ctx, str(click.draft))
    if d is None:
        return
    if click.part is DraftPart.EDIT:
        ctx.reply("draft_edit_howto", number=d.id)
    elif click.button is DraftButton.PASS:
        await review(ctx, d, click.part, Verdict.PASS, "", click.version)
    elif click.button is DraftButton.RETURN:
        on_return_click = kind_of(d).on_return_click
        if on_return_click is not None:
            await on_return_click(ctx, d, click.part)
        else:
            await start_form(ctx, "return_draft", {"number": str(d.id), "part": click.part})
    else:
        ctx.reply("card_unknown")


@router.command(
    "pass_draft",
    aliases=("通过", "通過", "pass"),
    positional=True,
    roles=(REVIEWER,),
    fields=(NUMBER, Field("part", ("部分", "part"), parse=parse_part, show=LABELS.show("part"))),
)
async def pass_draft(ctx: Ctx, values: dict[str, str]) -> None:
    """通过 #编号 文字|照片"""
    d = await _draft(ctx, values["number"])
    if d is not None:
        await review(ctx, d, DraftPart(values["part"]), Verdict.PASS, "")


@router.command(
    "return_draft",
    aliases=("退回", "return"),
    positional=True,
    roles=(REVIEWER,),
    fields=(
        NUMBER,
        Field("part", ("部分", "part"), parse=parse_part, show=LABELS.show("part")),
        Field("comment", ("意见", "意見", "comment"), parse=parse_required),
    ),
)
async def return_draft(ctx: Ctx, values: dict[str, str]) -> None:
    """退回 #编号 文字|照片 意见"""
    d = await _draft(ctx, values["number"])
    if d is not None:
        await review(ctx, d, DraftPart(values["part"]), Verdict.RETURN, values["comment"])


@router.command(
    "revise_draft",
    aliases=("修改", "修改稿件", "revise"),
    default_field="number",
    fields=(
        NUMBER,
        Field("title", ("标题", "標題", "title"), required=False, parse=parse_required),
        Field("body", ("正文", "内容", "內容", "body"), required=False, parse=parse_required),
    ),
)
async def revise_draft(ctx: Ctx, values: dict[str, str]) -> None:
    """修改 #编号 标题:… 正文:… — a new version (photos carry over; send new ones to add)."""
    d = await _draft(ctx, values["number"])
    if d is None:
        return
    if d.author != ctx.user or d.status != DraftStatus.REVISING:
        ctx.reply("draft_cannot_revise", number=d.id, status=d.status)
        return
    await add_version(ctx, d, values.get("title"), values.get("body"))
    ctx.reply("draft_revised", number=d.id, version=d.version)


async def add_version(ctx: Ctx, d: Draft, title: str | None, body: str | None) -> DraftVersion:
    """A returned draft's next version: what is not given carries over (photos always do)."""
    old = await _version(ctx, d)
    d.version += 1
    d.updated_at = ctx.now()
    v = DraftVersion(
        draft_id=d.id,
        version=d.version,
        title=title or old.title,
        body=body or old.body,
        photos=dict(old.photos),
        created_at=ctx.now(),
    )
    ctx.session.add(v)
    return v


@router.command(
    "preview_draft",
    aliases=("预览", "預覽", "preview"),
    default_field="number",
    roles=("platform_editor",),
    fields=(
        NUMBER,
        Field("website", ("网站", "website"), parse=parse_link),
        Field("oa", ("公众号", "oa"), parse=parse_link),
    ),
)
async def preview_draft(ctx: Ctx, values: dict[str, str]) -> None:
    """预览 #编号 网站:链接 公众号:链接 — send both previews to the author and the editor."""
    d = await _draft(ctx, values["number"])
    if d is None:
        return
    if not _has_role(ctx, "platform_editor") or d.status != DraftStatus.EDITING:
        ctx.reply("draft_cannot_publish", number=d.id, status=d.status)
        return
    for u in dict.fromkeys([d.author, ctx.user]):
        ctx.tell(u, "draft_preview", number=d.id, website=values["website"], oa=values["oa"])


@router.command(
    "publish_draft",
    aliases=("发布", "發佈", "發布", "publish"),
    positional=True,
    roles=("platform_editor",),
    fields=(
        NUMBER,
        Field("platform", ("平台", "platform"), parse=parse_platform, show=LABELS.show("platform")),
        Field("link", ("链接", "link"), parse=parse_link),
    ),
)
async def publish_draft(ctx: Ctx, values: dict[str, str]) -> None:
    """发布 #编号 网站|公众号 链接 — record a publication on one platform."""
    d = await _draft(ctx, values["number"])
    if d is None:
        return
    if not _has_role(ctx, "platform_editor"):
        ctx.reply("draft_cannot_publish", number=d.id, status=d.status)
        return
    if d.phone and d.status == DraftStatus.COMMITTEE:
        ctx.reply("draft_needs_committee", number=d.id)
        return
    if d.status not in (DraftStatus.EDITING, DraftStatus.PUBLISHED):
        ctx.reply("draft_cannot_publish", number=d.id, status=d.status)
        return
    platform = values["platform"]
    exists = (
        await ctx.session.execute(
            select(Publication).where(Publication.draft_id == d.id, Publication.platform == platform)
        )
    ).scalar_one_or_none()
    if exists is not None:
        ctx.reply("draft_already_published", number=d.id, platform=platform_name(ctx, platform), link=exists.link)
        return
    ctx.session.add(
        Publication(draft_id=d.id, platform=platform, link=values["link"], editor=ctx.user, published_at=ctx.now())
    )
    await ctx.session.flush()
    done = {
        p
        for (p,) in (await ctx.session.execute(select(Publication.platform).where(Publication.draft_id == d.id))).all()
    }
    if done >= set(Platform):
        d.status = DraftStatus.PUBLISHED
        await _close(ctx, d, "edit", ctx.renderer.block("cards_publishing", "draft_published") or "")
    ctx.reply(
        "draft_publish_saved",
        number=d.id,
        platform=platform_name(ctx, platform),
        remaining=[platform_name(ctx, p) for p in Platform if p not in done],
    )
    ctx.tell(
        d.author, "draft_published_author", number=d.id, platform=platform_name(ctx, platform), link=values["link"]
    )


def status_name(ctx: Ctx, status: str) -> str:
    """待提交 / 审核中 / …"""
    return LABELS.name(ctx, "status", status)


def can_see(ctx: Ctx, d: Draft) -> bool:
    """The author, the reviewers, the platform editors and the director."""
    p = ctx.person
    roles = {*kind_of(d).reviewers.values(), "platform_editor", "director"}
    return d.author == ctx.user or (p is not None and bool(roles & set(p.roles)))


async def row(ctx: Ctx, d: Draft) -> dict[str, object]:
    """One draft in a list (我的申请, 待办, 我的投稿, 进度 with several matches)."""
    v = await _version(ctx, d)
    return {
        "number": d.id,
        "title": v.title,
        "version": d.version,
        "status": status_name(ctx, d.status),
        "author": ctx.org.name(d.author),
    }


async def show_progress(ctx: Ctx, d: Draft) -> None:
    """Where a draft stands: its version, each review and the publications (进度)."""
    v = await _version(ctx, d)
    published = (
        await ctx.session.execute(select(Publication).where(Publication.draft_id == d.id).order_by(Publication.id))
    ).scalars()

    def review(state: dict[str, object]) -> dict[str, object]:
        by = str(state.get("by") or "")
        return {"status": str(state.get("status") or ""), "by": ctx.org.name(by) if by else ""}

    ctx.reply(
        "draft_progress",
        number=d.id,
        title=v.title,
        version=d.version,
        status=status_name(ctx, d.status),
        submitted=v.submitted_at is not None,
        text=review(v.text_review),
        photo=review(v.photo_review),
        photos=len(v.photos.get("items", [])),
        published=[{"platform": platform_name(ctx, p.platform), "link": p.link} for p in published],
    )


async def mine(ctx: Ctx, limit: int = 10) -> list[Draft]:
    q = select(Draft).where(Draft.author == ctx.user).order_by(Draft.id.desc()).limit(limit)
    return list((await ctx.session.execute(q)).scalars())


async def to_review(ctx: Ctx) -> list[tuple[Draft, DraftPart]]:
    """Drafts whose current version waits for this reviewer's part (text or photos)."""
    q = select(Draft).where(Draft.status == DraftStatus.IN_REVIEW).order_by(Draft.id)
    out = []
    for d in (await ctx.session.execute(q)).scalars():
        parts = [part for part, role in kind_of(d).reviewers.items() if _has_role(ctx, role)]
        if not parts:
            continue
        v = await _version(ctx, d)
        for part in parts:
            state = v.text_review if part is DraftPart.TEXT else v.photo_review
            if state.get("status") == ReviewStatus.PENDING:
                out.append((d, part))
    return out


async def to_publish(ctx: Ctx) -> list[Draft]:
    """Drafts with the platform editors (for an editor)."""
    if not _has_role(ctx, "platform_editor"):
        return []
    q = select(Draft).where(Draft.status == DraftStatus.EDITING).order_by(Draft.id)
    return list((await ctx.session.execute(q)).scalars())


@router.command("my_drafts", aliases=("我的投稿", "my drafts"), in_help=False)
async def my_drafts(ctx: Ctx, values: dict[str, str]) -> None:
    """我的投稿 — my drafts and where each stands (我的申请 lists them too)."""
    ctx.reply("my_drafts", items=[await row(ctx, d) for d in await mine(ctx)])


def _week_start(ctx: Ctx, when: datetime) -> datetime:
    local = local_now(when, ctx.config.scheduler.timezone)
    return (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)


async def _count(ctx: Ctx, platform: str, since: datetime) -> int:
    return int(
        (
            await ctx.session.execute(
                select(func.count())
                .select_from(Publication)
                .where(Publication.platform == platform, Publication.published_at >= since)
            )
        ).scalar_one()
    )


async def check_website(ctx: Ctx, when: datetime) -> None:
    """A school day without a new website post by 16:00: remind the platform team."""
    local = local_now(when, ctx.config.scheduler.timezone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if await _count(ctx, Platform.WEBSITE, start) == 0:
        for u in ctx.org.with_role("platform_editor"):
            ctx.tell(u, "cadence_website", date=local)


async def check_oa(ctx: Ctx, when: datetime) -> None:
    """Fewer official-account posts this week than the target: remind the platform team."""
    count = await _count(ctx, Platform.OA, _week_start(ctx, when))
    target = ctx.config.publishing.oa_weekly_min
    if count < target:
        for u in ctx.org.with_role("platform_editor"):
            ctx.tell(u, "cadence_oa", count=count, target=target)


@router.jobs_from
def cadence_jobs(config: Config) -> Iterable[Job]:
    """The publishing cadence checks (daily website post, weekly official-account minimum)."""
    tz = ZoneInfo(config.scheduler.timezone)
    pub = config.publishing
    yield Job("cadence:website", CronTrigger.from_crontab(pub.website_check_cron, timezone=tz), check_website)
    yield Job("cadence:oa", CronTrigger.from_crontab(pub.oa_check_cron, timezone=tz), check_oa)
