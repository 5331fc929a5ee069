"""The numbers people type for tickets (报修), requests (申请), drafts (稿件) and tasks (任务).

Each kind keeps its own sequence, so a number may carry its kind, written either way:
`#B12` or `报修 #12`, `#S7` or `申请 #7`, `#G3` or `稿件 #3`, `#T3` or `任务 #3` (the letter: B for
报修, S for 申请, G for 稿件, T for 任务, a duty's occurrence; the CCTV room's records: Z for
值班记录, L for 留存录像; W for 微课, H for 活动服务). A command about one kind (接单, 同意,
通过 …) takes that kind's number and refuses another kind's; 进度 takes any, and without a kind
finds what the asker may see among the first three (tasks: `我的任务`).
Every text shows the kind with the number: "报修 #12", "申请 #7", "稿件 #3". Typed in order
after a command, the kind word belongs to the number and what follows is the next field:
`同意 申请 #7 好` is request 7 with the comment 好.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bot.context import Ctx
from bot.router import Field, FieldError
from handlers.labels import Labels


class Kind(StrEnum):
    """What a number counts; the value is the letter people may type before it."""

    TICKET = "B"  # 报修
    REQUEST = "S"  # 申请 (footage, computers, stage, audio class, committee)
    DRAFT = "G"  # 稿件
    TASK = "T"  # 任务 (a duty's occurrence)
    SHIFT = "Z"  # 值班记录 (a line of the CCTV room's shift log)
    KEPT = "L"  # 留存录像 (incident footage the CCTV room preserved)
    MICROLESSON = "W"  # 微课 (a planned recording or an external teacher's video)
    ACTIVITY = "H"  # 活动服务 (photographing / filming an activity)


# The words for each kind people may write before a number (normalised: Simplified, lower case).
KIND_WORDS: dict[Kind, tuple[str, ...]] = {
    Kind.TICKET: ("报修单", "报修", "工单", "ticket", "repair"),
    Kind.REQUEST: ("申请单", "申请", "审批", "request"),
    Kind.DRAFT: ("稿件", "投稿", "稿", "draft"),
    Kind.TASK: ("任务", "task"),
    Kind.SHIFT: ("值班记录", "交接班记录", "值班", "shift"),
    Kind.KEPT: ("留存录像", "留存记录", "留存", "kept"),
    Kind.MICROLESSON: ("微课", "microlesson"),
    Kind.ACTIVITY: ("活动服务", "活动", "activity"),
}
CCTV_KINDS = (Kind.SHIFT, Kind.KEPT)
KIND_LABELS = Labels("labels_approvals", kind=[Kind.TICKET, Kind.REQUEST, Kind.DRAFT])  # kind_B → 报修 …
TASK_LABELS = Labels("labels_duties", kind=[Kind.TASK])  # kind_T → 任务: the duties' own word
CCTV_LABELS = Labels("labels_cctv_room", kind=CCTV_KINDS)  # kind_Z → 值班记录: the CCTV room's words
MICROLESSON_LABELS = Labels("labels_microlessons", kind=[Kind.MICROLESSON])  # kind_W → 微课
ACTIVITY_LABELS = Labels("labels_activity", kind=[Kind.ACTIVITY])  # kind_H → 活动服务

_WORD_KIND = {w: k for k, words in KIND_WORDS.items() for w in words}
_LETTERS = "".join(k.value.lower() for k in Kind)
_WORDS = "|".join(re.escape(w) for w in sorted(_WORD_KIND, key=len, reverse=True))
REF_RE = re.compile(
    rf"(?:(?P<word>{_WORDS})\s*)?(?:编号|编號|no\.?|number)?\s*#?\s*(?P<letter>[{_LETTERS}])?\s*(?P<number>\d{{1,12}})",
    re.IGNORECASE,
)
NUMBER_LABELS = ("编号", "編號", "number", "no")


@dataclass(frozen=True)
class Ref:
    """A number as typed: its kind when one was given, and the number."""

    kind: Kind | None
    number: int

    def __str__(self) -> str:
        return f"{self.kind.value if self.kind else ''}{self.number}"


def parse_ref(text: str) -> Ref:
    """`#12`, `12`, `#B12`, `b12`, `报修 #12`, `申请#7`, `稿件 3` → a Ref; FieldError otherwise."""
    m = REF_RE.fullmatch(text.strip())
    if m is None:
        raise FieldError("invalid_number")
    by_word = _WORD_KIND.get(m.group("word").lower()) if m.group("word") else None
    by_letter = Kind(m.group("letter").upper()) if m.group("letter") else None
    if by_word and by_letter and by_word is not by_letter:
        raise FieldError("invalid_number")
    return Ref(by_word or by_letter, int(m.group("number")))


def take_ref(text: str) -> tuple[str, str] | None:
    """The number at the start of positional input, kind word included, and what follows it:
    `申请 #7 好` → (`申请 #7`, ` 好`), `#S7，好` → (`#S7`, `，好`); None if it starts with none."""
    m = REF_RE.match(text)
    if m is None or re.match(r"\w", text[m.end() :]):  # `7号楼`: a word, not a number
        return None
    return text[: m.end()], text[m.end() :]


def names_kind(text: str, kind: Kind) -> bool:
    """Whether `text` begins with a number of `kind` (`#T3 正常`, `任务 3`)."""
    taken = take_ref(text.strip())
    if taken is None:
        return False
    try:
        return parse_ref(taken[0]).kind is kind
    except FieldError:
        return False


def kind_name(ctx: Ctx, kind: Kind) -> str:
    labels = {
        Kind.TASK: TASK_LABELS,
        Kind.MICROLESSON: MICROLESSON_LABELS,
        Kind.ACTIVITY: ACTIVITY_LABELS,
    }.get(kind, CCTV_LABELS if kind in CCTV_KINDS else KIND_LABELS)
    return labels.name(ctx, "kind", kind)


def show_ref(ctx: Ctx, kind: Kind, number: int | str) -> str:
    """报修 #12"""
    return f"{kind_name(ctx, kind)} #{number}"


def number_field(kind: Kind | None, required: bool = True) -> Field:
    """The number of one kind (its digits are the value), or of any kind (`B12`, `12`)."""

    def parse(value: str, ctx: Ctx) -> str:
        ref = parse_ref(value)
        if kind is None:
            return str(ref)
        if ref.kind is not None and ref.kind is not kind:
            raise FieldError(
                "invalid_number_kind", given=kind_name(ctx, ref.kind), expected=kind_name(ctx, kind), number=ref.number
            )
        return str(ref.number)

    def show(value: str, ctx: Ctx) -> str:
        ref = parse_ref(value)
        shown = ref.kind or kind
        return show_ref(ctx, shown, ref.number) if shown else f"#{ref.number}"

    return Field("number", NUMBER_LABELS, required=required, parse=parse, show=show, take=take_ref)


TICKET_NUMBER = number_field(Kind.TICKET)
REQUEST_NUMBER = number_field(Kind.REQUEST)
DRAFT_NUMBER = number_field(Kind.DRAFT)
TASK_NUMBER = number_field(Kind.TASK)
ANY_NUMBER = number_field(None, required=False)
