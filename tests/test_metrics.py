"""GET /metrics over real HTTP: off by default, loopback (and `metrics_allow`) only, and the
counters and gauges move with real encrypted callbacks, deliveries, timers and approvals."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bot.appkeys import JOURNAL, PIPELINE
from bot.clock import FakeClock
from bot.config import ConfigError
from bot.emulator.sender import RobotSender
from bot.emulator.server import Emulator
from storage.models import Timer
from tests.conftest import Bot, example_raw, make_config, start_bot
from tests.scene import Scene
from tests.test_approvals_http import STUDENT_FOOTAGE
from tests.test_outbox import drain, queue_texts

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(bot: Bot, url: str | None = None, **headers: str) -> Samples:
    """Every sample /metrics serves, keyed by name and labels."""
    async with bot.http.get(f"{url or bot.url}/metrics", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
async def metered(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> AsyncIterator[Scene]:
    """A bot with `[server] metrics = true` whose dispatcher runs when the test drains."""
    emulator.clock = lambda: clock.now().timestamp()
    config = make_config(emulator.base_url, db_url, server={"metrics": True})
    b = await start_bot(config, http, clock=clock, run_dispatcher=False)
    yield Scene(b, emulator)
    await b.stop()


async def test_metrics_are_off_by_default(bot: Bot) -> None:
    async with bot.http.get(f"{bot.url}/metrics") as resp:
        assert resp.status == 404
    assert "infodesk_" not in await (await bot.http.get(f"{bot.url}/healthz")).text()


async def test_callbacks_are_counted_by_outcome_and_timed(metered: Scene, clock: FakeClock) -> None:
    bot = metered.bot
    before = await scrape(bot)
    for outcome in ("applied", "duplicate", "failed", "unavailable", "rejected", "ignored", "error"):
        assert value(before, "infodesk_callbacks_total", channel="app", outcome=outcome) == 0
        assert value(before, "infodesk_callbacks_total", channel="robot", outcome=outcome) == 0
    assert value(before, "infodesk_callback_duration_seconds_count", channel="app") == 0
    assert value(before, "infodesk_database_up") == 1
    assert value(before, "infodesk_outbox_pending") == 0

    assert (await bot.sender.text("zhaolei", "帮助")).status == 200
    after = await scrape(bot)
    assert value(after, "infodesk_callbacks_total", channel="app", outcome="applied") == 1
    assert value(after, "infodesk_callback_duration_seconds_count", channel="app") == 1
    assert value(after, "infodesk_callback_duration_seconds_bucket", channel="app", le="+Inf") == 1
    assert 0 < value(after, "infodesk_callback_duration_seconds_sum", channel="app") < 5
    # The reply waits in the outbox (the dispatcher has not run): the backlog and its age.
    assert value(after, "infodesk_outbox_pending") == 1
    assert value(after, "infodesk_outbox_messages", status="pending", errcode="none") == 1
    clock.advance(90)
    assert value(await scrape(bot), "infodesk_outbox_oldest_pending_age_seconds") == 90

    query, body = bot.sender.envelope("<xml><MsgId>1</MsgId></xml>")
    query["msg_signature"] = "0" * 40
    assert (await bot.sender.post_raw(query, body)).status == 403
    samples = await scrape(bot)
    assert value(samples, "infodesk_callbacks_total", channel="app", outcome="rejected") == 1
    assert value(samples, "infodesk_callbacks_total", channel="app", outcome="applied") == 1
    assert value(samples, "infodesk_callback_duration_seconds_count", channel="app") == 2
    # Scrapes and health checks are not callbacks.
    await bot.health()
    assert value(await scrape(bot), "infodesk_callback_duration_seconds_count", channel="app") == 2


async def test_a_retried_callback_counts_as_duplicate(metered: Scene) -> None:
    bot = metered.bot
    for _ in range(2):  # WeCom retries a callback it got no answer to, with the same MsgId
        assert (await bot.sender.text("zhaolei", "帮助", msg_id="7300000000000000042")).status == 200
    samples = await scrape(bot)
    assert value(samples, "infodesk_callbacks_total", channel="app", outcome="applied") == 1
    assert value(samples, "infodesk_callbacks_total", channel="app", outcome="duplicate") == 1
    assert value(samples, "infodesk_outbox_pending") == 1  # one answer, not two


async def test_sends_are_counted_by_status_and_errcode(metered: Scene, clock: FakeClock) -> None:
    bot = metered.bot
    await queue_texts(bot, [("ghost_user", "发不出去"), ("zhaolei", "你好"), ("majun", "你好")])
    await drain(bot)
    samples = await scrape(bot)
    assert value(samples, "infodesk_outbox_messages", status="sent", errcode="0") == 2
    assert value(samples, "infodesk_outbox_messages", status="failed", errcode="81013") == 1
    assert value(samples, "infodesk_outbox_pending") == 0
    assert value(samples, "infodesk_outbox_oldest_pending_age_seconds") == 0


async def test_overdue_timers(metered: Scene, clock: FakeClock) -> None:
    bot = metered.bot
    async with bot.app[PIPELINE].sessions() as s, s.begin():
        for minutes_ago in (1, 10, 60):  # the first is due but within the 5 minutes' grace
            s.add(
                Timer(
                    kind="test", ref=f"t{minutes_ago}", due_at=clock.now() - timedelta(minutes=minutes_ago), payload={}
                )
            )
        s.add(
            Timer(kind="test", ref="fired", due_at=clock.now() - timedelta(hours=1), payload={}, fired_at=clock.now())
        )
    assert value(await scrape(bot), "infodesk_timers_overdue") == 2
    assert (await bot.health())["overdue_timers"] == 2  # /healthz counts the same


async def test_approvals_pending_by_step(metered: Scene) -> None:
    assert "编号 #1" in await metered.say("zhaolei", STUDENT_FOOTAGE)
    samples = await scrape(metered.bot)
    pending = {
        dict(labels)["step"] + ":" + dict(labels)["role"]: v
        for (name, labels), v in samples.items()
        if name == "infodesk_approvals_pending"
    }
    assert pending == {"1:class_teacher": 1}
    workflow = next(dict(k[1])["workflow"] for k in samples if k[0] == "infodesk_approvals_pending")
    await metered.click("liuna", metered.card("liuna"), "同意")
    samples = await scrape(metered.bot)
    assert value(samples, "infodesk_approvals_pending", workflow=workflow, step="2", role="dept_head") == 1
    assert (
        "infodesk_approvals_pending",
        frozenset({"workflow": workflow, "step": "1", "role": "class_teacher"}.items()),
    ) not in samples
    assert value(samples, "infodesk_callbacks_total", channel="app", outcome="applied") == 2  # message, click


async def test_robot_callbacks_have_their_own_channel(metered: Scene, emulator: Emulator) -> None:
    bot = metered.bot
    raw = example_raw()["robot"]
    robot = RobotSender(
        bot.http,
        bot.url + bot.config.server.robot_path,
        token=raw["token"],
        encoding_aes_key=raw["encoding_aes_key"],
        clock=lambda: bot.clock.now().timestamp(),
    )
    assert (await robot.mention("zhaolei", "帮助", emulator.new_response_url())).status == 200
    samples = await scrape(bot)
    assert value(samples, "infodesk_callbacks_total", channel="robot", outcome="applied") == 1
    assert value(samples, "infodesk_callbacks_total", channel="app", outcome="applied") == 0
    assert value(samples, "infodesk_callback_duration_seconds_count", channel="robot") == 1


async def test_only_loopback_and_allowed_networks(metered: Scene) -> None:
    bot = metered.bot
    # Through a reverse proxy every client looks like loopback: the forwarded-for address counts.
    for headers in ({"X-Forwarded-For": "203.0.113.7"}, {"X-Real-IP": "203.0.113.7"}, {"Forwarded": "for=203.0.113.7"}):
        async with bot.http.get(f"{bot.url}/metrics", headers=headers) as resp:
            assert resp.status == 403, headers
    assert value(await scrape(bot, **{"X-Forwarded-For": "127.0.0.1"}), "infodesk_database_up") == 1


async def test_metrics_allow_admits_listed_networks(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    config = make_config(emulator.base_url, db_url, server={"metrics": True, "metrics_allow": ["10.0.0.0/8", "::1"]})
    assert config.server.metrics_allow == ("10.0.0.0/8", "::1/128")
    bot = await start_bot(config, http, clock=clock, run_dispatcher=False)
    try:
        assert value(await scrape(bot, **{"X-Forwarded-For": "10.1.2.3, 127.0.0.1"}), "infodesk_database_up") == 1
        async with bot.http.get(f"{bot.url}/metrics", headers={"X-Forwarded-For": "10.1.2.3, 192.0.2.1"}) as resp:
            assert resp.status == 403
    finally:
        await bot.stop()


def _own_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            address = str(s.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


async def test_a_client_on_another_network_is_refused(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    address = _own_address()
    if address is None:
        pytest.skip("no non-loopback address on this machine")
    for allow, status in (([], 403), ([f"{address}/32"], 200)):
        config = make_config(emulator.base_url, db_url, server={"metrics": True, "metrics_allow": allow})
        bot = await start_bot(config, http, clock=clock, run_dispatcher=False)
        try:
            site = web.TCPSite(bot.runner, address, 0)
            await site.start()
            port = next(a[1] for a in bot.runner.addresses if a[0] == address)
            async with http.get(f"http://{address}:{port}/metrics") as resp:
                assert resp.status == status, allow
            async with http.get(f"{bot.url}/metrics") as resp:
                assert resp.status == 200  # loopback always
        finally:
            await bot.stop()


def test_metrics_allow_must_be_networks() -> None:
    with pytest.raises(ConfigError) as exc:
        make_config("http://127.0.0.1:1", "sqlite+aiosqlite:///x.db", server={"metrics_allow": ["the office"]})
    assert "metrics_allow" in str(exc.value.problems) and "10.0.0.0/8" in str(exc.value.problems)


async def test_two_apps_in_one_process_count_separately(
    metered: Scene, emulator: Emulator, tmp_path: Path, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    other = await start_bot(
        make_config(emulator.base_url, f"sqlite+aiosqlite:///{tmp_path}/other.db", server={"metrics": True}),
        http,
        clock=clock,
        run_dispatcher=False,
    )
    try:
        assert (await metered.bot.sender.text("zhaolei", "帮助")).status == 200
        assert value(await scrape(metered.bot), "infodesk_callbacks_total", channel="app", outcome="applied") == 1
        assert value(await scrape(other), "infodesk_callbacks_total", channel="app", outcome="applied") == 0
    finally:
        await other.stop()


async def test_answered_once_recorded_then_counted_as_applied(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """The shipped default answers once the message is recorded: the callback counts as `recorded`,
    the applier's outcome in `infodesk_inbound_applied_total`, the backlog in `infodesk_inbound_pending`."""
    emulator.clock = lambda: clock.now().timestamp()
    config = make_config(emulator.base_url, db_url, server={"metrics": True, "answer_wait_seconds": 0})
    bot = await start_bot(config, http, clock=clock, run_dispatcher=False)
    try:
        bot.app[JOURNAL].applier.stop()  # nothing is applied until the restart below
        await asyncio.sleep(0.1)
        for _ in range(2):  # WeCom's retry while the first still waits: one journal row
            assert (await bot.sender.text("zhaolei", "帮助", msg_id="7300000000000000043")).status == 200
        samples = await scrape(bot)
        assert value(samples, "infodesk_callbacks_total", channel="app", outcome="recorded") == 2
        assert value(samples, "infodesk_inbound_pending") == 1
        assert value(samples, "infodesk_inbound_applied_total", channel="app", outcome="applied") == 0
    finally:
        await bot.stop()
    bot = await start_bot(config, http, clock=clock, run_dispatcher=False)
    try:
        for _ in range(200):
            samples = await scrape(bot)
            if value(samples, "infodesk_inbound_applied_total", channel="app", outcome="applied"):
                break
            await asyncio.sleep(0.05)
        samples = await scrape(bot)
        assert value(samples, "infodesk_inbound_pending") == 0
        assert value(samples, "infodesk_inbound_applied_total", channel="app", outcome="applied") == 1
        assert value(samples, "infodesk_outbox_pending") == 1  # one answer
    finally:
        await bot.stop()
