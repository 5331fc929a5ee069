"""Structured logs: one JSON line per event, with the current request's message id."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import datetime, timezone
from typing import Any

msg_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("msg_id", default=None)

# Anything that looks like a credential in a URL or a message is masked before it is written.
_SECRET_RE = re.compile(r"(access_token|corpsecret|key|response_code|echostr)=([^&\s\"']+)")


def redact(text: str) -> str:
    """Mask credential-looking query parameters."""
    return _SECRET_RE.sub(lambda m: f"{m.group(1)}=***", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
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


def log(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log one structured event."""
    logger.log(level, event, extra={"fields": fields})
