"""A burst larger than the bot can apply: a callback that cannot start in time is refused with
503 before anything is recorded, and WeCom's retry of it is then applied once."""

from __future__ import annotations

import pytest

from bot import pipeline
from bot.appkeys import PIPELINE
from bot.emulator.server import Emulator
from storage.models import InboundEvent, OutboxMessage, Ticket
from tests.conftest import Bot


async def test_a_callback_that_cannot_start_in_time_is_refused_and_its_retry_applied_once(
    bot: Bot, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "ADMIT_WAIT_SECONDS", 0.05)
    slots = bot.app[PIPELINE]._slots
    held = 0
    while not slots.locked():  # every slot busy, as under a burst
        await slots.acquire()
        held += 1
    xml, _ = bot.sender.text_xml("majun", "报修 地点:机房 设备:电脑 描述:蓝屏")
    query, body = bot.sender.envelope(xml)
    refused = await bot.sender.post_raw(query, body)
    assert (refused.status, refused.text) == (503, "try_later")
    assert await bot.count(InboundEvent) == 0
    assert await bot.count(OutboxMessage) == 0
    for _ in range(held):
        slots.release()
    assert (await bot.sender.post_raw(query, body)).status == 200
    assert (await bot.sender.post_raw(query, body)).status == 200  # a repeat is a duplicate
    await bot.settle()
    assert await bot.count(Ticket) == 1
    assert len(emulator.texts_to("majun")) == 1
