"""Hostile and odd requests at the HTTP layer: never a 5xx, nothing written when refused, no traceback.

Both callback paths (app XML, smart-robot JSON), GET and POST. Each request is one of these kinds,
and the kinds that must be refused are asserted to be refused with their 4xx:

- random: anything in the query and body (mostly refused by shape);
- signed: a validly signed and encrypted message whose fields may be anything;
- bad_signature: a valid ciphertext under a wrong msg_signature (403);
- stale: a valid signature on a timestamp outside the window (403), or at its edge (accepted);
- cipher: the ciphertext truncated, padded, with a block appended or a bit flipped, then signed;
- frame: the plaintext frame with a wrong PKCS#7 pad, a wrong length, a wrong receive id (corp
  id) or invalid UTF-8, each validly encrypted and signed (400);
- bomb: DTDs, entity bombs (billion laughs, quadratic), external entities (XXE) and external DTDs
  pointing at a canary file, in the envelope or inside the encrypted message, in UTF-8, UTF-16
  and other encodings (400); deeply nested JSON on the robot path. No file is ever opened and no
  entity text ever reaches a row;
- huge: bodies at and over the cap, with and without Content-Length (413 over it).

A second property sends validly signed commands and card clicks whose text and form fields look
like templates (`{{a*b}}`, `{% for %}`, `${a*b}`, `%(x)s`, `{0}`): whatever the bot writes, no reply
or card it queues contains the evaluated text. A refused request never adds a row to any table;
an accepted one at most one inbound event; resending the same request adds nothing.

The default run tries a few hundred requests; `pytest -m fuzz` runs 10,000 per property
(set INFODESK_FUZZ_EXAMPLES to change it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import struct
import sys
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from wechatpy.crypto.cryptography import WeChatCipher
from yarl import URL

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from bot.conversation import kernel
from bot.crypto import WeComCrypto
from bot.emulator.server import Emulator
from bot.router import Registry
from bot.transport import RefusalLog
from infodesk.app import ROUTERS
from storage.models import Base, InboundEvent, OutboxMessage, Ticket
from tests.conftest import SCENE_START, Bot, example_raw, make_config, start_bot
from tests.scene import Scene

ODD_DIGITS = "0123456789²³¹①②③٣۴߅໕０１２"  # isdigit() is True for all of these; int() is not for some
REQUEST_LOGGERS = ("infodesk.http", "infodesk.pipeline", "infodesk.robot", "infodesk.cards", "aiohttp")
RAW = example_raw()
CORP = RAW["wecom"]["corp_id"]
WINDOW = 300  # [wecom] timestamp_window_seconds in the example configuration
CAP = 1024 * 1024  # [server] max_body_bytes
PATHS = {
    "/wecom/callback": (RAW["wecom"]["token"], RAW["wecom"]["encoding_aes_key"], CORP),
    "/wecom/robot": (RAW["robot"]["token"], RAW["robot"]["encoding_aes_key"], ""),
}
_msg_ids = iter(range(8_100_000_000_000_000_000, 2**63))
REASON = re.compile(r"[A-Za-z0-9_:]{1,80}")
PEOPLE = sorted(p["userid"] for p in RAW["people"])


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.bad: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        request_side = record.name.startswith(REQUEST_LOGGERS)
        if record.exc_info or (request_side and record.levelno >= logging.ERROR):
            self.bad.append(record)


@pytest.fixture
def tracebacks() -> Iterator[Captured]:
    handler = Captured()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


# Every file this process opens while a canary is set is checked against it: an external entity
# or DTD that were resolved would open the canary file (audit hooks cannot be removed, so one
# hook for the module, armed by the fixture).
@dataclass
class Canary:
    path: Path
    secret: str
    opened: list[str] = field(default_factory=list)


_CANARY: list[Canary] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _CANARY or event not in ("open", "urllib.Request", "socket.connect"):
        return
    canary = _CANARY[0]
    if canary.path.name in str(args[0] if args else ""):
        canary.opened.append(f"{event} {args[0]!r}")


sys.addaudithook(_audit)


@pytest.fixture
def canary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Canary]:
    path = tmp_path_factory.mktemp("xxe") / "canary-secret.txt"
    c = Canary(path, "CANARY-7f3a9c-SECRET")
    path.write_text(c.secret, encoding="utf-8")
    _CANARY[:] = [c]
    yield c
    _CANARY.clear()


@pytest.fixture
async def frozen_bot(emulator: Emulator, db_url: str, http: aiohttp.ClientSession) -> AsyncIterator[Bot]:
    """A bot on a clock that never moves (no timer comes due, so only requests write rows) and
    no dispatcher (what a request queues stays in the outbox to be read)."""
    clock = FakeClock(SCENE_START)
    emulator.clock = lambda: clock.now().timestamp()
    b = await start_bot(make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False)
    yield b
    await b.stop()


def settings_for(default: int) -> settings:
    return settings(
        max_examples=int(os.environ.get("INFODESK_FUZZ_EXAMPLES", default)),
        deadline=None,
        derandomize=default < 1000,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- building blocks ---------------------------------------------------------------------------


def crypto_for(path: str) -> WeComCrypto:
    token, key, receive_id = PATHS[path]
    return WeComCrypto(token, key, receive_id)


def seal(path: str, frame: bytes) -> str:
    """AES-CBC of an already framed and padded plaintext, with the path's key (no checks)."""
    key = base64.b64decode(PATHS[path][1] + "=")
    return base64.b64encode(WeChatCipher(key).encrypt(frame)).decode()


def pkcs7(n: int, block: int = 32) -> bytes:
    pad = block - n % block
    return bytes([pad]) * pad


def envelope(path: str, enc: str, to_user: str = CORP) -> bytes:
    if path == "/wecom/callback":
        return f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>".encode()
    return json.dumps({"encrypt": enc}).encode()


