"""Outbound delivery: retries, token refresh, permanent failures, limits, order, replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.appkeys import API, DISPATCHER, PIPELINE
from bot.clock import FakeClock
from bot.emulator.server import Emulator
from bot.outbox import Dispatcher, enqueue, message_request
from bot.wecom_api import WeComAPI, WeComError
from infodesk.app import TIMERS
from storage.models import OutboxMessage, OutboxStatus
from tests.conftest import Bot, make_config, start_bot


async def queue_texts(bot: Bot, items: list[tuple[str, str]]) -> None:
    """Commit outbound text messages as a handler would (one transaction)."""
    now = bot.app[DISPATCHER]._clock.now()
    async with bot.app[PIPELINE].sessions() as s, s.begin():
        for userid, text in items:
            enqueue(
                s, now, f"user:{userid}", "message", {"touser": userid, "msgtype": "text", "text": {"content": text}}
            )


async def queue_card(bot: Bot, card: dict[str, Any], to: str = "lihua") -> None:
    """Commit a template card to `to` as a handler would."""
    now = bot.app[DISPATCHER]._clock.now()
    async with bot.app[PIPELINE].sessions() as s, s.begin():
        enqueue(s, now, f"user:{to}", "message", {"touser": to, "msgtype": "template_card", "template_card": card})


async def queue_claim_card_and_its_update(bot: Bot, task_id: str) -> None:
    """A 接单 card sent to lihua (drained), then its update (queued, not yet sent)."""
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "报修 #1"},
        "task_id": task_id,
        "button_list": [{"text": "接单", "style": 1, "key": "tk:1:claim"}],
    }
    await queue_card(bot, card)
    await drain(bot)
    [sent] = await rows(bot)
    update = {"userids": ["lihua"], "response_code": sent.result["response_code"], "button": {"replace_name": "已接单"}}
    async with bot.app[PIPELINE].sessions() as s, s.begin():
        enqueue(s, bot.app[DISPATCHER]._clock.now(), "user:lihua", "update_card", update)


async def rows(bot: Bot) -> list[OutboxMessage]:
    async with bot.app[PIPELINE].sessions() as s:
        return list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def drain(bot: Bot, times: int = 5) -> None:
    for _ in range(times):
        await bot.app[DISPATCHER].drain_once()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 25, 1, 0, tzinfo=UTC))


@pytest.fixture
async def quiet_bot(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> AsyncIterator[Bot]:
    """A bot whose dispatcher runs only when the test drains, on a clock shared with the emulator."""
    emulator.clock = lambda: clock.now().timestamp()
    config = make_config(emulator.base_url, db_url, outbox={"request_timeout_seconds": 2})  # timeouts tested
    b = await start_bot(config, http, clock=clock, run_dispatcher=False)
    yield b
    await b.stop()


async def test_emulator_down_then_back_delivers_everything_once(bot: Bot, emulator: Emulator) -> None:
    await emulator.stop()
    for i in range(3):
        assert (await bot.sender.text(f"{['zhaolei', 'majun', 'liyan'][i]}", "帮助 报修")).status == 200
    await asyncio.sleep(0.5)
    health = await bot.health()
    assert health["outbox"]["pending"] == 3
    await emulator.start()  # same port
    await bot.settle()
    for userid in ("zhaolei", "majun", "liyan"):
        assert len(emulator.texts_to(userid)) == 1
    assert (await bot.health())["outbox"]["sent"] == 3


async def test_token_expiry_mid_run_refreshes_once(quiet_bot: Bot, emulator: Emulator) -> None:
    await queue_texts(quiet_bot, [("zhaolei", "一")])
    await drain(quiet_bot)
    emulator.expire_tokens()
    await queue_texts(quiet_bot, [("zhaolei", "二")])
    await drain(quiet_bot)
    assert emulator.texts_to("zhaolei") == ["一", "二"]
    assert len(emulator.calls_to("gettoken")) == 2
    assert [c.errcode for c in emulator.calls_to("message/send")] == [0, 42001, 0]
    assert quiet_bot.app[API].token_refreshes == 2


async def test_permanent_error_fails_once_and_shows_in_health(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    await queue_texts(quiet_bot, [("ghost_user", "你好"), ("zhaolei", "你好")])
    for _ in range(3):
        await drain(quiet_bot)
        clock.advance(600)
    assert len(emulator.calls_to("message/send")) == 2  # the ghost was tried once, not forever
    ghost, ok = await rows(quiet_bot)
    assert (ghost.status, ghost.errcode) == (OutboxStatus.FAILED, 81013)
    assert ok.status == OutboxStatus.SENT
    health = await quiet_bot.health()
    assert health["outbox"]["failed"] == 1
    assert health["outbox"]["recent_failures"][0]["errcode"] == 81013
    assert health["outbox"]["recent_failures"][0]["recipient"] == "user:ghost_user"


async def test_transient_errors_back_off_and_retry(quiet_bot: Bot, emulator: Emulator, clock: FakeClock) -> None:
    emulator.inject_errcodes("message/send", -1, 45033)
    emulator.inject_statuses("message/send", 502)
    await queue_texts(quiet_bot, [("zhaolei", "稍后送达")])
    await drain(quiet_bot)
    [row] = await rows(quiet_bot)
    assert row.status == OutboxStatus.PENDING and row.attempts == 1  # waits for its backoff
    for _ in range(4):
        clock.advance(2)
        await drain(quiet_bot)
    assert emulator.texts_to("zhaolei") == ["稍后送达"]
    assert next(c.status for c in emulator.calls_to("message/send")) == 502
    assert [c.errcode for c in emulator.calls_to("message/send")][1:] == [-1, 45033, 0]


async def test_timeout_is_retried(quiet_bot: Bot, emulator: Emulator, clock: FakeClock) -> None:
    emulator.set_delay("message/send", 2.5)  # the client gives up after 2 s in the test config
    await queue_texts(quiet_bot, [("zhaolei", "慢")])
    await drain(quiet_bot, 1)
    assert (await rows(quiet_bot))[0].errcode == -2
    emulator.set_delay("message/send", 0)
    clock.advance(30)
    await drain(quiet_bot, 2)
    assert (await rows(quiet_bot))[0].status == OutboxStatus.SENT


async def test_member_rate_limit_is_respected_and_order_kept(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    await queue_texts(quiet_bot, [("zhaolei", f"第{i}条") for i in range(35)])
    await drain(quiet_bot, 40)
    assert len(emulator.texts_to("zhaolei")) == 30
    assert all(c.errcode == 0 for c in emulator.calls_to("message/send"))  # never hit 45009
    clock.advance(61)
    await drain(quiet_bot, 10)
    assert emulator.texts_to("zhaolei") == [f"第{i}条" for i in range(35)]


async def test_an_attempt_whose_answer_was_lost_counts_against_the_member_limit(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    """WeCom may have delivered it: resending it within the same minute could be the 31st message."""
    await queue_texts(quiet_bot, [("zhaolei", f"第{i}条") for i in range(31)])
    for _ in range(29):
        await quiet_bot.app[DISPATCHER].drain_once()
    emulator.inject_lost_answers("message/send", 502)
    await quiet_bot.app[DISPATCHER].drain_once()  # the 30th reached the member; its answer did not come back
    assert len(emulator.texts_to("zhaolei")) == 30
    clock.advance(5)  # past its backoff, still within the minute
    await drain(quiet_bot, 5)
    assert len(emulator.calls_to("message/send")) == 30  # not resent yet: the member may have 30 this minute
    clock.advance(61)
    await drain(quiet_bot, 5)
    assert emulator.texts_to("zhaolei") == [f"第{i}条" for i in range(31)]
    assert emulator.dropped == []  # nothing over WeCom's limit, nothing silently lost
    assert {r.status for r in await rows(quiet_bot)} == {OutboxStatus.SENT}


async def test_group_robot_limit_is_20_per_minute(quiet_bot: Bot, emulator: Emulator, clock: FakeClock) -> None:
    now = clock.now()
    async with quiet_bot.app[PIPELINE].sessions() as s, s.begin():
        for i in range(25):
            enqueue(s, now, "webhook:alumni", "webhook", {"msgtype": "text", "text": {"content": f"{i}"}})
    await drain(quiet_bot, 30)
    assert len(emulator.calls_to("webhook/send")) == 20
    clock.advance(61)
    await drain(quiet_bot, 10)
    sent = [d.body["text"]["content"] for d in emulator.delivered if d.to.startswith("webhook:")]
    assert sent == [str(i) for i in range(25)]


async def test_a_failing_head_holds_back_later_messages_to_the_same_member(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    emulator.inject_errcodes("message/send", -1)
    await queue_texts(quiet_bot, [("zhaolei", "先"), ("zhaolei", "后"), ("majun", "别人")])
    await drain(quiet_bot)
    assert emulator.texts_to("zhaolei") == [] and emulator.texts_to("majun") == ["别人"]
    clock.advance(5)
    await drain(quiet_bot)
    assert emulator.texts_to("zhaolei") == ["先", "后"]


async def test_unacknowledged_attempt_is_resent_with_duplicate_check(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    """The process died after WeCom accepted the message but before the row was marked sent."""
    await queue_texts(quiet_bot, [("zhaolei", "只收一次")])
    [row] = await rows(quiet_bot)
    dispatcher = quiet_bot.app[DISPATCHER]
    claimed = await dispatcher._claim(row.id)
    assert claimed is not None
    await quiet_bot.app[API].send_message(message_request(claimed))  # ... and then the process dies
    clock.advance(60)  # the lease runs out
    await drain(quiet_bot)
    calls = emulator.calls_to("message/send")
    assert len(calls) == 2 and calls[1].body.get("enable_duplicate_check") == 1
    assert emulator.texts_to("zhaolei") == ["只收一次"]
    assert (await rows(quiet_bot))[0].status == OutboxStatus.SENT


async def test_the_same_text_twice_arrives_twice_but_a_retry_once(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    """Distinct rows carry distinct JSON (the interval differs per row); a row's retries do not."""
    await queue_texts(quiet_bot, [("zhaolei", "在哪里？"), ("zhaolei", "在哪里？")])
    emulator.inject_lost_answers("message/send", 502)
    await drain(quiet_bot, 1)  # the first reached the member; its answer was lost
    clock.advance(120)
    await drain(quiet_bot)
    assert emulator.texts_to("zhaolei") == ["在哪里？", "在哪里？"]  # not three, not one
    bodies = [c.body for c in emulator.calls_to("message/send")]
    assert len(bodies) == 3 and bodies[0] == bodies[1] != bodies[2]
    assert {r.status for r in await rows(quiet_bot)} == {OutboxStatus.SENT}


