"""Digital-campus training and exams (W8, 数字化校园培训、考核(补考)流程; issue 13 point 1).

The center's 数字化校园建设部 (role `digital_campus`, or the director) publishes a notice for one
platform module: `培训通知 模块:… 对象:单位或姓名 时间:… 地点:… [场次:辅导]`. Each module is trained
twice (全面培训, then 个人辅导 for those who need it). Everyone concerned gets a card and answers
参加 / 请假 (with a reason); the trainer records who came (`签到 #3 张伟、李华`, or a trainee's own
`签到 #3` on the day). `考核安排` publishes the exam to the module's trainees; scores (theory +
practical, out of `[training] max_score`) are entered one by one (`录入成绩 模块 姓名 理论 实操`) or
imported as a whole table (`导入成绩`, rows pasted from the spreadsheet; `python -m bot
import-scores FILE.xlsx|csv` from a file): any bad row refuses the whole import, naming the row.
`补考安排` goes to those who failed or missed the exam. `量化名单 模块:…` lists for 人资部 those
who failed the make-up or missed both, as an .xlsx the director approves on a card before it goes.
In the second working month after someone passes, the staff are reminded to check each unit's use
of the module and record it (`使用情况 单位:… 模块:… 情况:…`). `我的培训` shows a person's status.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.cardkeys import CardAction
from bot.cards import Button, close_cards, send_card, send_cards
from bot.context import Ctx
from bot.conversation import start_form
from bot.media import fetched, keep, made, send_kept, subject_id
from bot.router import Field, FieldError, Router, normalise
from bot.timeparse import TimeParseError, local_now, parse_moment
from handlers.labels import Labels, show_moment
from storage.models import (
    AttendanceReply,
    Card,
    MediaFile,
    MediaStatus,
    PlatformUsage,
    ReportStatus,
    Timer,
    TrainingAttendance,
    TrainingKind,
    TrainingReport,
    TrainingScore,
    TrainingSession,
)

router = Router("training", templates=Path(__file__).with_name("templates") / "training")
LABELS = Labels("labels_training", kind=TrainingKind, reply=AttendanceReply)
STAFF = ("digital_campus", "director")
EXAM_KINDS = (TrainingKind.EXAM, TrainingKind.MAKEUP)
USAGE_TIMER = "training_usage_check"


class Answer(StrEnum):
    ATTEND = "attend"
    LEAVE = "leave"


@dataclass(frozen=True)
class AttendClick(CardAction, prefix="trn", subject="training"):
    session: int
    answer: Answer


class Verdict(StrEnum):
    SEND = "send"
    RETURN = "return"


@dataclass(frozen=True)
class ReportClick(CardAction, prefix="trr", subject="training_report"):
    report: int
    verdict: Verdict


# -- parsing ----------------------------------------------------------------------------------
def _local(ctx: Ctx, t: datetime) -> datetime:
    return local_now(t, ctx.config.scheduler.timezone)


def moment(ctx: Ctx, t: datetime) -> str:
    return show_moment(ctx, _local(ctx, t))


def person_named(ctx: Ctx, word: str) -> str | None:
    """The userid of a person by name or userid; None if nobody (or two people) has it."""
    word = word.strip().lstrip("@")
    if ctx.org.person(word) is not None:
        return word
    named = [p.userid for p in ctx.config.people if p.name == word]
    return named[0] if len(named) == 1 else None


def split_names(value: str) -> list[str]:
    return [w for w in re.split(r"[\s,，、;；]+", value.strip()) if w]


def parse_people(value: str, ctx: Ctx) -> str:
    """Units by name (everyone in them) or people by name, separated by 、 , or spaces."""
    users: list[str] = []
    for part in split_names(value):
        unit = next((u for u in ctx.config.units if part in (u.name, u.key)), None)
        userid = person_named(ctx, part)
        if userid is not None:
            users.append(userid)
        elif unit is not None:
            users.extend(p.userid for p in ctx.config.people if p.unit == unit.key)
        else:
            raise FieldError("invalid_person", word=part)
    if not users:
        raise FieldError("invalid_person", word=value)
    return " ".join(dict.fromkeys(users))


def show_people(value: str, ctx: Ctx) -> str:
    return "、".join(ctx.org.name(u) for u in value.split())


def parse_when(value: str, ctx: Ctx) -> str:
    now = _local(ctx, ctx.now())
    try:
        when = parse_moment(value, now)
    except TimeParseError:
        raise FieldError("invalid_when") from None
    if when <= now:
        raise FieldError("invalid_when_past")
    return when.isoformat()


def show_when(value: str, ctx: Ctx) -> str:
    return moment(ctx, datetime.fromisoformat(value))


KIND_WORDS = {
    TrainingKind.TRAINING: ("全面培训", "培训", "全面", "training"),
    TrainingKind.TUTORING: ("个人辅导", "辅导", "二次培训", "tutoring"),
}


def parse_kind(value: str, ctx: Ctx) -> str:
    word = normalise(value).strip().lower()
    for kind, words in KIND_WORDS.items():
        if word in words:
            return kind.value
    raise FieldError("invalid_kind")


def parse_module(value: str, ctx: Ctx) -> str:
    module = value.strip()
    if not module or len(module) > 100:
        raise FieldError("invalid_module")
    return module


SESSION_RE = re.compile(r"^(?:培训|场次|考核|补考|training)?\s*#?\s*(\d{1,9})$", re.IGNORECASE)


def parse_session(value: str, ctx: Ctx) -> str:
    m = SESSION_RE.match(normalise(value).strip())
    if m is None:
        raise FieldError("invalid_session")
    return m.group(1)


def take_session(text: str) -> tuple[str, str] | None:
    """`#3 张伟、李华`: the number is this field's, the rest the next field's."""
    m = re.match(r"^((?:培训|场次|考核|补考)?\s*#?\s*\d{1,9})(.*)$", text, re.DOTALL)
    return (m.group(1), m.group(2)) if m else None


SESSION = Field("number", ("编号", "场次", "number"), parse=parse_session, take=take_session)
MODULE = Field("module", ("模块", "模組", "module"), parse=parse_module)


# -- sessions and their notices ---------------------------------------------------------------
def users_of(session: TrainingSession) -> list[str]:
    return list(session.trainees.get("users", []))


def facts(ctx: Ctx, s: TrainingSession) -> dict[str, Any]:
    """What every text about a session says."""
    return {
        "number": s.id,
        "module": s.module,
        "kind": LABELS.name(ctx, "kind", s.kind),
        "exam": s.kind in EXAM_KINDS,
        "when": moment(ctx, s.starts_at),
        "place": s.place,
    }


async def sessions_of(ctx: Ctx, module: str, *kinds: TrainingKind) -> list[TrainingSession]:
    q = select(TrainingSession).where(TrainingSession.module == module)
    if kinds:
        q = q.where(TrainingSession.kind.in_([k.value for k in kinds]))
    return list((await ctx.session.execute(q.order_by(TrainingSession.id))).scalars())


async def publish(ctx: Ctx, module: str, kind: TrainingKind, users: list[str], when: str, place: str) -> None:
    """Record the session, tell each person with a 参加 / 请假 card, and tell the publisher."""
    session = TrainingSession(
        module=module,
        kind=kind,
        starts_at=datetime.fromisoformat(when),
        place=place.strip()[:200],
        trainees={"users": users},
        published_by=ctx.user,
        created_at=ctx.now(),
    )
    ctx.session.add(session)
    await ctx.session.flush()
    for userid in users:
        ctx.session.add(TrainingAttendance(session_id=session.id, userid=userid, reply=AttendanceReply.PENDING))
    f = facts(ctx, session)
    for userid in users:
        ctx.tell(userid, "training_notice", name=ctx.org.name(userid), by=ctx.org.name(ctx.user), **f)
    block = ctx.renderer.block
    await send_cards(
        ctx,
        users,
        subject_id=session.id,
        purpose="attend",
        title=block("cards_training", "notice_title", **f) or "",
        desc=block("cards_training", "notice_desc", **f) or "",
        rows=[(LABELS(ctx, "row_when"), f["when"]), (LABELS(ctx, "row_place"), session.place)],
        buttons=[
            Button(block("cards_training", "attend") or "", AttendClick(session.id, Answer.ATTEND)),
            Button(block("cards_training", "leave") or "", AttendClick(session.id, Answer.LEAVE), style=2),
        ],
    )
    ctx.reply("training_published", count=len(users), names=[ctx.org.name(u) for u in users], **f)


NOTICE_FIELDS = (
    MODULE,
    Field("who", ("对象", "對象", "人员", "人員", "who"), parse=parse_people, show=show_people),
    Field("when", ("时间", "時間", "when"), parse=parse_when, show=show_when),
    Field("where", ("地点", "地點", "where"), parse=lambda v, c: v.strip()[:200]),
)


@router.command(
    "training_notice",
    aliases=("培训通知", "培訓通知", "training notice"),
    roles=STAFF,
    fields=(
        *NOTICE_FIELDS,
        Field(
            "kind", ("场次", "場次", "类型", "類型", "kind"), required=False, parse=parse_kind, show=LABELS.show("kind")
        ),
    ),
)
async def training_notice(ctx: Ctx, values: dict[str, str]) -> None:
    """培训通知 模块:… 对象:单位或姓名 时间:… 地点:… [场次:辅导]"""
    kind = TrainingKind(values.get("kind", TrainingKind.TRAINING))
    await publish(ctx, values["module"], kind, values["who"].split(), values["when"], values["where"])


@router.command(
    "exam_notice",
    aliases=("考核安排", "考核通知", "exam schedule"),
    roles=STAFF,
    fields=(
        MODULE,
        Field("when", ("时间", "時間", "when"), parse=parse_when, show=show_when),
        Field("where", ("地点", "地點", "where"), parse=lambda v, c: v.strip()[:200]),
        Field("who", ("对象", "對象", "人员", "who"), required=False, parse=parse_people, show=show_people),
    ),
)
async def exam_notice(ctx: Ctx, values: dict[str, str]) -> None:
    """考核安排 模块:… 时间:… 地点:… [对象:…] — to everyone the module's training was for."""
    module = values["module"]
    if "who" in values:
        users = values["who"].split()
    else:
        trained = await sessions_of(ctx, module, TrainingKind.TRAINING, TrainingKind.TUTORING)
        users = list(dict.fromkeys(u for s in trained for u in users_of(s)))
    if not users:
        ctx.reply("exam_nobody", module=module)
        return
    await publish(ctx, module, TrainingKind.EXAM, users, values["when"], values["where"])


