"""Smart-robot (智能机器人, API mode) callbacks: group @mentions and one-to-one chats with the robot.

Same signature and AES scheme as the app callback, but JSON bodies and an empty receive id
(doc 101033). Messages are deduped by `msgid`, parsed into the same commands as app messages
(the leading @name stripped), and answered once through the callback's `response_url` (valid
once, for an hour; doc 101138) by an outbox row written in the event's transaction.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from aiohttp import web

from bot.appkeys import DISPATCHER, PIPELINE
from bot.crypto import WeComCrypto
from bot.inbound import Inbound
from bot.logs import log, msg_id_var
from bot.transport import Rejected, echo, open_envelope, reject, signed_body

logger = logging.getLogger("infodesk.robot")
MENTION_RE = re.compile(r"^(?:\s*@\S+)+\s*")


class BadRobotMessage(Exception):
    pass


def parse_robot(plain: str) -> Inbound | None:
    """A decrypted robot callback as an Inbound; None for events we only acknowledge."""
    try:
        doc = json.loads(plain)
    except ValueError:
        raise BadRobotMessage("not_json") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("msgid"), str) or not doc["msgid"]:
        raise BadRobotMessage("no_msgid")
    sender: dict[str, Any] = doc["from"] if isinstance(doc.get("from"), dict) else {}
    userid = str(sender.get("userid") or "")
    if not userid:
        raise BadRobotMessage("no_sender")
    msgtype = str(doc.get("msgtype") or "")
    chat_id = str(doc["chatid"]) if doc.get("chattype") == "group" and doc.get("chatid") else None
    base: dict[str, Any] = dict(msg_type=msgtype, from_user=userid, create_time=int(doc.get("create_time") or 0),
                                msg_id=f"robot:{doc['msgid']}", chat_id=chat_id,
                                response_url=str(doc.get("response_url") or "") or None)
    if msgtype == "text":
        content = str((doc.get("text") or {}).get("content") or "")
        return Inbound(kind="text", content=MENTION_RE.sub("", content), **base)
    if msgtype == "mixed":  # 图文混排: take the text items
        items = (doc.get("mixed") or {}).get("msg_item") or []
        text = " ".join(str((i.get("text") or {}).get("content") or "") for i in items if i.get("msgtype") == "text")
        return Inbound(kind="text", content=MENTION_RE.sub("", text), **base)
    return Inbound(kind="unknown", **base)


def robot_routes(app: web.Application, path: str, crypto_key: web.AppKey[WeComCrypto]) -> None:
    """GET (URL check) and POST (messages) on the robot's callback path."""

    async def verify(request: web.Request) -> web.Response:
        return await echo(request, request.app[crypto_key])

    async def receive(request: web.Request) -> web.Response:
        try:
            signature, timestamp, nonce, body = await signed_body(request)
            try:
                envelope = json.loads(body)
            except ValueError:
                raise Rejected(400, "bad_json") from None
            encrypted = envelope.get("encrypt") if isinstance(envelope, dict) else None
            if not isinstance(encrypted, str) or not encrypted:
                raise Rejected(400, "no_encrypt")
            plain = open_envelope(request.app[crypto_key], signature, timestamp, nonce, encrypted)
            try:
                inbound = parse_robot(plain)
            except BadRobotMessage as exc:
                raise Rejected(400, str(exc)) from None
        except Rejected as exc:
            return reject(request, exc)
        if inbound is None or inbound.kind == "unknown" and not inbound.msg_id:
            return web.Response(status=200, text="")
        token = msg_id_var.set(inbound.msg_id)
        try:
            outcome = await request.app[PIPELINE].apply(inbound, channel="robot")
        finally:
            msg_id_var.reset(token)
        log(logger, logging.INFO, "robot_message", outcome=outcome.value, group=inbound.chat_id is not None)
        request.app[DISPATCHER].wake()
        return web.Response(status=200, text="")  # an empty acknowledgement; the answer goes via response_url

    app.router.add_get(path, verify)
    app.router.add_post(path, receive)
