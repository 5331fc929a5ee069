"""The approval state machine, as pure functions over immutable values.

`advance(flow, decision)` returns the next flow and what happened; it never reads the clock,
the database or the config, so every path is tested from a table. The service layer
(`handlers/approvals.py`) stores flows, writes audit rows and turns events into messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class FlowStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class StepStatus(StrEnum):
    WAITING = "waiting"
    ACTIVE = "active"
    APPROVED = "approved"
    REJECTED = "rejected"


class Action(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    TRANSFER = "transfer"
    WITHDRAW = "withdraw"
    ESCALATE = "escalate"
    CLOSE = "close"  # the system ends a flow that can no longer succeed (e.g. its slot was taken)


SYSTEM = "system"  # the actor of scheduled and automatic decisions


class Refusal(StrEnum):
    NOT_PENDING = "not_pending"  # decided, rejected or withdrawn already
    NOT_APPROVER = "not_approver"  # not among the current step's approvers
    ALREADY_DECIDED = "already_decided"  # this approver already approved this `all` step
    NOT_REQUESTER = "not_requester"  # only the requester may withdraw
    REASON_REQUIRED = "reason_required"
    BAD_TARGET = "bad_target"  # transfer to nobody, to the requester or to an approver
    STALE_STEP = "stale_step"  # the decision names a step that is no longer current


class NotAllowed(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal


@dataclass(frozen=True)
class Step:
    role: str
    mode: str  # any | all
    approvers: tuple[str, ...]
    status: StepStatus = StepStatus.WAITING
    approved_by: tuple[str, ...] = ()
    on_behalf: Mapping[str, str] = field(default_factory=dict)  # substitute -> absent approver
    escalated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "mode": self.mode,
            "approvers": list(self.approvers),
            "status": self.status.value,
            "approved_by": list(self.approved_by),
            "on_behalf": dict(self.on_behalf),
            "escalated": self.escalated,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Step:
        return cls(
            d["role"],
            d["mode"],
            tuple(d["approvers"]),
            StepStatus(d["status"]),
            tuple(d.get("approved_by", ())),
            dict(d.get("on_behalf", {})),
            bool(d.get("escalated")),
        )


@dataclass(frozen=True)
class Flow:
    requester: str
    steps: tuple[Step, ...]
    current: int = 0
    status: FlowStatus = FlowStatus.PENDING

    @property
    def step(self) -> Step | None:
        """The active step, or None once the flow has ended."""
        if self.status is not FlowStatus.PENDING or self.current >= len(self.steps):
            return None
        return self.steps[self.current]

    def pending_approvers(self) -> tuple[str, ...]:
        """Who may decide now (for an `all` step: those who have not approved yet)."""
        step = self.step
        if step is None:
            return ()
        return tuple(a for a in step.approvers if a not in step.approved_by)

    def to_json(self) -> dict[str, Any]:
        return {
            "requester": self.requester,
            "steps": [s.to_json() for s in self.steps],
            "current": self.current,
            "status": self.status.value,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Flow:
        return cls(
            d["requester"], tuple(Step.from_json(s) for s in d["steps"]), int(d["current"]), FlowStatus(d["status"])
        )


@dataclass(frozen=True)
class Decision:
    actor: str
    action: Action
    reason: str = ""
    target: str | None = None  # transfer: the new approver
    targets: tuple[str, ...] = ()  # escalate: the next level's people
    step: int | None = None  # the step the actor saw (a card click names it)


@dataclass(frozen=True)
class Outcome:
    flow: Flow
    events: tuple[str, ...]  # what happened, in order: step_approved, advanced, approved, ...
    new_approvers: tuple[str, ...]  # who must now get a card
    retired: tuple[str, ...]  # whose cards for the previous state are now stale


def start(requester: str, steps: tuple[Step, ...], away: Mapping[str, str] | None = None) -> Outcome:
    """A new flow with its first step active (substitutes applied for those away now)."""
    if not steps:
        return Outcome(Flow(requester, (), 0, FlowStatus.APPROVED), ("approved",), (), ())
    flow = Flow(requester, steps)
    flow = _activate(flow, 0, away or {})
    return Outcome(flow, ("submitted",), flow.pending_approvers(), ())


def _activate(flow: Flow, index: int, away: Mapping[str, str]) -> Flow:
    step = flow.steps[index]
    approvers: list[str] = []
    on_behalf: dict[str, str] = dict(step.on_behalf)
    for a in step.approvers:
        sub = away.get(a)
        if sub and sub != flow.requester and sub not in step.approvers:
            approvers.append(sub)
            on_behalf[sub] = a
        else:
            approvers.append(a)
    active = replace(step, approvers=tuple(dict.fromkeys(approvers)), status=StepStatus.ACTIVE, on_behalf=on_behalf)
    steps = (*flow.steps[:index], active, *flow.steps[index + 1 :])
    return replace(flow, steps=steps, current=index)


def _with_step(flow: Flow, step: Step) -> Flow:
    return replace(flow, steps=(*flow.steps[: flow.current], step, *flow.steps[flow.current + 1 :]))


def advance(flow: Flow, decision: Decision, away: Mapping[str, str] | None = None) -> Outcome:
    """Apply one decision; raise NotAllowed (changing nothing) when it may not be taken."""
    away = away or {}
    if flow.status is not FlowStatus.PENDING:
        raise NotAllowed(Refusal.NOT_PENDING)
    step = flow.step
    assert step is not None
    if decision.step is not None and decision.step != flow.current:
        raise NotAllowed(Refusal.STALE_STEP)
    act = decision.action

    if act is Action.WITHDRAW:
        if decision.actor != flow.requester:
            raise NotAllowed(Refusal.NOT_REQUESTER)
        return Outcome(replace(flow, status=FlowStatus.WITHDRAWN), ("withdrawn",), (), step.approvers)

    if act is Action.CLOSE:
        if decision.actor != SYSTEM:
            raise NotAllowed(Refusal.NOT_APPROVER)
        new_flow = replace(_with_step(flow, replace(step, status=StepStatus.REJECTED)), status=FlowStatus.REJECTED)
        return Outcome(new_flow, ("rejected",), (), step.approvers)

    if act is Action.ESCALATE:
        added = tuple(t for t in decision.targets if t not in step.approvers and t != flow.requester)
        new_step = replace(step, approvers=step.approvers + added, escalated=True)
        return Outcome(_with_step(flow, new_step), ("escalated",), added, ())

    if decision.actor not in step.approvers:
        raise NotAllowed(Refusal.NOT_APPROVER)
    if decision.actor in step.approved_by:
        raise NotAllowed(Refusal.ALREADY_DECIDED)

    if act is Action.REJECT:
        if not decision.reason.strip():
            raise NotAllowed(Refusal.REASON_REQUIRED)
        new_step = replace(step, status=StepStatus.REJECTED)
        new_flow = replace(_with_step(flow, new_step), status=FlowStatus.REJECTED)
        return Outcome(new_flow, ("rejected",), (), step.approvers)

    if act is Action.TRANSFER:
        target = decision.target
        if not target or target == flow.requester or target in step.approvers:
            raise NotAllowed(Refusal.BAD_TARGET)
        approvers = tuple(target if a == decision.actor else a for a in step.approvers)
        on_behalf = {k: v for k, v in step.on_behalf.items() if k != decision.actor}
        new_step = replace(step, approvers=approvers, on_behalf=on_behalf)
        return Outcome(_with_step(flow, new_step), ("transferred",), (target,), (decision.actor,))

    # APPROVE
    approved_by = (*step.approved_by, decision.actor)
    done = step.mode == "any" or set(approved_by) >= set(step.approvers)
    if not done:
        new_step = replace(step, approved_by=approved_by)
        return Outcome(_with_step(flow, new_step), ("step_progress",), (), (decision.actor,))
    new_step = replace(step, approved_by=approved_by, status=StepStatus.APPROVED)
    new_flow = _with_step(flow, new_step)
    if flow.current + 1 >= len(flow.steps):
        final = replace(new_flow, current=len(flow.steps), status=FlowStatus.APPROVED)
        return Outcome(final, ("step_approved", "approved"), (), step.approvers)
    nxt = _activate(new_flow, flow.current + 1, away)
    return Outcome(nxt, ("step_approved", "advanced"), nxt.pending_approvers(), step.approvers)
