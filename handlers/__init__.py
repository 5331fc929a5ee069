"""Workflow modules. Each has one Router; the bot includes exactly the routers listed here."""

from __future__ import annotations

from bot.router import Router
from handlers import (
    activity,
    approval_commands,
    assets,
    cctv_room,
    computer_room,
    computers,
    duties,
    faults,
    find,
    footage,
    groups,
    help,
    intents,
    inventory,
    microlessons,
    publishing,
    register_commands,
    reports,
    stage,
    training,
)

ROUTERS: tuple[Router, ...] = (
    help.router,
    faults.router,
    footage.router,
    cctv_room.router,
    computer_room.router,
    computers.router,
    assets.router,
    inventory.router,
    stage.router,
    activity.router,
    publishing.router,
    microlessons.router,
    groups.router,
    duties.router,
    training.router,
    reports.router,
    register_commands.router,
    approval_commands.router,
    find.router,
    intents.router,
)
