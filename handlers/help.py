"""帮助 — list every command with one example."""

from __future__ import annotations

from pathlib import Path

from bot.context import Ctx
from bot.router import Router, allowed

router = Router("help", templates=Path(__file__).with_name("templates") / "help")


@router.command("help", aliases=("帮助", "幫助", "help", "?", "菜单", "menu"))
async def show_help(ctx: Ctx, values: dict[str, str]) -> None:
    """List the commands this bot understands, each with an example."""
    commands = [
        {
            "name": c.name,
            "aliases": [a for a in c.aliases[1:] if a.isascii() and len(a) > 1],
            "example": ctx.renderer.block(c.template, "example"),
        }
        for c in ctx.registry.commands
        if c.in_help and allowed(c.roles, c.members_only, ctx.person)
    ]
    ctx.reply("help", commands=commands, name=ctx.person.name if ctx.person else None)