def signed(path: str, enc: str, ts: str, nonce: str = "12345") -> dict[str, str]:
    return {"msg_signature": crypto_for(path).sign(ts, nonce, enc), "timestamp": ts, "nonce": nonce}


@dataclass
class Req:
    """One request and what it must come to: `refused` (a status) when the kind demands it."""

    kind: str
    path: str
    method: str
    query: dict[str, str]
    body: bytes | None = None
    refused: int | None = None  # the exact 4xx this request must get
    chunked: bool = False  # send the body without a Content-Length
    echo: str | None = None  # a valid GET: the decrypted echostr is the answer
    markers: tuple[str, ...] = ()  # text that must never appear in anything the bot queues
    accepted: bool = False  # a valid message: 200, whatever its text

    def __repr__(self) -> str:  # a huge body would drown hypothesis's report
        body = self.body if self.body is None or len(self.body) < 400 else self.body[:200] + b"..."
        return f"Req({self.kind}, {self.method} {self.path}, {self.query}, {body!r}, refused={self.refused})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # how hypothesis prints a failing example
        p.text(repr(self))


odd_number = st.one_of(
    st.text(alphabet=ODD_DIGITS, min_size=1, max_size=6),
    st.integers(min_value=0, max_value=10**400).map(str),
    st.just(""),
    st.just("-5"),
    st.just("1e9"),
    st.text(max_size=20),
)
odd_text = st.one_of(
    st.text(max_size=30), st.text(min_size=300, max_size=5000), st.just(""), st.text(alphabet="<>&]]'\"", max_size=10)
)


def xml_doc(fields: list[tuple[str, str]]) -> str:
    inner = "".join(f"<{k}><![CDATA[{v.replace(']]>', '')}]]></{k}>" for k, v in fields)
    return f"<xml>{inner}</xml>"


@st.composite
def plaintext_xml(draw: st.DrawFn) -> str:
    """A message whose fields may be anything (signed and encrypted by the caller)."""
    fields: list[tuple[str, str]] = [
        ("ToUserName", CORP),
        ("FromUserName", draw(st.one_of(st.sampled_from(["zhaolei", "lihua", "stranger"]), odd_text))),
        ("CreateTime", draw(st.one_of(st.integers(1_700_000_000, 1_900_000_000).map(str), odd_number))),
        ("MsgType", draw(st.sampled_from(["text", "image", "event", "voice", "", "x" * 40]))),
    ]
    mtype = fields[-1][1]
    if mtype == "text":
        fields.append(
            (
                "Content",
                draw(
                    st.one_of(
                        st.sampled_from(["帮助", "报修 地点:302 设备:投影 描述:不亮", "接单 #1", "同意 #1"]), odd_text
                    )
                ),
            )
        )
    if mtype == "event":
        fields.append(("Event", draw(st.sampled_from(["", "enter_agent", "template_card_event", "click"]))))
        fields.append(("EventKey", draw(st.one_of(st.sampled_from(["ap:1:0:approve", "tk:1:claim"]), odd_text))))
        fields.append(("TaskId", draw(odd_text)))
    fields.append(("MsgId", draw(st.one_of(st.integers(1, 2**63).map(str), odd_number))))
    if draw(st.booleans()):  # a repeated element
        fields.append(draw(st.sampled_from(fields)))
    return xml_doc(draw(st.permutations(fields)))


json_value: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20), st.text(min_size=200, max_size=3000)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def robot_json(draw: st.DrawFn) -> str:
    doc: dict[str, Any] = {
        "msgid": draw(st.one_of(st.text(min_size=1, max_size=40), json_value)),
        "from": draw(
            st.one_of(st.fixed_dictionaries({"userid": st.sampled_from(["zhaolei", "stranger"])}), json_value)
        ),
        "msgtype": draw(st.sampled_from(["text", "mixed", "image", "event"])),
        "chattype": draw(st.sampled_from(["group", "single"])),
        "chatid": draw(st.one_of(st.just("wrkSFfCgAAxxxx"), json_value)),
        "create_time": draw(st.one_of(st.integers(0, 2_000_000_000), odd_number, json_value)),
        "text": draw(
            st.one_of(st.fixed_dictionaries({"content": st.sampled_from(["@助手 帮助", "@助手 报修"])}), json_value)
        ),
        "mixed": draw(st.one_of(st.fixed_dictionaries({"msg_item": st.lists(json_value, max_size=3)}), json_value)),
        "response_url": draw(st.one_of(st.just("http://127.0.0.1:9/resp"), json_value)),
    }
    for key in draw(st.sets(st.sampled_from(sorted(doc)), max_size=3)):
        del doc[key]
    return json.dumps(doc, ensure_ascii=False)


def plaintext(draw: st.DrawFn, path: str) -> str:
    return draw(plaintext_xml()) if path == "/wecom/callback" else draw(robot_json())


# --- the hostile kinds -------------------------------------------------------------------------


@st.composite
def random_request(draw: st.DrawFn, path: str, method: str, now: int) -> Req:
    query = {
        "msg_signature": draw(st.one_of(st.text(alphabet="0123456789abcdef", min_size=40, max_size=40), odd_text)),
        "timestamp": draw(st.one_of(odd_number, st.just(str(now)))),
        "nonce": draw(st.one_of(st.text(alphabet="0123456789", min_size=1, max_size=10), odd_text)),
    }
    if method == "GET":
        query["echostr"] = draw(odd_text)
    for key in draw(st.sets(st.sampled_from(sorted(query)), max_size=2)):
        del query[key]
    body = draw(st.one_of(st.binary(max_size=200), st.just(b"<xml><Encrypt>abc</Encrypt></xml>")))
    return Req("random", path, method, query, body)


def request_for(path: str, method: str, enc: str, query: dict[str, str], kind: str, **kw: Any) -> Req:
    if method == "GET":
        if not 0 < len(enc) <= 4096:  # an echostr is 1..4096 base64 characters, checked first
            kw.update(refused=400, echo=None)
        return Req(kind, path, method, {**query, "echostr": enc}, **kw)
    return Req(kind, path, method, query, envelope(path, enc), **kw)


