"""监控室 — the CCTV room's own records (监控室管理制度 四、九; issue 12 point 4).

四: each operator keeps a 值班记录 of the shift and fills in a 交接班记录 at the handover, with no
alteration and no missing page. 九: footage of a fight, a theft, a fire risk, a traffic accident or
an emergency is saved and recorded. So: `接班` / `交班 交接:…` write the shift log (the next
operator's 接班 shows the last handover note), `留存录像 …` records preserved footage (the director
is told), `值班记录` / `留存记录` list them. Both are append-only: no code here updates or deletes
a row; `更正 #n …` writes a new row naming the old one, and listings show the old one as corrected.

Each campus has its CCTV room: an entry belongs to its operator's campus. Only CCTV operators and
the director may write or read these records (the router refuses everyone else before asking).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.context import Ctx
from bot.router import Field, FieldError, MalformedFields, Router, parse_fields
from bot.timeparse import TimeParseError, local_now, parse_date
from handlers.approval_commands import parse_required
from handlers.footage import parse_time
from handlers.labels import Labels, show_day
from handlers.numbers import Kind, kind_name, parse_ref, take_ref
from storage.models import CctvShiftEntry, IncidentKind, KeptFootage, ShiftEntryKind

router = Router("cctv_room", templates=Path(__file__).with_name("templates") / "cctv_room")

ROLES = ("cctv_operator", "director")
LABELS = Labels("labels_cctv_room", incident=IncidentKind, entry=ShiftEntryKind)

INCIDENT_WORDS: dict[IncidentKind, tuple[str, ...]] = {
    IncidentKind.FIGHT: ("打架", "斗殴", "打斗", "fight"),
    IncidentKind.THEFT: ("盗窃", "偷窃", "失窃", "被盗", "偷盗", "theft"),
    IncidentKind.FIRE: ("火险", "火灾", "着火", "失火", "冒烟", "fire"),
    IncidentKind.TRAFFIC: ("交通事故", "车祸", "剐蹭", "撞车", "traffic"),
    IncidentKind.EMERGENCY: ("突发事件", "突发", "emergency"),
    IncidentKind.OTHER: ("其它", "其他", "other"),
}
LATEST = 20  # 留存记录 without a period: the latest this many entries


# -- parsing ----------------------------------------------------------------------------------
def parse_incident(value: str, ctx: Ctx | None) -> IncidentKind:
    """打架 / 斗殴 → fight …; the stored value itself parses too."""
    low = value.strip().lower()
    for kind, words in INCIDENT_WORDS.items():
        if low == kind.value or any(w in low for w in words):
            return kind
    raise FieldError("invalid_incident")


def parse_storage(value: str, ctx: Ctx) -> str:
    value = parse_required(value, ctx)
    if len(value) > 300:
        raise FieldError("invalid_too_long", limit=300)
    return value


def parse_location(value: str, ctx: Ctx) -> str:
    value = parse_required(value, ctx)
    if len(value) > 200:
        raise FieldError("invalid_too_long", limit=200)
    return value


@dataclass(frozen=True)
class Period:
    """Days [start, start + days) in the school's time zone; `days == 0`: no period given."""

    start: date
    days: int

    def __str__(self) -> str:
        return f"{self.start.isoformat()}/{self.days}"

    @classmethod
    def of(cls, value: str) -> Period:
        start, days = value.split("/")
        return cls(date.fromisoformat(start), int(days))


WEEK_WORDS = {"本周": 0, "这周": 0, "本星期": 0, "这星期": 0, "this week": 0, "上周": -1, "上星期": -1, "last week": -1}


def parse_period(value: str, ctx: Ctx) -> str:
    """今天 / 昨天 / 本周 / 上周 / 11月24日 / 2026-11-24 → a Period (as text, for the form)."""
    today = local_now(ctx.now(), ctx.config.scheduler.timezone).date()
    low = value.strip().lower()
    if low in WEEK_WORDS:
        monday = today - timedelta(days=today.weekday()) + timedelta(weeks=WEEK_WORDS[low])
        return str(Period(monday, 7))
    try:
        day = parse_date(low, today, prefer="past")
    except TimeParseError:
        raise FieldError("invalid_period") from None
    if day > today:
        raise FieldError("invalid_period_future")
    return str(Period(day, 1))