async def test_two_dispatchers_on_one_database_send_each_row_once(
    quiet_bot: Bot, emulator: Emulator, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    users = sorted(emulator.known_users or [])[:8]
    await queue_texts(quiet_bot, [(u, f"{u}-{i}") for i in range(5) for u in users])
    cfg = quiet_bot.config
    apis = [
        WeComAPI(
            http,
            api_base=cfg.wecom.api_base,
            corp_id=cfg.wecom.corp_id,
            secret=cfg.wecom.secret.get_secret_value(),
            agent_id=cfg.wecom.agent_id,
            clock=clock,
        )
        for _ in range(2)
    ]
    sessions = quiet_bot.app[PIPELINE].sessions
    a, b = (Dispatcher(sessions, api, clock, cfg.outbox) for api in apis)
    for _ in range(8):
        await asyncio.gather(a.drain_once(), b.drain_once())
    for u in users:
        assert emulator.texts_to(u) == [f"{u}-{i}" for i in range(5)]
    assert len(emulator.calls_to("message/send")) == 40


async def test_concurrent_sends_fetch_one_token(quiet_bot: Bot, emulator: Emulator) -> None:
    users = sorted(emulator.known_users or [])[:12]
    await queue_texts(quiet_bot, [(u, "并发") for u in users])
    await drain(quiet_bot, 2)
    assert all(emulator.texts_to(u) == ["并发"] for u in users)
    assert len(emulator.calls_to("gettoken")) == 1


async def test_api_endpoints_against_the_emulator(quiet_bot: Bot, emulator: Emulator) -> None:
    api = quiet_bot.app[API]
    chat = await api.appchat_create(
        {"name": "测试群", "owner": "zhouyan", "userlist": ["zhouyan", "guoqing"], "chatid": "testgroup1"}
    )
    assert chat["chatid"] == "testgroup1"
    info = await api.appchat_get("testgroup1")
    assert info["chat_info"]["userlist"] == ["zhouyan", "guoqing"]
    await api.appchat_send({"chatid": "testgroup1", "msgtype": "text", "text": {"content": "今日音频课"}})
    media = await api.media_upload("file", "登记表.xlsx", b"PK\x03\x04 fake")
    assert emulator.media[media["media_id"]] == b"PK\x03\x04 fake"
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "报修 #1"},
        "task_id": "ticket_1_a",
        "button_list": [{"text": "接单", "style": 1, "key": "claim:1"}],
    }
    sent = await api.send_message({"touser": "lihua", "msgtype": "template_card", "template_card": card})
    await api.update_template_card(
        {"userids": ["lihua"], "response_code": sent["response_code"], "button": {"replace_name": "已接单"}}
    )
    with pytest.raises(WeComError) as err:  # a response code is single-use
        await api.update_template_card(
            {"userids": ["lihua"], "response_code": sent["response_code"], "button": {"replace_name": "again"}}
        )
    assert not err.value.transient
    with pytest.raises(WeComError):  # task_id must never repeat
        await api.send_message({"touser": "lihua", "msgtype": "template_card", "template_card": card})
    await api.webhook_send("demo-alumni-webhook-key", {"msgtype": "markdown", "markdown": {"content": "**通知**"}})
    url = emulator.new_response_url()
    await api.robot_response(url, {"msgtype": "markdown", "markdown": {"content": "已转私聊处理"}})
    kinds = [(d.to.split(":")[0], d.msgtype) for d in emulator.delivered]
    assert kinds == [
        ("chat", "text"),
        ("user", "template_card"),
        ("user", "update_template_card"),
        ("webhook", "markdown"),
        ("robot", "markdown"),
    ]


