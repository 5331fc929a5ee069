"""The app callback over real HTTP: official vectors, dedupe, hostile input, health."""

from __future__ import annotations

import base64
from datetime import timedelta

import aiohttp
import pytest

from bot.appkeys import CLOCK
from bot.clock import FakeClock
from bot.crypto import WeComCrypto
from bot.emulator.server import Emulator
from storage.models import Conversation, InboundEvent, OutboxMessage, Ticket
from tests.conftest import WALL_START, Bot, make_config, start_bot
from tests.test_crypto import A_ECHO, A_POST, B_ECHO

A_KEYS = {
    "corp_id": "wx5823bf96d3bd56c7",
    "token": "QDG6eK",
    "encoding_aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
}
B_KEYS = {
    "corp_id": "ww1436e0e65a779aee",
    "token": "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
    "encoding_aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
}
B_POST_BODY = (
    "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n<Encrypt><![CDATA[Kl7kjoSf6DMD1zh7rtrHjFaDa"
    "pSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hG"
    "rW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65H"
    "HL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAy"
    "h+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+]]></Encrypt>\n<AgentID><![CDATA[1000002]]></AgentID>\n</xml>"
)
A_POST_BODY = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA["
    + A_POST
    + "]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
)


async def _vector_bot(
    keys: dict[str, str], clock: FakeClock, db_url: str, http: aiohttp.ClientSession, agent_id: int
) -> tuple[Bot, Emulator]:
    emu = Emulator(
        corp_id=keys["corp_id"], secret="vector-secret", agent_id=agent_id, clock=lambda: clock.now().timestamp()
    )
    await emu.start()
    cfg = make_config(emu.base_url, db_url, wecom={**keys, "secret": "vector-secret", "agent_id": agent_id})
    return await start_bot(cfg, http, clock=clock), emu


async def test_official_vector_a_get_and_post(db_url: str, http: aiohttp.ClientSession) -> None:
    clock = FakeClock(1409659813)
    bot, emu = await _vector_bot(A_KEYS, clock, db_url, http, agent_id=218)
    try:
        async with http.get(
            bot.url + "/wecom/callback",
            params={
                "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
                "timestamp": "1409659589",
                "nonce": "263014780",
                "echostr": A_ECHO,
            },
        ) as resp:
            assert resp.status == 200
            assert await resp.text() == "1616140317555161061"
        async with http.post(
            bot.url + "/wecom/callback",
            data=A_POST_BODY,
            params={
                "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
                "timestamp": "1409659813",
                "nonce": "1372623149",
            },
        ) as resp:
            assert resp.status == 200
            assert await resp.text() == ""
        assert (
            await bot.count(
                InboundEvent, InboundEvent.dedupe_key == "msg:4561255354251345929", InboundEvent.from_user == "mycreate"
            )
            == 1
        )
        await bot.settle()
        # 'mycreate' (the official vector's sender) is not in the organisation: one clear reply,
        # through message/send, saying whom to ask.
        replies = emu.texts_to("mycreate")
        assert len(replies) == 1 and "不在信息中心的人员名单里" in replies[0] and "陈浩" in replies[0]
    finally:
        await bot.stop()
        await emu.stop()


async def test_official_vector_b_get_and_post(db_url: str, http: aiohttp.ClientSession) -> None:
    clock = FakeClock(1476416373)
    bot, emu = await _vector_bot(B_KEYS, clock, db_url, http, agent_id=1000002)
    try:
        async with http.get(
            bot.url + "/wecom/callback",
            params={
                "msg_signature": "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
                "timestamp": "1476416373",
                "nonce": "47744683",
                "echostr": B_ECHO,
            },
        ) as resp:
            assert (resp.status, await resp.text()) == (200, "1288432023552776189")
        clock.advance(1476422779 - 1476416373)
        async with http.post(
            bot.url + "/wecom/callback",
            data=B_POST_BODY,
            params={
                "msg_signature": "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
                "timestamp": "1476422779",
                "nonce": "1597212914",
            },
        ) as resp:
            assert resp.status == 200
        assert (
            await bot.count(
                InboundEvent, InboundEvent.dedupe_key == "msg:1456453720", InboundEvent.from_user == "ChenJiaShun"
            )
            == 1
        )
        await bot.settle()
        assert "不在信息中心的人员名单里" in emu.texts_to("ChenJiaShun")[0]  # not in the organisation either
    finally:
        await bot.stop()
        await emu.stop()


async def test_vector_outside_timestamp_window_is_refused(db_url: str, http: aiohttp.ClientSession) -> None:
    bot, emu = await _vector_bot(A_KEYS, FakeClock(1409659813 + 301), db_url, http, agent_id=218)
    try:
        async with http.post(
            bot.url + "/wecom/callback",
            data=A_POST_BODY,
            params={
                "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
                "timestamp": "1409659813",
                "nonce": "1372623149",
            },
        ) as resp:
            assert resp.status == 403
        assert await bot.count(InboundEvent) == 0
    finally:
        await bot.stop()
        await emu.stop()


