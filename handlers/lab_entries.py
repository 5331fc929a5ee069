"""What a teacher types to register a lab lesson or a violation, read into plain values.

`上机登记 微机室1 第3节 24级计算机应用1班 座位1-40 正常 12号异常 键盘失灵 模块:Word排版`
`违纪登记 微机室1 第3节 张三 15号 玩游戏 处理:扣2分`

Words are separated by spaces (or ，、；). The room, 第N节, the class, 座位a-b, 正常/异常 come in any
order; each `N号异常 …` takes the words after it (up to the next one) as what is wrong; labelled
parts (`模块:` `情况:` `备注:` `姓名:` / `处理:`) come last. This module only reads the words; what
they must name (a room of the config, a lesson of the bell schedule, a known class, seats of the
room) is checked by handlers/computer_room.py, which owns the texts.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from bot.timeparse import cn_number

SEPARATORS = " \t\n，、；,;"
LESSON_RE = re.compile(
    r"^(?:第\s*([0-9一二三四五六七八九十两]{1,3})\s*节(?:课)?|(?:lesson|period|p)\s*([0-9]{1,2}))$", re.I
)
SEATS_RE = re.compile(r"^(?:座位|机位|seats?)?\s*(\d{1,3})\s*(?:号)?\s*[-~～至到]\s*(\d{1,3})\s*号?$", re.I)
SEAT_RE = re.compile(r"^(?:(?:座位|机位|seat)\s*(\d{1,3})|(\d{1,3})\s*号(?:机|机位|座位)?)$", re.I)
EXCEPTION_RE = re.compile(r"(?<![0-9])(\d{1,3})\s*号(?:机|机位|座位)?\s*(异常|故障|损坏|坏了|有问题)")
NORMAL_WORDS = ("正常", "全部正常", "都正常", "normal", "ok")
ABNORMAL_WORDS = ("异常", "abnormal")
LESSON_LABELS = {
    "模块": "module",
    "训练模块": "module",
    "课堂训练模块": "module",
    "module": "module",
    "情况": "situation",
    "课堂情况": "situation",
    "situation": "situation",
    "备注": "note",
    "note": "note",
    "姓名": "names",
    "使用人": "names",
    "names": "names",
}
VIOLATION_LABELS = {
    "处理": "outcome",
    "量化": "outcome",
    "处理办法": "outcome",
    "量化结果": "outcome",
    "outcome": "outcome",
    "备注": "note",
    "note": "note",
    "班级": "class",
    "class": "class",
}


class EntryError(Exception):
    """Words that cannot be read; `block` names the text explaining why (with `context`)."""

    def __init__(self, block: str, **context: object) -> None:
        super().__init__(block)
        self.block = block
        self.context = context


def fold(text: str) -> str:
    """For comparing names: full-width folded, no spaces, lower case (高一（2）班 = 高一(2)班)."""
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


def _labelled(text: str, labels: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The text before the first `label:`, and each labelled part's value."""
    alt = "|".join(re.escape(k) for k in sorted(labels, key=len, reverse=True))
    hits = list(re.finditer(rf"(?:^|[{re.escape(SEPARATORS)}])({alt})\s*[:：]", text, re.I))
    if not hits:
        return text, {}
    values: dict[str, str] = {}
    for i, m in enumerate(hits):
        stop = hits[i + 1].start() if i + 1 < len(hits) else len(text)
        key = labels[m.group(1).lower()]
        if key in values:
            raise EntryError("entry_label_twice", label=m.group(1))
        values[key] = text[m.end() : stop].strip(SEPARATORS)
    return text[: hits[0].start()], values


def words(text: str) -> list[str]:
    return [w for w in re.split(rf"[{re.escape(SEPARATORS)}]+", text) if w]


def lesson_of(word: str) -> int | None:
    m = LESSON_RE.match(word)
    if m is None:
        return None
    try:
        return int(m.group(2)) if m.group(2) else cn_number(m.group(1))
    except ValueError:
        return None


def seat_of(word: str) -> int | None:
    m = SEAT_RE.match(word)
    return int(m.group(1) or m.group(2)) if m else None


@dataclass
class LessonWords:
    """A 上机登记 as typed (names not yet checked)."""

    room: str = ""
    period: int | None = None
    klass: str = ""
    seats: list[tuple[int, int]] = field(default_factory=list)  # ranges as typed
    condition: str = ""  # "normal" / "abnormal" / "" (not said)
    problems: dict[int, str] = field(default_factory=dict)  # seat → what is wrong
    names: dict[int, str] = field(default_factory=dict)  # seat → 使用人姓名
    module: str = ""
    situation: str = ""
    note: str = ""
    others: list[str] = field(default_factory=list)  # words that are none of these


def read_lesson(text: str) -> LessonWords:
    head, labelled = _labelled(text, LESSON_LABELS)
    out = LessonWords(
        module=labelled.get("module", ""), situation=labelled.get("situation", ""), note=labelled.get("note", "")
    )
    for word in words(labelled.get("names", "")):
        m = re.fullmatch(r"(\d{1,3})\s*号?\s*(.+)", word)
        if m is None:
            raise EntryError("entry_bad_name", word=word)
        out.names[int(m.group(1))] = m.group(2)
    marks = list(EXCEPTION_RE.finditer(head))
    for i, m in enumerate(marks):
        stop = marks[i + 1].start() if i + 1 < len(marks) else len(head)
        seat = int(m.group(1))
        if seat in out.problems:
            raise EntryError("entry_seat_twice", seat=seat)
        out.problems[seat] = head[m.end() : stop].strip(SEPARATORS) or m.group(2)
    for word in words(head[: marks[0].start()] if marks else head):
        low = word.lower()
        if (period := lesson_of(word)) is not None:
            out.period = period
        elif (m := SEATS_RE.match(word)) is not None:
            out.seats.append((int(m.group(1)), int(m.group(2))))
        elif low in NORMAL_WORDS:
            out.condition = "normal"
        elif low in ABNORMAL_WORDS:
            out.condition = "abnormal"
        else:
            out.others.append(word)
    return out


@dataclass
class ViolationWords:
    """A 违纪登记 as typed: the student is the first unknown word, the reason the rest."""

    room: str = ""
    period: int | None = None
    klass: str = ""
    seat: int | None = None
    student: str = ""
    reason: str = ""
    outcome: str = ""
    note: str = ""
    others: list[str] = field(default_factory=list)


def read_violation(text: str) -> ViolationWords:
    head, labelled = _labelled(text, VIOLATION_LABELS)
    out = ViolationWords(outcome=labelled.get("outcome", ""), note=labelled.get("note", ""))
    out.klass = labelled.get("class", "")
    for word in words(head):
        if out.period is None and (period := lesson_of(word)) is not None:
            out.period = period
        elif out.seat is None and (seat := seat_of(word)) is not None:
            out.seat = seat
        else:
            out.others.append(word)
    return out
