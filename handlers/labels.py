"""A workflow's display words, from its `labels_<workflow>.j2`.

What the bot *says* about a stored value lives in templates: the Chinese name of an enum value
(`kind_student` → 学生), the row labels of its cards (`row_location` → 地点), its approval title,
the names of its request stages, small formats (`count` → 2台) and the cells of its register.
What the bot *understands* (aliases, synonyms, field labels) stays as data in the module.

    LABELS = Labels("labels_footage", kind=FootageKind, stage=FootageStage)
    LABELS(ctx, "row_location")                  # one block, rendered with keyword context
    LABELS.name(ctx, "kind", FootageKind.STUDENT)  # the block `kind_student`

Every value given as `prefix=values` (an enum, or any iterable of strings) has a block
`<prefix>_<value>` (tests check it), so a new member without a name fails the suite rather than
a user's message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any, Protocol

from bot.config import Config, Person
from bot.render import Renderer


class HasRenderer(Protocol):
    @property
    def renderer(self) -> Renderer: ...


class Labels:
    """The blocks of one labels template; a block that is missing is an error, never a blank."""

    def __init__(self, template: str, **names: Iterable[str]) -> None:
        self.template = template
        # block prefix → the values (an enum's members) that each have a block `<prefix>_<value>`
        self.names: dict[str, tuple[str, ...]] = {p: tuple(str(v) for v in vs) for p, vs in names.items()}

    def __call__(self, ctx: HasRenderer | Renderer, block: str, /, **context: Any) -> str:
        renderer = ctx if isinstance(ctx, Renderer) else ctx.renderer
        text = renderer.block(self.template, block, **context)
        if text is None:
            raise LookupError(f"{self.template}.j2 has no block {block!r}")
        return text

    def name(self, ctx: HasRenderer | Renderer, prefix: str, value: str, /) -> str:
        """The display name of a stored value (an enum member, or one of the declared strings)."""
        if str(value) not in self.names.get(prefix, ()):
            raise LookupError(f"{self.template}: {value!r} is not a known {prefix}")
        return self(ctx, f"{prefix}_{value}")

    def show(self, prefix: str) -> Callable[[str, Any], str]:
        """A `Field.show` that reads a parsed value back by its display name (用途=临时借用)."""
        return lambda value, ctx: self.name(ctx, prefix, value)


# -- dates ------------------------------------------------------------------------------------
# One format for every date the bot shows (12月4日（周五）, 14:00-16:00): the macros of
# `_dates.j2`, which templates import directly and these helpers render for Python-built strings.
DATES = Labels("labels_dates")


def show_day(r: HasRenderer | Renderer, d: date) -> str:
    """12月4日（周五）"""
    return DATES(r, "day", d=d)


def show_moment(r: HasRenderer | Renderer, t: datetime) -> str:
    """12月4日（周五）14:00 (`t` in the zone it should be read in)."""
    return DATES(r, "moment", t=t)


def show_span(r: HasRenderer | Renderer, start: datetime, end: datetime) -> str:
    """12月4日（周五）14:00-16:00"""
    return DATES(r, "span", start=start, end=end)


def show_iso_day(r: HasRenderer | Renderer, value: str) -> str:
    """A stored YYYY-MM-DD read back as 12月4日（周五）; anything else unchanged."""
    try:
        return show_day(r, date.fromisoformat(value))
    except ValueError:
        return value


# -- examples ---------------------------------------------------------------------------------
# Who an example names: people from the organisation (never a userid), the venue, class and group
# closest to the reader. Roles in order of preference for "someone who approves".
APPROVER_EXAMPLE_ROLES = ("vp_info_center", "principal", "director", "vp_supervising", "dept_head", "office_lead")


def example_names(config: Config, person: Person | None) -> dict[str, str]:
    """Names for the examples in help and replies: `approver`, `tech`, `me`, `venue`, `klass`, `group`."""
    me = person.userid if person else ""
    campus = person.campus if person else ""
    others = [p for p in config.people if p.userid != me]

    def first(candidates: Iterable[Person]) -> Person | None:
        found = list(candidates)
        return next((p for p in found if p.campus == campus), found[0] if found else None)

    approver = next(
        (p for role in APPROVER_EXAMPLE_ROLES for p in others if role in p.roles),
        None,
    )
    tech = first(p for p in others if "technician" in p.roles)
    venue = next((v for v in config.venues if v.campus == campus), config.venues[0] if config.venues else None)
    unit = person.unit if person else ""
    klass = next((c for c in config.classes if c.department == unit), config.classes[0] if config.classes else None)
    group = next((g for g in config.groups if me in g.admins), config.groups[0] if config.groups else None)
    return {
        "approver": approver.name if approver else "对方姓名",
        "tech": tech.name if tech else "技术员姓名",
        "me": person.name if person else "主讲人姓名",
        "venue": venue.name if venue else "场地名称",
        "klass": klass.name if klass else "班级名称",
        "group": group.name if group else "群名称",
    }
