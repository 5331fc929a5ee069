"""SQLAlchemy 2 models. Every table change goes through an Alembic migration in migrations/."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# SQLite has no BIGINT autoincrement; Integer there, BigInteger on PostgreSQL.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both engines (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use the injected clock (aware UTC)")
        # SQLite keeps no offset, so every stored value is UTC and compares as text.
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _fk(target: str, name: str, ondelete: str, **kw: Any) -> ForeignKey:
    """A named foreign key (migration 0006 adds it by this name; downgrade drops it by name).

    SET NULL where the referring row outlives its parent (inbound events may be purged like the
    outbox; cross-links between records); RESTRICT where the column is NOT NULL: a request or a
    draft with records hanging off it cannot be deleted, and nothing official is cascade-deleted.
    `cards.request_id` is polymorphic (its table depends on `subject`) and `timers.ref` is a
    string, so neither has a foreign key.
    """
    return ForeignKey(target, name=name, ondelete=ondelete, **kw)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class InboundEvent(Base):
    """One accepted callback; the unique `dedupe_key` makes a WeCom retry a no-op."""

    __tablename__ = "inbound_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # app | robot
    msg_type: Mapped[str] = mapped_column(String(64))
    from_user: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]
    error_id: Mapped[str | None] = mapped_column(String(32), default=None)


class JournalEntry(Base):
    """A callback durably recorded and answered, waiting to be applied (bot/journal.py).

    The row is deleted in the transaction that applies it; `inbound_events` keeps the dedupe key.
    """

    __tablename__ = "inbound_journal"
    # A member's oldest waiting message, found by index (bot/pipeline._take_next).
    __table_args__ = (Index("ix_inbound_journal_member", "from_user", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # app | robot: which parser reads `payload`
    from_user: Mapped[str] = mapped_column(String(64))  # one member's messages apply in order
    payload: Mapped[str] = mapped_column(Text)  # the decrypted message, as WeCom sent it
    received_at: Mapped[datetime]


class OutboxMessage(Base):
    """An outbound WeCom call, written in the transaction that caused it."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Ordering and rate limits are per recipient: 'user:<userid>', 'chat:<chatid>', 'webhook:<name>'.
    recipient: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))  # message | update_card | appchat | webhook | robot_response
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    # When the latest attempt was handed to WeCom: an attempt whose outcome is unknown may have
    # been delivered, so the per-member limits count it.
    attempted_at: Mapped[datetime | None] = mapped_column(default=None)
    errcode: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # A timer kind to fire once the call is settled (sent, or failed for good): the handler reads
    # `result` and carries on, so a reply from WeCom reaches the workflow in its own transaction.
    then: Mapped[str | None] = mapped_column(String(32), default=None)
    caused_by: Mapped[int | None] = mapped_column(
        BigId, _fk("inbound_events.id", "fk_outbox_caused_by_inbound_events", "SET NULL"), default=None
    )

    __table_args__ = (
        Index("ix_outbox_status_id", "status", "id"),
        Index("ix_outbox_recipient_sent", "recipient", "sent_at"),
        Index("ix_outbox_recipient_attempted", "recipient", "attempted_at"),
    )


class DeliveryPause(Base):
    """Delivery held for one cause: a configuration error WeCom keeps answering until an admin
    fixes it (untrusted IP, bad credentials, a forbidden API, a configured member WeCom does not
    know). One row per cause, reopened when the cause comes back; several processes sharing the
    database agree on it, and a restart remembers it."""

    __tablename__ = "delivery_pauses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # 'app' (every call with the app's token), 'api:<path>' (one API), 'user:<userid>' (one member).
    cause: Mapped[str] = mapped_column(String(200))
    errcode: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[datetime]
    probes: Mapped[int] = mapped_column(Integer, default=0)  # probes since it appeared (their backoff)
    last_probe_at: Mapped[datetime | None] = mapped_column(default=None)
    next_probe_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None] = mapped_column(default=None)  # None while the pause lasts
    notified: Mapped[bool] = mapped_column(default=False)  # the director was told it appeared

    __table_args__ = (Index("uq_delivery_pauses_cause", "cause", unique=True),)


class Conversation(Base):
    """A half-filled command form; one per user, kept in the database so it survives restarts."""

    __tablename__ = "conversations"

    userid: Mapped[str] = mapped_column(String(64), primary_key=True)
    command: Mapped[str] = mapped_column(String(64))
    values: Mapped[dict[str, Any]]
    awaiting: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class TicketStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    DONE = "done"