def show_period(value: str, ctx: Ctx) -> str:
    p = Period.of(value)
    if p.days == 1:
        return show_day(ctx, p.start)
    return LABELS(ctx, "period_week", start=show_day(ctx, p.start), end=show_day(ctx, p.start + timedelta(days=6)))


def _bounds(ctx: Ctx, p: Period) -> tuple[datetime, datetime]:
    tz = ZoneInfo(ctx.config.scheduler.timezone)
    start = datetime.combine(p.start, datetime.min.time(), tz)
    return start, start + timedelta(days=p.days)


def _span(value: str, tz: str) -> tuple[datetime, datetime]:
    """footage.parse_time's '2026-11-24 21:10-21:30' back into aware datetimes."""
    zone = ZoneInfo(tz)
    start = datetime.strptime(value[:16], "%Y-%m-%d %H:%M").replace(tzinfo=zone)
    end = datetime.strptime(f"{value[:10]} {value[-5:]}", "%Y-%m-%d %H:%M").replace(tzinfo=zone)
    return start, end


def ref(ctx: Ctx, kind: Kind, number: int) -> str:
    """值班记录 #Z3, 留存录像 #L2: with the letter, so `更正 #Z3` is never ambiguous."""
    return f"{kind_name(ctx, kind)} #{kind.value}{number}"


# -- reading ----------------------------------------------------------------------------------
def local(ctx: Ctx, t: datetime) -> datetime:
    return local_now(t, ctx.config.scheduler.timezone)


def campus_name(ctx: Ctx, key: str) -> str:
    return next((c.name for c in ctx.config.campuses if c.key == key), key)


def my_campus(ctx: Ctx) -> str:
    return ctx.person.campus if ctx.person else ""


