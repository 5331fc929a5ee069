"""The organisation: who holds which role relative to a requester, from the config.

Approvers are data: a role in a chain step resolves against the requester's unit (系部/科室),
campus, and the request's class. A step that would resolve to the requester themself goes to
the next level up (`[approval] next_level`); so does an idle step when it escalates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from bot.config_messages import Text, msg

if TYPE_CHECKING:  # bot.config validates chains with this module; annotations only here
    from bot.config import Config, Person, SchoolClass, Unit
    from bot.config_workflows import Chain

GLOBAL_ROLES = frozenset(
    {
        "director",
        "vp_info_center",
        "principal",
        "committee",
        "cctv_operator",
        "platform_editor",
        "publicity_reviewer",
        "photo_reviewer",
        "video_editor",
        "technician",
        "sysadmin",
        "group_admin",
    }
)


class Unresolvable(Exception):
    """A role that names nobody for this requester."""

    def __init__(self, role: str) -> None:
        super().__init__(role)
        self.role = role


@dataclass(frozen=True)
class ResolvedStep:
    role: str
    mode: str
    approvers: tuple[str, ...]


class Org:
    """Lookups over the configured organisation."""

    def __init__(self, config: Config) -> None:
        self.config = config

    @cached_property
    def _people(self) -> dict[str, Person]:
        return {p.userid: p for p in self.config.people}

    @cached_property
    def _units(self) -> dict[str, Unit]:
        return {u.key: u for u in self.config.units}

    @cached_property
    def _classes(self) -> dict[str, SchoolClass]:
        return {c.key: c for c in self.config.classes}

    def person(self, userid: str) -> Person | None:
        return self._people.get(userid)

    def name(self, userid: str) -> str:
        p = self._people.get(userid)
        return p.name if p else userid

    def unit_of(self, userid: str) -> Unit | None:
        p = self._people.get(userid)
        return self._units.get(p.unit) if p else None

    def unit(self, key: str) -> Unit | None:
        return self._units.get(key)

    def school_class(self, key: str) -> SchoolClass | None:
        return self._classes.get(key)

    def find_class(self, text: str) -> SchoolClass | None:
        """A class by key or by (part of) its name: '24级计算机应用1班', 'it2401', '计算机应用1班'."""
        text = text.strip()
        if text in self._classes:
            return self._classes[text]
        exact = [c for c in self.config.classes if c.name == text]
        if exact:
            return exact[0]
        partial = [c for c in self.config.classes if text and text in c.name]
        return partial[0] if len(partial) == 1 else None

    def with_role(self, role: str, campus: str | None = None) -> list[str]:
        """Everyone holding `role` (on `campus` first, when given and someone there holds it)."""
        everyone = [p.userid for p in self.config.people if role in p.roles]
        if campus:
            local = [u for u in everyone if self._people[u].campus == campus]
            return local + [u for u in everyone if u not in local]
        return everyone

    def technicians(self, skill: str, campus: str | None = None) -> list[str]:
        """Technicians with `skill`, those on `campus` first."""
        found = [p for p in self.config.people if "technician" in p.roles and skill in p.skills]
        found.sort(key=lambda p: p.campus != campus)
        return [p.userid for p in found]

    def resolve_role(self, role: str, requester: str, class_key: str | None = None) -> tuple[str, ...]:
        """The people who hold `role` relative to this requester and request."""
        person = self._people.get(requester)
        unit = self.unit_of(requester)
        klass = self._classes.get(class_key) if class_key else None
        # A student's matter belongs to the class's department; a staff matter to the requester's.
        subject_unit = self._units.get(klass.department) if klass else unit
        found: tuple[str | None, ...]
        if role == "class_teacher":
            found = (klass.class_teacher if klass else None,)
        elif role == "dept_head":
            found = (subject_unit.head if subject_unit else None,)
        elif role == "dept_deputy":
            found = (subject_unit.deputy if subject_unit else None,)
        elif role == "office_lead":
            found = (unit.head if unit and unit.kind == "科室" else None,)
        elif role == "vp_supervising":
            found = (subject_unit.vp_supervising if subject_unit else None,)
        elif role == "vp_campus":
            campus_key = (subject_unit.campus if subject_unit else None) or (person.campus if person else None)
            campus = next((c for c in self.config.campuses if c.key == campus_key), None)
            found = (campus.vp if campus else None,)
        else:
            found = tuple(self.with_role(role))
        # Someone the configuration names who is not a person any more (left WeCom, bot/directory.py)
        # holds nothing: the step goes up a level.
        people = tuple(dict.fromkeys(u for u in found if u and u in self._people))
        if not people:
            raise Unresolvable(role)
        return people

    def next_level(self, role: str) -> str | None:
        return self.config.approval.next_level.get(role)

    def resolve_step(
        self, role: str, mode: str, requester: str, class_key: str | None, exclude: frozenset[str] = frozenset()
    ) -> ResolvedStep:
        """Resolve one step, going up a level while it would name only the requester (or `exclude`)."""
        seen: set[str] = set()
        current: str | None = role
        while current is not None and current not in seen:
            seen.add(current)
            try:
                people = tuple(
                    u for u in self.resolve_role(current, requester, class_key) if u != requester and u not in exclude
                )
            except Unresolvable:
                people = ()
            if people:
                return ResolvedStep(current, mode, people)
            current = self.next_level(current)
        raise Unresolvable(role)

    def resolve_chain(self, chain: Chain, requester: str, class_key: str | None = None) -> tuple[ResolvedStep, ...]:
        """Resolve every step to people now; consecutive identical steps collapse into one."""
        steps: list[ResolvedStep] = []
        for step in chain.steps:
            resolved = self.resolve_step(step.role, step.mode, requester, class_key)
            if steps and set(steps[-1].approvers) == set(resolved.approvers):
                continue  # e.g. the deputy asked for a computer: the head's step covers both
            steps.append(resolved)
        return tuple(steps)


def required_chain_problems(config: Config, required: Mapping[str, str]) -> list[Text]:
    """The chains the registered workflows need (key → who needs it) that the config lacks."""
    if not config.people:
        return []  # an organisation-less config (URL checks, tooling) has no chains to run
    return [msg("chain_required", key=key, label=label) for key, label in required.items() if key not in config.chains]