class Ticket(Base):
    """A fault report (设备维修登记表 row)."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reporter: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=TicketStatus.OPEN)
    created_at: Mapped[datetime]
    source_event: Mapped[int | None] = mapped_column(
        BigId, _fk("inbound_events.id", "fk_tickets_source_event_inbound_events", "SET NULL"), default=None
    )
    campus: Mapped[str] = mapped_column(String(32), default="")
    unit: Mapped[str] = mapped_column(String(100), default="")  # 部门 at report time
    owner: Mapped[str | None] = mapped_column(String(64), default=None)  # 技术员
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    resolution: Mapped[str] = mapped_column(Text, default="")  # 处理说明
    damage: Mapped[bool] = mapped_column(default=False)  # 人为损坏: flagged for 追责
    deadline: Mapped[datetime | None] = mapped_column(default=None)  # SLA
    photos: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"items": [{media_id, pic_url, at}]}
    booking_id: Mapped[int | None] = mapped_column(  # opened from a stage booking
        BigId, _fk("bookings.id", "fk_tickets_booking_id_bookings", "SET NULL"), default=None
    )
    # The asset at fault (资产编号), when named. No foreign key: adding one to tickets would rebuild
    # the table on SQLite (nulling the keys that point at it), and assets are never deleted (报废).
    asset_id: Mapped[int | None] = mapped_column(BigId, index=True, default=None)
    # Waits with the SLA clock stopped (暂停 待配件): {"items": [{"from", "to" (None while paused),
    # "reason", "by"}]}; None when never paused.
    pauses: Mapped[dict[str, Any] | None] = mapped_column(default=None)


class Request(Base):
    """A request that goes through an approval chain (申请表 row); the chain is stored with it."""

    __tablename__ = "requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workflow: Mapped[str] = mapped_column(String(32))
    chain: Mapped[str] = mapped_column(String(64))
    requester: Mapped[str] = mapped_column(String(64))
    fields: Mapped[dict[str, Any]]
    flow: Mapped[dict[str, Any]]  # approval_engine.Flow.to_json(): resolved steps, decisions
    status: Mapped[str] = mapped_column(String(16))  # pending | approved | rejected | withdrawn
    stage: Mapped[str] = mapped_column(String(32), default="")  # after approval: the workflow's own
    confidential: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    step_started_at: Mapped[datetime]
    reminded_at: Mapped[datetime | None] = mapped_column(default=None)
    nudged_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_requests_status", "status"), Index("ix_requests_requester", "requester"))


class ApprovalAudit(Base):
    """Every decision or refused attempt: who, what, when, from which message or card."""

    __tablename__ = "approval_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        BigId, _fk("requests.id", "fk_approval_audit_request_id_requests", "RESTRICT"), index=True
    )
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    step: Mapped[int | None] = mapped_column(Integer, default=None)
    prev_status: Mapped[str] = mapped_column(String(16))
    new_status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(String(200))  # msg:<MsgId> | card:<TaskId> | timer:<id>
    at: Mapped[datetime]


class Card(Base):
    """One interactive card sent to one person; a disposable view of a stored request."""

    __tablename__ = "cards"

    task_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    subject: Mapped[str] = mapped_column(String(16), default="request", server_default="request")
    request_id: Mapped[int] = mapped_column(BigId, index=True)  # the id in `subject`'s table
    purpose: Mapped[str] = mapped_column(String(16))  # approve | fulfil
    step: Mapped[int] = mapped_column(Integer)
    userid: Mapped[str] = mapped_column(String(64))
    outbox_id: Mapped[int | None] = mapped_column(BigId, default=None)  # its message/send row
    send_code_used: Mapped[bool] = mapped_column(default=False)
    click_code: Mapped[str | None] = mapped_column(String(200), default=None)  # fresh, single use
    click_at: Mapped[datetime | None] = mapped_column(default=None)  # when click_code came (72 h life)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class Away(Base):
    """A person away for a period; their approval steps go to the substitute (设置代理)."""

    __tablename__ = "away"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    userid: Mapped[str] = mapped_column(String(64), index=True)
    substitute: Mapped[str] = mapped_column(String(64))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    created_at: Mapped[datetime]


class Timer(Base):
    """A future action kept in the database, so it survives restarts and fires once."""

    __tablename__ = "timers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str] = mapped_column(String(100))
    due_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]
    fired_at: Mapped[datetime | None] = mapped_column(default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_timers_due", "fired_at", "due_at"),
        Index("uq_timers_kind_ref_due", "kind", "ref", "due_at", unique=True),
    )


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    MISSED = "missed"  # not done by the deadline; the escalation role was told


class Task(Base):
    """Work someone must confirm by a deadline: one occurrence of a `[[duties]]` entry.

    What the duty asked for is stored with it (`spec`: result choices, checklist items, who is
    told when it is missed), like an approval chain is stored with its request, so editing the
    config never changes a task in flight. First to complete wins: a conditional update on
    `status`. `ticket_id` is the 报修 ticket an abnormal result opened (no foreign key: a
    cross-link, like `cards.request_id`).
    """

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    duty: Mapped[str] = mapped_column(String(64))  # the [[duties]] key
    title: Mapped[str] = mapped_column(String(200))
    occurrence_at: Mapped[datetime | None] = mapped_column(default=None)  # the duty's scheduled time
    assignees: Mapped[dict[str, Any]]  # {"users": [userid, ...]}, resolved when created
    spec: Mapped[dict[str, Any]]  # {"results", "abnormal", "checklist", "escalate_to", "fault_*"}
    deadline: Mapped[datetime]
    escalate_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.OPEN)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"choice": "异常", "note": "…"}
    checklist: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"ticked": {"0": userid, …}}
    done_by: Mapped[str | None] = mapped_column(String(64), default=None)
    done_at: Mapped[datetime | None] = mapped_column(default=None)
    ticket_id: Mapped[int | None] = mapped_column(BigId, default=None)
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("uq_tasks_duty_occurrence", "duty", "occurrence_at", unique=True),
        Index("ix_tasks_status", "status"),
    )


class FootageLog(Base):
    """监控调取登记表: a retrieval handed over (approved request, or police)."""

    __tablename__ = "footage_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int | None] = mapped_column(
        BigId, _fk("requests.id", "fk_footage_log_request_id_requests", "SET NULL"), default=None
    )
    police: Mapped[bool] = mapped_column(default=False)
    operator: Mapped[str] = mapped_column(String(64))
    retriever: Mapped[str] = mapped_column(String(100))  # 调取人
    retrieved_at: Mapped[str] = mapped_column(String(100))  # 时间 (as the operator logged it)
    content: Mapped[str] = mapped_column(Text)  # 内容
    delivery: Mapped[str] = mapped_column(String(100))  # 交付方式
    location: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class ComputerPurpose(StrEnum):
    """领取用途 (a requisition's `purpose` field and `computer_issues.purpose`)."""

    OFFICE = "office"  # 科室办公
    TEACHING = "teaching"  # 系部备课
    LOAN = "loan"  # 临时借用: has a return date


class ComputerIssue(Base):
    """计算机领取/发放登记表: computers issued against an approved requisition."""

    __tablename__ = "computer_issues"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        BigId, _fk("requests.id", "fk_computer_issues_request_id_requests", "RESTRICT"), unique=True
    )
    recipient: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(100))
    purpose: Mapped[str] = mapped_column(String(32))  # ComputerPurpose
    spec: Mapped[str] = mapped_column(Text)  # 计算机配置
    assets: Mapped[dict[str, Any]]  # {"numbers": [...]}
    issued_by: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime]
    due_back: Mapped[str | None] = mapped_column(String(10), default=None)  # YYYY-MM-DD for loans
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)  # 使用人签字
    returned_at: Mapped[datetime | None] = mapped_column(default=None)  # the last of them came back
    # What was issued (AssetKind): computers, projectors or speakers; the asset numbers are in `assets`.
    kind: Mapped[str] = mapped_column(String(16), server_default="computer")
    # The recipient's check at receipt (领取时检查硬软件的完好性): {"ok": bool, "items": [{"number",
    # "hardware": bool, "software": bool, "note", "ticket"}]} — items only for what has a problem.
    receipt: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # Each asset as it came back (归还/回收): {"items": [{"number", "at", "by", "damaged", "note", "ticket"}]}.
    returns: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    return_announced_at: Mapped[datetime | None] = mapped_column(default=None)  # the holder's 归还