@router.command(
    "makeup_notice",
    aliases=("补考安排", "補考安排", "补考通知", "makeup exam"),
    roles=STAFF,
    fields=(
        MODULE,
        Field("when", ("时间", "時間", "when"), parse=parse_when, show=show_when),
        Field("where", ("地点", "地點", "where"), parse=lambda v, c: v.strip()[:200]),
    ),
)
async def makeup_notice(ctx: Ctx, values: dict[str, str]) -> None:
    """补考安排 模块:… 时间:… 地点:… — to those who failed or missed the exam."""
    module = values["module"]
    exams = await sessions_of(ctx, module, TrainingKind.EXAM)
    if not exams:
        ctx.reply("no_exam_yet", module=module)
        return
    scores = await scores_of(ctx, module)
    examined = dict.fromkeys(u for s in exams for u in users_of(s))
    users = [u for u in examined if not _passed(scores.get((u, 1)))]
    if not users:
        ctx.reply("makeup_nobody", module=module)
        return
    await publish(ctx, module, TrainingKind.MAKEUP, users, values["when"], values["where"])


# -- attendance -------------------------------------------------------------------------------
async def attendance(ctx: Ctx, number: int, userid: str) -> tuple[TrainingSession, TrainingAttendance] | None:
    session = await ctx.session.get(TrainingSession, number)
    if session is None:
        return None
    q = select(TrainingAttendance).where(TrainingAttendance.session_id == number, TrainingAttendance.userid == userid)
    row = (await ctx.session.execute(q.with_for_update())).scalar_one_or_none()
    return (session, row) if row is not None else None


