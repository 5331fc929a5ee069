"""`python -m bot backup` while the bot runs, `restore` into a fresh database, and the bot carries on."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
from sqlalchemy import select

from bot.appkeys import JOURNAL, PIPELINE
from bot.clock import RunningClock
from bot.emulator.server import Emulator
from storage.models import InboundEvent, OutboxMessage, OutboxStatus
from tests.conftest import ROOT, Bot, make_config, start_bot
from tests.test_cli_outbox import run_cli
from tests.test_journal import waiting
from tests.test_outbox import drain, queue_texts


def config_file(tmp_path: Path, name: str, url: str) -> Path:
    """The example config on database `url` (the operator's --config)."""
    text = (ROOT / "infodesk" / "config.example.toml").read_text(encoding="utf-8")
    text = text.replace('url = "sqlite+aiosqlite:///infodesk.db"', f'url = "{url}"', 1)
    assert url in text
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def outbox(bot: Bot) -> list[tuple[str, str]]:
    async with bot.app[PIPELINE].sessions() as s:
        rows = (await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        return [(r.recipient, r.status) for r in rows]


async def live_bot_with_backlog(emulator: Emulator, http: aiohttp.ClientSession, clock: RunningClock, db: Path) -> Bot:
    """A bot (dispatcher idle) that sent one message and has three waiting, one of them a real reply."""
    emulator.clock = lambda: clock.now().timestamp()
    bot = await start_bot(make_config(emulator.base_url, sqlite_url(db)), http, clock=clock, run_dispatcher=False)
    await queue_texts(bot, [("liyan", "备份之前已送达")])
    await drain(bot)
    assert emulator.texts_to("liyan") == ["备份之前已送达"]
    assert (await bot.sender.text("zhaolei", "帮助 报修", msg_id="7300000000000000101")).status == 200
    await queue_texts(bot, [("majun", "等待发送一"), ("majun", "等待发送二")])
    assert [status for _, status in await outbox(bot)] == ["sent", "pending", "pending", "pending"]
    return bot


async def test_a_backup_restored_into_a_fresh_database_carries_on(
    emulator: Emulator, http: aiohttp.ClientSession, wall_clock: RunningClock, tmp_path: Path
) -> None:
    live = await live_bot_with_backlog(emulator, http, wall_clock, tmp_path / "live.db")
    # A message answered and not yet applied waits in the inbound journal, a file of its own beside
    # the database (live.inbound.db): the backup keeps it too.
    live.app[JOURNAL].applier.stop()
    await asyncio.sleep(0.1)
    xml, _ = live.sender.text_xml("wangpeng", "帮助 报修", msg_id="7300000000000000202")
    async with live.app[PIPELINE].journal_sessions() as s, s.begin():
        s.add(waiting("msg:7300000000000000202", "wangpeng", xml, wall_clock.now()))
    assert (tmp_path / "live.inbound.db").is_file()
    backup = tmp_path / "backups" / "infodesk.db"
    backup.parent.mkdir()
    # A separate process, as cron would run it, while the bot holds the database.
    made = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "bot",
            "backup",
            "-o",
            str(backup),
            "--config",
            # relative, as in the example configuration: to the working directory
            str(config_file(tmp_path, "live", sqlite_url(Path("live.db")))),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    assert f"written to {backup}" in made.stdout and "(schema " in made.stdout
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    assert not Path(f"{backup}-wal").exists()  # one self-contained file
    await queue_texts(live, [("majun", "备份之后")])  # the live bot carries on; not in the backup
    await live.stop()

    fresh = tmp_path / "restored" / "infodesk.db"
    fresh.parent.mkdir()
    (fresh.parent / "infodesk.inbound.db").write_bytes(b"")  # a journal from after the copy
    code, out = await run_cli(
        "restore", str(backup), "--config", str(config_file(tmp_path, "fresh", sqlite_url(fresh)))
    )
    assert code == 0, out
    assert f"restored into {fresh}" in out and "latest schema" in out
    assert "infodesk.inbound.db.before-restore-" in out and not (fresh.parent / "infodesk.inbound.db").exists()

    # The restored bot, against the same WeCom, with its dispatcher running in the background.
    restored = await start_bot(make_config(emulator.base_url, sqlite_url(fresh)), http, run_jobs=False)
    try:
        await restored.settle()
        assert emulator.texts_to("liyan") == ["备份之前已送达"]  # sent before the backup: not again
        assert emulator.texts_to("majun") == ["等待发送一", "等待发送二"]  # pending: out once, in order
        assert len(emulator.texts_to("zhaolei")) == 1 and "报修" in emulator.texts_to("zhaolei")[0]
        assert len(emulator.texts_to("wangpeng")) == 1 and "报修" in emulator.texts_to("wangpeng")[0]
        assert [status for _, status in await outbox(restored)] == ["sent"] * 5  # wangpeng's reply too

        # WeCom retrying the callback the backup recorded: a duplicate, not a second answer.
        assert (await restored.sender.text("zhaolei", "帮助 报修", msg_id="7300000000000000101")).status == 200
        assert await restored.count(InboundEvent) == 2
        # And new work goes on from where the backup left off.
        assert (await restored.sender.text("majun", "帮助 报修")).status == 200
        await restored.settle()
        await asyncio.sleep(0.2)  # the dispatcher's next polls find nothing more to send
        assert len(emulator.texts_to("zhaolei")) == 1
        assert len(emulator.texts_to("majun")) == 3
        assert len(emulator.texts_to("liyan")) == 1
        assert await restored.count(OutboxMessage, OutboxMessage.status != OutboxStatus.SENT) == 0
    finally:
        await restored.stop()


async def test_restore_refuses_a_database_in_use_or_not_empty(
    emulator: Emulator, http: aiohttp.ClientSession, wall_clock: RunningClock, tmp_path: Path
) -> None:
    db = tmp_path / "live.db"
    live = await live_bot_with_backlog(emulator, http, wall_clock, db)
    cfg = str(config_file(tmp_path, "live", sqlite_url(db)))
    backup = tmp_path / "backup.db"
    assert (await run_cli("backup", "-o", str(backup), "--config", cfg))[0] == 0
    code, out = await run_cli("backup", "-o", str(backup), "--config", cfg)
    assert code == 1 and "exists; give --force" in out
    assert (await run_cli("backup", "-o", str(backup), "--force", "--config", cfg))[0] == 0

    code, out = await run_cli("restore", str(backup), "--config", cfg)
    assert code == 1 and "exists and is not empty" in out and "--force" in out
    code, out = await run_cli("restore", str(backup), "--force", "--config", cfg)
    assert code == 1 and "is the bot still running?" in out  # the running bot holds it
    await queue_texts(live, [("majun", "备份之后")])  # ... and is unharmed
    assert len(await outbox(live)) == 5
    await live.stop()

    code, out = await run_cli("restore", str(backup), "--force", "--config", cfg)
    assert code == 0, out
    with sqlite3.connect(db) as conn:  # back to the backup's four rows
        assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (4,)

    empty = tmp_path / "empty.db"
    empty.touch()  # an empty file is no database to protect
    assert (await run_cli("restore", str(backup), "--config", str(config_file(tmp_path, "e", sqlite_url(empty)))))[
        0
    ] == 0


async def test_restore_checks_the_file_is_an_infodesk_database(tmp_path: Path) -> None:
    cfg = str(config_file(tmp_path, "fresh", sqlite_url(tmp_path / "fresh.db")))
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, " * 100, encoding="utf-8")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE contacts (name TEXT)")
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("INSERT INTO alembic_version VALUES ('9999_from_the_future')")
    for file, expected in (
        (text, "is not an SQLite database"),
        (other, "is not an Infodesk database (it has no migration version)"),
        (newer, "is at schema 9999_from_the_future, which this Infodesk does not know"),
        (tmp_path / "missing.db", "there is no backup at"),
    ):
        code, out = await run_cli("restore", str(file), "--config", cfg)
        assert code == 1 and expected in out, out
    assert not (tmp_path / "fresh.db").exists()  # nothing was created


async def test_backup_of_a_missing_database(tmp_path: Path) -> None:
    cfg = str(config_file(tmp_path, "c", sqlite_url(tmp_path / "nothing-here.db")))
    code, out = await run_cli("backup", "-o", str(tmp_path / "b.db"), "--config", cfg)
    assert code == 1 and "there is no database at" in out
    assert not (tmp_path / "b.db").exists() and not (tmp_path / "nothing-here.db").exists()


async def test_postgresql_gets_the_pg_dump_and_pg_restore_lines(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://infodesk:s3cret@db.school.lan:5433/infodesk"
    cfg = str(config_file(tmp_path, "pg", url))
    code, out = await run_cli("backup", "-o", "/backups/infodesk.dump", "--config", cfg)
    assert code == 2
    assert (
        "pg_dump --format=custom --host=db.school.lan --port=5433 --username=infodesk --dbname=infodesk "
        "--file=/backups/infodesk.dump" in out
    )
    assert "pg_restore --no-owner --exit-on-error --host=db.school.lan" in out and "PGPASSWORD" in out
    assert "s3cret" not in out
    code, out = await run_cli("restore", "/backups/infodesk.dump", "--config", cfg)
    assert code == 2 and "pg_restore --no-owner --exit-on-error" in out and "infodesk migrate" in out
