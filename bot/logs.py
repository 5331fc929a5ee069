"""Structured logs: one JSON line per event, with the current request's message id."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

msg_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("msg_id", default=None)

# Anything that looks like a credential in a URL or a message is masked before it is written.
_SECRET_RE = re.compile(r"(access_token|corpsecret|key|response_code|echostr)=([^&\s\"']+)")


def redact(text: str) -> str:
    """Mask credential-looking query parameters."""
    return _SECRET_RE.sub(lambda m: f"{m.group(1)}=***", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        msg_id = msg_id_var.get()
        if msg_id:
            out["msg_id"] = msg_id
        fields = getattr(record, "fields", None)
        if fields:
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info).replace("\n", " | ")
        return redact(json.dumps(out, ensure_ascii=False, default=str))


def setup_logging(level: str = "INFO") -> None:
    """Send every logger to stderr as JSON lines (idempotent)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_infodesk", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._infodesk = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class ProtocolErrors(logging.Filter):
    """aiohttp answers a malformed request (over-long request line, bad headers) with a 4xx and logs
    an ERROR with a traceback; for us that is a refused request: one WARNING line with the reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args, record.exc_info, record.exc_text = "http_request_refused", (), None, None
            record.fields = {"reason": type(exc).__name__, "status": exc.code}
        return True


PROTOCOL_ERRORS = ProtocolErrors()


def quiet_protocol_errors() -> None:
    """Install the filter on aiohttp's server logger (idempotent)."""
    server = logging.getLogger("aiohttp.server")
    if PROTOCOL_ERRORS not in server.filters:
        server.addFilter(PROTOCOL_ERRORS)


def log(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log one structured event."""
    logger.log(level, event, extra={"fields": fields})