class LoanDamage(Base):
    """An issued asset that came back damaged by a person (人为损坏): who held it, what happened, the
    amount (optional, set later), and whether it was accepted, refused (reported to 校委会) or paid.

    The row holds where it stands; every step is also an `approval_audit` row of the requisition."""

    __tablename__ = "loan_damages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    issue_id: Mapped[int] = mapped_column(
        BigId, _fk("computer_issues.id", "fk_loan_damages_issue_id_computer_issues", "RESTRICT")
    )
    asset_id: Mapped[int] = mapped_column(BigId, _fk("assets.id", "fk_loan_damages_asset_id_assets", "RESTRICT"))
    ticket_id: Mapped[int | None] = mapped_column(BigId, default=None)  # the repair ticket (no foreign key)
    liable_user: Mapped[str] = mapped_column(String(64))  # the holder (使用人)
    amount_cents: Mapped[int | None] = mapped_column(BigInteger, default=None)  # 照价赔偿, when known
    note: Mapped[str] = mapped_column(Text, default="")  # what happened
    status: Mapped[str] = mapped_column(String(16), default="open")  # DamageStatus
    answer_note: Mapped[str] = mapped_column(Text, default="")  # why they refused
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    recorded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_loan_damages_issue", "issue_id"),)


class BookingCondition(StrEnum):
    """设备运转情况 reported after the event."""

    NORMAL = "normal"  # 正常
    ABNORMAL = "abnormal"  # 异常: a ticket is opened
    DAMAGED = "damaged"  # 人为损坏: a ticket is opened and the liable party is to be recorded