@st.composite
def signed_request(draw: st.DrawFn, path: str, method: str, now: int) -> Req:
    plain = plaintext(draw, path)
    enc = crypto_for(path).encrypt(plain)
    query = signed(path, enc, str(now), draw(st.text(alphabet="0123456789", min_size=1, max_size=10)))
    return request_for(path, method, enc, query, "signed", echo=plain if method == "GET" else None)


@st.composite
def bad_signature(draw: st.DrawFn, path: str, method: str, now: int) -> Req:
    enc = crypto_for(path).encrypt(plaintext(draw, path))
    ts, nonce = str(now), "12345"
    good = crypto_for(path).sign(ts, nonce, enc)
    other_token, key, rid = PATHS["/wecom/robot" if path == "/wecom/callback" else "/wecom/callback"]
    how = draw(st.sampled_from(["flip", "other_token", "other_nonce", "other_ts", "unsorted", "zeros", "of_plain"]))
    if how == "flip":
        i = draw(st.integers(0, 39))
        sig = good[:i] + draw(st.sampled_from([c for c in "0123456789abcdef" if c != good[i]])) + good[i + 1 :]
    elif how == "other_token":
        sig = WeComCrypto(other_token, key, rid).sign(ts, nonce, enc)
    elif how == "other_nonce":
        sig = crypto_for(path).sign(ts, nonce + "1", enc)
    elif how == "other_ts":
        sig = crypto_for(path).sign(str(now - 1), nonce, enc)
    elif how == "unsorted":
        sig = hashlib.sha1((PATHS[path][0] + ts + nonce + enc).encode()).hexdigest()
    elif how == "zeros":
        sig = "0" * 40
    else:
        sig = crypto_for(path).sign(ts, nonce, "plain text instead of the ciphertext")
    if sig == good:  # an unsorted concatenation may happen to be sorted
        sig = "f" * 40
    query = {"msg_signature": sig, "timestamp": ts, "nonce": nonce}
    return request_for(path, method, enc, query, f"bad_signature:{how}", refused=403)


@st.composite
def stale_request(draw: st.DrawFn, path: str, method: str, now: int) -> Req:
    offset = draw(
        st.one_of(
            st.sampled_from([-WINDOW - 1, WINDOW + 1, -WINDOW, WINDOW, -86400, 86400 * 365]),
            st.integers(-now, 10**9),
        )
    )
    enc = crypto_for(path).encrypt(plaintext(draw, path))
    query = signed(path, enc, str(now + offset))
    return request_for(path, method, enc, query, f"stale:{offset}", refused=403 if abs(offset) > WINDOW else None)