async def test_card_resent_after_crash_is_not_delivered_twice(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    """A card's task_id is single-use: WeCom refusing the repeat means the first one arrived."""
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "报修 #1"},
        "task_id": "t1_claim_x",
        "button_list": [{"text": "接单", "style": 1, "key": "tk:1:claim"}],
    }
    await queue_card(quiet_bot, card)
    [row] = await rows(quiet_bot)
    claimed = await quiet_bot.app[DISPATCHER]._claim(row.id)
    assert claimed is not None
    await quiet_bot.app[API].send_message(message_request(claimed))  # reached WeCom; then the process died
    clock.advance(60)
    await drain(quiet_bot)
    [row] = await rows(quiet_bot)
    assert row.status == OutboxStatus.SENT and row.result["assumed_delivered"] is True
    assert len([d for d in emulator.messages_to("lihua") if d.msgtype == "template_card"]) == 1


@pytest.mark.parametrize("lost", [502, 504])
async def test_card_whose_answer_came_back_as_5xx_is_not_a_false_failure(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock, lost: int
) -> None:
    """WeCom sent the card but the answer was a 5xx: the retry's 42014 (task_id used) means delivered."""
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "报修 #1"},
        "task_id": "t1_claim_y",
        "button_list": [{"text": "接单", "style": 1, "key": "tk:1:claim"}],
    }
    await queue_card(quiet_bot, card)
    emulator.inject_lost_answers("message/send", lost)
    await drain(quiet_bot, 1)
    [row] = await rows(quiet_bot)
    assert row.status == OutboxStatus.PENDING and row.errcode == -lost  # unknown: retried later
    clock.advance(600)
    await drain(quiet_bot)
    [row] = await rows(quiet_bot)
    assert row.status == OutboxStatus.SENT and row.result["assumed_delivered"] is True
    assert row.result["errcode_on_retry"] == 42014
    assert len([d for d in emulator.messages_to("lihua") if d.msgtype == "template_card"]) == 1
    health = await quiet_bot.health()
    assert health["outbox"]["failed"] == 0 and health["outbox"]["pending"] == 0