async def open_shift(ctx: Ctx, campus: str) -> CctvShiftEntry | None:
    """The campus room's shift that started and has not ended (corrections are not shifts)."""
    ended = select(CctvShiftEntry.shift_id).where(
        CctvShiftEntry.kind == ShiftEntryKind.END, CctvShiftEntry.shift_id.is_not(None)
    )
    return (
        await ctx.session.execute(
            select(CctvShiftEntry)
            .where(
                CctvShiftEntry.campus == campus,
                CctvShiftEntry.kind == ShiftEntryKind.START,
                CctvShiftEntry.corrects_id.is_(None),
                CctvShiftEntry.id.not_in(ended),
            )
            .order_by(CctvShiftEntry.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def my_open_shift(ctx: Ctx) -> CctvShiftEntry | None:
    shift = await open_shift(ctx, my_campus(ctx))
    return shift if shift is not None and shift.operator == ctx.user else None


async def latest_shift_version(ctx: Ctx, entry: CctvShiftEntry) -> CctvShiftEntry:
    """The entry as last corrected (a correction may itself be corrected)."""
    while True:
        newer = (
            await ctx.session.execute(
                select(CctvShiftEntry)
                .where(CctvShiftEntry.corrects_id == entry.id)
                .order_by(CctvShiftEntry.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if newer is None:
            return entry
        entry = newer


async def last_handover(ctx: Ctx, campus: str) -> tuple[CctvShiftEntry, CctvShiftEntry, CctvShiftEntry] | None:
    """The campus room's latest closed shift: (its start, its end, the end as last corrected)."""
    end = (
        await ctx.session.execute(
            select(CctvShiftEntry)
            .where(
                CctvShiftEntry.campus == campus,
                CctvShiftEntry.kind == ShiftEntryKind.END,
                CctvShiftEntry.corrects_id.is_(None),
            )
            .order_by(CctvShiftEntry.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if end is None or end.shift_id is None:
        return None
    start = await ctx.session.get(CctvShiftEntry, end.shift_id)
    if start is None:
        return None
    return start, end, await latest_shift_version(ctx, end)


def shift_row(ctx: Ctx, e: CctvShiftEntry, corrected_by: list[int]) -> dict[str, Any]:
    """What a listing shows of one shift-log line."""
    return {
        "number": e.id,
        "kind": LABELS.name(ctx, "entry", e.kind),
        "is_end": e.kind == ShiftEntryKind.END,
        "campus": campus_name(ctx, e.campus),
        "operator": ctx.org.name(e.operator),
        "recorded_by": ctx.org.name(e.recorded_by) if e.recorded_by != e.operator else "",
        "at": local(ctx, e.at),
        "written": local(ctx, e.created_at),
        "note": e.note,
        "shift": e.shift_id,
        "corrects": e.corrects_id,
        "corrected_by": corrected_by,
    }


def kept_row(ctx: Ctx, k: KeptFootage, corrected_by: list[int]) -> dict[str, Any]:
    return {
        "number": k.id,
        "kind": LABELS.name(ctx, "incident", k.kind),
        "what": k.what,
        "location": k.location,
        "start": local(ctx, k.start_at),
        "end": local(ctx, k.end_at),
        "storage": k.storage,
        "campus": campus_name(ctx, k.campus),
        "operator": ctx.org.name(k.operator),
        "written": local(ctx, k.created_at),
        "corrects": k.corrects_id,
        "corrected_by": corrected_by,
    }


async def _corrections(
    ctx: Ctx, model: type[CctvShiftEntry] | type[KeptFootage], ids: list[int]
) -> dict[int, list[int]]:
    """For each id, the rows that correct it (oldest first)."""
    out: dict[int, list[int]] = {}
    if not ids:
        return out
    rows = await ctx.session.execute(
        select(model.id, model.corrects_id).where(model.corrects_id.in_(ids)).order_by(model.id)
    )
    for rid, target in rows:
        if target is not None:
            out.setdefault(int(target), []).append(int(rid))
    return out


# -- 接班 / 交班 --------------------------------------------------------------------------------
async def check_takeover(ctx: Ctx, values: dict[str, str]) -> tuple[str, str, dict[str, Any]] | None:
    """Someone else's shift is still open in this room: ask for the handover before taking over."""
    shift = await open_shift(ctx, my_campus(ctx))
    if shift is None or shift.operator == ctx.user or values.get("handover"):
        return None
    return (
        "handover",
        "ask_takeover",
        {"name": ctx.org.name(shift.operator), "number": shift.id, "since": local(ctx, shift.at)},
    )


@router.command(
    "shift_start",
    aliases=("接班", "上班", "shift start", "on duty"),
    roles=ROLES,
    confidential=True,
    default_field="note",
    fields=(
        Field("note", ("备注", "情况", "note"), required=False),
        Field("handover", ("交接", "交接情况", "handover"), required=False),
    ),
    validate=check_takeover,
)
async def shift_start(ctx: Ctx, values: dict[str, str]) -> None:
    """接班 [备注] — start a shift in your campus's CCTV room; shows the last handover note."""
    campus, now = my_campus(ctx), ctx.now()
    shift = await open_shift(ctx, campus)
    if shift is not None and shift.operator == ctx.user:
        ctx.reply("shift_already_on", number=shift.id, since=local(ctx, shift.at))
        return
    previous = await last_handover(ctx, campus)
    taken_over: CctvShiftEntry | None = None
    if shift is not None:  # the holder never said 交班: the handover given now closes their shift
        taken_over = await close_shift(ctx, shift, values["handover"])
        previous = (shift, taken_over, taken_over)
    note = values.get("note", "")
    if shift is None and values.get("handover"):
        note = f"{note} {values['handover']}".strip()
    entry = CctvShiftEntry(
        kind=ShiftEntryKind.START,
        campus=campus,
        operator=ctx.user,
        recorded_by=ctx.user,
        at=now,
        note=note,
        created_at=now,
    )
    ctx.session.add(entry)
    await ctx.session.flush()
    if taken_over is not None and shift is not None:
        ctx.tell(
            shift.operator,
            "shift_closed_by_takeover",
            name=ctx.org.name(ctx.user),
            number=taken_over.id,
            shift=shift.id,
            note=taken_over.note,
        )
    last = None
    if previous is not None:
        start, end, current = previous
        last = {
            "operator": ctx.org.name(start.operator),
            "start": local(ctx, start.at),
            "end": local(ctx, end.at),
            "note": current.note,
            "number": end.id,
            "corrected": current.id != end.id,
            "by_other": end.recorded_by != start.operator,
            "recorded_by": ctx.org.name(end.recorded_by),
        }
    ctx.reply(
        "shift_started",
        number=ref(ctx, Kind.SHIFT, entry.id),
        campus=campus_name(ctx, campus),
        at=local(ctx, now),
        last=last,
        taken_over=taken_over is not None,
    )


async def close_shift(ctx: Ctx, shift: CctvShiftEntry, handover: str) -> CctvShiftEntry:
    """The END entry of `shift`, written now by the sender (its holder, or whoever takes over)."""
    now = ctx.now()
    entry = CctvShiftEntry(
        kind=ShiftEntryKind.END,
        campus=shift.campus,
        operator=shift.operator,
        recorded_by=ctx.user,
        at=now,
        note=handover,
        shift_id=shift.id,
        created_at=now,
    )
    ctx.session.add(entry)
    await ctx.session.flush()
    return entry


async def check_handover(ctx: Ctx, values: dict[str, str]) -> tuple[str, str, dict[str, Any]] | None:
    """On shift and no handover note yet: ask for it (off shift, the handler says so instead)."""
    if values.get("handover") or await my_open_shift(ctx) is None:
        return None
    return "handover", "ask_handover", {}


@router.command(
    "shift_end",
    aliases=("交班", "下班", "shift end", "off duty"),
    roles=ROLES,
    confidential=True,
    default_field="handover",
    fields=(Field("handover", ("交接", "交接情况", "交接内容", "备注", "handover", "note"), required=False),),
    validate=check_handover,
)
async def shift_end(ctx: Ctx, values: dict[str, str]) -> None:
    """交班 交接:… — end your shift with the handover note (equipment state, anything unusual)."""
    shift = await my_open_shift(ctx)
    if shift is None:
        ctx.reply("shift_not_on")
        return
    entry = await close_shift(ctx, shift, values["handover"])
    ctx.reply(
        "shift_ended",
        number=ref(ctx, Kind.SHIFT, entry.id),
        start=local(ctx, shift.at),
        end=local(ctx, entry.at),
        note=entry.note,
    )


@router.command(
    "shift_log",
    aliases=("值班记录", "值班記錄", "交接班记录", "交接班記錄", "shift log"),
    roles=ROLES,
    confidential=True,
    default_field="period",
    fields=(Field("period", ("日期", "时间", "date"), required=False, parse=parse_period, show=show_period),),
)
async def shift_log(ctx: Ctx, values: dict[str, str]) -> None:
    """值班记录 [今天|本周|日期] — the CCTV rooms' shift log, in the order it was written."""
    period = Period.of(values.get("period") or parse_period("今天", ctx))
    start, end = _bounds(ctx, period)
    entries = list(
        (
            await ctx.session.execute(
                select(CctvShiftEntry)
                .where(CctvShiftEntry.created_at >= start, CctvShiftEntry.created_at < end)
                .order_by(CctvShiftEntry.id)
            )
        ).scalars()
    )
    fixes = await _corrections(ctx, CctvShiftEntry, [e.id for e in entries])
    ctx.reply(
        "shift_log_list",
        period=show_period(str(period), ctx),
        rows=[shift_row(ctx, e, fixes.get(e.id, [])) for e in entries],
    )


# -- 留存录像 ----------------------------------------------------------------------------------
KEPT_FIELDS = (
    Field("kind", ("类型", "類型", "type"), parse=parse_incident, show=LABELS.show("incident")),
    Field("what", ("事件", "经过", "内容", "what"), parse=parse_required),
    Field("location", ("地点", "地點", "位置", "摄像头", "location", "camera"), parse=parse_location),
    Field("time", ("时间", "時間", "时段", "time"), parse=parse_time),
    Field("storage", ("存放", "存放位置", "存储", "保存位置", "storage"), parse=parse_storage),
)


@router.command(
    "keep_footage",
    aliases=("留存录像", "留存錄像", "保存录像", "保存錄像", "keep footage"),
    roles=ROLES,
    confidential=True,
    fields=KEPT_FIELDS,
)
async def keep_footage(ctx: Ctx, values: dict[str, str]) -> None:
    """留存录像 类型:… 事件:… 地点:… 时间:… 存放:… — record incident footage you preserved."""
    start, end = _span(values["time"], ctx.config.scheduler.timezone)
    row = KeptFootage(
        kind=values["kind"],
        what=values["what"],
        location=values["location"],
        start_at=start,
        end_at=end,
        storage=values["storage"],
        campus=my_campus(ctx),
        operator=ctx.user,
        created_at=ctx.now(),
    )
    ctx.session.add(row)
    await ctx.session.flush()
    _announce_kept(ctx, row, corrects=None)
    ctx.reply("kept_recorded", number=ref(ctx, Kind.KEPT, row.id), row=kept_row(ctx, row, []))


def _announce_kept(ctx: Ctx, row: KeptFootage, corrects: int | None) -> None:
    """The director is told of every preserved footage entry (and of a correction to one)."""
    for director in ctx.org.with_role("director"):
        if director != ctx.user:
            ctx.tell(
                director,
                "kept_for_director",
                number=ref(ctx, Kind.KEPT, row.id),
                row=kept_row(ctx, row, []),
                corrects=corrects,
            )


@router.command(
    "kept_footage_list",
    aliases=("留存记录", "留存記錄", "kept footage"),
    roles=ROLES,
    confidential=True,
    default_field="period",
    fields=(Field("period", ("日期", "时间", "date"), required=False, parse=parse_period, show=show_period),),
)
async def kept_footage_list(ctx: Ctx, values: dict[str, str]) -> None:
    """留存记录 [今天|本周|日期] — preserved footage entries (without a period: the latest ones)."""
    query = select(KeptFootage)
    if values.get("period"):
        start, end = _bounds(ctx, Period.of(values["period"]))
        query = query.where(KeptFootage.created_at >= start, KeptFootage.created_at < end).order_by(KeptFootage.id)
        rows = list((await ctx.session.execute(query)).scalars())
    else:
        rows = list((await ctx.session.execute(query.order_by(KeptFootage.id.desc()).limit(LATEST))).scalars())
        rows.reverse()
    fixes = await _corrections(ctx, KeptFootage, [r.id for r in rows])
    ctx.reply(
        "kept_list",
        period=show_period(values["period"], ctx) if values.get("period") else "",
        latest=LATEST,
        rows=[kept_row(ctx, r, fixes.get(r.id, [])) for r in rows],
    )


# -- 更正 --------------------------------------------------------------------------------------
def parse_record_number(value: str, ctx: Ctx) -> str:
    """#Z3, #L2, 值班记录 #3, 留存 #2 or a bare #3; another kind's number is refused."""
    ref = parse_ref(value)
    if ref.kind is not None and ref.kind not in (Kind.SHIFT, Kind.KEPT):
        raise FieldError("invalid_record_kind", number=ref.number)
    return str(ref)


@router.command(
    "correct_record",
    aliases=("更正", "更正记录", "更正記錄", "correct"),
    roles=ROLES,
    confidential=True,
    positional=True,
    fields=(
        Field("number", ("编号", "編號", "number"), parse=parse_record_number, take=take_ref),
        Field("text", ("更正内容", "text"), required=False),
    ),
)
async def correct_record(ctx: Ctx, values: dict[str, str]) -> None:
    """更正 #编号 … — a correction: a new entry referring to the old one (nothing is overwritten)."""
    ref = parse_ref(values["number"])
    text = values.get("text", "").strip()
    shift = await ctx.session.get(CctvShiftEntry, ref.number) if ref.kind in (None, Kind.SHIFT) else None
    kept = await ctx.session.get(KeptFootage, ref.number) if ref.kind in (None, Kind.KEPT) else None
    if shift is None and kept is None:
        ctx.reply("record_not_found", number=ref.number)
        return
    if shift is not None and kept is not None:
        ctx.reply("record_ambiguous", number=ref.number, text=text)
        return
    if shift is not None:
        await _correct_shift(ctx, shift, text)
    elif kept is not None:
        await _correct_kept(ctx, kept, text)


def _may_correct(ctx: Ctx, *writers: str) -> bool:
    person = ctx.person
    return ctx.user in writers or (person is not None and "director" in person.roles)


SHIFT_NOTE_LABELS = ("交接", "交接情况", "交接内容", "备注", "情况", "内容")


async def _correct_shift(ctx: Ctx, old: CctvShiftEntry, text: str) -> None:
    if not _may_correct(ctx, old.operator, old.recorded_by):
        ctx.reply("correct_not_yours", number=ref(ctx, Kind.SHIFT, old.id), name=ctx.org.name(old.recorded_by))
        return
    for label in SHIFT_NOTE_LABELS:  # `更正 #Z2 交接:…`: the label is optional
        if text.startswith(label) and text[len(label) :].lstrip().startswith(":"):
            text = text[len(label) :].lstrip()[1:].strip()
            break
    if not text:
        ctx.reply("correct_shift_malformed", number=old.id)
        return
    entry = CctvShiftEntry(
        kind=old.kind,
        campus=old.campus,
        operator=old.operator,
        recorded_by=ctx.user,
        at=old.at,
        note=text,
        shift_id=old.shift_id,
        corrects_id=old.id,
        created_at=ctx.now(),
    )
    ctx.session.add(entry)
    await ctx.session.flush()
    ctx.reply(
        "shift_corrected",
        number=ref(ctx, Kind.SHIFT, entry.id),
        old=ref(ctx, Kind.SHIFT, old.id),
        note=text,
    )


async def _correct_kept(ctx: Ctx, old: KeptFootage, text: str) -> None:
    if not _may_correct(ctx, old.operator):
        ctx.reply("correct_not_yours", number=ref(ctx, Kind.KEPT, old.id), name=ctx.org.name(old.operator))
        return
    cmd = ctx.registry.get("keep_footage")
    assert cmd is not None
    try:
        raw = parse_fields(cmd, text) if text else {}
    except MalformedFields:
        raw = {}
    if not raw:
        ctx.reply("correct_kept_malformed", number=old.id, labels=[f.label for f in KEPT_FIELDS])
        return
    values: dict[str, str] = {}
    for key, value in raw.items():
        field = cmd.field(key)
        try:
            values[key] = field.parse(value, ctx) if field.parse else value
        except FieldError as err:
            msg = ctx.renderer.block(cmd.template, err.block, value=value, **err.context)
            ctx.reply("correct_kept_invalid", problem=msg or "", number=old.id)
            return
    start, end = (
        _span(values["time"], ctx.config.scheduler.timezone) if "time" in values else (old.start_at, old.end_at)
    )
    row = KeptFootage(
        kind=values.get("kind", old.kind),
        what=values.get("what", old.what),
        location=values.get("location", old.location),
        start_at=start,
        end_at=end,
        storage=values.get("storage", old.storage),
        campus=old.campus,
        operator=ctx.user,
        corrects_id=old.id,
        created_at=ctx.now(),
    )
    ctx.session.add(row)
    await ctx.session.flush()
    _announce_kept(ctx, row, corrects=old.id)
    ctx.reply(
        "kept_corrected",
        number=ref(ctx, Kind.KEPT, row.id),
        old=ref(ctx, Kind.KEPT, old.id),
        row=kept_row(ctx, row, []),
        changed=[f.label for f in KEPT_FIELDS if f.key in values],
    )
