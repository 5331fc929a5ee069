"""A configuration error never destroys the queue: it pauses delivery for its cause, the director
hears once when it appears and once when it clears, and delivery resumes by itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import select

from bot.app import delivery_pauses
from bot.appkeys import DISPATCHER, PIPELINE
from bot.clock import FakeClock
from bot.emulator.server import Emulator
from bot.outbox import Dispatcher, enqueue
from bot.pauses import Pauses
from bot.wecom_api import WeComAPI
from storage.models import DeliveryPause, OutboxStatus
from tests.conftest import Bot, make_config, start_bot
from tests.test_outbox import drain, queue_card, queue_texts, rows

DIRECTOR = "chenhao"  # the example organisation's only director


@pytest.fixture
async def quiet_bot(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> AsyncIterator[Bot]:
    """A bot whose dispatcher runs only when the test drains, on a clock shared with the emulator."""
    emulator.clock = lambda: clock.now().timestamp()
    b = await start_bot(make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False)
    yield b
    await b.stop()


async def healthz(bot: Bot) -> tuple[int, dict[str, object]]:
    async with bot.http.get(f"{bot.url}/healthz") as resp:
        return resp.status, await resp.json()


async def pauses(bot: Bot) -> list[DeliveryPause]:
    async with bot.app[PIPELINE].sessions() as s:
        return list((await s.execute(select(DeliveryPause).order_by(DeliveryPause.id))).scalars())


def sends(emulator: Emulator) -> int:
    return len(emulator.calls_to("message/send"))


def director_texts(emulator: Emulator) -> list[str]:
    return emulator.texts_to(DIRECTOR)


async def queued_to(bot: Bot, userid: str) -> list[str]:
    return [r.payload["text"]["content"] for r in await rows(bot) if r.recipient == f"user:{userid}"]


async def test_untrusted_ip_pauses_the_queue_and_delivery_resumes_in_order_when_fixed(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    emulator.block("message/send", 60020)
    await queue_texts(quiet_bot, [("zhaolei", "一"), ("zhaolei", "二"), ("majun", "三")])
    await drain(quiet_bot)
    assert sends(emulator) == 2  # each member's head was tried once; then the cause was known

    # Nothing failed: every row waits, in order, and the director's notice waits with them.
    assert {r.status for r in await rows(quiet_bot)} == {OutboxStatus.PENDING}
    [notice] = await queued_to(quiet_bot, DIRECTOR)
    assert "企业可信 IP" in notice and "127.0.0.1" in notice and "60020" in notice
    status, health = await healthz(quiet_bot)
    assert status == 200 and health["status"] == "degraded"
    [pause] = health["delivery_pauses"]  # type: ignore[misc]
    assert (pause["cause"], pause["errcode"], pause["held"]) == ("app", 60020, 4)
    assert pause["since"] == clock.now().isoformat() and pause["next_probe"]
    assert health["outbox"]["pending"] == 4 and health["outbox"]["failed"] == 0  # type: ignore[index]

    # One probe per interval: 30 s, then 60 s, however often the dispatcher looks.
    clock.advance(29)
    await drain(quiet_bot)
    assert sends(emulator) == 2
    clock.advance(1)
    await drain(quiet_bot)
    assert sends(emulator) == 3
    clock.advance(59)
    await drain(quiet_bot)
    assert sends(emulator) == 3
    clock.advance(1)
    await drain(quiet_bot)
    assert sends(emulator) == 4
    assert len(await queued_to(quiet_bot, DIRECTOR)) == 1  # told once, not per probe

    emulator.unblock("message/send")
    clock.advance(120)
    await drain(quiet_bot, 10)
    assert emulator.texts_to("zhaolei") == ["一", "二"] and emulator.texts_to("majun") == ["三"]
    appeared, cleared = director_texts(emulator)
    assert appeared == notice
    assert "消息恢复发送" in cleared and "一起送到" in cleared  # its own notice was held too
    assert emulator.dropped == []
    assert {r.status for r in await rows(quiet_bot)} == {OutboxStatus.SENT}
    assert sends(emulator) == 4 + 5  # each of the five delivered exactly once after the probes
    status, health = await healthz(quiet_bot)
    assert status == 200 and health["status"] == "ok" and health["delivery_pauses"] == []
    [p] = await pauses(quiet_bot)
    assert p.cleared_at is not None and p.notified


async def test_a_configured_member_missing_in_wecom_pauses_only_their_messages(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    assert emulator.known_users is not None
    emulator.known_users.discard("zhaolei")  # in the config, not (yet) in WeCom's directory
    await queue_texts(quiet_bot, [("zhaolei", "一"), ("majun", "三"), ("ghost_user", "四"), ("zhaolei", "二")])
    await drain(quiet_bot)
    assert emulator.texts_to("majun") == ["三"]
    by_text = {r.payload["text"]["content"]: r for r in await rows(quiet_bot) if r.recipient != f"user:{DIRECTOR}"}
    assert (by_text["四"].status, by_text["四"].errcode) == (OutboxStatus.FAILED, 81013)  # nobody configured it
    assert by_text["一"].status == by_text["二"].status == OutboxStatus.PENDING
    [notice] = director_texts(emulator)  # the director is not held: told at once
    assert "赵磊" in notice and "zhaolei" in notice and "通讯录" in notice
    [pause] = (await healthz(quiet_bot))[1]["delivery_pauses"]  # type: ignore[misc]
    assert (pause["cause"], pause["errcode"], pause["held"]) == ("user:zhaolei", 81013, 2)

    await queue_texts(quiet_bot, [("majun", "五")])  # others keep flowing
    clock.advance(30)
    await drain(quiet_bot)
    assert emulator.texts_to("majun") == ["三", "五"]
    assert len([c for c in emulator.calls_to("message/send") if c.body["touser"] == "zhaolei"]) == 2  # 1 probe

    emulator.known_users.add("zhaolei")
    clock.advance(60)
    await drain(quiet_bot)
    assert emulator.texts_to("zhaolei") == ["一", "二"]
    _, cleared = director_texts(emulator)
    assert "消息恢复发送" in cleared and "赵磊" in cleared and "一起送到" not in cleared
    assert (await healthz(quiet_bot))[1]["delivery_pauses"] == []


async def test_a_restarted_bot_remembers_the_pause_and_tells_the_director_once(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    emulator.clock = lambda: clock.now().timestamp()
    config = make_config(emulator.base_url, db_url)
    first = await start_bot(config, http, clock=clock, run_dispatcher=False)
    emulator.block("message/send", 60020)
    await queue_texts(first, [("zhaolei", "重启前")])
    await drain(first)
    [before] = await pauses(first)
    await first.stop()

    clock.advance(10)
    second = await start_bot(config, http, clock=clock, run_dispatcher=False)
    try:
        [pause] = (await healthz(second))[1]["delivery_pauses"]  # type: ignore[misc]
        assert (pause["cause"], pause["since"]) == ("app", before.since.isoformat())
        await drain(second)
        assert sends(emulator) == 1  # still paused; its next probe is not due
        await second.app[DISPATCHER].probe_pauses_now()  # what a starting dispatcher does first
        await drain(second)
        assert sends(emulator) == 2  # one probe at start: an admin may have fixed the config
        emulator.unblock()
        clock.advance(60)
        await drain(second)
        assert emulator.texts_to("zhaolei") == ["重启前"]
        appeared, cleared = director_texts(emulator)
        assert "消息暂停发送" in appeared and "消息恢复发送" in cleared  # one of each, across both processes
        [p] = await pauses(second)
        assert p.cleared_at is not None
    finally:
        await second.stop()


async def test_two_processes_probe_once_per_interval(
    quiet_bot: Bot, emulator: Emulator, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    emulator.block("message/send", 60020)
    users = [u for u in sorted(emulator.known_users or []) if u != DIRECTOR][:6]
    await queue_texts(quiet_bot, [(u, f"{u}-{i}") for i in range(2) for u in users])
    cfg = quiet_bot.config
    sessions = quiet_bot.app[PIPELINE].sessions
    api = WeComAPI(
        http,
        api_base=cfg.wecom.api_base,
        corp_id=cfg.wecom.corp_id,
        secret=cfg.wecom.secret.get_secret_value(),
        agent_id=cfg.wecom.agent_id,
        clock=clock,
    )
    a = quiet_bot.app[DISPATCHER]
    b = Dispatcher(sessions, api, clock, cfg.outbox, pauses=delivery_pauses(quiet_bot.app))
    await a.drain_once()
    first = sends(emulator)
    assert first == len(users)
    for _ in range(3):
        clock.advance(30)
        for _ in range(3):
            await asyncio.gather(a.drain_once(), b.drain_once())
    # Probes at +30 s and +90 s (the interval doubled to 60 s), never two at once.
    assert sends(emulator) == first + 2
    emulator.unblock()
    clock.advance(120)
    for _ in range(6):
        await asyncio.gather(a.drain_once(), b.drain_once())
    for u in users:
        assert emulator.texts_to(u) == [f"{u}-0", f"{u}-1"]
    assert len(director_texts(emulator)) == 2


async def test_a_forbidden_api_pauses_only_the_rows_that_call_it(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    emulator.block("message/send", 48002)
    await queue_texts(quiet_bot, [("zhaolei", "应用消息")])
    async with quiet_bot.app[PIPELINE].sessions() as s, s.begin():
        enqueue(s, clock.now(), "webhook:alumni", "webhook", {"msgtype": "text", "text": {"content": "群机器人"}})
    await drain(quiet_bot)
    assert [d.body["text"]["content"] for d in emulator.delivered if d.to.startswith("webhook:")] == ["群机器人"]
    [pause] = await pauses(quiet_bot)
    assert (pause.cause, pause.errcode) == ("api:message/send", 48002)
    [notice] = await queued_to(quiet_bot, DIRECTOR)
    assert "message/send" in notice and "48002" in notice
    emulator.unblock()
    clock.advance(30)
    await drain(quiet_bot)
    assert emulator.texts_to("zhaolei") == ["应用消息"] and len(director_texts(emulator)) == 2


async def test_wrong_secret_pauses_everything_until_it_is_right_again(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    """The secret was reset in the console: gettoken answers 40001, a refresh cannot help."""
    secret = emulator.secret
    emulator.secret = "reset-in-the-console"
    emulator.expire_tokens()
    await queue_texts(quiet_bot, [("zhaolei", "一"), ("majun", "二")])
    await drain(quiet_bot)
    [pause] = await pauses(quiet_bot)
    assert (pause.cause, pause.errcode) == ("app", 40001)  # 42001, refreshed, and gettoken refused
    assert {r.status for r in await rows(quiet_bot)} == {OutboxStatus.PENDING}
    [notice] = await queued_to(quiet_bot, DIRECTOR)
    assert "Secret" in notice and "wecom.secret" in notice

    emulator.block("message/send", 60020)  # the reason changes while paused: the director hears it
    emulator.secret = secret
    clock.advance(30)
    await drain(quiet_bot)
    [pause] = await pauses(quiet_bot)
    assert pause.errcode == 60020 and pause.cleared_at is None
    assert "原因有变" in (await queued_to(quiet_bot, DIRECTOR))[1]

    emulator.unblock()
    clock.advance(60)
    await drain(quiet_bot)
    assert emulator.texts_to("zhaolei") == ["一"] and emulator.texts_to("majun") == ["二"]
    assert [t[:7] for t in director_texts(emulator)] == ["【消息暂停发送", "【消息暂停发送", "【消息恢复发送"]


async def test_a_probe_refused_for_its_own_content_clears_an_app_wide_pause(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    """A bad card passed WeCom's IP check to be refused: the IP is trusted again."""
    emulator.block("message/send", 60020)
    card = {"card_type": "button_interaction", "main_title": {"title": "x"}, "task_id": "bad id", "button_list": []}
    await queue_card(quiet_bot, card)
    await queue_texts(quiet_bot, [("lihua", "卡片之后")])
    await drain(quiet_bot)
    emulator.unblock()
    clock.advance(30)
    await drain(quiet_bot)
    bad, after, *_ = await rows(quiet_bot)
    assert (bad.status, bad.errcode) == (OutboxStatus.FAILED, 42014)
    assert after.status == OutboxStatus.SENT and emulator.texts_to("lihua") == ["卡片之后"]
    assert (await pauses(quiet_bot))[0].cleared_at is not None