async def answer(ctx: Ctx, number: int, reply: AttendanceReply, reason: str = "") -> None:
    found = await attendance(ctx, number, ctx.user)
    if found is None:
        ctx.reply("session_not_yours", number=number)
        return
    session, row = found
    if ctx.now() >= session.starts_at:
        ctx.reply("session_started", **facts(ctx, session))
        return
    row.reply, row.reason, row.replied_at = reply, reason, ctx.now()
    leave = reply is AttendanceReply.LEAVE
    label = ctx.renderer.block("cards_training", "answered_leave" if leave else "answered_attend") or ""
    await close_cards(ctx, "training", session.id, label, userids=[ctx.user])
    if leave:
        ctx.reply("answered_leave", reason=reason, **facts(ctx, session))
    else:
        ctx.reply("answered_attend", **facts(ctx, session))
    if reply is AttendanceReply.LEAVE and session.published_by != ctx.user:
        who = ctx.org.name(ctx.user)
        ctx.tell(session.published_by, "leave_for_staff", who=who, reason=reason, **facts(ctx, session))


@router.command(
    "attend_training",
    aliases=("参加培训", "參加培訓", "参加考核", "参加", "參加", "attend"),
    positional=True,
    in_help=False,  # named on the notice
    fields=(SESSION,),
)
async def attend_training(ctx: Ctx, values: dict[str, str]) -> None:
    """参加 #编号 — I will come."""
    await answer(ctx, int(values["number"]), AttendanceReply.ATTEND)


@router.command(
    "leave_training",
    aliases=("培训请假", "培訓請假", "请假", "請假", "training leave"),
    positional=True,
    in_help=False,
    fields=(SESSION, Field("reason", ("原因", "理由", "reason"), parse=lambda v, c: v.strip()[:500])),
)
async def leave_training(ctx: Ctx, values: dict[str, str]) -> None:
    """请假 #编号 原因 — I cannot come, and why."""
    await answer(ctx, int(values["number"]), AttendanceReply.LEAVE, values["reason"])


@router.action(AttendClick)
async def attend_click(ctx: Ctx, card: Card, click: AttendClick) -> None:
    if click.answer is Answer.ATTEND:
        await answer(ctx, click.session, AttendanceReply.ATTEND)
    else:  # ask the reason first
        await start_form(ctx, "leave_training", {"number": str(click.session)})