async def test_callback_reaches_emulator_as_message_send(bot: Bot, emulator: Emulator) -> None:
    posted = await bot.sender.text("zhaolei", "报修 地点:302教室 设备:投影 描述:投影仪不亮")
    assert posted.status == 200
    await bot.settle()
    sends = [c for c in emulator.calls_to("message/send") if c.errcode == 0 and c.body["touser"] == "zhaolei"]
    assert len(sends) == 1
    assert sends[0].body["agentid"] == 1000002
    assert "编号 #1" in sends[0].body["text"]["content"]


async def test_same_callback_three_times_has_one_effect(bot: Bot, emulator: Emulator) -> None:
    xml, _ = bot.sender.text_xml("zhaolei", "报修 地点:302教室 设备:投影 描述:投影仪不亮")
    query, body = bot.sender.envelope(xml)
    statuses = [(await bot.sender.post_raw(query, body)).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    await bot.settle()
    assert await bot.count(Ticket) == 1
    assert await bot.count(InboundEvent) == 1
    assert len(emulator.texts_to("zhaolei")) == 1


async def test_repeated_events_are_deduped_by_sender_time_and_key(bot: Bot) -> None:
    now = bot.timestamp()
    for _ in range(2):
        assert (await bot.sender.event("zhaolei", "enter_agent", create_time=now)).status == 200
        assert (await bot.sender.card_click("majun", "task_1", "approve:1", "rc1", create_time=now)).status == 200
    assert (await bot.sender.card_click("majun", "task_1", "reject:1", "rc2", create_time=now)).status == 200
    assert await bot.count(InboundEvent) == 3


def _hostile_cases(bot: Bot) -> list[tuple[str, str, dict[str, str], bytes, int]]:
    s = bot.sender
    xml, _ = s.text_xml("zhaolei", "报修 地点:1 设备:电脑 描述:坏了")
    good_q, good_body = s.envelope(xml)
    other_corp = WeComCrypto(
        bot.config.wecom.token.get_secret_value(), bot.config.wecom.encoding_aes_key.get_secret_value(), "ww_other_corp"
    )

    def signed(encrypt: str, to: str | None = None, ts: str | None = None) -> tuple[dict[str, str], bytes]:
        to = to or bot.config.wecom.corp_id
        return s.signed_query(
            encrypt, ts
        ), f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()

    cases: list[tuple[str, str, dict[str, str], bytes, int]] = []
    cases.append(("bad signature", "POST", {**good_q, "msg_signature": "0" * 40}, good_body.encode(), 403))
    cases.append(
        (
            "missing signature",
            "POST",
            {k: v for k, v in good_q.items() if k != "msg_signature"},
            good_body.encode(),
            400,
        )
    )
    # Stale and future relative to the bot's clock, not the machine's.
    cases.append(("stale timestamp", "POST", *signed(s.crypto.encrypt(xml), ts=str(bot.timestamp(-1000))), 403))
    cases.append(("future timestamp", "POST", *signed(s.crypto.encrypt(xml), ts=str(bot.timestamp(+1000))), 403))
    cases.append(("non-numeric timestamp", "POST", {**good_q, "timestamp": "abc"}, good_body.encode(), 400))
    cases.append(("bad base64", "POST", *signed("@@@not-base64@@@"), 400))
    cases.append(("bad padding", "POST", *signed(base64.b64encode(b"\x00" * 64).decode()), 400))
    cases.append(("truncated ciphertext", "POST", *signed(base64.b64encode(b"\x01" * 20).decode()), 400))
    cases.append(("wrong receive id", "POST", *signed(other_corp.encrypt(xml)), 400))
    cases.append(("wrong ToUserName", "POST", *signed(s.crypto.encrypt(xml), to="ww_other_corp"), 400))
    cases.append(("malformed envelope", "POST", good_q, b"<xml><Encrypt>abc", 400))
    cases.append(("not xml at all", "POST", good_q, b"\xff\xfe garbage", 400))
    cases.append(("no Encrypt", "POST", good_q, b"<xml><ToUserName>x</ToUserName></xml>", 400))
    dtd = b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><Encrypt>&x;</Encrypt></xml>'
    cases.append(("envelope with external entity", "POST", good_q, dtd, 400))
    bomb = (
        b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b"<xml><Encrypt>&lol2;</Encrypt></xml>"
    )
    cases.append(("billion laughs", "POST", good_q, bomb, 400))
    deep = b"<xml>" + b"<a>" * 5000 + b"</a>" * 5000 + b"<Encrypt>x</Encrypt></xml>"  # before the signature
    cases.append(("envelope nested 5,000 deep", "POST", good_q, deep, 400))
    deep_plain = "<xml><FromUserName>u</FromUserName>" + "<a>" * 5000 + "</a>" * 5000 + "</xml>"
    cases.append(("plaintext nested 5,000 deep", "POST", *signed(s.crypto.encrypt(deep_plain)), 400))
    inner_dtd = '<!DOCTYPE xml [<!ENTITY a "b">]><xml><FromUserName>&a;</FromUserName></xml>'
    cases.append(("plaintext with entity", "POST", *signed(s.crypto.encrypt(inner_dtd)), 400))
    cases.append(("plaintext not xml", "POST", *signed(s.crypto.encrypt("hello there")), 400))
    cases.append(
        (
            "plaintext missing sender",
            "POST",
            *signed(s.crypto.encrypt("<xml><MsgType>text</MsgType><CreateTime>1</CreateTime></xml>")),
            400,
        )
    )
    big = b"<xml><Encrypt>" + b"A" * (1024 * 1024 + 10) + b"</Encrypt></xml>"
    cases.append(("body over 1 MiB", "POST", good_q, big, 413))
    echo = s.crypto.encrypt("12345")
    cases.append(
        ("GET bad signature", "GET", {**s.signed_query(echo), "echostr": echo, "msg_signature": "f" * 40}, b"", 403)
    )
    cases.append(("GET missing echostr", "GET", s.signed_query(echo), b"", 400))
    return cases


async def test_hostile_inputs_get_4xx_and_change_nothing(bot: Bot, emulator: Emulator) -> None:
    results = {}
    for name, method, query, body, _ in _hostile_cases(bot):
        async with bot.http.request(method, bot.url + "/wecom/callback", params=query, data=body or None) as resp:
            results[name] = resp.status
    expected = {name: status for name, _, _, _, status in _hostile_cases(bot)}
    assert results == expected
    for model in (InboundEvent, OutboxMessage, Ticket, Conversation):
        assert await bot.count(model) == 0, model.__name__
    # The process is unaffected: a good message still works.
    assert (await bot.sender.text("zhaolei", "帮助")).status == 200
    await bot.settle()
    assert len(emulator.texts_to("zhaolei")) == 1


async def test_bot_runs_on_the_injected_clock_not_the_machines(bot: Bot, emulator: Emulator) -> None:
    """Whatever day CI runs on, the bot's date is WALL_START's, and WeCom and the sender share its clock."""
    assert bot.app[CLOCK] is bot.clock
    assert timedelta(0) <= bot.clock.now() - WALL_START < timedelta(minutes=10)
    assert abs(emulator.clock() - bot.clock.now().timestamp()) < 1
    assert abs(bot.sender.clock() - bot.clock.now().timestamp()) < 1


async def test_healthz_reports_database_and_backlog(bot: Bot) -> None:
    health = await bot.health()
    assert health["status"] == "ok" and health["database"] == "ok"
    assert health["outbox"]["pending"] == 0 and health["outbox"]["failed"] == 0
    assert health["overdue_timers"] == 0


@pytest.mark.parametrize("path", ["/wecom/callback"])
async def test_url_verification_round_trip(bot: Bot, path: str) -> None:
    posted = await bot.sender.verify_url("8876543210987654321")
    assert (posted.status, posted.text) == (200, "8876543210987654321")


async def test_concurrent_deliveries_of_one_callback_apply_once(bot: Bot, emulator: Emulator) -> None:
    import asyncio

    xml, _ = bot.sender.text_xml("majun", "报修 地点:机房 设备:电脑 描述:蓝屏")
    query, body = bot.sender.envelope(xml)
    statuses = await asyncio.gather(*(bot.sender.post_raw(query, body) for _ in range(6)))
    assert [p.status for p in statuses] == [200] * 6
    await bot.settle()
    assert await bot.count(Ticket) == 1
    assert len(emulator.texts_to("majun")) == 1


async def test_unknown_message_types_are_acknowledged(bot: Bot) -> None:
    xml = (
        "<xml><ToUserName><![CDATA[ww_demo_corp]]></ToUserName><FromUserName><![CDATA[zhaolei]]></FromUserName>"
        f"<CreateTime>{bot.timestamp()}</CreateTime><MsgType><![CDATA[location]]></MsgType>"
        "<Location_X>23.1</Location_X><Location_Y>113.3</Location_Y><MsgId>555001</MsgId><AgentID>1000002</AgentID></xml>"
    )
    assert (await bot.sender.post_plain(xml)).status == 200
    assert await bot.count(InboundEvent, InboundEvent.dedupe_key == "msg:555001") == 1
    assert await bot.count(OutboxMessage) == 0
