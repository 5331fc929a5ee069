"""Customer groups (客户群) and enterprise mass sending in the emulator (doc 92135 and its siblings).

A customer group holds external contacts; the app cannot post into it. It asks WeCom to create a
mass-send task (`add_msg_template`), and WeCom asks the group's owner to confirm in the client:
nothing reaches the group until they do. A test or the demo plays the owner with `confirm` (or
leaves the task waiting), in Python or over HTTP (`POST /emulator/groupmsg/confirm`).

Documented behaviour kept here:
- `chat_type = "group"` needs `sender`; `chat_id_list` ≤ 2000; `text` and ≤ 9 attachments (image,
  link, miniprogram, video, file); the groups the sender does not own come back in `fail_list`.
- A customer group receives at most as many mass messages a month as the month has days (the
  default receive limit); past it the send result for that group is status 3.
- `get_groupmsg_task`: status 0 not sent, 2 sent. `get_groupmsg_send_result`: per group 0 not sent,
  1 sent, 2 not a contact, 3 over the receive limit.
- `remind_groupmsg_send`: at most three reminders per task in 24 h (doc 97610).
Undocumented answers (the errcode for a fourth reminder, for an unknown customer group) are noted
where they are chosen.
"""

from __future__ import annotations

import calendar
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

ATTACHMENT_TYPES = {"image", "link", "miniprogram", "video", "file"}
REMINDS_PER_DAY = 3


def _month(timestamp: float) -> tuple[int, int]:
    d = datetime.fromtimestamp(timestamp, UTC)
    return d.year, d.month


def _err(errcode: int, errmsg: str) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": errmsg}


@dataclass
class CustomerGroup:
    chat_id: str
    name: str
    owner: str


@dataclass
class MassTask:
    """One enterprise mass-send task and what became of it per group."""

    msgid: str
    sender: str
    chat_ids: list[str]
    text: str
    attachments: list[dict[str, Any]]
    created: float
    sent_at: float | None = None
    results: dict[str, int] = field(default_factory=dict)  # chat_id -> 0 / 1 / 3
    reminders: list[float] = field(default_factory=list)
    cancelled: bool = False


