"""Hostile and odd requests at the HTTP layer: never a 5xx, nothing written when refused, no traceback.

Both callback paths (app XML, smart-robot JSON), GET and POST, on every engine the suite runs.
The default run tries a few hundred requests; `pytest -m fuzz` runs 10,000 per path
(set INFODESK_FUZZ_EXAMPLES to change it).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.crypto import WeComCrypto
from bot.transport import RefusalLog
from storage.models import InboundEvent
from tests.conftest import Bot, example_raw

ODD_DIGITS = "0123456789²³¹①②③٣۴߅໕０１２"  # isdigit() is True for all of these; int() is not for some
REQUEST_LOGGERS = ("infodesk.http", "infodesk.pipeline", "infodesk.robot", "infodesk.cards", "aiohttp")


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


def settings_for(default: int) -> settings:
    return settings(
        max_examples=int(os.environ.get("INFODESK_FUZZ_EXAMPLES", default)),
        deadline=None,
        derandomize=default < 1000,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


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
    """A signed, well-encrypted message whose fields may be anything."""
    fields: list[tuple[str, str]] = [
        ("ToUserName", "ww_demo_corp"),
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


@st.composite
def hostile_request(draw: st.DrawFn) -> tuple[str, str, str, dict[str, str], bytes, str]:
    """(what, path, method, query, body, plaintext kind) for one request."""
    path = draw(st.sampled_from(["/wecom/callback", "/wecom/robot"]))
    method = draw(st.sampled_from(["GET", "POST"]))
    what = draw(st.sampled_from(["unsigned", "signed"] if method == "POST" else ["unsigned", "signed_get"]))
    query = {
        "msg_signature": draw(st.one_of(st.text(alphabet="0123456789abcdef", min_size=40, max_size=40), odd_text)),
        "timestamp": draw(odd_number),
        "nonce": draw(st.one_of(st.text(alphabet="0123456789", min_size=1, max_size=10), odd_text)),
    }
    if method == "GET":
        query["echostr"] = draw(odd_text)
    for key in draw(st.sets(st.sampled_from(sorted(query)), max_size=2)):
        del query[key]
    body = draw(st.one_of(st.binary(max_size=200), st.just(b"<xml><Encrypt>abc</Encrypt></xml>")))
    plain = draw(plaintext_xml()) if path == "/wecom/callback" else draw(robot_json())
    return what, path, method, query, body, plain


async def send(bot: Bot, request: tuple[str, str, str, dict[str, str], bytes, str]) -> int:
    what, path, method, query, body, plain = request
    raw = example_raw()
    keys = raw["wecom"] if path == "/wecom/callback" else raw["robot"]
    crypto = WeComCrypto(
        keys["token"], keys["encoding_aes_key"], raw["wecom"]["corp_id"] if path == "/wecom/callback" else ""
    )
    if what != "unsigned":
        enc = crypto.encrypt(plain)
        ts, nonce = str(int(bot.sender.clock())), "12345"
        query = {"msg_signature": crypto.sign(ts, nonce, enc), "timestamp": ts, "nonce": nonce}
        if what == "signed_get":
            query["echostr"] = enc
        elif path == "/wecom/callback":
            corp = raw["wecom"]["corp_id"]
            body = (
                f"<xml><ToUserName><![CDATA[{corp}]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>".encode()
            )
        else:
            body = json.dumps({"encrypt": enc}).encode()
    async with bot.http.request(method, bot.url + path, params=query, data=body if method == "POST" else None) as resp:
        await resp.read()
        return resp.status


async def check(bot: Bot, tracebacks: Captured, request: tuple[str, str, str, dict[str, str], bytes, str]) -> None:
    before = await bot.count(InboundEvent)
    status = await send(bot, request)
    assert status < 500, (status, request)
    after = await bot.count(InboundEvent)
    if status >= 400:
        assert after == before, ("a refused request wrote a row", request)
    else:
        assert after - before <= 1
    assert not tracebacks.bad, [r.getMessage() for r in tracebacks.bad]


@settings_for(150)
@given(request=hostile_request())
async def test_hostile_requests_never_5xx_never_write_never_trace(bot: Bot, tracebacks: Captured, request: Any) -> None:
    await check(bot, tracebacks, request)


@pytest.mark.fuzz
@settings_for(10_000)
@given(request=hostile_request())
async def test_hostile_requests_long_run(bot: Bot, tracebacks: Captured, request: Any) -> None:
    await check(bot, tracebacks, request)


async def test_over_long_request_line_is_a_4xx_without_traceback(bot: Bot, tracebacks: Captured) -> None:
    async with bot.http.get(bot.url + "/wecom/callback?" + "a=" + "x" * 20_000) as resp:
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