async def test_card_update_whose_answer_was_lost_is_not_a_false_failure(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    """The update went through but its answer was a 502: the retry finds the response_code spent
    (single use); that means the first call worked, not that the update failed."""
    await queue_claim_card_and_its_update(quiet_bot, "t1_claim_z")
    emulator.inject_lost_answers("message/update_template_card", 502)
    await drain(quiet_bot, 1)
    clock.advance(600)
    await drain(quiet_bot)
    row = next(r for r in await rows(quiet_bot) if r.kind == "update_card")
    assert row.status == OutboxStatus.SENT and row.result["assumed_delivered"] is True
    assert len(emulator.calls_to("message/update_template_card")) == 2
    assert len([d for d in emulator.messages_to("lihua") if d.msgtype == "update_template_card"]) == 1
    assert (await quiet_bot.health())["outbox"]["failed"] == 0


async def test_card_update_refused_after_a_lost_answer_and_a_known_error_counts_as_delivered(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    """The update went through but its answer was a 502, the retry met "system busy" (-1), the
    third found the response_code spent (40058): the first call worked, the row is not failed."""
    await queue_claim_card_and_its_update(quiet_bot, "t1_claim_w")
    emulator.inject_lost_answers("message/update_template_card", 502)
    await drain(quiet_bot, 1)
    emulator.inject_errcodes("message/update_template_card", -1)
    for _ in range(3):
        clock.advance(600)
        await drain(quiet_bot)
    row = next(r for r in await rows(quiet_bot) if r.kind == "update_card")
    assert row.status == OutboxStatus.SENT and row.result["assumed_delivered"] is True
    assert [c.errcode for c in emulator.calls_to("message/update_template_card")][1:] == [-1, 40058]
    assert len([d for d in emulator.messages_to("lihua") if d.msgtype == "update_template_card"]) == 1
    assert (await quiet_bot.health())["outbox"]["failed"] == 0


async def test_reused_task_id_on_a_first_attempt_is_a_real_failure(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "x"},
        "task_id": "t9_once",
        "button_list": [{"text": "ok", "key": "tk:9:claim"}],
    }
    await quiet_bot.app[API].send_message({"touser": "lihua", "msgtype": "template_card", "template_card": card})
    await queue_card(quiet_bot, card)
    await drain(quiet_bot)
    [row] = await rows(quiet_bot)
    assert row.status == OutboxStatus.FAILED and row.errcode == 42014  # nothing suggests we sent it


async def test_invalid_card_fails_permanently_on_first_answer(quiet_bot: Bot, emulator: Emulator) -> None:
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "x"},
        "task_id": "bad id with spaces",
        "button_list": [{"text": "ok", "key": "k"}],
    }
    await queue_card(quiet_bot, card)
    await drain(quiet_bot)
    [row] = await rows(quiet_bot)
    assert row.status == OutboxStatus.FAILED and row.errcode == 42014