class CustomerGroups:
    """The customer groups WeCom knows and the mass-send tasks created for them."""

    def __init__(self, emulator: Any, make_delivered: Any) -> None:
        self._emu = emulator  # its clock, delivered list, known_users and `changed` event
        self._make = make_delivered
        self.groups: dict[str, CustomerGroup] = {}
        self.tasks: dict[str, MassTask] = {}

    def _clock(self) -> float:
        return float(self._emu.clock())

    def add(self, chat_id: str, name: str, owner: str) -> None:
        self.groups[chat_id] = CustomerGroup(chat_id, name, owner)

    # -- the owner, played by a test or the demo --------------------------------------------
    def waiting(self, sender: str | None = None) -> list[MassTask]:
        return [
            t
            for t in self.tasks.values()
            if t.sent_at is None and not t.cancelled and (sender is None or t.sender == sender)
        ]

    def confirm(self, sender: str | None = None, msgid: str | None = None) -> list[str]:
        """The owner taps 发送 on their waiting tasks (or one): each group gets the message, unless
        it has had its month's share. Returns the msgids sent."""
        now = self._clock()
        done = []
        for t in self.waiting(sender):
            if msgid is not None and t.msgid != msgid:
                continue
            t.sent_at = now
            for chat in t.chat_ids:
                if self.received_this_month(chat, now) >= self.monthly_limit(now):
                    t.results[chat] = 3
                    continue
                t.results[chat] = 1
                body = {"text": {"content": t.text}, "attachments": t.attachments, "msgid": t.msgid}
                self._emu.delivered.append(self._make(f"cgroup:{chat}", "mass", body, now))
            done.append(t.msgid)
        self._emu.changed.set()
        return done

    @staticmethod
    def monthly_limit(now: float) -> int:
        return calendar.monthrange(*_month(now))[1]

    def received_this_month(self, chat_id: str, now: float) -> int:
        month = _month(now)
        return sum(
            1
            for t in self.tasks.values()
            if t.results.get(chat_id) == 1 and t.sent_at is not None and _month(t.sent_at) == month
        )

    def sent_to(self, chat_id: str) -> list[dict[str, Any]]:
        return [d.body for d in self._emu.delivered if d.to == f"cgroup:{chat_id}"]

    # -- endpoints ------------------------------------------------------------------------
    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("POST", "/cgi-bin/externalcontact/add_msg_template", self._add_msg_template),
            ("POST", "/cgi-bin/externalcontact/get_groupmsg_task", self._get_task),
            ("POST", "/cgi-bin/externalcontact/get_groupmsg_send_result", self._get_send_result),
            ("POST", "/cgi-bin/externalcontact/get_groupmsg_list_v2", self._list_v2),
            ("POST", "/cgi-bin/externalcontact/remind_groupmsg_send", self._remind),
            ("POST", "/cgi-bin/externalcontact/cancel_groupmsg_send", self._cancel),
            ("POST", "/cgi-bin/externalcontact/groupchat/get", self._groupchat_get),
            ("POST", "/emulator/groupmsg/confirm", self._http_confirm),
        ]

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    async def _add_msg_template(self, request: web.Request) -> dict[str, Any]:
        body = await self._body(request)
        if body.get("chat_type") != "group":
            return _err(40058, "only chat_type group is emulated")
        sender = body.get("sender")
        if not isinstance(sender, str) or not sender:
            return _err(40058, "sender is required when chat_type is group")
        if self._emu.known_users is not None and sender not in self._emu.known_users:
            return _err(40003, "invalid userid")
        chats = body.get("chat_id_list") or []
        if not isinstance(chats, list) or len(chats) > 2000:
            return _err(40058, "chat_id_list has more than 2000 groups")
        text = str((body.get("text") or {}).get("content", ""))
        if len(text.encode()) > 4000:
            return _err(45002, "text content size out of limit")
        attachments = body.get("attachments") or []
        if len(attachments) > 9:
            return _err(40058, "more than 9 attachments")
        for a in attachments:
            kind = a.get("msgtype") if isinstance(a, dict) else None
            if kind not in ATTACHMENT_TYPES or not isinstance(a.get(kind), dict):
                return _err(40058, "invalid attachment")
            if kind == "link" and not (a["link"].get("title") and a["link"].get("url")):
                return _err(40058, "link attachment needs title and url")
        if not text and not attachments:
            return _err(40058, "text and attachments are both empty")
        ok = [c for c in chats if (g := self.groups.get(c)) is not None and g.owner == sender]
        fail = [c for c in chats if c not in ok]
        msgid = "msg" + secrets.token_hex(12)
        if ok or not chats:
            self.tasks[msgid] = MassTask(msgid, sender, ok, text, list(attachments), self._clock())
            # WeCom tells the owner in the client that a mass send waits for their confirmation.
            names = [self.groups[c].name for c in ok]
            note = {"msgid": msgid, "groups": names, "text": text}
            self._emu.delivered.append(self._make(f"user:{sender}", "groupmsg_task", note, self._clock()))
        return {"errcode": 0, "errmsg": "ok", "fail_list": fail, "msgid": msgid}

    async def _get_task(self, request: web.Request) -> dict[str, Any]:
        t = self.tasks.get(str((await self._body(request)).get("msgid", "")))
        if t is None:
            return _err(40058, "invalid msgid")
        item: dict[str, Any] = {"userid": t.sender, "status": 2 if t.sent_at is not None else 0}
        if t.sent_at is not None:
            item["send_time"] = int(t.sent_at)
        return {"errcode": 0, "errmsg": "ok", "next_cursor": "", "task_list": [item]}

    async def _get_send_result(self, request: web.Request) -> dict[str, Any]:
        body = await self._body(request)
        t = self.tasks.get(str(body.get("msgid", "")))
        if t is None:
            return _err(40058, "invalid msgid")
        if body.get("userid") != t.sender:
            return {"errcode": 0, "errmsg": "ok", "next_cursor": "", "send_list": []}
        rows = []
        for chat in t.chat_ids:
            status = t.results.get(chat, 0)
            row: dict[str, Any] = {"chat_id": chat, "userid": t.sender, "status": status}
            if status == 1 and t.sent_at is not None:
                row["send_time"] = int(t.sent_at)
            rows.append(row)
        return {"errcode": 0, "errmsg": "ok", "next_cursor": "", "send_list": rows}

    async def _list_v2(self, request: web.Request) -> dict[str, Any]:
        body = await self._body(request)
        start, end = int(body.get("start_time", 0)), int(body.get("end_time", 0))
        if not start or not end or end < start or end - start > 31 * 86400:
            return _err(40058, "start_time/end_time invalid (at most one month apart)")
        rows = [
            {
                "msgid": t.msgid,
                "creator": t.sender,
                "create_type": 0,
                "create_time": int(t.created),
                "text": {"content": t.text},
                "attachments": t.attachments,
            }
            for t in self.tasks.values()
            if start <= t.created <= end and body.get("chat_type", "single") == "group"
        ]
        return {"errcode": 0, "errmsg": "ok", "next_cursor": "", "group_msg_list": rows}

    async def _remind(self, request: web.Request) -> dict[str, Any]:
        t = self.tasks.get(str((await self._body(request)).get("msgid", "")))
        if t is None:
            return _err(40058, "invalid msgid")
        now = self._clock()
        recent = [r for r in t.reminders if r > now - 86400]
        if len(recent) >= REMINDS_PER_DAY:
            # The errcode for a fourth reminder within 24 h is undocumented; the generic frequency
            # error is the closest documented answer.
            return _err(45009, "api freq out of limit: at most 3 reminders in 24 hours")
        t.reminders.append(now)
        note = {"msgid": t.msgid, "groups": [self.groups[c].name for c in t.chat_ids if c in self.groups]}
        self._emu.delivered.append(self._make(f"user:{t.sender}", "groupmsg_remind", note, now))
        return _err(0, "ok")

    async def _cancel(self, request: web.Request) -> dict[str, Any]:
        t = self.tasks.get(str((await self._body(request)).get("msgid", "")))
        if t is None:
            return _err(40058, "invalid msgid")
        t.cancelled = True
        return _err(0, "ok")

    async def _groupchat_get(self, request: web.Request) -> dict[str, Any]:
        g = self.groups.get(str((await self._body(request)).get("chat_id", "")))
        if g is None:
            # Undocumented for an unknown id; 90501 is WeCom's "chat is not external group chat".
            return _err(90501, "chat is not external group chat")
        return {
            "errcode": 0,
            "errmsg": "ok",
            "group_chat": {"chat_id": g.chat_id, "name": g.name, "owner": g.owner, "member_list": []},
        }

    async def _http_confirm(self, request: web.Request) -> dict[str, Any]:
        body = await self._body(request)
        sent = self.confirm(body.get("sender"), body.get("msgid"))
        return {"errcode": 0, "errmsg": "ok", "sent": sent}