async def test_rows_of_other_kinds_and_unknown_users_still_fail_as_before(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    emulator.inject_errcodes("message/send", 40058)
    await queue_texts(quiet_bot, [("zhaolei", "坏请求")])
    await drain(quiet_bot)
    [row] = await rows(quiet_bot)
    assert (row.status, row.errcode) == (OutboxStatus.FAILED, 40058)
    assert await pauses(quiet_bot) == []


async def test_a_member_taken_out_of_the_config_is_no_longer_held(
    quiet_bot: Bot, emulator: Emulator, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """The userid was a typo: once the config no longer lists it, its rows fail like any unknown
    address instead of waiting for a member who will never exist."""
    assert emulator.known_users is not None
    emulator.known_users.discard("zhaolei")
    await queue_texts(quiet_bot, [("zhaolei", "一")])
    await drain(quiet_bot)
    assert [p.cause for p in await pauses(quiet_bot)] == ["user:zhaolei"]
    members = {p.userid for p in quiet_bot.config.people} - {"zhaolei"}
    cfg = quiet_bot.config
    api = WeComAPI(
        http,
        api_base=cfg.wecom.api_base,
        corp_id=cfg.wecom.corp_id,
        secret=cfg.wecom.secret.get_secret_value(),
        agent_id=cfg.wecom.agent_id,
        clock=clock,
    )
    restarted = Dispatcher(quiet_bot.app[PIPELINE].sessions, api, clock, cfg.outbox, pauses=Pauses(members=members))
    await restarted.probe_pauses_now()
    for _ in range(3):
        await restarted.drain_once()
    [row] = [r for r in await rows(quiet_bot) if r.recipient == "user:zhaolei"]
    assert (row.status, row.errcode) == (OutboxStatus.FAILED, 81013)
    assert (await healthz(quiet_bot))[1]["delivery_pauses"] == []
