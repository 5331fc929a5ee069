"""The callback front door shared by the app (XML) and smart-robot (JSON) paths.

Every check that runs before the database is touched lives here: required query parameters,
the timestamp window, the body cap, the constant-time signature check and the decryption.
A failure is a `Rejected` with the HTTP status and a short reason for the one log line.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.appkeys import CLOCK, CONFIG
from bot.crypto import CryptoError, WeComCrypto
from bot.logs import log

logger = logging.getLogger("infodesk.http")


class Rejected(Exception):
    """A request refused before it touched the database; `status` and `reason` for the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def query_params(request: web.Request, *names: str) -> list[str]:
    values = [request.query.get(n, "") for n in names]
    if not all(values):
        raise Rejected(400, "missing_query_params")
    return values


def check_timestamp(request: web.Request, timestamp: str) -> None:
    if not timestamp.isdigit():
        raise Rejected(400, "bad_timestamp")
    now = request.app[CLOCK].now().timestamp()
    if abs(now - int(timestamp)) > request.app[CONFIG].wecom.timestamp_window_seconds:
        raise Rejected(403, "stale_timestamp")


def reject(request: web.Request, exc: Rejected) -> web.Response:
    log(logger, logging.WARNING, "callback_rejected", status=exc.status, reason=exc.reason,
        method=request.method, remote=request.remote)
    return web.Response(status=exc.status, text=exc.reason)


def open_envelope(crypto: WeComCrypto, signature: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """Constant-time signature check, then decrypt; Rejected(403/400) otherwise."""
    if not crypto.verify(signature, timestamp, nonce, encrypted):
        raise Rejected(403, "bad_signature")
    try:
        return crypto.decrypt(encrypted)
    except CryptoError as exc:
        raise Rejected(400, exc.reason) from None


async def echo(request: web.Request, crypto: WeComCrypto) -> web.Response:
    """URL verification (GET): check the signature, reply with the decrypted echostr (within 1 s)."""
    try:
        signature, timestamp, nonce, echostr = query_params(request, "msg_signature", "timestamp", "nonce",
                                                            "echostr")
        check_timestamp(request, timestamp)
        plain = open_envelope(crypto, signature, timestamp, nonce, echostr)
    except Rejected as exc:
        return reject(request, exc)
    log(logger, logging.INFO, "url_verified", path=request.path)
    return web.Response(text=plain, content_type="text/plain")


async def signed_body(request: web.Request) -> tuple[str, str, str, bytes]:
    """The signature parameters and the (size-capped) body of a callback POST."""
    signature, timestamp, nonce = query_params(request, "msg_signature", "timestamp", "nonce")
    check_timestamp(request, timestamp)
    cap = request.app[CONFIG].server.max_body_bytes
    if request.content_length is not None and request.content_length > cap:
        raise Rejected(413, "body_too_large")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise Rejected(413, "body_too_large") from None
    return signature, timestamp, nonce, body