class Booking(Base):
    """A stage/venue booking (舞台设备使用登记表 row); `holds` while pending or approved."""

    __tablename__ = "bookings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        BigId, _fk("requests.id", "fk_bookings_request_id_requests", "RESTRICT"), unique=True
    )
    venue: Mapped[str] = mapped_column(String(64))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    activity: Mapped[str] = mapped_column(String(200))
    outdoor: Mapped[bool] = mapped_column(default=False)
    offsite: Mapped[bool] = mapped_column(default=False)
    major: Mapped[bool] = mapped_column(default=False)
    holds: Mapped[bool] = mapped_column(default=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    checked_by: Mapped[str | None] = mapped_column(String(64), default=None)  # 重大活动 15-day check
    condition: Mapped[str | None] = mapped_column(String(16), default=None)  # BookingCondition
    condition_note: Mapped[str] = mapped_column(Text, default="")
    # tickets.booking_id points back here: use_alter breaks the cycle when sorting tables.
    ticket_id: Mapped[int | None] = mapped_column(
        BigId, _fk("tickets.id", "fk_bookings_ticket_id_tickets", "SET NULL", use_alter=True), default=None
    )

    __table_args__ = (Index("ix_bookings_venue_time", "venue", "holds", "start_at"),)


class VenueLock(Base):
    """One row per venue, locked while a booking for it is checked and written."""

    __tablename__ = "venue_locks"

    venue: Mapped[str] = mapped_column(String(64), primary_key=True)


class JobRun(Base):
    """One occurrence of a scheduled job, claimed before it runs: it fires once across processes."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(100))
    scheduled_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))  # done | missed | failed (schedules/jobs.py)
    ran_at: Mapped[datetime]

    __table_args__ = (Index("uq_job_runs_job_time", "job_id", "scheduled_at", unique=True),)


class AudioClass(Base):
    """A daily audio-class notice (音频课堂) for managed groups; pushed only once approved."""

    __tablename__ = "audio_classes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        BigId, _fk("requests.id", "fk_audio_classes_request_id_requests", "RESTRICT"), unique=True
    )
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD (local)
    class_time: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    speaker: Mapped[str] = mapped_column(String(100))
    link: Mapped[str] = mapped_column(String(500))
    groups: Mapped[dict[str, Any]]  # {"chats": [chat_id, ...]}
    pushed: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {chat_id: iso time}
    # 'audio' (an audio-class notice) or 'news' (a news link): both are pushed at the groups' time.
    # (Server default only, so rows written by code that predates it need not name it.)
    kind: Mapped[str] = mapped_column(String(16), server_default="audio")

    __table_args__ = (Index("ix_audio_classes_day", "day"),)


class GroupSendStatus(StrEnum):
    CREATING = "creating"  # the mass-send task is in the outbox
    WAITING = "waiting"  # WeCom asked the owner to confirm
    SENT = "sent"  # the owner confirmed and the group received it
    OVER_LIMIT = "over_limit"  # the group had its month's share of mass messages
    FAILED = "failed"  # WeCom refused the task or the group
    NOT_SENT = "not_sent"  # the owner never confirmed: reported, cancelled, not retried


class GroupSend(Base):
    """One enterprise mass-send task into a customer group (客户群), followed until it settles."""

    __tablename__ = "group_sends"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(64))
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD (local): the push it carries
    slot: Mapped[str] = mapped_column(String(5))  # HH:MM: the push time it carries
    status: Mapped[str] = mapped_column(String(16), default=GroupSendStatus.CREATING)
    msgid: Mapped[str | None] = mapped_column(String(64), default=None)
    # The outbox row of the latest call about this send (create, then each result query): its
    # `then` timer finds the send by it. Not a foreign key: sent rows are purged.
    call_id: Mapped[int | None] = mapped_column(BigId, default=None)
    items: Mapped[dict[str, Any]]  # {"ids": [audio_classes.id, ...]}
    reminders: Mapped[int] = mapped_column(Integer, default=0)  # WeCom's own reminders sent
    reminded_at: Mapped[datetime | None] = mapped_column(default=None)
    owner_told: Mapped[bool] = mapped_column(default=False)  # the 1:1 reminder after WeCom's three
    created_at: Mapped[datetime]
    settled_at: Mapped[datetime | None] = mapped_column(default=None)
    detail: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (
        Index("uq_group_sends_chat_day_slot", "chat_id", "day", "slot", unique=True),
        Index("ix_group_sends_status", "status"),
        Index("ix_group_sends_call_id", "call_id"),
    )


class DraftStatus(StrEnum):
    COLLECTING = "collecting"  # being written: photos attach to it
    IN_REVIEW = "in_review"  # text and photos with the reviewers
    REVISING = "revising"  # returned to the author
    COMMITTEE = "committee"  # has a phone number: waiting for the committee's approval
    EDITING = "editing"  # with the platform editors
    PUBLISHED = "published"  # on every platform
    ACCEPTED = "accepted"  # a kind of draft that is not published (a micro-lesson video): passed


class Draft(Base):
    """A news draft (投稿) for the website and the official account; every version is kept."""

    __tablename__ = "drafts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    author: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))  # DraftStatus
    version: Mapped[int] = mapped_column(Integer, default=1)  # the current version
    phone: Mapped[bool] = mapped_column(default=False)  # contains a phone number: committee must approve
    committee_request: Mapped[int | None] = mapped_column(
        BigId, _fk("requests.id", "fk_drafts_committee_request_requests", "SET NULL"), default=None
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # What the draft is, for the review engine (handlers/publishing.py DraftKind): "news" (投稿), or
    # "microlesson" (an external teacher's 微课 video). Server default only, like audio_classes.kind:
    # the code always names it.
    kind: Mapped[str] = mapped_column(String(16), server_default="news")


class DraftVersion(Base):
    __tablename__ = "draft_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    draft_id: Mapped[int] = mapped_column(BigId, _fk("drafts.id", "fk_draft_versions_draft_id_drafts", "RESTRICT"))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    photos: Mapped[dict[str, Any]]  # {"items": [{media_id, pic_url}]}
    text_review: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {status, by, comment, at}
    photo_review: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("uq_draft_versions", "draft_id", "version", unique=True),)


class Platform(StrEnum):
    WEBSITE = "website"  # 网站
    OA = "oa"  # 公众号 (the official account)


class Publication(Base):
    """A draft published on one platform, with its link and preview."""

    __tablename__ = "publications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    draft_id: Mapped[int] = mapped_column(BigId, _fk("drafts.id", "fk_publications_draft_id_drafts", "RESTRICT"))
    platform: Mapped[str] = mapped_column(String(16))  # Platform
    link: Mapped[str] = mapped_column(String(500))
    editor: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime]

    __table_args__ = (
        Index("uq_publications", "draft_id", "platform", unique=True),
        Index("ix_publications_time", "platform", "published_at"),
    )


class MediaStatus(StrEnum):
    PENDING = "pending"  # recorded with its message; the outbox fetches it (media/get)
    KEPT = "kept"  # the bytes are in `content`
    FAILED = "failed"  # WeCom no longer had it (temporary media live 3 days) or refused it


class MediaFile(Base):
    """A photo or file a member sent, kept past the 3 days WeCom keeps temporary media (doc 96484).

    The bytes live in the database, not under a data directory: replicas share the database but
    not a disk, the backup (bot/backup.py) already covers it, and photos are small (WeCom takes
    images up to 10 MB, files up to 20 MB). `content` is deferred and raises if touched by
    accident: only the dispatcher reads it, explicitly.
    """

    __tablename__ = "media_files"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    media_id: Mapped[str] = mapped_column(String(256))  # the inbound MediaId (valid 3 days)
    kind: Mapped[str] = mapped_column(String(8))  # image | file
    owner: Mapped[str] = mapped_column(String(64))  # who sent it
    subject: Mapped[str] = mapped_column(String(32))  # what it belongs to: 'ticket:<id>', 'draft:<id>'
    status: Mapped[str] = mapped_column(String(16), default=MediaStatus.PENDING)
    filename: Mapped[str] = mapped_column(String(255), default="")
    content_type: Mapped[str] = mapped_column(String(100), default="")
    content: Mapped[bytes | None] = mapped_column(LargeBinary, default=None, deferred=True, deferred_raiseload=True)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    size: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime]
    fetched_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # The outbox row that fetches it: its `then` timer finds the file by it (sent rows are purged).
    fetch_call_id: Mapped[int | None] = mapped_column(BigId, default=None)
    # The latest media/upload of it and WeCom's created_at: reused until it nears its 3 days.
    upload_media_id: Mapped[str | None] = mapped_column(String(256), default=None)
    uploaded_at: Mapped[datetime | None] = mapped_column(default=None)
    # The latest stage whose judges were sent it (e.g. 'review:2'), so it goes to them once.
    shown: Mapped[str | None] = mapped_column(String(32), default=None)

    __table_args__ = (
        Index("ix_media_files_subject", "subject"),
        Index("ix_media_files_fetch_call_id", "fetch_call_id"),
    )


class DirectoryMember(Base):
    """A member as WeCom's directory (通讯录) last listed them (bot/directory.py)."""

    __tablename__ = "directory_members"

    userid: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    departments: Mapped[dict[str, Any]]  # {"names": [department name, ...]}, the main one first
    tags: Mapped[dict[str, Any]]  # {"names": [tag name, ...]}
    active: Mapped[bool] = mapped_column(default=True)  # listed and enabled at the latest sync
    synced_at: Mapped[datetime]
    left_at: Mapped[datetime | None] = mapped_column(default=None)


class ShiftEntryKind(StrEnum):
    START = "start"  # 接班
    END = "end"  # 交班, with the handover note


class CctvShiftEntry(Base):
    """One line of a CCTV room's 值班记录 / 交接班记录 (监控室管理制度 四: 不得涂改、缺页).

    Append-only: nothing ever updates or deletes a row. A shift is a START row and the END row
    that names it (`shift_id`); a correction is a new row of the same kind naming the row it
    corrects (`corrects_id`), and a listing shows the old one as corrected. The room is the
    operator's campus's CCTV room (`campus`). `operator` is whose shift it is, `recorded_by` who
    typed it: they differ when an operator taking over closes a shift its holder never closed.
    """

    __tablename__ = "cctv_shift_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # ShiftEntryKind
    campus: Mapped[str] = mapped_column(String(32))
    operator: Mapped[str] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]  # when the shift started or ended
    note: Mapped[str] = mapped_column(Text, default="")  # the handover note (END), or a remark
    # References within the table (no foreign key: rows are never deleted, and the other tables'
    # keys are listed and seeded one by one in tests/test_migrations.py).
    shift_id: Mapped[int | None] = mapped_column(BigId, default=None)  # END: the START it closes
    corrects_id: Mapped[int | None] = mapped_column(BigId, default=None)  # the row this one corrects
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_cctv_shift_entries_campus_at", "campus", "at"),
        Index("ix_cctv_shift_entries_shift_id", "shift_id"),
        Index("ix_cctv_shift_entries_corrects_id", "corrects_id"),
    )


