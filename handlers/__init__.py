"""Workflow modules. Each has one Router; the bot includes exactly the routers listed here."""

from __future__ import annotations

from bot.router import Router
from handlers import (
    activity,
    approval_commands,
    cctv_room,
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
    register_commands,
    stage,
    training,
)

ROUTERS: tuple[Router, ...] = (
    help.router,
    faults.router,
    footage.router,
    cctv_room.router,
    computers.router,
    stage.router,
    activity.router,
    publishing.router,
    microlessons.router,
    groups.router,
    duties.router,
    training.router,
    register_commands.router,
    approval_commands.router,
    find.router,
    intents.router,
)