@router.command(
    "sign_in",
    aliases=("签到", "簽到", "sign in"),
    positional=True,
    fields=(SESSION, Field("names", ("名单", "名單", "姓名", "names"), required=False)),
)
async def sign_in(ctx: Ctx, values: dict[str, str]) -> None:
    """签到 #编号 [姓名、姓名] — the trainer records who came; a trainee signs in on the day."""
    number = int(values["number"])
    session = await ctx.session.get(TrainingSession, number)
    staff = ctx.person is not None and bool(set(STAFF) & set(ctx.person.roles))
    if session is None or (not staff and ctx.user not in users_of(session)):
        ctx.reply("session_not_yours", number=number)
        return
    names = split_names(values.get("names", ""))
    if names and not staff:
        ctx.reply("sign_in_staff_only", **facts(ctx, session))
        return
    if not names:
        if _local(ctx, ctx.now()).date() != _local(ctx, session.starts_at).date():
            ctx.reply("sign_in_not_today", **facts(ctx, session))
            return
        names = [ctx.user]
    users, unknown = [], []
    for word in names:
        userid = person_named(ctx, word)
        if userid is not None and userid in users_of(session):
            users.append(userid)
        else:
            unknown.append(word)
    if unknown:  # nothing is recorded: the trainer fixes the list and sends it again
        ctx.reply("sign_in_unknown", unknown=unknown, **facts(ctx, session))
        return
    q = select(TrainingAttendance).where(TrainingAttendance.session_id == number, TrainingAttendance.userid.in_(users))
    for row in (await ctx.session.execute(q.with_for_update())).scalars():
        row.present, row.signed_by, row.signed_at = True, ctx.user, ctx.now()
    q = select(TrainingAttendance).where(TrainingAttendance.session_id == number, TrainingAttendance.present.is_(True))
    present = len(list((await ctx.session.execute(q)).scalars()))
    ctx.reply(
        "signed_in",
        names=[ctx.org.name(u) for u in users],
        present=present,
        total=len(users_of(session)),
        **facts(ctx, session),
    )


# -- scores -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScoreRow:
    line: int  # the row number as the sender sees it (spreadsheet row, pasted line)
    userid: str
    theory: float
    practical: float


@dataclass(frozen=True)
class RowProblem:
    line: int
    block: str  # a block of `import_problems.j2`
    value: str


