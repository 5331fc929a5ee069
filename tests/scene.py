"""A transcript-style driver for scenario tests: who says what, who clicks which button."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.emulator.server import Delivered, Emulator
from infodesk.app import TIMERS
from tests.conftest import Bot


@dataclass
class Scene:
    bot: Bot
    emu: Emulator

    async def say(self, userid: str, text: str) -> str:
        """The member types `text`; return what the bot answered them (joined)."""
        before = len(self.emu.texts_to(userid))
        posted = await self.bot.sender.text(userid, text)
        assert posted.status == 200, posted
        await self.bot.settle()
        return "\n".join(self.emu.texts_to(userid)[before:])

    def texts(self, userid: str) -> list[str]:
        return self.emu.texts_to(userid)

    def got(self, userid: str, fragment: str) -> bool:
        """Whether any text the member received contains `fragment`."""
        return any(fragment in t for t in self.emu.texts_to(userid))

    def last_text(self, userid: str) -> str:
        texts = self.emu.texts_to(userid)
        return texts[-1] if texts else ""

    def cards(self, userid: str) -> list[dict[str, Any]]:
        """Template cards the member received, oldest first."""
        return [d.body["template_card"] for d in self.emu.messages_to(userid) if d.msgtype == "template_card"]

    def card(self, userid: str) -> dict[str, Any]:
        cards = self.cards(userid)
        assert cards, f"{userid} received no card"
        return cards[-1]

    def updates(self, userid: str) -> list[dict[str, Any]]:
        return [d.body for d in self.emu.messages_to(userid) if d.msgtype == "update_template_card"]

    def update_labels(self, userid: str) -> list[str]:
        return [u.get("button", {}).get("replace_name", "") for u in self.updates(userid)]

    async def click(self, userid: str, card: dict[str, Any], button: str) -> str:
        """The member clicks the button labelled `button` on `card`; return the bot's answers."""
        key = next(b["key"] for b in card["button_list"] if b["text"] == button)
        code = self.emu.issue_click_code(card["task_id"], userid)
        before = len(self.emu.texts_to(userid))
        posted = await self.bot.sender.card_click(userid, card["task_id"], key, code)
        assert posted.status == 200, posted
        await self.bot.settle()
        return "\n".join(self.emu.texts_to(userid)[before:])

    async def tick(self) -> None:
        """Let the scheduler run once (timers, idle approvals) and deliver what it sent."""
        await self.bot.app[TIMERS].tick()
        await self.bot.settle()

    def group_deliveries(self) -> list[Delivered]:
        return [d for d in self.emu.delivered if not d.to.startswith("user:")]