class IncidentKind(StrEnum):
    """What preserved footage shows (监控室管理制度 九)."""

    FIGHT = "fight"  # 打架、斗殴
    THEFT = "theft"  # 盗窃
    FIRE = "fire"  # 火险
    TRAFFIC = "traffic"  # 交通事故
    EMERGENCY = "emergency"  # 突发事件
    OTHER = "other"  # 其它有价值的监控资料


class KeptFootage(Base):
    """留存录像: incident footage an operator saved from being overwritten, and where it is kept.

    Append-only like the shift log: a correction is a whole new row (the old values with the
    corrected ones) naming the row it corrects (`corrects_id`).
    """

    __tablename__ = "kept_footage"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # IncidentKind
    what: Mapped[str] = mapped_column(Text)  # 事件
    location: Mapped[str] = mapped_column(String(200))  # 地点 / camera
    start_at: Mapped[datetime]  # the footage's time range
    end_at: Mapped[datetime]
    storage: Mapped[str] = mapped_column(String(300))  # 存放位置: disk, NAS path, disc
    campus: Mapped[str] = mapped_column(String(32))  # the operator's campus (its CCTV room)
    operator: Mapped[str] = mapped_column(String(64))
    corrects_id: Mapped[int | None] = mapped_column(BigId, default=None)  # the row this one corrects
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_kept_footage_created_at", "created_at"),
        Index("ix_kept_footage_corrects_id", "corrects_id"),
    )


class AppendOnlyError(Exception):
    """An attempt to change or delete a row of an append-only record (write a correction instead)."""


def _append_only(mapper: Any, connection: Any, target: Base) -> None:
    raise AppendOnlyError(f"{type(target).__name__} is append-only: write a correction that names the old row")


# 不得涂改、缺页: the ORM refuses to update or delete a row of these, whatever code asks it to.
for _model in (CctvShiftEntry, KeptFootage):
    event.listen(_model, "before_update", _append_only)
    event.listen(_model, "before_delete", _append_only)


class TrainingKind(StrEnum):
    """A session of the digital-campus training of one platform module (W8)."""

    TRAINING = "training"  # 全面培训
    TUTORING = "tutoring"  # 个人辅导, for those who still need it
    EXAM = "exam"  # 考核
    MAKEUP = "makeup"  # 补考


class TrainingSession(Base):
    """A published training, tutoring, exam or make-up session: who, when, where."""

    __tablename__ = "training_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    module: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime]
    place: Mapped[str] = mapped_column(String(200))
    trainees: Mapped[dict[str, Any]]  # {"users": [userid, ...]}
    published_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_training_sessions_module", "module"),)


class AttendanceReply(StrEnum):
    PENDING = "pending"
    ATTEND = "attend"  # 参加
    LEAVE = "leave"  # 请假 (with a reason)


class TrainingAttendance(Base):
    """One person on one session: their answer to the notice, and whether they came (签到)."""

    __tablename__ = "training_attendance"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(BigId)  # training_sessions.id
    userid: Mapped[str] = mapped_column(String(64))
    reply: Mapped[str] = mapped_column(String(16), default=AttendanceReply.PENDING)
    reason: Mapped[str] = mapped_column(Text, default="")
    replied_at: Mapped[datetime | None] = mapped_column(default=None)
    present: Mapped[bool] = mapped_column(default=False)
    signed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    signed_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("uq_training_attendance_session_user", "session_id", "userid", unique=True),)


class TrainingScore(Base):
    """A person's exam result for a module: attempt 1 the exam, 2 the make-up (theory + practical)."""

    __tablename__ = "training_scores"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    module: Mapped[str] = mapped_column(String(100))
    userid: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    theory: Mapped[float] = mapped_column(Float)
    practical: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool]
    entered_by: Mapped[str] = mapped_column(String(64))
    entered_at: Mapped[datetime]

    __table_args__ = (Index("uq_training_scores_module_user_attempt", "module", "userid", "attempt", unique=True),)


class ReportStatus(StrEnum):
    PENDING = "pending"  # waiting for the director
    SENT = "sent"  # approved and sent to 人资部
    RETURNED = "returned"  # the director sent it back


class TrainingReport(Base):
    """The list for 人资部 of those who failed the make-up or missed both exams of a module, as an
    .xlsx (`media_file_id`) the director approves before it is sent."""

    __tablename__ = "training_reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    module: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=ReportStatus.PENDING)
    listed: Mapped[dict[str, Any]]  # {"rows": [{"userid", "reason"}, ...]}
    media_file_id: Mapped[int | None] = mapped_column(BigId, default=None)  # media_files.id
    requested_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)


class PlatformUsage(Base):
    """What the center found checking one unit's use of a platform module (使用情况)."""

    __tablename__ = "platform_usage"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    module: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime]


class ActivityStatus(StrEnum):
    """`activity_bookings.status` (活动服务, W9)."""

    WAITING = "waiting"  # nobody in the team was free: the director assigns someone (指派)
    ASSIGNED = "assigned"  # a member of the 微课视频编辑部 will photograph / film it
    DELIVERED = "delivered"  # the material is archived (交付) where `delivery_place` says
    CANCELLED = "cancelled"  # withdrawn by the requester


class ActivityService(StrEnum):
    PHOTO = "photo"  # 拍照
    VIDEO = "video"  # 摄像
    BOTH = "both"  # 拍照和摄像


