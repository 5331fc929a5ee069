"""Workflow modules. Each has one Router; the bot includes exactly the routers listed here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.router import Router
from handlers import approval_commands, computers, faults, footage, groups, help, publishing, stage

ROUTERS: tuple[Router, ...] = (
    help.router,
    faults.router,
    footage.router,
    computers.router,
    stage.router,
    publishing.router,
    groups.router,
    approval_commands.router,
)

# Workflows that go through the approval engine.
WORKFLOWS = (footage.SPEC, computers.SPEC, stage.SPEC, groups.SPEC, publishing.COMMITTEE_SPEC)

# After approval, a workflow's own cards (operators, technicians) come back here by workflow key.
FULFIL_CLICKS: dict[str, Callable[..., Awaitable[None]]] = {
    "footage": footage.fulfil_click,
    "computer": computers.fulfil_click,
    "stage": stage.fulfil_click,
}

# Timers kept in the database, by kind.
TIMER_HANDLERS: dict[str, Callable[[Any, Any], Awaitable[None]]] = {
    "loan_return": computers.fire_loan_return,
    "computer_collection": computers.fire_collection,
    "ticket_sla_warn": faults.fire_sla_warn,
    "ticket_sla_due": faults.fire_sla_due,
    "stage_check": stage.fire_check,
    "stage_condition": stage.fire_condition,
}
