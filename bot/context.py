"""The per-event context a handler receives: who, the open transaction, and how to reply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import Config, Person
from bot.inbound import Inbound
from bot.org import Org
from bot.outbox import enqueue
from bot.render import Renderer
from bot.router import Registry
from storage.models import OutboxMessage

TEXT_LIMIT = 2000  # message/send text content is at most 2048 bytes (doc 90236)


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split at line boundaries so that each part fits WeCom's text limit (in UTF-8 bytes).

    Each line's size is counted once (joining and measuring the part at every line made a long
    text's split quadratic: the help text's was ~3% of the worker's CPU)."""
    parts: list[str] = []
    current: list[str] = []  # the part's lines; nothing yet, or one empty line, is an empty part
    size = 0  # bytes of "\n".join(current)
    for line in text.split("\n"):
        while len(line.encode()) > limit:  # a single overlong line: cut by characters
            cut = limit // 3
            parts.append(line[:cut])
            line = line[cut:]
        n = len(line.encode())
        if not current or current == [""]:  # an empty part takes the line in its place
            current, size = [line], n
        elif size + 1 + n > limit:
            parts.append("\n".join(current))
            current, size = [line], n
        else:
            current.append(line)
            size += 1 + n
    if current and current != [""]:
        parts.append("\n".join(current))
    return parts


@dataclass
class Ctx:
    """Everything a handler may touch. It never commits and never calls the network."""

    session: AsyncSession
    clock: Clock
    config: Config
    renderer: Renderer
    registry: Registry
    inbound: Inbound
    event_id: int | None
    org: Org
    # In a smart-robot chat, replies to the sender are collected here and go back once through the
    # callback's response_url; `private` moves them (and the rest of the conversation) to the app.
    robot_replies: list[str] | None = None
    in_group: bool = False
    private: bool = False
    # A confidential matter (footage): texts go out with WeCom's `safe = 1` (no forwarding, a
    # watermark). Set by the conversation for confidential commands and by workflows for their
    # confidential records.
    confidential: bool = False

    @property
    def user(self) -> str:
        return self.inbound.from_user

    @property
    def person(self) -> Person | None:
        return self.config.person(self.user)

    def now(self) -> datetime:
        return self.clock.now()

    def render(self, template: str, /, **context: Any) -> str:
        return self.renderer.text(template, **context)

    def go_private(self) -> None:
        """Continue one-to-one through the app; the group only hears that it moved (confidential)."""
        if self.robot_replies is not None and self.in_group and not self.private:
            self.robot_replies.append(self.render("moved_to_private"))
            self.private = True

    def send_text(self, userid: str, text: str) -> None:
        """Queue a text message to one member in this transaction."""
        if userid == self.user and self.robot_replies is not None and not self.private:
            self.robot_replies.append(text)
            return
        for part in split_text(text):
            enqueue(
                self.session,
                self.now(),
                f"user:{userid}",
                "message",
                {
                    "touser": userid,
                    "msgtype": "text",
                    "text": {"content": part},
                    **({"safe": 1} if self.confidential else {}),
                },
                caused_by=self.event_id,
            )

    def reply(self, template: str, /, **context: Any) -> None:
        """Answer the sender with a rendered template."""
        self.send_text(self.user, self.render(template, **context))

    def tell(self, userid: str, template: str, /, **context: Any) -> None:
        """Send a rendered template to someone else."""
        self.send_text(userid, self.render(template, **context))

    def send_card(self, userid: str, card: dict[str, Any]) -> OutboxMessage:
        """Queue an interactive template card to one member (flush to learn the row id)."""
        return enqueue(
            self.session,
            self.now(),
            f"user:{userid}",
            "message",
            {"touser": userid, "msgtype": "template_card", "template_card": card},
            caused_by=self.event_id,
        )

    def update_card(self, userid: str, body: dict[str, Any]) -> None:
        """Queue a message/update_template_card call, ordered after that member's card send."""
        enqueue(self.session, self.now(), f"user:{userid}", "update_card", body, caused_by=self.event_id)