class ActivityBooking(Base):
    """A request to photograph or film an activity (活动服务登记表 row).

    `assignee` holds the slot while assigned: a member is never assigned two overlapping
    activities by the bot (the director may, knowingly). `archive_task_id` is the monthly archive
    task (`tasks`) that listed it once delivered (no foreign key: a cross-link, like
    `tasks.ticket_id`).
    """

    __tablename__ = "activity_bookings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    requester: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(100), default="")  # 申请单位, as it was when requested
    activity: Mapped[str] = mapped_column(String(200))
    location: Mapped[str] = mapped_column(String(200))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    service: Mapped[str] = mapped_column(String(16))  # ActivityService
    contact: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=ActivityStatus.WAITING)
    assignee: Mapped[str | None] = mapped_column(String(64), default=None)
    assigned_by: Mapped[str | None] = mapped_column(String(64), default=None)  # the director, when they chose
    assigned_at: Mapped[datetime | None] = mapped_column(default=None)
    delivery_place: Mapped[str] = mapped_column(Text, default="")  # 存放位置: a path or a 网盘 link
    photos: Mapped[int | None] = mapped_column(Integer, default=None)
    videos: Mapped[int | None] = mapped_column(Integer, default=None)
    delivery_note: Mapped[str] = mapped_column(Text, default="")
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    archive_task_id: Mapped[int | None] = mapped_column(BigId, default=None)
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_activity_bookings_assignee_time", "assignee", "status", "start_at"),
        Index("ix_activity_bookings_start", "start_at"),
    )


class StageCrew(Base):
    """The stage technician (专业人员) on duty for an approved booking, and the closing checklist
    they confirm after the event. The checklist is copied from the config when the booking is
    approved, like an approval chain, so editing the config never changes a booking in flight.
    First to claim wins: a conditional update on `technician`."""

    __tablename__ = "stage_crews"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    booking_id: Mapped[int] = mapped_column(
        BigId, _fk("bookings.id", "fk_stage_crews_booking_id_bookings", "RESTRICT"), unique=True
    )
    technician: Mapped[str | None] = mapped_column(String(64), default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    checklist: Mapped[dict[str, Any]]  # {"items": [话筒电池取出, …]}
    ticked: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"ticked": {"0": userid, …}}
    closed_by: Mapped[str | None] = mapped_column(String(64), default=None)  # confirmed the checklist
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    missed: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"items": [not done at confirmation]}
    created_at: Mapped[datetime]


class DamageStatus(StrEnum):
    """Where a 照价赔偿 stands (礼堂(舞台)设备管理制度 八)."""

    OPEN = "open"  # the liable party was told; no answer yet
    ACCEPTED = "accepted"  # they accept to pay
    REFUSED = "refused"  # they refuse: reported to 校委会


class StageDamage(Base):
    """Damage to stage equipment caused by a person: who is liable, how much, whether it was paid.

    The row holds the current state; every step (recorded, accepted, refused, paid) is also an
    `approval_audit` row of the booking's request, which is never edited: that is the history."""

    __tablename__ = "stage_damages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    booking_id: Mapped[int] = mapped_column(
        BigId, _fk("bookings.id", "fk_stage_damages_booking_id_bookings", "RESTRICT"), unique=True
    )
    liable_user: Mapped[str | None] = mapped_column(String(64), default=None)  # a person …
    liable_unit: Mapped[str | None] = mapped_column(String(64), default=None)  # … or a unit (its key)
    answerer: Mapped[str] = mapped_column(String(64))  # who accepts or refuses (the person, or the unit's head)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=DamageStatus.OPEN)
    answer_note: Mapped[str] = mapped_column(Text, default="")  # why they refused
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    recorded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class MicroLessonStage(StrEnum):
    """Where a micro-lesson (微课) stands; from RECORDED on, the production stages in order."""

    PLANNED = "planned"  # in the published recording plan
    REVIEWING = "reviewing"  # an external teacher's video with the reviewers
    REDO = "redo"  # the video was returned: to be recorded again (重录)
    RECORDED = "recorded"  # 已录制 (an external video: passed the review)
    EDITED = "edited"  # 已剪辑
    CONVERTED = "converted"  # 已转换格式
    UPLOADED = "uploaded"  # 已上传 to the 网校, with its category
    CANCELLED = "cancelled"


class MicroLesson(Base):
    """A micro-lesson (微课录制情况登记表 row): a planned recording, or an external teacher's video.

    `draft_id` is the draft the review engine (handlers/publishing.py) keeps an external video's
    versions and reviews in; a cross-link without a foreign key, like `tasks.ticket_id`.
    """

    __tablename__ = "micro_lessons"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    teacher: Mapped[str] = mapped_column(String(64))  # a member's userid; "" for an external teacher
    teacher_name: Mapped[str] = mapped_column(String(100))
    external: Mapped[bool] = mapped_column(default=False)  # 校外教师
    course: Mapped[str] = mapped_column(String(100))
    topic: Mapped[str] = mapped_column(String(200))
    room: Mapped[str] = mapped_column(String(100), default="")  # 地点
    start_at: Mapped[datetime | None] = mapped_column(default=None)  # the recording slot
    end_at: Mapped[datetime | None] = mapped_column(default=None)
    stage: Mapped[str] = mapped_column(String(16))  # MicroLessonStage
    planner: Mapped[str] = mapped_column(String(64))  # who planned or registered it
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)  # the teacher's 收到
    draft_id: Mapped[int | None] = mapped_column(BigId, default=None)
    recorded_at: Mapped[datetime | None] = mapped_column(default=None)
    edited_at: Mapped[datetime | None] = mapped_column(default=None)
    converted_at: Mapped[datetime | None] = mapped_column(default=None)
    uploaded_at: Mapped[datetime | None] = mapped_column(default=None)
    category: Mapped[str] = mapped_column(String(100), default="")  # 网校分类
    link: Mapped[str] = mapped_column(String(500), default="")  # the video (external) or the lesson online
    note: Mapped[str] = mapped_column(Text, default="")  # 备注
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_micro_lessons_room_time", "room", "start_at"),
        Index("ix_micro_lessons_teacher_time", "teacher", "start_at"),
        Index("ix_micro_lessons_draft_id", "draft_id"),
    )


