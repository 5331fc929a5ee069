"""Configuration of the workflows: approval chains, SLAs, venues, duties, publishing cadence."""

from __future__ import annotations

import re
from datetime import date, time
from pathlib import Path
from typing import Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import Field, field_validator, model_validator

from bot.config_base import SKILLS, Role, Skill, _Strict
from bot.config_messages import problem
from bot.worktime import parse_windows

# Repair categories: the technicians' skills, plus "other" (其他) for what fits none of them.
CATEGORIES = (*SKILLS, "other")
Category = Literal[CATEGORIES]  # type: ignore[valid-type]


class Term(_Strict):
    name: str
    start: date
    end: date

    @model_validator(mode="after")
    def _order(self) -> Term:
        if self.end < self.start:
            raise ValueError(f"term '{self.name}' ends before it starts")
        return self


class CalendarConfig(_Strict):
    """The school calendar: terms, holidays and make-up workdays (调休).

    `holidays` lists days or ranges ("2026-10-01..2026-10-07"); `workdays` the weekend days that
    are workdays because of a holiday's 调休. Without terms every day counts as in term.
    """

    terms: tuple[Term, ...] = ()
    holidays: tuple[str, ...] = ()
    workdays: tuple[date, ...] = ()

    @field_validator("holidays")
    @classmethod
    def _days(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for item in v:
            first, _, last = item.partition("..")
            try:
                a, b = date.fromisoformat(first.strip()), date.fromisoformat((last or first).strip())
            except ValueError:
                raise ValueError(f"'{item}' is not a day (2026-10-01) or a range (2026-10-01..2026-10-07)") from None
            if b < a:
                raise ValueError(f"'{item}' ends before it starts")
        return v

    def holiday(self, d: date) -> bool:
        for item in self.holidays:
            first, _, last = item.partition("..")
            if date.fromisoformat(first.strip()) <= d <= date.fromisoformat((last or first).strip()):
                return True
        return False

    def workday(self, d: date) -> bool:
        return d in self.workdays or (d.weekday() < 5 and not self.holiday(d))

    def in_term(self, d: date) -> bool:
        return not self.terms or any(t.start <= d <= t.end for t in self.terms)

    def runs_on(self, days: str, d: date) -> bool:
        """Whether a schedule of `days` (every_day / workdays / school_days / term_days) runs on `d`."""
        if days == "workdays":
            return self.workday(d)
        if days == "school_days":
            return self.workday(d) and self.in_term(d)
        if days == "term_days":
            return self.in_term(d)
        return True


class ChainStep(_Strict):
    role: Role
    mode: Literal["any", "all"] = "any"


class CcEntry(_Strict):
    """Someone told about a chain's requests without deciding them (抄送): a role (resolved
    relative to the requester like a step; `technician` narrowed by `skill`) or a person, at
    submission, at final approval, or both. They may look the request up (进度), never decide it."""

    role: Role | None = None
    skill: Skill | None = None
    user: str | None = None
    when: Literal["submit", "approved", "both"] = "approved"

    @model_validator(mode="after")
    def _one(self) -> CcEntry:
        if (self.role is None) == (self.user is None):
            raise ValueError("a cc entry names either a role or a user")
        if self.skill is not None and self.role != "technician":
            raise ValueError("skill narrows role = 'technician' only")
        return self


class Chain(_Strict):
    """An approval chain: steps naming roles resolved relative to the requester and request."""

    applies_to: Literal["all", "系部", "科室"] = "all"  # whose requests may use it
    needs_class: bool = False  # resolved against the request's class (student matters)
    steps: tuple[ChainStep, ...] = Field(min_length=1)
    cc: tuple[CcEntry, ...] = ()


class ApprovalConfig(_Strict):
    remind_after_hours: float = Field(default=24, gt=0)
    escalate_after_hours: float = Field(default=48, gt=0)
    nudge_cooldown_hours: float = Field(default=4, gt=0)  # 催办 at most once per this
    # Who is "the next level up" from each role: used when a step would resolve to the
    # requester themself, and when an idle step escalates.
    next_level: dict[Role, Role] = Field(
        default_factory=lambda: {
            "class_teacher": "dept_head",
            "dept_deputy": "dept_head",
            "dept_head": "vp_supervising",
            "office_lead": "vp_supervising",
            "vp_supervising": "principal",
            "vp_campus": "principal",
            "vp_info_center": "principal",
            "director": "vp_info_center",
            "principal": "committee",
        }
    )

    @model_validator(mode="after")
    def _escalation_order(self) -> ApprovalConfig:
        if self.escalate_after_hours <= self.remind_after_hours:
            raise problem("escalation_order")
        return self


class FootageConfig(_Strict):
    retention_days: int = Field(default=30, ge=1)  # footage older than this is overwritten


class ComputersConfig(_Strict):
    """Loans of computers, projectors and speakers: returns and the term-end / holiday collections.

    The collections (计算机回收) follow the school calendar: `collection_lead_days` workdays before
    each term's end and before each holiday of at least `collection_min_holiday_days` days (a
    single-day holiday has none); `collection_dates` adds days of its own (it was once the only list).
    """

    collection_dates: tuple[date, ...] = ()
    collection_lead_days: int = Field(default=3, ge=1, le=30)
    collection_min_holiday_days: int = Field(default=3, ge=1, le=60)
    # A loan not back this many days after its return date: the technician is told (the holder was
    # reminded on the day).
    overdue_days: int = Field(default=1, ge=1, le=60)
    reminder_hour: int = Field(default=9, ge=0, le=23)


class TrainingConfig(_Strict):
    """Digital-campus training and exams (W8): what passes, and when the usage check reminder goes."""

    # The platform scores each part out of `max_score`; a part at or above its pass mark passes,
    # and an exam passes when both parts do.
    max_score: float = Field(default=100, gt=0)
    pass_theory: float = Field(default=60, ge=0)
    pass_practical: float = Field(default=60, ge=0)
    reminder_hour: int = Field(default=9, ge=0, le=23)  # local hour of the usage-check reminder


class NotOurs(_Strict):
    """Equipment or requests another office handles: a 报修 naming one of `words` gets a reply
    pointing to `office` (and `contact`) instead of a ticket (`[[faults.not_ours]]`)."""

    words: tuple[str, ...]
    office: str
    contact: str = ""  # how to reach the office: a phone number, a room, a person

    @field_validator("words")
    @classmethod
    def _words(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        words = tuple(w.strip() for w in v)
        if not words or not all(words):
            raise problem("not_ours_words")
        return words

    @field_validator("office")
    @classmethod
    def _office(cls, v: str) -> str:
        if not v.strip():
            raise problem("not_ours_office")
        return v.strip()


class FaultsConfig(_Strict):
    # Repair deadline per equipment category; the manual fixes computers at 24 h. A category
    # left out (e.g. other) gets 24 h.
    sla_hours: dict[Category, float] = Field(
        default_factory=lambda: {"computer": 24.0, "projector": 24.0, "stage": 48.0, "cctv": 48.0, "network": 8.0}
    )
    # Which clock each category's SLA runs on: wall (every hour counts) or working (only
    # working_hours on the calendar's workdays). Left out → wall; computers must stay on the wall
    # clock (the manual: 24 hours).
    sla_clock: dict[Category, Literal["wall", "working"]] = Field(default_factory=dict)
    working_hours: tuple[str, ...] = ("08:00-12:00", "14:00-17:30")
    warn_fraction: float = Field(default=0.75, gt=0, lt=1)  # warn at this share of the SLA
    photo_window_minutes: int = Field(default=10, ge=1)  # photos sent this soon after a report attach
    not_ours: tuple[NotOurs, ...] = ()  # what the information center does not repair, and who does

    @field_validator("sla_hours")
    @classmethod
    def _computer_24(cls, v: dict[str, float]) -> dict[str, float]:
        if v.get("computer", 24) > 24:
            raise problem("sla_computer")
        if any(h <= 0 for h in v.values()):
            raise problem("sla_positive")
        return v

    @field_validator("sla_clock")
    @classmethod
    def _computer_wall(cls, v: dict[str, str]) -> dict[str, str]:
        if v.get("computer", "wall") != "wall":
            raise problem("sla_computer_wall")
        return v

    @field_validator("working_hours")
    @classmethod
    def _windows(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise problem("working_hours_empty")
        try:
            parse_windows(v)
        except ValueError as exc:
            raise problem("working_hours", value=str(exc)) from None
        return v

    def windows(self) -> tuple[tuple[time, time], ...]:
        return parse_windows(self.working_hours)

    @field_validator("not_ours")
    @classmethod
    def _one_office_per_word(cls, v: tuple[NotOurs, ...]) -> tuple[NotOurs, ...]:
        seen: dict[str, str] = {}
        for entry in v:
            for word in entry.words:
                if seen.setdefault(word, entry.office) != entry.office:
                    raise problem("not_ours_twice", word=word, first=seen[word], second=entry.office)
        return v


class Venue(_Strict):
    key: str
    name: str
    campus: str
    # "kit": equipment booked like a venue (the mobile speaker kit, 移动音响): `借音响` books it.
    kind: Literal["venue", "kit"] = "venue"


class StageConfig(_Strict):
    open_hour: int = Field(default=7, ge=0, le=23)  # free-slot suggestions stay within these hours
    close_hour: int = Field(default=22, ge=1, le=24)
    check_days_before: int = Field(default=15, ge=1)  # 重大活动: technicians test equipment this early
    condition_delay_minutes: int = Field(default=30, ge=0)  # ask for 设备运转情况 after the end
    # The booking's stage technician (专业人员) is reminded this long before the start.
    crew_reminder_minutes: int = Field(default=30, ge=0)
    # Nobody has claimed the booking this long before the start: the director is told.
    unclaimed_hours_before: float = Field(default=24, gt=0)
    # After the event the technician ticks each item and confirms (礼堂(舞台)设备管理制度).
    closing_checklist: tuple[str, ...] = Field(
        default=("话筒电池取出", "电源关闭", "门已上锁", "设备已擦拭"), min_length=1, max_length=20
    )
    # A weekly booking (时间:每周二 16:00-17:30 至 2026-12-29) books at most this many occurrences.
    series_max: int = Field(default=26, ge=2, le=60)


class ActivityConfig(_Strict):
    """活动服务 (W9): photographing and filming activities by the 微课视频编辑部 (role video_editor)."""

    remind_minutes: int = Field(default=60, ge=0)  # the assignee is reminded this long before the start
    delivery_delay_minutes: int = Field(default=30, ge=0)  # after the end: asked where the material is
    open_hour: int = Field(default=7, ge=0, le=23)  # alternative slots are offered within these hours
    close_hour: int = Field(default=22, ge=1, le=24)
    # The [[duties]] key of the monthly archive to 综合办公室: its task lists the records delivered
    # since the previous archive ("" for none).
    archive_duty: str = "photo_archive"


# The duty keys of the closed catalogue before duties were defined in config: an entry with one of
# these keys may leave out `title` and `text` (the shipped texts, handlers/templates/duties/).
LEGACY_DUTY_KEYS = (
    "room_cleaning",
    "ups_check",
    "stage_maintenance",
    "platform_report",
    "photo_archive",
    "cctv_inspection",
    "computer_collection",
    "inventory",
    "domain_fees",
)
DUTY_KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_DUTY_CHOICES = 5  # a card holds 6 buttons (doc 90236)
MAX_CHECKLIST = 20


def check_cron(expr: str) -> str:
    """A 5-field crontab expression; weekdays must be names (APScheduler reads 0 as Monday)."""
    parts = expr.split()
    if len(parts) != 5:
        raise problem("cron_fields")
    if re.search(r"\d", parts[4]):
        raise problem("cron_weekday_digits")
    try:
        CronTrigger.from_crontab(expr)
    except ValueError as exc:
        raise problem("cron_invalid", detail=str(exc)) from None
    return expr


class Duty(_Strict):
    """A recurring duty (W7): each occurrence is a task for the assignees to confirm by a deadline.

    Defined entirely here: `key` (any slug), `title`, `text` (what the assignees are told),
    `cron`, who does it (`roles`, `skills` for technicians, `users`), `deadline_minutes` after the
    occurrence, result choices (`results`, the `abnormal` ones open a 报修 ticket) or `checklist`
    items, and who is told when it is not done (`escalate_to`, `escalate_after_minutes` after the
    deadline).
    """

    key: str
    title: str = ""
    text: str = ""
    cron: str
    # Which days it runs on, besides the cron: every day, workdays (the school calendar's: weekdays
    # minus holidays plus make-up workdays, 调休), school days (workdays in term) or term days.
    days: Literal["every_day", "workdays", "school_days", "term_days"] = "every_day"
    roles: tuple[Role, ...] = ()
    skills: tuple[Skill, ...] = ()  # with role technician: only these technicians
    users: tuple[str, ...] = ()
    note: str = ""  # shown after the text (e.g. which domain, the renewal date)
    deadline_minutes: int = Field(default=24 * 60, ge=1)  # after the occurrence
    results: tuple[str, ...] = ()  # e.g. ["正常", "异常"]: one button each
    abnormal: tuple[str, ...] = ()  # the results that open a 报修 ticket (and ask for a 说明)
    checklist: tuple[str, ...] = ()  # items ticked one by one (per venue, per camera group)
    fault_category: Category = "other"  # the 报修 ticket an abnormal result opens
    fault_location: str = ""  # its 地点 (default: the title)
    escalate_to: Role = "director"
    escalate_after_minutes: int = Field(default=60, ge=0)  # after the deadline

    _cron = field_validator("cron")(classmethod(lambda cls, v: check_cron(v)))

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not DUTY_KEY_RE.fullmatch(v):
            raise ValueError("must be a slug of lowercase letters, digits and _ starting with a letter, e.g. ups_check")
        return v

    @field_validator("results", "abnormal", "checklist")
    @classmethod
    def _words(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        words = tuple(w.strip() for w in v)
        if not all(words) or len(set(words)) != len(words):
            raise ValueError("must list distinct, non-empty words")
        return words

    @model_validator(mode="after")
    def _complete(self) -> Duty:
        if not self.roles and not self.users:
            raise ValueError("needs roles or users to remind")
        if self.key not in LEGACY_DUTY_KEYS and not (self.title.strip() and self.text.strip()):
            raise ValueError('needs a title and a text, e.g. title = "UPS 检查", text = "请检查服务器 UPS 是否正常。"')
        if self.results and self.checklist:
            raise ValueError("takes results or checklist items, not both")
        if len(self.results) == 1 or len(self.results) > MAX_DUTY_CHOICES:
            raise ValueError(f'results: list 2 to {MAX_DUTY_CHOICES} choices, e.g. results = ["正常", "异常"]')
        if not set(self.abnormal) <= set(self.results):
            raise ValueError("abnormal: every abnormal result must be one of results")
        if len(self.checklist) > MAX_CHECKLIST:
            raise ValueError(f"checklist: at most {MAX_CHECKLIST} items")
        return self


class PublishingConfig(_Strict):
    oa_weekly_min: int = Field(default=4, ge=0)  # official-account posts a week (W4)
    oa_check_cron: str = "0 10 * * thu"  # when the week's count is checked
    website_check_cron: str = "0 16 * * mon-fri"  # a school day without a website post by then

    _cron = field_validator("oa_check_cron", "website_check_cron")(classmethod(lambda cls, v: check_cron(v)))


class MicroLessonsConfig(_Strict):
    """微课 (W10): recording rooms, reminders before a slot, the monthly summary for 教学教研中心."""

    rooms: tuple[str, ...] = ()  # the rooms recordings are made in (地点); empty: any place
    slot_minutes: int = Field(default=40, ge=5, le=480)  # a 时间 with only a start lasts this long
    remind_day_before: str = "16:00"  # local time the day before the slot ("" for no reminder)
    remind_minutes_before: int = Field(default=30, ge=0)  # and this long before it (0 for none)
    research_unit: str = ""  # 教学教研中心's unit key: its head gets the monthly summary
    summary_cron: str = "30 9 1 * *"  # when last month's summary goes out

    _cron = field_validator("summary_cron")(classmethod(lambda cls, v: check_cron(v)))

    @field_validator("remind_day_before")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if v and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", v):
            raise ValueError('must be HH:MM in 24-hour time, e.g. "16:00", or "" for no reminder')
        return v

    @field_validator("rooms")
    @classmethod
    def _rooms(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        rooms = tuple(r.strip() for r in v)
        if not all(rooms) or len(set(rooms)) != len(rooms):
            raise ValueError("must list distinct, non-empty room names")
        return rooms


class SchedulesConfig(_Strict):
    grace_minutes: int = Field(default=120, ge=1)  # an occurrence missed while down is still sent this late


class ReportsConfig(_Strict):
    """The director's reports (handlers/reports.py): when they go out and to whom."""

    enabled: bool = True
    to_roles: tuple[Role, ...] = ("director",)  # who receives them
    weekly_cron: str = "0 8 * * mon"  # last week's report
    monthly_cron: str = "30 8 1 * *"  # last month's
    yearly_cron: str = "0 9 1 1 *"  # last year's
    term_report_time: str = "09:00"  # the day after each term's last day ([calendar] terms)
    chart_font: str = ""  # a font file with Chinese glyphs for the chart; empty: look for a known one

    _cron = field_validator("weekly_cron", "monthly_cron", "yearly_cron")(classmethod(lambda cls, v: check_cron(v)))

    @field_validator("term_report_time")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", v):
            raise ValueError('must be HH:MM in 24-hour time, e.g. "09:00"')
        return v

    @field_validator("chart_font")
    @classmethod
    def _font(cls, v: str) -> str:
        if v and not Path(v).is_file():
            raise ValueError(f"no font file at {v}")
        return v