class ImportRejected(Exception):
    """Rows that cannot be imported; nothing was."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        super().__init__(f"{len(problems)} bad rows")
        self.problems = list(problems)


NAME_HEADERS = ("姓名", "名字", "name")
THEORY_HEADERS = ("理论", "理论成绩", "理论分", "theory")
PRACTICAL_HEADERS = ("实操", "实操成绩", "实操分", "实际操作", "practical")
HEADERS = (NAME_HEADERS, THEORY_HEADERS, PRACTICAL_HEADERS)


def read_table(filename: str, content: bytes) -> list[tuple[int, list[str]]]:
    """The rows of an .xlsx (first sheet) or .csv (UTF-8 or GBK), numbered as the file shows them."""
    rows: list[tuple[int, list[str]]] = []
    if filename.lower().endswith(".xlsx"):
        from openpyxl import load_workbook  # openpyxl (~17 MB, ~0.3 s) loads with the first workbook, not at start

        sheet = load_workbook(io.BytesIO(content), read_only=True, data_only=True).worksheets[0]
        for i, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            rows.append((i, ["" if c is None else str(c).strip() for c in cells]))
        return rows
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = content.decode("gbk")
    for i, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        rows.append((i, [c.strip() for c in cells]))
    return rows


def pasted_table(text: str) -> list[tuple[int, list[str]]]:
    """Lines pasted from a spreadsheet (tab-, comma- or space-separated), numbered from 1."""
    return [(i, split_names(line)) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]


def check_rows(ctx: Ctx, table: list[tuple[int, list[str]]]) -> list[ScoreRow]:
    """Every row valid, or ImportRejected naming each bad row: unknown person, a score that is
    not a number in range, a person twice. A header row (姓名 理论 实操) may come first."""
    rows = [(n, cells) for n, cells in table if any(cells)]
    cols = (0, 1, 2)
    if rows:
        head = [normalise(c).lower() for c in rows[0][1]]
        if any(h in NAME_HEADERS for h in head):
            found = [next((i for i, h in enumerate(head) if h in hs), -1) for hs in HEADERS]
            if -1 in found:
                raise ImportRejected([RowProblem(rows[0][0], "bad_header", " ".join(rows[0][1]))])
            cols = (found[0], found[1], found[2])
            rows = rows[1:]
    if not rows:
        raise ImportRejected([RowProblem(0, "empty", "")])
    top = ctx.config.training.max_score
    problems: list[RowProblem] = []
    good: list[ScoreRow] = []
    seen: dict[str, int] = {}
    for n, cells in rows:
        cells = cells + [""] * (max(cols) + 1 - len(cells))
        name, theory, practical = (cells[c] for c in cols)
        userid = person_named(ctx, name)
        if userid is None:
            problems.append(RowProblem(n, "unknown_person", name))
            continue
        if userid in seen:
            problems.append(RowProblem(n, "duplicate", f"{name}:{seen[userid]}"))
            continue
        seen[userid] = n
        parts: list[float] = []
        for value in (theory, practical):
            try:
                score = float(value)
            except ValueError:
                problems.append(RowProblem(n, "not_a_score", value))
                break
            if not 0 <= score <= top:
                problems.append(RowProblem(n, "out_of_range", value))
                break
            parts.append(score)
        if len(parts) == 2:
            good.append(ScoreRow(n, userid, parts[0], parts[1]))
    if problems:
        raise ImportRejected(problems)
    return good


def problems_text(ctx: Ctx, problems: Sequence[RowProblem]) -> str:
    return ctx.render("import_problems", problems=problems, max_score=_num(ctx.config.training.max_score))


def _num(x: float) -> str:
    return f"{x:g}"


def _passed(score: TrainingScore | None) -> bool:
    return score is not None and score.passed


async def scores_of(ctx: Ctx, module: str) -> dict[tuple[str, int], TrainingScore]:
    q = select(TrainingScore).where(TrainingScore.module == module)
    return {(s.userid, s.attempt): s for s in (await ctx.session.execute(q)).scalars()}


async def record_scores(ctx: Ctx, module: str, rows: list[ScoreRow], by: str) -> dict[str, int]:
    """Store valid rows: attempt 2 for those on the module's make-up, 1 otherwise; a score already
    there for that attempt is corrected. Each person is told; the first pass schedules the usage
    check. Returns counts (passed, failed, corrected)."""
    cfg = ctx.config.training
    makeup = {u for s in await sessions_of(ctx, module, TrainingKind.MAKEUP) for u in users_of(s)}
    existing = await scores_of(ctx, module)
    counts = {"passed": 0, "failed": 0, "corrected": 0}
    for row in rows:
        attempt = 2 if row.userid in makeup else 1
        passed = row.theory >= cfg.pass_theory and row.practical >= cfg.pass_practical
        score = existing.get((row.userid, attempt))
        if score is None:
            score = TrainingScore(module=module, userid=row.userid, attempt=attempt)
            ctx.session.add(score)
        else:
            counts["corrected"] += 1
        score.theory, score.practical, score.passed = row.theory, row.practical, passed
        score.entered_by, score.entered_at = by, ctx.now()
        counts["passed" if passed else "failed"] += 1
        ctx.tell(
            row.userid,
            "score_for_trainee",
            name=ctx.org.name(row.userid),
            module=module,
            makeup=attempt == 2,
            theory=_num(row.theory),
            practical=_num(row.practical),
            passed=passed,
            pass_theory=_num(cfg.pass_theory),
            pass_practical=_num(cfg.pass_practical),
        )
        if passed:
            await schedule_usage_check(ctx, module)
    return counts


async def has_exam(ctx: Ctx, module: str) -> bool:
    return bool(await sessions_of(ctx, module, *EXAM_KINDS))


def parse_score(value: str, ctx: Ctx) -> str:
    try:
        score = float(normalise(value))
    except ValueError:
        raise FieldError("invalid_score") from None
    if not 0 <= score <= ctx.config.training.max_score:
        raise FieldError("invalid_score_range", max_score=_num(ctx.config.training.max_score))
    return _num(score)


def parse_trainee(value: str, ctx: Ctx) -> str:
    userid = person_named(ctx, value)
    if userid is None:
        raise FieldError("invalid_trainee")
    return userid


@router.command(
    "enter_score",
    aliases=("录入成绩", "錄入成績", "登记成绩", "enter score"),
    roles=STAFF,
    positional=True,
    fields=(
        MODULE,
        Field("name", ("姓名", "name"), parse=parse_trainee, show=lambda v, c: c.org.name(v)),
        Field("theory", ("理论", "理論", "theory"), parse=parse_score),
        Field("practical", ("实操", "實操", "practical"), parse=parse_score),
    ),
)
async def enter_score(ctx: Ctx, values: dict[str, str]) -> None:
    """录入成绩 模块 姓名 理论 实操"""
    module = values["module"]
    if not await has_exam(ctx, module):
        ctx.reply("no_exam_yet", module=module)
        return
    row = ScoreRow(1, values["name"], float(values["theory"]), float(values["practical"]))
    counts = await record_scores(ctx, module, [row], ctx.user)
    ctx.reply(
        "score_recorded",
        name=ctx.org.name(row.userid),
        module=module,
        theory=_num(row.theory),
        practical=_num(row.practical),
        **counts,
    )


@router.command(
    "import_scores",
    aliases=("导入成绩", "導入成績", "import scores"),
    roles=STAFF,
    fields=(MODULE, Field("rows", ("成绩单", "成績單", "成绩", "rows"), required=False)),
)
async def import_scores(ctx: Ctx, values: dict[str, str]) -> None:
    """导入成绩 模块:… [成绩单:每行 姓名 理论 实操] — pasted rows, or the .xlsx/.csv sent next."""
    module = values["module"]
    if not await has_exam(ctx, module):
        ctx.reply("no_exam_yet", module=module)
        return
    if not values.get("rows", "").strip():  # the file comes next, within FILE_WINDOW
        await _close_waits(ctx, ctx.user)
        due = ctx.now() + FILE_WINDOW
        q = select(Timer).where(Timer.kind == FILE_WAIT, Timer.ref == ctx.user, Timer.due_at == due)
        same = (await ctx.session.execute(q.with_for_update())).scalar_one_or_none()  # asked twice at one instant
        if same is not None:
            same.fired_at, same.payload = None, {"module": module}
        else:
            ctx.session.add(Timer(kind=FILE_WAIT, ref=ctx.user, due_at=due, payload={"module": module}))
        ctx.reply("send_score_file", module=module, minutes=int(FILE_WINDOW.total_seconds() // 60))
        return
    try:
        rows = check_rows(ctx, pasted_table(values["rows"]))
    except ImportRejected as bad:
        ctx.reply("import_refused", module=module, problems=problems_text(ctx, bad.problems))
        return
    counts = await record_scores(ctx, module, rows, ctx.user)
    ctx.reply("import_done", module=module, total=len(rows), **counts)


# A score file sent in the chat: `导入成绩 模块:…` opens a window (a timer row: it survives a restart
# and closes itself when it fires); the file sent within it is kept (bot/media.py) and read once
# the dispatcher has downloaded it.
FILE_WAIT = "training_score_file_wait"
FILE_KEPT = "training_score_file_kept"
FILE_WINDOW = timedelta(minutes=30)
SCORE_FILE_TYPES = (".xlsx", ".csv")


async def _close_waits(ctx: Ctx, userid: str) -> list[Timer]:
    """Close this person's open windows; return them (newest first)."""
    q = select(Timer).where(Timer.kind == FILE_WAIT, Timer.ref == userid, Timer.fired_at.is_(None))
    waits = list((await ctx.session.execute(q.order_by(Timer.id.desc()).with_for_update())).scalars())
    for w in waits:
        w.fired_at = ctx.now()
    return waits


