"""`python -m bot outbox failed | resend | pauses`: an operator lists and re-sends failed rows."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import redirect_stderr, redirect_stdout
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.appkeys import API, PIPELINE
from bot.clock import FakeClock
from bot.emulator.server import Emulator
from bot.outbox import enqueue
from infodesk.cli import main
from storage.models import Card, OutboxMessage, OutboxStatus
from tests.conftest import ROOT, Bot, make_config, start_bot
from tests.test_outbox import drain, queue_texts, rows


@pytest.fixture
async def quiet_bot(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> AsyncIterator[Bot]:
    emulator.clock = lambda: clock.now().timestamp()
    b = await start_bot(make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False)
    yield b
    await b.stop()


@pytest.fixture
def config_file(tmp_path: Path, db_url: str) -> Path:
    """The example config on the test's database (the operator's --config)."""
    text = (ROOT / "infodesk" / "config.example.toml").read_text(encoding="utf-8")
    text = text.replace('url = "sqlite+aiosqlite:///infodesk.db"', f'url = "{db_url}"', 1)
    assert db_url in text
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def run_cli(*args: str) -> tuple[int, str]:
    """The command line in a worker thread (it runs its own event loop); exit code and output."""

    def call() -> tuple[int, str]:
        out = io.StringIO()
        with redirect_stdout(out), redirect_stderr(out):
            try:
                code = main(list(args))
            except SystemExit as exc:
                code = int(exc.code or 0)
        return code, out.getvalue()

    return await asyncio.to_thread(call)


async def failed_card_and_others(bot: Bot, clock: FakeClock) -> dict[str, OutboxMessage]:
    """Three failed rows: a text to a userid nobody configured (81013), a card whose task_id was
    already used (42014; its `cards` row exists), a card update days old (its code expired)."""
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "报修 #7"},
        "task_id": "t7_claim_0123456789ab",
        "button_list": [{"text": "接单", "style": 1, "key": "tk:7:claim"}],
    }
    await bot.app[API].send_message({"touser": "lihua", "msgtype": "template_card", "template_card": card})
    await queue_texts(bot, [("ghost_user", "发不出去")])
    async with bot.app[PIPELINE].sessions() as s, s.begin():
        row = enqueue(
            s,
            clock.now(),
            "user:lihua",
            "message",
            {"touser": "lihua", "msgtype": "template_card", "template_card": card},
        )
        await s.flush()
        s.add(
            Card(
                task_id=card["task_id"],
                subject="ticket",
                request_id=7,
                purpose="claim",
                step=0,
                userid="lihua",
                outbox_id=row.id,
                created_at=clock.now(),
            )
        )
        old = clock.now() - timedelta(days=4)
        body = {"userids": ["lihua"], "response_code": "rc_spent", "button": {"replace_name": "已接单"}}
        enqueue(s, old, "user:lihua", "update_card", body)
    await drain(bot)
    ghost, card_row, update = await rows(bot)
    assert [r.status for r in (ghost, card_row, update)] == [OutboxStatus.FAILED] * 3
    return {"ghost": ghost, "card": card_row, "update": update}


async def test_failed_rows_are_listed_and_resent(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock, config_file: Path
) -> None:
    failed = await failed_card_and_others(quiet_bot, clock)
    ghost, card, update = failed["ghost"], failed["card"], failed["update"]

    listed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "outbox", "failed", "--config", str(config_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:4] == ["id", "recipient", "kind", "errcode"]
    assert [int(line.split()[0]) for line in lines[1:4]] == [update.id, card.id, ghost.id]  # newest first
    assert "user:ghost_user" in lines[3] and "81013" in lines[3] and "2026-11-25 01:00" in lines[3]
    assert "42014" in lines[2] and "taskid has existed" in lines[2]
    assert "update_card" in lines[1]

    code, out = await run_cli("outbox", "failed", "--limit", "1", "--config", str(config_file))
    assert code == 0 and f"\n{update.id:>6}  " in out and "user:ghost_user" not in out

    code, out = await run_cli("outbox", "resend", str(ghost.id), "--config", str(config_file))
    assert code == 0 and f"{ghost.id}: queued again" in out
    again = {r.id: r for r in await rows(quiet_bot)}[ghost.id]
    assert (again.status, again.attempts, again.errcode, again.last_error) == (OutboxStatus.PENDING, 0, None, None)

    code, out = await run_cli("outbox", "resend", str(ghost.id), "424242", "--config", str(config_file))
    assert code == 1 and f"{ghost.id}: not re-sent (is pending, not failed)" in out and "424242: not re-sent" in out

    code, out = await run_cli("outbox", "resend", "--all", "--config", str(config_file))
    assert code == 1  # one row could not go back
    assert f"{update.id}: not re-sent (update_card older than" in out
    assert f"{card.id}: queued again (card re-sent as task_id t7_claim_" in out
    async with quiet_bot.app[PIPELINE].sessions() as s:
        resent = await s.get(OutboxMessage, card.id)
        assert resent is not None
        new_task = resent.payload["template_card"]["task_id"]
        assert new_task.startswith("t7_claim_") and new_task != "t7_claim_0123456789ab"
        moved = await s.get(Card, new_task)  # clicks on the new card still find their card
        assert moved is not None and moved.outbox_id == card.id
        assert await s.get(Card, "t7_claim_0123456789ab") is None

    await drain(quiet_bot)
    cards = [d.body["template_card"]["task_id"] for d in emulator.messages_to("lihua") if d.msgtype == "template_card"]
    assert cards == ["t7_claim_0123456789ab", new_task]
    by_id = {r.id: r for r in await rows(quiet_bot)}
    assert by_id[card.id].status == OutboxStatus.SENT
    assert (by_id[ghost.id].status, by_id[ghost.id].attempts) == (OutboxStatus.FAILED, 1)  # still nobody
    assert by_id[update.id].status == OutboxStatus.FAILED

    code, out = await run_cli("outbox", "resend", "--config", str(config_file))
    assert code == 2 and "--all" in out


async def test_a_closed_card_is_not_resent(quiet_bot: Bot, clock: FakeClock, config_file: Path) -> None:
    failed = await failed_card_and_others(quiet_bot, clock)
    async with quiet_bot.app[PIPELINE].sessions() as s, s.begin():
        card = await s.get(Card, "t7_claim_0123456789ab")
        assert card is not None
        card.active = False  # the ticket was claimed through another technician's card
    code, out = await run_cli("outbox", "resend", str(failed["card"].id), "--config", str(config_file))
    assert code == 1 and "was closed since" in out
    assert {r.id: r for r in await rows(quiet_bot)}[failed["card"].id].status == OutboxStatus.FAILED


async def test_pauses_lists_the_active_cause_and_then_the_cleared_one(
    quiet_bot: Bot, emulator: Emulator, clock: FakeClock, config_file: Path
) -> None:
    code, out = await run_cli("outbox", "pauses", "--config", str(config_file))
    assert code == 0 and out.strip() == "delivery is not paused"
    emulator.block("message/send", 60020)
    await queue_texts(quiet_bot, [("zhaolei", "等一等")])
    await drain(quiet_bot)
    code, out = await run_cli("outbox", "pauses", "--config", str(config_file))
    assert code == 0 and "PAUSED app: errcode 60020" in out and "2 row(s) held" in out and "from ip:" in out
    code, out = await run_cli("outbox", "failed", "--config", str(config_file))
    assert out.strip() == "no failed rows"  # a configuration error fails nothing
    emulator.unblock()
    clock.advance(30)
    await drain(quiet_bot)
    code, out = await run_cli("outbox", "pauses", "--config", str(config_file))
    assert code == 0 and "delivery is not paused" in out and "cleared app: errcode 60020" in out
    assert await select_count_pending(quiet_bot) == 0


async def select_count_pending(bot: Bot) -> int:
    async with bot.app[PIPELINE].sessions() as s:
        return len(
            list((await s.execute(select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.PENDING))).all())
        )
