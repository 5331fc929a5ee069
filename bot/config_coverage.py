"""Role coverage: every approval chain step has someone to go to, for every requester.

For each chain and each unit (and class, for a chain that needs one) its requesters may belong
to, each step's role is resolved the way a request would resolve it (bot.org) for an ordinary
member of that unit. A role held by nobody there is an error listing the uncovered units,
classes or campuses, even when `[approval] next_level` would catch it: a request quietly going
to another leader is what the check exists to prevent.

Then each configured person is tried as a requester. Where they hold the step's role themself,
the step goes up `next_level` (nobody approves their own request): an error if nobody is up
there; a warning when it routes past the declared next level (that level is the requester too,
or held by nobody for them), so the request lands on a role neither the chain nor
`[approval.next_level]` names for the step. A fallback to the declared next level itself is the
documented rule and is not repeated as a warning: the example organisation would print one for
every head of a unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.config_messages import Text, chain_name, msg, role_name, shorten
from bot.org import Org, ResolvedStep, Unresolvable

if TYPE_CHECKING:
    from bot.config import Config, Person, SchoolClass, Unit
    from bot.config_workflows import Chain

# The roles resolved against the request's class (its department) rather than the requester's unit.
CLASS_ROLES = frozenset({"class_teacher", "dept_head", "dept_deputy", "vp_supervising", "vp_campus"})
UNIT_KEYS = {"dept_head": "head", "dept_deputy": "deputy", "vp_supervising": "vp_supervising"}
PROBE = "\x00probe:"  # the userid of an ordinary member of a unit; no WeCom userid looks like it


@dataclass
class Coverage:
    problems: list[Text] = field(default_factory=list)
    warnings: list[Text] = field(default_factory=list)


def _person(p: Person) -> Text:
    return msg("person", name=p.name, userid=p.userid)


def _fix(role: str, needs_class: bool) -> Text:
    if role == "class_teacher" and not needs_class:
        return msg("fix_class")
    if role in UNIT_KEYS:
        return msg("fix_unit", key=UNIT_KEYS[role])
    if role == "office_lead":
        return msg("fix_office_lead")
    if role == "vp_campus":
        return msg("fix_campus")
    return msg("fix_global", role=role)


def _uncovered_where(role: str, unit: Unit, klass: SchoolClass | None, org: Org) -> Text:
    """The unit, class or campus whose requesters a role names nobody for."""
    subject = org.unit(klass.department) if klass and role in CLASS_ROLES else None
    if role == "class_teacher" and klass:
        return msg("class", name=klass.name)
    if role == "vp_campus":
        key = (subject or unit).campus
        campus = next((c for c in org.config.campuses if c.key == key), None)
        return msg("campus", name=campus.name if campus else key)
    return msg("unit", name=(subject or unit).name)


def _step_label(key: str, n: int) -> Text:
    return msg("chain_step", name=chain_name(key), key=key, n=n + 1)


def _by_units(key: str, chain: Chain, org: Org, units: Sequence[Unit], out: Coverage) -> set[int]:
    """Steps whose own role names nobody for an ordinary member of some unit; the failing steps."""
    classes: Sequence[SchoolClass | None] = org.config.classes if chain.needs_class else (None,)
    failing: set[int] = set()
    for n, step in enumerate(chain.steps):
        missing: list[Text] = []
        tried = 0
        for unit in units:
            for klass in classes:
                tried += 1
                try:
                    org.resolve_role(step.role, PROBE + unit.key, klass.key if klass else None)
                except Unresolvable:
                    missing.append(_uncovered_where(step.role, unit, klass, org))
        if not missing:
            continue
        failing.add(n)
        everyone = tried > 1 and len(missing) == tried
        whom = msg("every_unit") if everyone else shorten(missing, 8)
        out.problems.append(
            msg(
                "chain_uncovered",
                step=_step_label(key, n),
                role=step.role,
                role_name=role_name(step.role),
                whom=whom,
                fix=_fix(step.role, chain.needs_class),
            )
        )
    return failing


def _by_people(key: str, chain: Chain, org: Org, unit_keys: set[str], failing: set[int], out: Coverage) -> None:
    """Requesters who hold a step's role themselves: where their own request goes instead."""
    classes: Sequence[SchoolClass | None] = org.config.classes if chain.needs_class else (None,)
    stuck: dict[int, list[Text]] = {}
    moved: dict[tuple[int, str, tuple[str, ...]], list[Text]] = {}
    for person in org.config.people:
        if person.userid.startswith(PROBE) or person.unit not in unit_keys:
            continue
        for klass in classes:
            class_key = klass.key if klass else None
            resolved: dict[int, ResolvedStep] = {}
            for n, step in enumerate(chain.steps):
                if n in failing:
                    continue
                try:
                    resolved[n] = org.resolve_step(step.role, step.mode, person.userid, class_key)
                except Unresolvable:
                    stuck.setdefault(n, []).append(_person(person))
            for n, got in resolved.items():
                own = chain.steps[n].role
                if got.role not in (own, org.next_level(own)):  # the declared next level is no surprise
                    moved.setdefault((n, got.role, got.approvers), []).append(_person(person))
    for n, who in stuck.items():
        role = chain.steps[n].role
        out.problems.append(
            msg(
                "chain_self_uncovered", step=_step_label(key, n), who=shorten(who), role=role, role_name=role_name(role)
            )
        )
    for (n, to, approvers), who in moved.items():
        role = chain.steps[n].role
        out.warnings.append(
            msg(
                "chain_fallback",
                step=_step_label(key, n),
                who=shorten(who),
                role=role,
                role_name=role_name(role),
                to=to,
                to_name=role_name(to),
                approvers=tuple(_person(p) if (p := org.person(u)) else u for u in approvers),
            )
        )


def coverage(config: Config) -> Coverage:
    """The chains' uncovered steps (problems) and the fallbacks they would take (warnings)."""
    out = Coverage()
    if not config.people:
        return out  # an organisation-less config (URL checks, tooling) has no chains to run
    probes = tuple(
        config.people[0].model_copy(
            update={"userid": PROBE + u.key, "name": u.name, "campus": u.campus, "unit": u.key, "roles": ()}
        )
        for u in config.units
    )
    org = Org(config.model_copy(update={"people": (*config.people, *probes)}))
    for key, chain in config.chains.items():
        units = [u for u in config.units if chain.applies_to in ("all", u.kind)]
        failing = _by_units(key, chain, org, units, out)
        _by_people(key, chain, org, {u.key for u in units}, failing, out)
    return out