@router.timer(FILE_WAIT)
async def file_wait_over(ctx: Ctx, timer: Timer) -> None:
    """The window closed without a file: nothing to do (a file sent later is not taken)."""


@router.attachment(kinds=("file",), order=5)
async def score_file(ctx: Ctx) -> bool:
    """A file sent within the window of `导入成绩 模块:…` is that module's score table."""
    q = select(Timer).where(
        Timer.kind == FILE_WAIT, Timer.ref == ctx.user, Timer.fired_at.is_(None), Timer.due_at > ctx.now()
    )
    if (await ctx.session.execute(q)).first() is None:
        return False
    filename = ctx.inbound.filename or ""
    if not filename.lower().endswith(SCORE_FILE_TYPES):
        ctx.reply("score_file_type", filename=filename)
        return True  # the window stays open for the right file
    wait = (await _close_waits(ctx, ctx.user))[0]
    await keep(ctx, f"training_scores:{wait.id}", then=FILE_KEPT, kind="file", filename=filename[:255])
    ctx.reply("score_file_received", filename=filename, module=wait.payload.get("module", ""))
    return True


@router.timer(FILE_KEPT)
async def score_file_kept(ctx: Ctx, timer: Timer) -> None:
    """The score file is downloaded: import it (all rows or none) and tell who sent it."""
    media = await fetched(ctx, timer)
    number = subject_id(media, "training_scores") if media is not None else None
    wait = await ctx.session.get(Timer, number) if number is not None else None
    if media is None or wait is None:
        return
    module = str(wait.payload.get("module", ""))
    if media.status != MediaStatus.KEPT:
        ctx.tell(media.owner, "score_file_lost", filename=media.filename, module=module)
        return
    content = (await ctx.session.execute(select(MediaFile.content).where(MediaFile.id == media.id))).scalar_one()
    try:
        rows = check_rows(ctx, read_table(media.filename, content or b""))
    except ImportRejected as bad:
        ctx.tell(media.owner, "import_refused", module=module, problems=problems_text(ctx, bad.problems))
        return
    except Exception:  # not a spreadsheet at all (a renamed file, a damaged one)
        ctx.tell(media.owner, "score_file_unreadable", filename=media.filename, module=module)
        return
    counts = await record_scores(ctx, module, rows, media.owner)
    ctx.tell(media.owner, "import_done", module=module, total=len(rows), **counts)


async def import_file(ctx: Ctx, module: str, filename: str, content: bytes, by: str) -> dict[str, int]:
    """The command line's import (`python -m bot import-scores`): the same checks and records.
    Raises ImportRejected (nothing stored) or LookupError (no exam for the module)."""
    if not await has_exam(ctx, module):
        raise LookupError(module)
    rows = check_rows(ctx, read_table(filename, content))
    return {"total": len(rows), **await record_scores(ctx, module, rows, by)}


# -- the list for 人资部 -------------------------------------------------------------------------
def listed(examined: Sequence[str], scores: dict[tuple[str, int], TrainingScore]) -> list[dict[str, str]]:
    """Who failed the make-up or missed both (or failed the exam and missed the make-up)."""
    out = []
    for userid in examined:
        first, second = scores.get((userid, 1)), scores.get((userid, 2))
        if _passed(first) or _passed(second):
            continue
        if second is not None:
            reason = "failed_makeup"
        elif first is None:
            reason = "missed_both"
        else:
            reason = "missed_makeup"
        out.append({"userid": userid, "reason": reason})
    return out