def decoded(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


@st.composite
def cipher_request(draw: st.DrawFn, path: str, method: str, now: int) -> Req:
    """The base64 ciphertext cut, padded or flipped, then signed as it is (the signature is not
    what refuses it: the decryption is)."""
    enc = crypto_for(path).encrypt(plaintext(draw, path))
    raw = base64.b64decode(enc)
    how = draw(
        st.sampled_from(["cut_chars", "cut_blocks", "pad_chars", "pad_block", "repeat_tail", "flip", "strip_eq"])
    )
    refused: int | None = 400
    if how == "cut_chars":
        mutated = enc[: draw(st.integers(0, len(enc) - 1))]
    elif how == "cut_blocks":
        mutated = base64.b64encode(raw[: -16 * draw(st.integers(1, len(raw) // 16))]).decode()
    elif how == "pad_chars":
        mutated = enc + draw(st.sampled_from(["=", "==", "A", "AAAA", "\n", " ", "%3D", "====", "\x00"]))
        if path == "/wecom/callback" and method == "POST" and mutated[-1] in " \n":
            refused = 403  # the XML parser drops the trailing space: what was signed is not what is read
    elif how == "pad_block":
        mutated = base64.b64encode(raw + draw(st.binary(min_size=16, max_size=16))).decode()
    elif how == "repeat_tail":  # the last two blocks again: the pad decrypts, the receive id does not
        mutated = base64.b64encode(raw + raw[-32:]).decode()
    elif how == "flip":  # CBC is malleable: a flipped bit may still decrypt (the signature guards it)
        i = draw(st.integers(0, len(raw) - 1))
        mutated = base64.b64encode(raw[:i] + bytes([raw[i] ^ (1 << draw(st.integers(0, 7)))]) + raw[i + 1 :]).decode()
        refused = None
    else:
        mutated = enc.rstrip("=")
        if mutated == enc:
            mutated = enc + "="
    if mutated and decoded(mutated) == raw:  # another spelling of the same bytes (a spare "=")
        refused = None
    if not mutated:  # an empty Encrypt
        refused = 400
    query = signed(path, mutated, str(now))
    return request_for(path, method, mutated, query, f"cipher:{how}", refused=refused)


BAD_UTF8 = [b"\xff", b"\x80", b"\xc0\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe6\x8a", b"\xfe\xff"]


@st.composite
def frame_request(draw: st.DrawFn, path: str, method: str, now: int) -> Req:
    """A validly encrypted and signed frame with one or more things wrong inside (400)."""
    rid = PATHS[path][2].encode()
    msg = plaintext(draw, path).encode()
    faults = draw(st.sets(st.sampled_from(["receive_id", "length", "pad", "utf8"]), min_size=1))
    if "utf8" in faults:
        at = draw(st.integers(0, len(msg)))
        msg = msg[:at] + draw(st.sampled_from(BAD_UTF8)) + msg[at:]
    length = len(msg)
    if "length" in faults:
        length = draw(
            st.one_of(
                st.integers(0, len(msg) - 1) if msg else st.just(1),
                st.integers(len(msg) + 1, len(msg) + len(rid) + 40),
                st.just(2**32 - 1),
            )
        )
    if "receive_id" in faults:
        rid = draw(
            st.sampled_from(
                [b"", b"ww_other_corp", CORP.encode() + b"x", CORP.encode()[:-1], CORP.upper().encode(), b"\x00"]
            ).filter(lambda r: r != PATHS[path][2].encode())
        )
    body = draw(st.binary(min_size=16, max_size=16)) + struct.pack(">I", length) + msg + rid
    pad = pkcs7(len(body))
    if "pad" in faults:
        how = draw(st.sampled_from(["zero", "over_32", "uneven"]))
        fill = 16 - len(body) % 16 or 16
        if how == "zero":
            pad = b"\x00" * fill
        elif how == "over_32":
            pad = bytes([draw(st.integers(33, 255))]) * fill
        elif len(pad) > 1:  # the first pad byte differs from the others
            pad = bytes([pad[0] ^ 0x40]) + pad[1:]
        else:  # a one-byte pad cannot be uneven: 17 bytes that claim 17 but do not all say so
            pad = b"\x00" + bytes([17]) * 16
    enc = seal(path, body + pad)
    query = signed(path, enc, str(now))
    return request_for(path, method, enc, query, "frame:" + "+".join(sorted(faults)), refused=400)


def bomb_documents(canary: Canary, marker: str) -> dict[str, str]:
    url = canary.path.as_uri()
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    return {
        "internal_entity": f'<!DOCTYPE xml [<!ENTITY m "{marker}">]><xml>{{}}</xml>',
        "billion_laughs": f'<!DOCTYPE xml [<!ENTITY l0 "{marker}">{lol}]><xml>{{}}</xml>',
        "quadratic": f'<!DOCTYPE xml [<!ENTITY m "{marker * 2000}">]><xml>{{}}</xml>',
        "xxe_file": f'<!DOCTYPE xml [<!ENTITY m SYSTEM "{url}">]><xml>{{}}</xml>',
        "xxe_parameter": f'<!DOCTYPE xml [<!ENTITY % p SYSTEM "{url}"> %p;]><xml>{{}}</xml>',
        "external_dtd": f'<!DOCTYPE xml SYSTEM "{url}"><xml>{{}}</xml>',
        "lowercase_doctype": f'<!doctype xml [<!ENTITY m "{marker}">]><xml>{{}}</xml>',
    }


ENCODINGS = ["utf-8", "utf-16", "utf-16-be", "latin-1", "cp037", "utf-32"]


def xml_bomb(canary: Canary, marker: str, name: str, where: str, encoding: str, declare: bool, now: int) -> Req:
    """One of `bomb_documents` in the envelope or inside the (valid, signed) encrypted message."""
    path = "/wecom/callback"
    template = bomb_documents(canary, marker)[name]
    head = f'<?xml version="1.0" encoding="{encoding}"?>' if declare else ""
    kind = f"bomb:{name}:{where}:{encoding}{':declared' if declare else ''}"
    if where == "message":
        doc = head + template.format(
            f"<ToUserName>{CORP}</ToUserName><FromUserName>zhaolei</FromUserName><CreateTime>{now}</CreateTime>"
            f"<MsgType>text</MsgType><Content>&m;</Content><MsgId>{next(_msg_ids)}</MsgId>"
        )
        # WeCom's frame carries UTF-8: another encoding is also invalid UTF-8 (400 either way)
        msg, rid = doc.encode(encoding), CORP.encode()
        enc = seal(path, b"0" * 16 + struct.pack(">I", len(msg)) + msg + rid + pkcs7(20 + len(msg) + len(rid)))
        body = envelope(path, enc)
    else:
        enc = crypto_for(path).encrypt(
            xml_doc(
                [
                    ("ToUserName", CORP),
                    ("FromUserName", "zhaolei"),
                    ("CreateTime", str(now)),
                    ("MsgType", "text"),
                    ("Content", "帮助"),
                    ("MsgId", str(next(_msg_ids))),
                ]
            )
        )
        body = (head + template.format(f"<ToUserName>&m;</ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt>")).encode(
            encoding
        )
    refused = 400
    return Req(kind, path, "POST", signed(path, enc, str(now)), body, refused, markers=(marker, canary.secret))


def json_bomb(depth: int, shape: str, where: str, now: int) -> Req:
    """Deeply nested JSON on the robot path, as the envelope or inside the encrypted message."""
    path = "/wecom/robot"
    bomb = "[" * depth + "]" * depth if shape == "array" else '{"a":' * depth + "1" + "}" * depth
    if where == "envelope":
        return Req(f"bomb:json_{shape}_{depth}:envelope", path, "POST", signed(path, "x", str(now)), bomb.encode(), 400)
    enc = crypto_for(path).encrypt(bomb)
    return Req(
        f"bomb:json_{shape}_{depth}:message", path, "POST", signed(path, enc, str(now)), envelope(path, enc), 400
    )


@st.composite
def bomb_request(draw: st.DrawFn, path: str, method: str, now: int, canary: Canary) -> Req:
    where = draw(st.sampled_from(["envelope", "message"]))
    if path == "/wecom/robot":  # JSON has no entities; its bomb is depth
        return json_bomb(
            draw(st.sampled_from([1000, 5000, 100_000])), draw(st.sampled_from(["array", "object"])), where, now
        )
    marker = "ENTITYTEXT" + str(draw(st.integers(10**5, 10**6)))
    name = draw(st.sampled_from(sorted(bomb_documents(canary, marker))))
    return xml_bomb(canary, marker, name, where, draw(st.sampled_from(ENCODINGS)), draw(st.booleans()), now)


@st.composite
def huge_request(draw: st.DrawFn, path: str, method: str, now: int) -> Req:
    size = draw(st.sampled_from([CAP - 1, CAP, CAP + 1, 2 * CAP, 4 * CAP]))
    chunked = draw(st.booleans())
    filler = draw(st.sampled_from([b"A", b"<", b"\xff", b"["]))
    query = signed(path, "x" * 10, str(now))
    return Req(
        f"huge:{size}:{'chunked' if chunked else 'length'}",
        path,
        "POST",
        query,
        filler * size,
        413 if size > CAP else 400,
        chunked=chunked,
    )


@st.composite
def hostile_request(draw: st.DrawFn, now: int, canary: Canary) -> Req:
    path = draw(st.sampled_from(sorted(PATHS)))
    method = draw(st.sampled_from(["GET", "POST"]))
    kinds: dict[str, Any] = {
        "random": random_request,
        "signed": signed_request,
        "bad_signature": bad_signature,
        "stale": stale_request,
        "cipher": cipher_request,
        "frame": frame_request,
        "bomb": lambda *a: bomb_request(*a, canary=canary),
        "huge": huge_request,
    }
    kind = draw(st.sampled_from(sorted(kinds)))
    return draw(kinds[kind](path, method, now))


# --- sending and checking -----------------------------------------------------------------------


TABLES = [t.name for t in Base.metadata.sorted_tables]
COUNT_ALL = select(*(select(func.count()).select_from(t).scalar_subquery() for t in Base.metadata.sorted_tables))


async def row_counts(bot: Bot) -> dict[str, int]:
    """Rows in every table, in one query."""
    async with bot.app[PIPELINE].sessions() as s:
        row = (await s.execute(COUNT_ALL)).one()
    return dict(zip(TABLES, row, strict=True))


async def queued_since(bot: Bot, last_id: int) -> list[str]:
    async with bot.app[PIPELINE].sessions() as s:
        rows = (await s.execute(select(OutboxMessage.payload).where(OutboxMessage.id > last_id))).scalars()
        return [json.dumps(p, ensure_ascii=False) for p in rows]


async def last_outbox_id(bot: Bot) -> int:
    async with bot.app[PIPELINE].sessions() as s:
        return int((await s.execute(select(func.coalesce(func.max(OutboxMessage.id), 0)))).scalar_one())


async def send(bot: Bot, req: Req) -> tuple[int, str]:
    data: Any = None
    if req.method == "POST" and req.body is not None:
        if req.chunked:

            async def chunks(body: bytes = req.body) -> AsyncIterator[bytes]:
                for i in range(0, len(body), 64 * 1024):
                    yield body[i : i + 64 * 1024]

            data = chunks()
        else:
            data = req.body
    try:
        async with bot.http.request(req.method, bot.url + req.path, params=req.query, data=data) as resp:
            return resp.status, (await resp.read()).decode("utf-8", "replace")
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
        # A connection dropped instead of an answer (a huge body must get its 413) fails too.
        raise AssertionError(f"connection broken before an answer: {exc!r}") from None


async def check(bot: Bot, tracebacks: Captured, req: Req, canary: Canary | None = None) -> None:
    before = await row_counts(bot)
    last = await last_outbox_id(bot)
    status, text = await send(bot, req)
    assert status < 500, (status, text, req)
    if req.refused is not None:
        assert status == req.refused, (status, text, req)
    if req.accepted:
        assert status == 200, (status, text, req)
    after = await row_counts(bot)
    changed = {t: after[t] - before[t] for t in after if after[t] != before[t]}
    if status >= 400:
        assert not changed, ("a refused request wrote rows", changed, req)
        # The bot refuses with a reason code; aiohttp's own parser (a request line over 8190
        # bytes) quotes the line's first 100 characters back, which is aiohttp's to decide.
        assert REASON.fullmatch(text) or text.startswith("Got more than 8190 bytes"), ("not a reason", text)
    else:
        assert changed.get(InboundEvent.__tablename__, 0) <= 1, (changed, req)
        if req.echo is not None:
            assert text == req.echo
        elif req.method == "POST":
            assert text == "", ("a callback is acknowledged with an empty body", text)
        # The same request again (a replay, or WeCom's retry) adds nothing and answers alike.
        again, _ = await send(bot, req)
        assert again == status and await row_counts(bot) == after, ("a replay wrote rows", req)
    queued = await queued_since(bot, last)
    for marker in req.markers:
        assert not any(marker in q for q in queued), (marker, req)
        assert marker not in text
    if canary is not None:
        assert not canary.opened, (canary.opened, req)
    assert not tracebacks.bad, [r.getMessage() for r in tracebacks.bad]


async def hostile_run(bot: Bot, tracebacks: Captured, canary: Canary, data: st.DataObject) -> None:
    req = data.draw(hostile_request(bot.timestamp(), canary), label="request")
    await check(bot, tracebacks, req, canary)


@settings_for(150)
@given(data=st.data())
async def test_hostile_requests_never_5xx_never_write_never_trace(
    frozen_bot: Bot, tracebacks: Captured, canary: Canary, data: st.DataObject
) -> None:
    await hostile_run(frozen_bot, tracebacks, canary, data)


@pytest.mark.fuzz
@settings_for(10_000)
@given(data=st.data())
async def test_hostile_requests_long_run(
    frozen_bot: Bot, tracebacks: Captured, canary: Canary, data: st.DataObject
) -> None:
    await hostile_run(frozen_bot, tracebacks, canary, data)


# --- template-looking text in messages and form fields -----------------------------------------

REGISTRY = Registry([kernel, *ROUTERS])
ROLES = {p["userid"]: set(p.get("roles", ())) for p in RAW["people"]}


@st.composite
def template_text(draw: st.DrawFn) -> tuple[str, tuple[str, ...]]:
    """Text that evaluates to something else in some template language, and what it would become."""
    a, b = draw(st.integers(10007, 99991)), draw(st.integers(10007, 99991))
    product = str(a * b)
    text, evaluated = draw(
        st.sampled_from(
            [
                (f"{{{{{a}*{b}}}}}", product),  # {{a*b}}: Jinja2, Twig, Handlebars-alikes
                (f"{{{{ {a} * {b} }}}}", product),
                (f"${{{a}*{b}}}", product),  # ${a*b}: JS template literals, EL, Freemarker
                (f"#{{{a}*{b}}}", product),  # Ruby, Thymeleaf
                (f"<%= {a}*{b} %>", product),  # ERB, EJS
                (f"{{% set q = {a}*{b} %}}{{{{ q }}}}", product),
                ("{% for i in range(3) %}Qz{% endfor %}", "QzQzQz"),
                ('{{ "Wk" * 3 }}', "WkWkWk"),
                ("{{ self }}", "TemplateReference"),
                ("{{ ''.__class__.__mro__ }}", "<class"),
                ("{0.__class__}", "<class"),
                ("{{ cycler.__init__.__globals__ }}", "__builtins__"),
                ("{{ lipsum.__globals__ }}", "__builtins__"),
                ("%(x)s", ""),  # printf-style with a mapping: a KeyError if ever applied
                ("{0}", ""),  # str.format: an IndexError if ever applied
                ("{x!r:>10}", ""),
                ("%s%s%s%n", ""),
                ("{{", ""),
                ("{%", ""),
                ("{# comment", ""),
                ("{% raw %}", ""),
                ("{% endraw %}}}", ""),
            ]
        )
    )
    return text, ((evaluated,) if evaluated else ())


# Forms the example organisation accepts, with a slot ({}) wherever a member types free text.
FORMS = [
    ("zhaolei", "报修 地点:{} 设备:投影 描述:{}"),
    ("zhaolei", "报修 地点:302教室 设备:电脑 描述:{}"),
    ("zhangwei", "报修 {}"),
    ("zhanglei", "完成 #1 {}"),
    ("lihua", "转交 #1 许强 {}"),
    ("zhaolei", "投稿 标题:{} 正文:{}"),
    ("chenhao", "交办 给:张磊 内容:{} 截止:明天17:00"),
    ("zhaolei", "调监控 地点:{} 时间:昨天 下午2点到3点 原因:{}"),
    ("zhaolei", "评论 #1 {}"),
    ("chenhao", "驳回 #1 {}"),
    ("zhaolei", "活动服务 活动:{} 地点:本部礼堂 日期:明天 时间:14:00-16:00 类型:拍照 联系人:赵磊 电话:13800000000"),
    ("zhaolei", "借舞台 场地:本部礼堂 日期:下周五 时间:14:00-16:00 活动:{}"),
    ("zhaolei", "领电脑 用途:{} 数量:1 配置:{} 归还日期:下周五"),
    ("majun", "U盘申请 微机室:微机室1 事由:{}"),
    ("lihua", "资产登记 编号:PC-0901 类别:电脑 型号:{} 地点:{} 校区:本部 状态:在用 备注:{}"),
    ("zhaolei", "是"),  # a new form while one is open asks which to keep
    ("zhaolei", "取消"),
    ("chenhao", "是"),
    ("zhanglei", "接单 #1"),
]


@st.composite
def form_text(draw: st.DrawFn) -> tuple[str, str, tuple[str, ...]]:
    """(sender, text, evaluated markers): a command with template-looking field values, or bare text."""
    pieces: list[str] = []
    markers: list[str] = []

    def value() -> str:
        parts = []
        for _ in range(draw(st.integers(1, 3))):
            if draw(st.booleans()):
                text, evaluated = draw(template_text())
                markers.extend(evaluated)
                parts.append(text)
            else:
                parts.append(draw(st.sampled_from(["302教室", "投影", "明天 下午3点", "#1", "2", "好", "张磊", "x"])))
        return draw(st.sampled_from(["", " "])).join(parts)

    if draw(st.booleans()):  # a form that goes through, with free text where the user types it
        sender, form = draw(st.sampled_from(FORMS))
        return sender, form.format(*(value() for _ in range(form.count("{}")))), tuple(markers)
    command = draw(st.one_of(st.none(), st.sampled_from(REGISTRY.commands)))
    sender = draw(st.sampled_from(PEOPLE))
    if command is None:  # free text, or an answer to a question a previous example left open
        pieces.append(value())
    else:
        holders = [u for u in PEOPLE if ROLES[u] & set(command.roles)]
        if holders and draw(st.booleans()):
            sender = draw(st.sampled_from(holders))
        pieces.append(draw(st.sampled_from(command.aliases)))
        if command.default_field and draw(st.booleans()):
            pieces.append(value())
        for f in draw(st.lists(st.sampled_from(command.fields), unique=True)) if command.fields else []:
            pieces.append(f"{draw(st.sampled_from(f.labels))}{draw(st.sampled_from([':', '：', '=']))}{value()}")
    return sender, " ".join(pieces)[:2000], tuple(markers)


def cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@st.composite
def template_request(draw: st.DrawFn, now: int) -> Req:
    channel = draw(st.sampled_from(["app", "robot", "card"]))
    if channel == "card":  # a card's form fields: the button key, the task id, the selections
        sender = draw(st.sampled_from(PEOPLE))
        key, markers = draw(template_text())
        prefix = draw(st.sampled_from(["", "tk:1:", "ap:1:0:", "lp:1:"]))
        question, more = draw(template_text())
        option, most = draw(template_text())
        plain = (
            f"<xml><ToUserName>{cdata(CORP)}</ToUserName><FromUserName>{cdata(sender)}</FromUserName>"
            f"<CreateTime>{now - draw(st.integers(0, 10**6))}</CreateTime><MsgType>event</MsgType>"
            f"<Event>template_card_event</Event><EventKey>{cdata(prefix + key)}</EventKey>"
            f"<TaskId>{cdata(draw(template_text())[0])}</TaskId><CardType>vote_interaction</CardType>"
            f"<ResponseCode>{cdata(draw(template_text())[0])}</ResponseCode>"
            f"<SelectedItems><SelectedItem><QuestionKey>{cdata(question)}</QuestionKey>"
            f"<OptionIds><OptionId>{cdata(option)}</OptionId></OptionIds></SelectedItem></SelectedItems></xml>"
        )
        path, markers = "/wecom/callback", markers + more + most
    else:
        sender, text, markers = draw(form_text())
        if channel == "app":
            path = "/wecom/callback"
            plain = (
                f"<xml><ToUserName>{cdata(CORP)}</ToUserName><FromUserName>{cdata(sender)}</FromUserName>"
                f"<CreateTime>{now}</CreateTime><MsgType>text</MsgType><Content>{cdata(text)}</Content>"
                f"<MsgId>{next(_msg_ids)}</MsgId></xml>"
            )
        else:
            path = "/wecom/robot"
            group = draw(st.booleans())
            plain = json.dumps(
                {
                    "msgid": f"fz{next(_msg_ids)}",
                    "from": {"userid": sender},
                    "msgtype": "text",
                    "chattype": "group" if group else "single",
                    **({"chatid": "wrkSFfCgAAxxxx"} if group else {}),
                    "response_url": "http://127.0.0.1:9/resp",
                    "text": {"content": f"@信息中心助手 {text}" if group else text},
                },
                ensure_ascii=False,
            )
    enc = crypto_for(path).encrypt(plain)
    return Req(
        f"template:{channel}",
        path,
        "POST",
        signed(path, enc, str(now)),
        envelope(path, enc),
        markers=markers,
        accepted=True,
    )


async def template_run(bot: Bot, tracebacks: Captured, data: st.DataObject) -> None:
    req = data.draw(template_request(bot.timestamp()), label="request")
    await check(bot, tracebacks, req)


@settings_for(60)
@given(data=st.data())
async def test_template_looking_text_is_never_evaluated(
    frozen_bot: Bot, tracebacks: Captured, data: st.DataObject
) -> None:
    await template_run(frozen_bot, tracebacks, data)


@pytest.mark.fuzz
@settings_for(10_000)
@given(data=st.data())
async def test_template_looking_text_long_run(frozen_bot: Bot, tracebacks: Captured, data: st.DataObject) -> None:
    await template_run(frozen_bot, tracebacks, data)


# --- the same, case by case ---------------------------------------------------------------------


async def test_entities_bombs_and_external_references_are_refused_unexpanded_and_unread(
    frozen_bot: Bot, tracebacks: Captured, canary: Canary
) -> None:
    now = frozen_bot.timestamp()
    for name in bomb_documents(canary, ""):
        for where in ("envelope", "message"):
            for encoding in ENCODINGS:
                for declare in (False, True):
                    await check(
                        frozen_bot,
                        tracebacks,
                        xml_bomb(canary, "ENTITYTEXT42", name, where, encoding, declare, now),
                        canary,
                    )
    for depth in (1000, 100_000):  # the robot's JSON: nesting that exhausts the decoder's recursion
        for shape in ("array", "object"):
            for where in ("envelope", "message"):
                await check(frozen_bot, tracebacks, json_bomb(depth, shape, where, now))
    assert not canary.opened


async def test_huge_bodies_are_413_and_are_not_held_in_memory(frozen_bot: Bot, tracebacks: Captured) -> None:
    now = frozen_bot.timestamp()
    query = signed("/wecom/callback", "x", str(now))
    for path in PATHS:
        await check(frozen_bot, tracebacks, Req("huge", path, "POST", query, b"<" * (CAP - 1), 400))
        for chunked in (False, True):
            await check(
                frozen_bot, tracebacks, Req("huge", path, "POST", query, b"<" * (CAP + 1), 413, chunked=chunked)
            )
    chunk = b"A" * (64 * 1024)

    async def endless(n: int = 1024) -> AsyncIterator[bytes]:  # 64 MiB, the same chunk each time
        for _ in range(n):
            yield chunk

    tracemalloc.start()
    try:
        for headers in ({}, {"Content-Length": str(len(chunk) * 1024)}):
            async with frozen_bot.http.post(
                frozen_bot.url + "/wecom/callback", params=query, data=endless(), headers=headers
            ) as resp:
                assert resp.status == 413
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * CAP, f"a 64 MiB body raised the peak to {peak / CAP:.1f} MiB"
    assert await row_counts(frozen_bot) == await row_counts(frozen_bot)
    assert await frozen_bot.count(InboundEvent) == 0
    assert not tracebacks.bad


async def test_invalid_utf8_in_the_query_is_a_400(frozen_bot: Bot, tracebacks: Captured) -> None:
    """Percent-encoded bytes that are not UTF-8, in each parameter in turn, sent as they are."""
    bad = {"msg_signature": "%FF" * 40, "timestamp": "%C0%AF", "nonce": "%ED%A0%80", "echostr": "%FE%FF"}
    for path in PATHS:
        enc = crypto_for(path).encrypt("x")
        good = {**signed(path, enc, str(frozen_bot.timestamp())), "echostr": enc}
        for name in bad:
            query = "&".join(f"{k}={bad[k] if k == name else quote(v, safe='')}" for k, v in good.items())
            for method in ("GET", "POST"):
                before = await row_counts(frozen_bot)
                url = URL(f"{frozen_bot.url}{path}?{query}", encoded=True)
                async with frozen_bot.http.request(method, url, data=envelope(path, enc)) as resp:
                    status, text = resp.status, await resp.text()
                assert (status, await row_counts(frozen_bot)) == (400, before), (name, path, method, text)
                if method == "GET" or name != "echostr":  # a POST reads no echostr (it refuses "x" then)
                    assert text == f"bad_{name}", (name, path, method, text)
    assert not tracebacks.bad


async def test_a_replayed_callback_has_its_effects_once_and_an_old_one_is_refused(
    scene: Scene, clock: FakeClock
) -> None:
    sender = scene.bot.sender
    xml, _ = sender.text_xml("zhaolei", "报修 地点:302教室 设备:投影 描述:投影仪不亮")
    query, body = sender.envelope(xml)
    assert (await sender.post_raw(query, body)).status == 200
    await scene.bot.settle()
    counts, delivered = await row_counts(scene.bot), len(scene.emu.delivered)
    assert await scene.bot.count(Ticket) == 1
    # The very same request again, then the message encrypted and signed afresh (WeCom's retry),
    # then the first request again at the window's edge: acknowledged, and nothing happens twice.
    assert (await sender.post_raw(query, body)).status == 200
    assert (await sender.post_plain(xml)).status == 200
    clock.advance(WINDOW)
    assert (await sender.post_raw(query, body)).status == 200
    await scene.bot.settle()
    assert await row_counts(scene.bot) == counts and len(scene.emu.delivered) == delivered
    # Past the window the old request is refused before anything is read (WeCom's timestamp is
    # inside the signature: only the token's holder could sign it anew).
    clock.advance(1)
    posted = await sender.post_raw(query, body)
    assert (posted.status, posted.text) == (403, "stale_timestamp")
    assert await row_counts(scene.bot) == counts


async def test_template_text_in_a_report_is_shown_literally(scene: Scene) -> None:
    where, what = "{{7*7}}教室", "${7*7} %(x)s {0} {% for i in range(3) %}Qz{% endfor %} 不亮"
    reply = await scene.say("zhaolei", f"报修 地点:{where} 设备:投影 描述:{what}")
    assert "报修编号 #1" in reply and f"地点：{where}" in reply and f"描述：{what}" in reply
    card = scene.card("zhanglei")
    shown = {row["keyname"]: row["value"] for row in card["horizontal_content_list"]}
    assert shown["地点"] == where and what.startswith(shown["描述"])  # a card row is cut to its width
    lines = [line for line in reply.splitlines() if line.startswith(("地点", "描述"))] + list(shown.values())
    assert not any("49" in line or "QzQz" in line for line in lines)


async def test_a_malformed_number_for_assigning_an_activity_gets_its_explanation(scene: Scene) -> None:
    """Found by the long run: the block named no team and failed as 'team' is undefined."""
    reply = await scene.say("chenhao", "指派 编号:{{7*7}} 给:孙宇")
    assert "活动服务编号的格式是 #数字，例如：指派 #3 " in reply


@pytest.mark.parametrize("where", ["envelope", "message"])
async def test_a_dtd_in_utf16_is_refused_like_any_other(
    frozen_bot: Bot, tracebacks: Captured, canary: Canary, where: str
) -> None:
    """POST /wecom/callback with a valid signature and either
    - envelope: `<!DOCTYPE xml SYSTEM "file:///…/canary-secret.txt"><xml><ToUserName>…</ToUserName>
      <Encrypt>…a valid 帮助…</Encrypt></xml>` encoded as UTF-16 (with BOM); or
    - message: that DOCTYPE before a valid template_card_event plaintext encoded as UTF-16-BE without a
      BOM (which is also valid UTF-8, so the frame decodes).
    Both were once answered 200 and applied (the DTD check read the raw bytes, the parser switched to
    the declared encoding); the parser now reads WeCom's XML as UTF-8 only: 400, nothing recorded.
    """
    now = frozen_bot.timestamp()
    if where == "envelope":
        req = xml_bomb(canary, "ENTITYTEXT42", "external_dtd", "envelope", "utf-16", False, now)
    else:
        path = "/wecom/callback"
        doc = f'<!DOCTYPE xml SYSTEM "{canary.path.as_uri()}">' + xml_doc(
            [
                ("ToUserName", CORP),
                ("FromUserName", "zhaolei"),
                ("CreateTime", str(now)),
                ("MsgType", "event"),
                ("Event", "template_card_event"),
                ("EventKey", "tk:1:claim"),
                ("TaskId", "t1"),
            ]
        )
        msg, rid = doc.encode("utf-16-be"), CORP.encode()
        enc = seal(path, b"0" * 16 + struct.pack(">I", len(msg)) + msg + rid + pkcs7(20 + len(msg) + len(rid)))
        req = Req("utf16_dtd", path, "POST", signed(path, enc, str(now)), envelope(path, enc))
    req.refused = 400
    try:
        await check(frozen_bot, tracebacks, req, canary)
    finally:
        assert not canary.opened  # whatever the status, the external DTD is never read


async def test_over_long_request_line_is_a_4xx_without_traceback(frozen_bot: Bot, tracebacks: Captured) -> None:
    async with frozen_bot.http.get(frozen_bot.url + "/wecom/callback?" + "a=" + "x" * 20_000) as resp:
        assert 400 <= resp.status < 500
    assert not tracebacks.bad


def test_a_flood_of_refusals_from_one_source_is_summarised(caplog: pytest.LogCaptureFixture) -> None:

    now = [100.0]  # the log's own clock, moved by hand: a loaded machine cannot stretch the window
    refusals = RefusalLog(window=60, burst=3, monotonic=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="infodesk.http"):
        for _ in range(50):
            refusals.refused("10.0.0.9", "bad_signature", status=403)
            now[0] += 0.5
        refusals.refused("10.0.0.7", "bad_signature", status=403)  # another source is logged on its own
        now[0] += 36
        refusals.refused("10.0.0.9", "bad_signature", status=403)  # the window ended: a summary first
    events = [(r.getMessage(), getattr(r, "fields", {})) for r in caplog.records]
    assert [e for e, _ in events].count("callback_rejected") == 3 + 1 + 1
    [summary] = [f for e, f in events if e == "callback_rejected_summary"]
    assert summary["remote"] == "10.0.0.9" and summary["suppressed"] == 47
    assert all(r.levelno == logging.WARNING and not r.exc_info for r in caplog.records)
