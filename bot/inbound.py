"""Parse decrypted callback XML into one typed inbound event.

Text, image and ordinary events go through wechatpy's parser; `template_card_event` (which
wechatpy returns as UnknownMessage) has its own parser here (doc 90240 模板卡片事件推送).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import xmltodict
from wechatpy.enterprise import parse_message

_DTD_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
CARD_EVENTS = ("template_card_event", "template_card_menu_event")


class BadXML(Exception):
    """Malformed or hostile XML."""


def parse_xml(data: bytes | str) -> dict[str, Any]:
    """Parse a WeCom XML document; reject DTDs and entities outright (XXE, billion laughs)."""
    raw = data.encode() if isinstance(data, str) else data
    if _DTD_RE.search(raw):
        raise BadXML("dtd_or_entity")
    try:
        doc = xmltodict.parse(raw, disable_entities=True)
    except Exception as exc:  # expat errors, entity refusal
        raise BadXML(type(exc).__name__) from None
    root = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(root, dict):
        raise BadXML("no_xml_root")
    return root


@dataclass(frozen=True)
class Inbound:
    """One message or event from a member, whatever channel it came by."""

    kind: str  # text | image | event | card_click | unknown
    msg_type: str
    from_user: str
    create_time: int
    msg_id: str | None = None
    content: str = ""
    media_id: str | None = None
    pic_url: str | None = None
    event: str | None = None
    event_key: str | None = None
    task_id: str | None = None
    card_type: str | None = None
    response_code: str | None = None
    selected: dict[str, list[str]] = field(default_factory=dict)
    chat_id: str | None = None  # group chat (smart robot) or None for one-to-one
    response_url: str | None = None

    @classmethod
    def system(cls, ref: str, now_ts: int) -> Inbound:
        """The 'message' a scheduled action (timer, job, tick) acts on behalf of: actor 'system'."""
        return cls(kind="timer", msg_type="timer", from_user="system", create_time=now_ts, event=ref)

    @property
    def dedupe_key(self) -> str:
        """MsgId for messages; sender + CreateTime + event key / TaskId for events (doc 90930)."""
        if self.msg_id:
            return f"msg:{self.msg_id}"
        return f"evt:{self.from_user}:{self.create_time}:{self.event}:{self.event_key or ''}:{self.task_id or ''}"[:300]


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dict):
        return str(v.get("#text", ""))
    return str(v)


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _card_event(root: dict[str, Any]) -> Inbound:
    selected: dict[str, list[str]] = {}
    items = root.get("SelectedItems") or {}
    for item in _as_list(items.get("SelectedItem") if isinstance(items, dict) else None):
        if isinstance(item, dict):
            opts = item.get("OptionIds") or {}
            ids = _as_list(opts.get("OptionId") if isinstance(opts, dict) else None)
            selected[_text(item.get("QuestionKey"))] = [_text(i) for i in ids]
    return Inbound(
        kind="card_click",
        msg_type="event",
        from_user=_text(root.get("FromUserName")),
        create_time=int(_text(root.get("CreateTime")) or 0),
        event=_text(root.get("Event")),
        event_key=_text(root.get("EventKey")),
        task_id=_text(root.get("TaskId")),
        card_type=_text(root.get("CardType")),
        response_code=_text(root.get("ResponseCode")) or None,
        selected=selected,
    )


def parse_inbound(plain: str) -> Inbound:
    """Turn decrypted plaintext XML into an Inbound; raise BadXML when it is not a message."""
    root = parse_xml(plain)
    if not _text(root.get("FromUserName")) or not _text(root.get("MsgType")):
        raise BadXML("missing_fields")
    if not _text(root.get("CreateTime")).isdigit():
        raise BadXML("bad_create_time")
    if _text(root.get("MsgType")) == "event" and _text(root.get("Event")) in CARD_EVENTS:
        return _card_event(root)
    msg = parse_message(plain)
    base = dict(
        msg_type=msg.type,
        from_user=str(msg.source),
        create_time=int(_text(root.get("CreateTime"))),
        msg_id=_text(root.get("MsgId")) or None,
    )
    if msg.type == "text":
        return Inbound(kind="text", content=str(msg.content or ""), **base)
    if msg.type == "image":
        return Inbound(kind="image", media_id=msg.media_id, pic_url=msg.image, **base)
    if msg.type == "event":
        return Inbound(
            kind="event", event=_text(root.get("Event")), event_key=_text(root.get("EventKey")) or None,
            **base,
        )
    return Inbound(kind="unknown", **base)
