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

from bot.appkeys import JOURNAL
from bot.crypto import WeComCrypto
from bot.inbound import Inbound
from bot.logs import log, msg_id_var
from bot.metrics import note_outcome
from bot.pipeline import Outcome
from bot.transport import Rejected, echo, open_envelope, reject, signed_body

logger = logging.getLogger("infodesk.robot")
MENTION_RE = re.compile(r"^(?:\s*@\S+)+\s*")


class BadRobotMessage(Exception):
    pass


def _string(doc: dict[str, Any], key: str, limit: int, required: bool = False) -> str:
    """A string member of the JSON body; anything else (a number, an object, too long) is refused."""
    value = doc.get(key)
    if value is None or value == "":
        if required:
            raise BadRobotMessage(f"no_{key}")
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise BadRobotMessage(f"bad_{key}")
    return value


def _object(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRobotMessage(f"bad_{key}")
    return value


def _create_time(doc: dict[str, Any]) -> int:
    value = doc.get("create_time")
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadRobotMessage("bad_create_time")
    text = str(value)
    if not (0 < len(text) <= 12 and text.isascii() and text.isdigit()):
        raise BadRobotMessage("bad_create_time")
    return int(text)


def parse_robot(plain: str) -> Inbound | None:
    """A decrypted robot callback as an Inbound; None for events we only acknowledge.

    Every member is type- and length-checked: a body WeCom would not send is a 400, never an
    exception further in.
    """
    try:
        doc = json.loads(plain)
    except (ValueError, RecursionError):  # a deep enough nesting exhausts the decoder's recursion
        raise BadRobotMessage("not_json") from None
    if not isinstance(doc, dict):
        raise BadRobotMessage("not_an_object")
    msgid = _string(doc, "msgid", 128, required=True)
    userid = _string(_object(doc, "from"), "userid", 64)
    if not userid:
        raise BadRobotMessage("no_sender")
    msgtype = _string(doc, "msgtype", 32)
    chat = _string(doc, "chatid", 128)
    chat_id = chat if _string(doc, "chattype", 16) == "group" and chat else None
    response_url = _string(doc, "response_url", 2048)
    if response_url and not response_url.startswith(("https://", "http://")):
        raise BadRobotMessage("bad_response_url")
    base: dict[str, Any] = dict(
        msg_type=msgtype,
        from_user=userid,
        create_time=_create_time(doc),
        msg_id=f"robot:{msgid}",
        chat_id=chat_id,
        response_url=response_url or None,
    )
    if msgtype == "text":
        content = _string(_object(doc, "text"), "content", 4096)
        return Inbound(kind="text", content=MENTION_RE.sub("", content), **base)
    if msgtype == "mixed":  # 图文混排: take the text items
        items = _object(doc, "mixed").get("msg_item") or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise BadRobotMessage("bad_msg_item")
        texts = [_string(_object(i, "text"), "content", 4096) for i in items if i.get("msgtype") == "text"]
        return Inbound(kind="text", content=MENTION_RE.sub("", " ".join(texts)), **base)
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
            except (ValueError, RecursionError):  # not JSON, invalid UTF-8, or nested too deep
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
        if inbound is None or (inbound.kind == "unknown" and not inbound.msg_id):
            return web.Response(status=200, text="")
        token = msg_id_var.set(inbound.msg_id)
        try:
            outcome = await request.app[JOURNAL].submit(inbound, "robot", plain)
        finally:
            msg_id_var.reset(token)
        note_outcome(outcome)
        log(logger, logging.INFO, "robot_message", outcome=outcome.value, group=inbound.chat_id is not None)
        if outcome is Outcome.UNAVAILABLE:
            return web.Response(status=503, text="try_later")
        return web.Response(status=200, text="")  # an empty acknowledgement; the answer goes via response_url

    app.router.add_get(path, verify)
    app.router.add_post(path, receive)