class MicroLessonClicks(Base):
    """点击量 and 评论 of an uploaded micro-lesson as entered: the 网校's running total at `at`."""

    __tablename__ = "micro_lesson_clicks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lesson_id: Mapped[int] = mapped_column(BigId)  # micro_lessons.id (no foreign key, see MicroLesson)
    clicks: Mapped[int] = mapped_column(Integer)
    comments: Mapped[str] = mapped_column(Text, default="")
    entered_by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]

    __table_args__ = (Index("ix_micro_lesson_clicks_lesson", "lesson_id", "at"),)


class AssetKind(StrEnum):
    """What an asset is (资产类别)."""

    COMPUTER = "computer"  # 计算机
    PROJECTOR = "projector"  # 投影仪
    SPEAKER = "speaker"  # 音响
    OTHER = "other"  # 其它


class AssetState(StrEnum):
    """Where an asset stands in its life (资产状态)."""

    IN_USE = "in_use"  # 在用: installed in a room or issued to a unit for good
    IN_STORE = "in_store"  # 在库
    LENT = "lent"  # 借出: issued against a requisition, to come back
    REPAIR = "repair"  # 维修中: an open fault ticket names it
    RETIRED = "retired"  # 报废


class Asset(Base):
    """One numbered asset of the center (计算机、投影仪、音响…编号登记).

    The row holds the asset's present facts; every change to them is an `AssetEvent` written in
    the same transaction (handlers/asset_store.py is the one place that changes an asset).
    """

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)  # 资产编号, as printed on the label
    kind: Mapped[str] = mapped_column(String(16))  # AssetKind
    model: Mapped[str] = mapped_column(String(200), default="")  # 型号/配置
    campus: Mapped[str] = mapped_column(String(32), default="")
    location: Mapped[str] = mapped_column(String(200), default="")  # 存放地点: room, lab seat
    unit: Mapped[str] = mapped_column(String(100), default="")  # 使用部门
    holder: Mapped[str | None] = mapped_column(String(64), default=None)  # 使用人 (userid)
    state: Mapped[str] = mapped_column(String(16), default=AssetState.IN_STORE)  # AssetState
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_assets_campus_location", "campus", "location"),
        Index("ix_assets_holder", "holder"),
    )


class AssetEvent(Base):
    """One change in an asset's history (imported, issued, returned, under repair, moved, …).

    Append-only: the history is the asset's record, so nothing updates or deletes a row. `ref`
    names the record that caused it ("request:12", "ticket:7", "inventory:3"); `before`/`after`
    hold the changed fields' old and new values.
    """

    __tablename__ = "asset_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    asset_id: Mapped[int] = mapped_column(BigId, _fk("assets.id", "fk_asset_events_asset_id_assets", "RESTRICT"))
    kind: Mapped[str] = mapped_column(String(32))  # asset_store.EventKind
    actor: Mapped[str] = mapped_column(String(64))  # userid, or "system" / "import"
    at: Mapped[datetime]
    before: Mapped[dict[str, Any]]
    after: Mapped[dict[str, Any]]
    note: Mapped[str] = mapped_column(Text, default="")
    ref: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (Index("ix_asset_events_asset_at", "asset_id", "at"), Index("ix_asset_events_ref", "ref"))


event.listen(AssetEvent, "before_update", _append_only)
event.listen(AssetEvent, "before_delete", _append_only)


class InventoryStatus(StrEnum):
    """An inventory round (财产盘查) is open until 结束盘点 or its last item is checked."""

    OPEN = "open"
    CLOSED = "closed"


class InventoryResult(StrEnum):
    """What the technicians found of one asset in a round ("" while unchecked)."""

    UNCHECKED = ""
    FOUND = "found"  # 在: where it was expected
    MISSING = "missing"  # 缺: not found
    MOVED = "moved"  # 移: found elsewhere (the asset is relocated)


class InventoryRound(Base):
    """One inventory round of a campus (财产盘查, twice a year): the assets expected there, by room."""

    __tablename__ = "inventory_rounds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campus: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=InventoryStatus.OPEN)  # InventoryStatus
    started_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    ended_by: Mapped[str | None] = mapped_column(String(64), default=None)  # "system": the last item
    ended_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_inventory_rounds_campus_status", "campus", "status"),)


class InventoryItem(Base):
    """One asset of a round's checklist: where it was expected (the snapshot) and what was found."""

    __tablename__ = "inventory_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    round_id: Mapped[int] = mapped_column(
        BigId, _fk("inventory_rounds.id", "fk_inventory_items_round_id_inventory_rounds", "RESTRICT")
    )
    asset_id: Mapped[int] = mapped_column(BigId, _fk("assets.id", "fk_inventory_items_asset_id_assets", "RESTRICT"))
    number: Mapped[str] = mapped_column(String(32))  # the asset's number, as at the snapshot
    location: Mapped[str] = mapped_column(String(200), default="")  # where it was expected (the room)
    result: Mapped[str] = mapped_column(String(16), default=InventoryResult.UNCHECKED)  # InventoryResult
    found_at: Mapped[str] = mapped_column(String(200), default="")  # 移: where it was found
    extra: Mapped[bool] = mapped_column(default=False)  # not expected at this campus, found here
    checked_by: Mapped[str | None] = mapped_column(String(64), default=None)
    checked_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_inventory_items_round_location", "round_id", "location"),
        Index("uq_inventory_items_round_asset", "round_id", "asset_id", unique=True),
    )


# -- computer rooms (微机室, issue 14 point 4) ---------------------------------------------------
class SeatCondition(StrEnum):
    """设备运转情况 of a seat or of a whole lesson."""

    NORMAL = "normal"  # 正常
    ABNORMAL = "abnormal"  # 异常: a seat's opens a fault ticket for its computer


