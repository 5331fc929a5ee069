"""Parse decrypted callback XML into one typed inbound event.

Text, image and ordinary events go through wechatpy's parser; `template_card_event` (which
wechatpy returns as UnknownMessage) has its own parser here (doc 90240 模板卡片事件推送).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any
from xml.parsers import expat

from wechatpy.enterprise import parse_message

_DTD_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
CARD_EVENTS = ("template_card_event", "template_card_menu_event")


class BadXML(Exception):
    """Malformed or hostile XML."""


def parse_xml(data: bytes | str) -> dict[str, Any]:
    """Parse a WeCom XML document; reject DTDs and entities outright (XXE, billion laughs).

    WeCom sends UTF-8, and only UTF-8 is read: bytes that are not UTF-8, or hold a NUL (UTF-16 or
    UTF-32 without a byte-order mark still decode), are refused before parsing, and the parser is
    told the encoding, so a DTD cannot hide from the check below in another encoding.

    The document comes back in xmltodict's shape (an element with children is a dict, a repeated
    one a list, a leaf its stripped text or None, attributes as "@name", mixed text as "#text"),
    built straight from the standard library's expat parser's events (no tree in between): a
    fifth of xmltodict's time, on every callback. Without a DTD, expat knows no entity but XML's
    five and refuses any other reference."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        utf8 = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadXML("not_utf8") from None
    if "\x00" in utf8:
        raise BadXML("not_utf8")
    if _DTD_RE.search(raw):
        raise BadXML("dtd_or_entity")
    builder = _Builder()
    parser = expat.ParserCreate("utf-8")
    parser.buffer_text = True
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.text
    try:
        parser.Parse(raw, True)
    except BadXML:
        raise
    except Exception as exc:  # expat errors: malformed, undefined entity, …
        raise BadXML(type(exc).__name__) from None
    if builder.root is None or builder.root[0] != "xml" or not isinstance(builder.root[1], dict):
        raise BadXML("no_xml_root")
    return builder.root[1]


# WeCom's deepest document (a card event's SelectedItems/SelectedItem/OptionIds/OptionId) is four
# levels below the root; a deeper one is refused as it opens.
MAX_DEPTH = 16


class _Builder:
    """expat's events to xmltodict's shape (strip_whitespace, no namespace processing)."""

    __slots__ = ("open", "root")

    def __init__(self) -> None:
        self.open: list[list[Any]] = []  # the elements open: [tag, dict or None, text pieces]
        self.root: tuple[str, Any] | None = None

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if len(self.open) > MAX_DEPTH:
            raise BadXML("too_deep")
        self.open.append([tag, {f"@{name}": value for name, value in attrs.items()} if attrs else None, []])

    def text(self, data: str) -> None:
        self.open[-1][2].append(data)

    def end(self, _tag: str) -> None:
        tag, out, pieces = self.open.pop()
        text = "".join(pieces).strip()  # the element's own text, around its children
        if out is None:  # no attribute, no child: a leaf
            value: Any = text or None
        else:
            if text:
                out["#text"] = text
            value = out
        if not self.open:
            self.root = (tag, value)
            return
        parent = self.open[-1]
        siblings = parent[1]
        if siblings is None:
            siblings = parent[1] = {}
        if tag not in siblings:
            siblings[tag] = value
        elif isinstance(siblings[tag], list):
            siblings[tag].append(value)
        else:
            siblings[tag] = [siblings[tag], value]


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
    filename: str = ""  # a file message's name, when WeCom gives one
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
        key = f"evt:{self.from_user}:{self.create_time}:{self.event}:{self.event_key or ''}:{self.task_id or ''}"
        # The column holds 300 characters; a longer key is hashed whole (cutting it could make two
        # different clicks look like one).
        return key if len(key) <= 300 else f"evt#{hashlib.sha256(key.encode()).hexdigest()}"