def _cell(score: TrainingScore | None) -> str:
    return f"{_num(score.theory)}/{_num(score.practical)}" if score else ""


def report_xlsx(
    ctx: Ctx, module: str, rows: list[dict[str, str]], scores: dict[tuple[str, int], TrainingScore]
) -> bytes:
    from openpyxl import Workbook  # openpyxl (~17 MB, ~0.3 s) loads with the first workbook, not at start

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = LABELS(ctx, "sheet_title")[:31]
    sheet.append([LABELS(ctx, f"col_{c}") for c in ("n", "name", "unit", "module", "exam", "makeup", "reason")])
    for i, r in enumerate(rows, start=1):
        unit = ctx.org.unit_of(r["userid"])
        sheet.append(
            [
                i,
                ctx.org.name(r["userid"]),
                unit.name if unit else "",
                module,
                _cell(scores.get((r["userid"], 1))),
                _cell(scores.get((r["userid"], 2))),
                LABELS(ctx, f"reason_{r['reason']}"),
            ]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@router.command("hr_list", aliases=("量化名单", "量化名單", "补考名单", "hr list"), roles=STAFF, fields=(MODULE,))
async def hr_list(ctx: Ctx, values: dict[str, str]) -> None:
    """量化名单 模块:… — the list for 人资部, sent once the director approves it."""
    module = values["module"]
    exams = await sessions_of(ctx, module, TrainingKind.EXAM)
    makeups = await sessions_of(ctx, module, TrainingKind.MAKEUP)
    if not exams:
        ctx.reply("no_exam_yet", module=module)
        return
    scores = await scores_of(ctx, module)
    examined = list(dict.fromkeys(u for s in exams + makeups for u in users_of(s)))
    failed_first = [u for u in examined if not _passed(scores.get((u, 1)))]
    if failed_first and not makeups:
        ctx.reply("makeup_not_yet", module=module, count=len(failed_first))
        return
    coming = [m for m in makeups if m.starts_at > ctx.now()]
    if coming:  # who missed or failed the make-up is known only once it has been held
        ctx.reply("makeup_not_held", module=module, when=moment(ctx, coming[-1].starts_at))
        return
    rows = listed(examined, scores)
    if not rows:
        ctx.reply("hr_list_empty", module=module)
        return
    content = report_xlsx(ctx, module, rows, scores)
    report = TrainingReport(module=module, listed={"rows": rows}, requested_by=ctx.user, created_at=ctx.now())
    ctx.session.add(report)
    await ctx.session.flush()
    filename = ctx.render("report_filename", module=module, day=_local(ctx, ctx.now()).date()).strip()
    media = made(ctx, "file", f"training_report:{report.id}", filename, content)
    await ctx.session.flush()
    report.media_file_id = media.id
    names = [ctx.org.name(r["userid"]) for r in rows]
    directors = ctx.org.with_role("director")
    block = ctx.renderer.block
    for d in directors:
        ctx.tell(d, "hr_list_for_director", module=module, names=names, by=ctx.org.name(ctx.user), number=report.id)
    send_kept(ctx, directors, media)
    for d in directors:
        await send_card(
            ctx,
            d,
            subject_id=report.id,
            purpose="hrlist",
            title=block("cards_training", "report_title", module=module) or "",
            desc=block("cards_training", "report_desc", count=len(rows)) or "",
            rows=[(LABELS(ctx, "row_module"), module), (LABELS(ctx, "row_count"), str(len(rows)))],
            buttons=[
                Button(block("cards_training", "report_send") or "", ReportClick(report.id, Verdict.SEND)),
                Button(block("cards_training", "report_return") or "", ReportClick(report.id, Verdict.RETURN), style=2),
            ],
        )
    ctx.reply("hr_list_submitted", module=module, names=names, count=len(rows))


@router.action(ReportClick, roles=("director",))
async def report_click(ctx: Ctx, card: Card, click: ReportClick) -> None:
    q = select(TrainingReport).where(TrainingReport.id == click.report).with_for_update()
    report = (await ctx.session.execute(q)).scalar_one_or_none()
    if report is None:
        ctx.reply("card_unknown")
        return
    if report.status != ReportStatus.PENDING:
        ctx.reply("report_decided", module=report.module, status=LABELS(ctx, f"report_{report.status}"))
        return
    report.decided_by, report.decided_at = ctx.user, ctx.now()
    names = [ctx.org.name(r["userid"]) for r in report.listed.get("rows", [])]
    if click.verdict is Verdict.SEND:
        report.status = ReportStatus.SENT
        media = await ctx.session.get(MediaFile, report.media_file_id) if report.media_file_id else None
        hr = ctx.org.with_role("hr")
        for u in hr:
            ctx.tell(u, "hr_list_for_hr", module=report.module, names=names, director=ctx.org.name(ctx.user))
        if media is not None:
            send_kept(ctx, hr, media)
    else:
        report.status = ReportStatus.RETURNED
    label = LABELS(ctx, f"report_{report.status}")
    await close_cards(ctx, "training_report", report.id, label)
    ctx.reply("report_decided", module=report.module, status=label)
    if report.requested_by != ctx.user:
        ctx.tell(report.requested_by, "report_decided_for_staff", module=report.module, status=label, names=names)


# -- the usage check in the second working month after passing ---------------------------------
def usage_check_day(ctx: Ctx, passed_on: date) -> date:
    """The first working day of the second month after the month of passing."""
    month = passed_on.month + 2
    day = date(passed_on.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)
    for _ in range(31):
        if ctx.config.calendar.workday(day):
            return day
        day += timedelta(days=1)
    return day


async def schedule_usage_check(ctx: Ctx, module: str) -> None:
    """One reminder per module and month of passing (several passes the same month share it)."""
    local = _local(ctx, ctx.now())
    day = usage_check_day(ctx, local.date())
    due = datetime.combine(day, time(ctx.config.training.reminder_hour), local.tzinfo)
    ref = f"{module}"[:100]
    q = select(Timer.id).where(Timer.kind == USAGE_TIMER, Timer.ref == ref, Timer.due_at == due)
    if (await ctx.session.execute(q)).first() is None:
        ctx.session.add(Timer(kind=USAGE_TIMER, ref=ref, due_at=due, payload={"module": module}))
        await ctx.session.flush()


@router.timer(USAGE_TIMER)
async def usage_check_due(ctx: Ctx, timer: Timer) -> None:
    """Remind the staff which units to check (those of the people who passed) and how to record it."""
    module = str(timer.payload.get("module", timer.ref))
    scores = await scores_of(ctx, module)
    units: list[str] = []
    for (userid, _), score in scores.items():
        unit = ctx.org.unit_of(userid)
        if score.passed and unit is not None and unit.name not in units:
            units.append(unit.name)
    for userid in ctx.org.with_role("digital_campus") or ctx.org.with_role("director"):
        ctx.tell(userid, "usage_check_due", module=module, units=units)


def parse_unit(value: str, ctx: Ctx) -> str:
    word = value.strip()
    unit = next((u for u in ctx.config.units if word in (u.name, u.key)), None)
    if unit is None:
        raise FieldError("invalid_unit")
    return unit.key


@router.command(
    "record_usage",
    aliases=("使用情况", "使用情況", "platform usage"),
    roles=STAFF,
    fields=(
        Field("unit", ("单位", "單位", "部门", "unit"), parse=parse_unit, show=lambda v, c: _unit_name(c, v)),
        MODULE,
        Field("note", ("情况", "情況", "结果", "note"), parse=lambda v, c: v.strip()[:1000]),
    ),
)
async def record_usage(ctx: Ctx, values: dict[str, str]) -> None:
    """使用情况 单位:… 模块:… 情况:… — what the check of a unit's platform use found."""
    ctx.session.add(
        PlatformUsage(
            module=values["module"],
            unit=values["unit"],
            note=values["note"],
            recorded_by=ctx.user,
            recorded_at=ctx.now(),
        )
    )
    ctx.reply("usage_recorded", unit=_unit_name(ctx, values["unit"]), module=values["module"], note=values["note"])


def _unit_name(ctx: Ctx, key: str) -> str:
    unit = ctx.org.unit(key)
    return unit.name if unit else key


# -- 我的培训 ----------------------------------------------------------------------------------
@router.command("my_training", aliases=("我的培训", "我的培訓", "my training"))
async def my_training(ctx: Ctx, values: dict[str, str]) -> None:
    """我的培训 — my notices, answers, attendance, scores and make-up."""
    q = (
        select(TrainingSession, TrainingAttendance)
        .join(TrainingAttendance, TrainingAttendance.session_id == TrainingSession.id)
        .where(TrainingAttendance.userid == ctx.user)
        .order_by(TrainingSession.module, TrainingSession.starts_at, TrainingSession.id)
    )
    modules: dict[str, dict[str, Any]] = {}
    for session, row in (await ctx.session.execute(q)).all():
        m = modules.setdefault(session.module, {"module": session.module, "sessions": [], "scores": []})
        m["sessions"].append(
            {
                **facts(ctx, session),
                "reply": LABELS.name(ctx, "reply", row.reply),
                "reason": row.reason,
                "present": row.present,
                "past": session.starts_at <= ctx.now(),
            }
        )
    q2 = select(TrainingScore).where(TrainingScore.userid == ctx.user).order_by(TrainingScore.attempt)
    for s in (await ctx.session.execute(q2)).scalars():
        m = modules.setdefault(s.module, {"module": s.module, "sessions": [], "scores": []})
        m["scores"].append(
            {"makeup": s.attempt == 2, "theory": _num(s.theory), "practical": _num(s.practical), "passed": s.passed}
        )
    ctx.reply("my_training", modules=list(modules.values()))
