"""The callback front door shared by the app (XML) and smart-robot (JSON) paths.

Every check that runs before the database is touched lives here: required query parameters,
the timestamp window, the body cap, the constant-time signature check and the decryption.
A failure is a `Rejected` with the HTTP status and a short reason for the one log line.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable

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


# What each query parameter may look like (ASCII only: `str.isdigit()` accepts '²³' and '①②',
# which `int()` then refuses or turns into numbers nobody sent). Anything else is a 400.
QUERY_SHAPES: dict[str, re.Pattern[str]] = {
    "msg_signature": re.compile(r"[0-9a-fA-F]{40}"),
    "timestamp": re.compile(r"[0-9]{1,12}"),
    "nonce": re.compile(r"[\x21-\x7e]{1,64}"),
    "echostr": re.compile(r"[A-Za-z0-9+/=]{1,4096}"),
}


def ascii_int(text: str, max_digits: int = 12) -> int | None:
    """`text` as a non-negative integer if it is 1..max_digits ASCII digits, else None."""
    if not isinstance(text, str) or not 0 < len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def query_params(request: web.Request, *names: str) -> list[str]:
    values = [request.query.get(n, "") for n in names]
    if not all(values):
        raise Rejected(400, "missing_query_params")
    for name, value in zip(names, values, strict=True):
        if not QUERY_SHAPES[name].fullmatch(value):
            raise Rejected(400, f"bad_{name}")
    return values


def check_timestamp(request: web.Request, timestamp: str) -> None:
    stamp = ascii_int(timestamp)
    if stamp is None:
        raise Rejected(400, "bad_timestamp")
    now = request.app[CLOCK].now().timestamp()
    if abs(now - stamp) > request.app[CONFIG].wecom.timestamp_window_seconds:
        raise Rejected(403, "stale_timestamp")


class RefusalLog:
    """One log line per refused request, but a flood from one source is summarised.

    The first `burst` refusals of a (source, reason) within `window` seconds are logged one by
    one; the rest are counted and reported in one `callback_rejected_summary` line when the
    window ends (at the next refusal from that source), so an attack cannot drown the log.
    """

    def __init__(
        self, window: float = 60.0, burst: int = 5, keep: int = 1024, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.window, self.burst, self.keep, self.monotonic = window, burst, keep, monotonic
        self._seen: OrderedDict[tuple[str, str], list[float]] = OrderedDict()  # key → [start, count]

    def refused(self, source: str, reason: str, **fields: object) -> None:
        now = self.monotonic()
        key = (source, reason.split(":", 1)[0])
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] >= self.window:
            if entry[1] > self.burst:
                log(
                    logger,
                    logging.WARNING,
                    "callback_rejected_summary",
                    remote=source,
                    reason=key[1],
                    suppressed=int(entry[1] - self.burst),
                    window_s=self.window,
                )
            entry = None
        if entry is None:
            entry = [now, 0]
            self._seen[key] = entry
            self._seen.move_to_end(key)
            while len(self._seen) > self.keep:
                self._seen.popitem(last=False)
        entry[1] += 1
        if entry[1] <= self.burst:
            log(logger, logging.WARNING, "callback_rejected", remote=source, reason=reason, **fields)


REFUSALS = RefusalLog()


def reject(request: web.Request, exc: Rejected) -> web.Response:
    REFUSALS.refused(
        request.remote or "", exc.reason, status=exc.status, method=request.method, path=request.path[:100]
    )
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
        signature, timestamp, nonce, echostr = query_params(request, "msg_signature", "timestamp", "nonce", "echostr")
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