# The longest value each field may carry; longer is not WeCom (and would not fit its column).
LIMITS: dict[str, int] = {
    "ToUserName": 64,
    "FromUserName": 64,
    "CreateTime": 12,
    "MsgType": 32,
    "MsgId": 64,
    "AgentID": 12,
    "Content": 4096,
    "MediaId": 256,
    "PicUrl": 1024,
    "FileName": 255,
    "Event": 64,
    "EventKey": 1024,
    "TaskId": 128,
    "CardType": 64,
    "ResponseCode": 256,
    "QuestionKey": 1024,
    "OptionId": 1024,
}


def _text(v: Any, name: str = "") -> str:
    """One XML element's text; a repeated element or an over-long value is not a WeCom message."""
    if v is None:
        return ""
    if isinstance(v, list):
        raise BadXML(f"repeated_{name or 'element'}")
    text = str(v.get("#text", "")) if isinstance(v, dict) else str(v)
    if name and len(text) > LIMITS.get(name, 4096):
        raise BadXML(f"too_long_{name}")
    return text


def _field(root: dict[str, Any], name: str) -> str:
    return _text(root.get(name), name)


def _create_time(root: dict[str, Any]) -> int:
    raw = _field(root, "CreateTime")
    if not (0 < len(raw) <= 12 and raw.isascii() and raw.isdigit()):
        raise BadXML("bad_create_time")
    return int(raw)


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
            selected[_text(item.get("QuestionKey"), "QuestionKey")] = [_text(i, "OptionId") for i in ids]
    return Inbound(
        kind="card_click",
        msg_type="event",
        from_user=_field(root, "FromUserName"),
        create_time=_create_time(root),
        event=_field(root, "Event"),
        event_key=_field(root, "EventKey"),
        task_id=_field(root, "TaskId"),
        card_type=_field(root, "CardType"),
        response_code=_field(root, "ResponseCode") or None,
        selected=selected,
    )


def parse_inbound(plain: str) -> Inbound:
    """Turn decrypted plaintext XML into an Inbound; raise BadXML when it is not a message."""
    root = parse_xml(plain)
    for name in LIMITS:  # every known field: one element, not too long
        _field(root, name)
    if not _field(root, "FromUserName") or not _field(root, "MsgType"):
        raise BadXML("missing_fields")
    create_time = _create_time(root)
    msg_type = _field(root, "MsgType")
    if msg_type == "event" and not _field(root, "Event"):
        raise BadXML("no_event")
    msg_id = _field(root, "MsgId")
    if msg_id and not (msg_id.isascii() and msg_id.isdigit()):
        raise BadXML("bad_msg_id")
    if msg_type == "event" and _field(root, "Event") in CARD_EVENTS:
        return _card_event(root)
    sender: dict[str, Any] = {"from_user": _field(root, "FromUserName"), "create_time": create_time}
    sender["msg_id"] = msg_id or None
    if msg_type == "file":
        # The app callback's documented types (doc 90239) are text, image, voice, video, location and
        # link; a file a member sends arrives as MsgType file with a MediaId (and its FileName), the
        # shape of the smart robot's and 微信客服's file messages. wechatpy has no class for it.
        media_id = _field(root, "MediaId")
        if not media_id:
            raise BadXML("file_without_media")
        return Inbound(kind="file", msg_type="file", media_id=media_id, filename=_field(root, "FileName"), **sender)
    if msg_type.lower() == "text":  # the common case, without parsing the XML a second time
        return Inbound(kind="text", msg_type="text", content=_field(root, "Content"), **sender)
    try:
        msg = parse_message(plain)
    except Exception:  # wechatpy's own parse of what passed the checks above
        raise BadXML("unparseable") from None
    base = dict(msg_type=msg.type, **sender)
    if msg.type == "image":
        return Inbound(kind="image", media_id=msg.media_id, pic_url=msg.image, **base)
    if msg.type == "event":
        return Inbound(kind="event", event=_field(root, "Event"), event_key=_field(root, "EventKey") or None, **base)
    return Inbound(kind="unknown", **base)