class LabLessonRecord(Base):
    """微机室使用登记表: one lab lesson as the teacher registered it (上机登记), one row per lesson.

    Its seats (上机情况登记表) are `LabSeat` rows. `starts_at`/`ends_at` are the lesson period's
    times on that day; a room holds one registration per lesson (unique room + start).
    """

    __tablename__ = "lab_lessons"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    room: Mapped[str] = mapped_column(String(40))  # [[computer_rooms]] name
    campus: Mapped[str] = mapped_column(String(32))
    period: Mapped[int] = mapped_column(Integer)  # 第几节
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    class_name: Mapped[str] = mapped_column(String(60))  # 班级
    teacher: Mapped[str] = mapped_column(String(64))  # 授课教师 (userid)
    recorded_by: Mapped[str] = mapped_column(String(64))
    headcount: Mapped[int] = mapped_column(Integer)  # 上课人数 (seats used)
    module: Mapped[str] = mapped_column(String(200), default="")  # 课堂训练模块
    situation: Mapped[str] = mapped_column(Text, default="")  # 课堂情况
    condition: Mapped[str] = mapped_column(String(16))  # SeatCondition: 设备运转情况 of the lesson
    scheduled: Mapped[bool] = mapped_column(default=True)  # on the room's timetable
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("uq_lab_lessons_room_start", "room", "starts_at", unique=True),
        Index("ix_lab_lessons_starts_at", "starts_at"),
    )


class LabSeat(Base):
    """上机情况登记表: one seat in one registered lab lesson."""

    __tablename__ = "lab_seats"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lesson_id: Mapped[int] = mapped_column(
        BigId, _fk("lab_lessons.id", "fk_lab_seats_lesson_id_lab_lessons", "RESTRICT")
    )
    seat: Mapped[int] = mapped_column(Integer)  # 机位
    user_name: Mapped[str] = mapped_column(String(60), default="")  # 使用人姓名, when given
    condition: Mapped[str] = mapped_column(String(16))  # SeatCondition
    problem: Mapped[str] = mapped_column(Text, default="")  # what was wrong (备注)
    ticket_id: Mapped[int | None] = mapped_column(BigId, default=None)  # the ticket 异常 opened (cross-link)

    __table_args__ = (Index("uq_lab_seats_lesson_seat", "lesson_id", "seat", unique=True),)


class LabViolation(Base):
    """微机室违纪情况登记表: one violation in a lab lesson (违纪登记)."""

    __tablename__ = "lab_violations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    room: Mapped[str] = mapped_column(String(40))
    campus: Mapped[str] = mapped_column(String(32))
    period: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime]  # the lesson's start (时间)
    class_name: Mapped[str] = mapped_column(String(60))
    teacher: Mapped[str] = mapped_column(String(64))  # 授课教师
    student: Mapped[str] = mapped_column(String(60))  # 学生姓名
    seat: Mapped[int | None] = mapped_column(Integer, default=None)
    reason: Mapped[str] = mapped_column(Text)  # 违纪原因
    outcome: Mapped[str] = mapped_column(Text, default="")  # 量化结果及处理办法
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_lab_violations_starts_at", "starts_at"),)


class PermitKind(StrEnum):
    VISITOR = "visitor"  # 外来人员进入机房 (微机室管理制度 一)
    USB = "usb"  # U盘等外置存储带入 (微机室管理制度 五)


class PermitStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


class LabPermit(Base):
    """A request the room administrator decides: a visitor in the room, or a USB drive brought in."""

    __tablename__ = "lab_permits"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # PermitKind
    room: Mapped[str] = mapped_column(String(40))
    campus: Mapped[str] = mapped_column(String(32))
    applicant: Mapped[str] = mapped_column(String(64))  # userid
    visitor: Mapped[str] = mapped_column(String(60), default="")  # 外来人员姓名
    reason: Mapped[str] = mapped_column(Text)  # 事由
    status: Mapped[str] = mapped_column(String(16), default=PermitStatus.PENDING)
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_lab_permits_created_at", "created_at"),)


class ClickPlatform(StrEnum):
    """Where the click counts come from (微信/网站点击情况)."""

    WEBSITE = "website"  # 学校网站: 浏览量, 访客
    OFFICIAL_ACCOUNT = "official_account"  # 微信公众号: 阅读, 阅读人数, 新增关注


class ClickStat(Base):
    """One platform's counts for one week or month as platform staff entered them (点击统计).

    Append-only: a count re-entered for the same platform and period is a new row whose
    `corrects_id` names the one it supersedes; the register shows both, the old one as corrected.
    """

    __tablename__ = "click_stats"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(32))  # ClickPlatform
    period: Mapped[str] = mapped_column(String(16))  # 2026-11 (a month) | 2026-W48 (an ISO week)
    start: Mapped[str] = mapped_column(String(10))  # the period's first day, YYYY-MM-DD
    end: Mapped[str] = mapped_column(String(10))  # its last day
    views: Mapped[int] = mapped_column(Integer)  # 浏览量 / 阅读量
    visitors: Mapped[int | None] = mapped_column(Integer, default=None)  # 访客 / 阅读人数
    followers: Mapped[int | None] = mapped_column(Integer, default=None)  # 新增关注
    campus: Mapped[str] = mapped_column(String(32), default="")  # the recorder's campus
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime]
    corrects_id: Mapped[int | None] = mapped_column(BigId, default=None)  # click_stats.id it supersedes

    __table_args__ = (Index("ix_click_stats_platform_period", "platform", "period"),)


class RegisterEntry(Base):
    """One row of a register's hash chain (handlers/registers.py): what the register showed for a
    record when it was written or changed. Never updated: a changed record appends an entry whose
    `corrects_seq` names the previous one; `hash` = sha256(prev_hash + the entry's canonical JSON)."""

    __tablename__ = "register_ledger"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    register: Mapped[str] = mapped_column(String(32))  # the register's key (repairs)
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, … per register
    ref: Mapped[str] = mapped_column(String(64))  # the record: ticket:12
    payload: Mapped[str] = mapped_column(Text)  # the row's cells as canonical JSON; "null": no row any more
    corrects_seq: Mapped[int | None] = mapped_column(Integer, default=None)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("register", "seq", name="uq_register_ledger_register_seq"),
        Index("ix_register_ledger_ref", "register", "ref"),
    )


for _ledger_model in (ClickStat, RegisterEntry):
    event.listen(_ledger_model, "before_update", _append_only)
    event.listen(_ledger_model, "before_delete", _append_only)