async def test_a_long_queue_for_one_member_does_not_hide_others(quiet_bot: Bot, emulator: Emulator) -> None:
    await queue_texts(quiet_bot, [("zhaolei", f"{i}") for i in range(600)] + [("majun", "轮到我了")])
    await drain(quiet_bot, 1)
    assert emulator.texts_to("majun") == ["轮到我了"]


async def test_concurrent_drains_in_one_process_send_each_row_once(quiet_bot: Bot, emulator: Emulator) -> None:
    users = sorted(emulator.known_users or [])[:10]
    await queue_texts(quiet_bot, [(u, f"{u}-{i}") for i in range(3) for u in users])
    dispatcher = quiet_bot.app[DISPATCHER]
    for _ in range(4):  # the clock is frozen: both drains compute the same lease time
        await asyncio.gather(dispatcher.drain_once(), dispatcher.drain_once())
    assert all(emulator.texts_to(u) == [f"{u}-{i}" for i in range(3)] for u in users)
    assert len(emulator.calls_to("message/send")) == 30


async def test_sent_rows_are_purged_after_retention(quiet_bot: Bot, emulator: Emulator, clock: FakeClock) -> None:
    await queue_texts(quiet_bot, [("zhaolei", "旧消息"), ("ghost_user", "发不出去")])
    await drain(quiet_bot)
    clock.advance(31 * 24 * 3600)
    await queue_texts(quiet_bot, [("zhaolei", "新消息")])
    await quiet_bot.app[TIMERS].tick()
    kept = [(r.status, r.payload["text"]["content"]) for r in await rows(quiet_bot)]
    assert ("sent", "旧消息") not in kept and ("failed", "发不出去") in kept and ("pending", "新消息") in kept


async def test_app_groups_wait_out_a_refused_minute_together(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock
) -> None:
    """WeCom refuses an app group message for the corp's minute (45009, someone else used it up):
    that message and every later one to any app group wait till it frees, then all go, once."""
    for c in ("grpA", "grpB"):
        emulator.chats[c] = {"chatid": c, "name": c, "owner": "lihua", "userlist": ["lihua", "zhaolei"]}

    async def queue(chat: str, text: str) -> None:
        async with quiet_bot.app[PIPELINE].sessions() as s, s.begin():
            body = {"chatid": chat, "msgtype": "markdown", "markdown": {"content": text}}
            enqueue(s, clock.now(), f"chat:{chat}", "appchat", body)

    await queue("grpA", "一")
    emulator.inject_errcodes("appchat/send", 45009)
    await drain(quiet_bot)
    await queue("grpB", "二")
    clock.advance(30)
    await drain(quiet_bot)
    assert [c.errcode for c in emulator.calls_to("appchat/send")] == [45009]  # grpB waits too
    clock.advance(31)
    await drain(quiet_bot)
    assert sorted(d.to for d in emulator.delivered if d.to.startswith("chat:")) == ["chat:grpA", "chat:grpB"]
    assert {r.status for r in await rows(quiet_bot)} == {OutboxStatus.SENT}
