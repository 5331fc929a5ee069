"""Workflow modules. Each has one Router; the bot includes exactly the routers listed here."""

from __future__ import annotations

from bot.router import Router
from handlers import faults, help

ROUTERS: tuple[Router, ...] = (help.router, faults.router)
