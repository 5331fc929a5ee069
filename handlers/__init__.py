"""Workflow modules. Each has one Router; the bot includes exactly the routers listed here."""

from __future__ import annotations

from bot.router import Router
from handlers import (
    approval_commands,
    computers,
    duties,
    faults,
    find,
    footage,
    groups,
    help,
    intents,
    microlessons,
    publishing,
    stage,
)

ROUTERS: tuple[Router, ...] = (
    help.router,
    faults.router,
    footage.router,
    computers.router,
    stage.router,
    publishing.router,
    microlessons.router,
    groups.router,
    duties.router,
    approval_commands.router,
    find.router,
    intents.router,
)
