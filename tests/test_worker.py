"""`serve` in two processes (bot/worker.py): the front answers, the worker applies and delivers.

Real processes over real HTTP: the worker is killed and comes back, its front is killed and it
stops, and SIGTERM stops both."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from bot import worker
from bot.emulator.server import Emulator
from bot.journal import ROWS_WANTED, Receiving, shared_count
from bot.pipeline import Outcome
from bot.worker import RemoteApplier, apply_lock
from tests.test_process import Proc, procs, serve, wait_healthy

__all__ = ["procs"]  # the fixture, used by name


async def worker_running(http: aiohttp.ClientSession, url: str, restarts: int = 0) -> dict:
    for _ in range(300):
        health = await wait_healthy(http, url)
        if health["worker"]["state"] == "running" and health["worker"]["restarts"] == restarts:
            return health
        await asyncio.sleep(0.1)
    raise AssertionError(f"the worker is not running: {health['worker']}")


def gone(pid: int) -> bool:
    """The process exited (gone, or a zombie nobody has reaped yet)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status


async def wait_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not gone(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs"
        await asyncio.sleep(0.05)


async def replies(emulator: Emulator, user: str, text: str, count: int = 1) -> list[str]:
    await emulator.wait_for(lambda: sum(text in t for t in emulator.texts_to(user)) >= count)
    await asyncio.sleep(0.3)  # a second copy would have come by now
    return [t for t in emulator.texts_to(user) if text in t]


async def test_the_front_restarts_a_worker_that_died_and_nothing_recorded_meanwhile_is_lost(
    emulator: Emulator, db_url: str, tmp_path: Path, http: aiohttp.ClientSession, procs: list[Proc]
) -> None:
    _, url, sender = await serve(emulator, db_url, tmp_path, http, procs)
    front = procs[0]
    health = await worker_running(http, url)
    assert health["status"] == "ok"
    [worker] = front.workers()
    assert health["worker"]["pid"] == worker != front.p.pid

    assert (await sender.text("zhaolei", "报修 地点:302 设备:投影 描述:不亮")).status == 200
    assert len(await replies(emulator, "zhaolei", "报修已登记")) == 1

    # The worker dies: /healthz says so, callbacks are still answered and wait in the journal.
    os.kill(worker, signal.SIGKILL)
    await wait_gone(worker)
    for _ in range(100):
        health = await wait_healthy(http, url)
        if health["worker"]["state"] == "restarting":
            break
        await asyncio.sleep(0.05)
    assert health["status"] == "degraded" and health["worker"]["restarts"] == 1
    assert (await sender.text("majun", "报修 地点:305 设备:电脑 描述:黑屏")).status == 200
    assert (await wait_healthy(http, url))["inbound"]["pending"] == 1

    health = await worker_running(http, url, restarts=1)
    [second] = front.workers()
    assert second != worker
    assert len(await replies(emulator, "majun", "报修已登记")) == 1
    assert len(await replies(emulator, "zhaolei", "报修已登记")) == 1  # nothing applied twice

    # SIGTERM stops both: the front waits for its worker.
    front.p.send_signal(signal.SIGTERM)
    assert front.p.wait(timeout=60) == 0
    assert gone(second)
    log = front.log.read_text(encoding="utf-8")
    assert '"event": "worker_exited"' in log and '"code": -9' in log
    assert "Traceback" not in log and "never retrieved" not in log


async def test_a_worker_whose_front_was_killed_stops_and_the_next_start_applies_what_waited(
    emulator: Emulator, db_url: str, tmp_path: Path, http: aiohttp.ClientSession, procs: list[Proc]
) -> None:
    cfg, url, sender = await serve(emulator, db_url, tmp_path, http, procs)
    await worker_running(http, url)
    [worker] = procs[0].workers()
    procs[0].p.send_signal(signal.SIGKILL)  # the front only
    procs[0].p.wait()
    await wait_gone(worker)  # the link closed: it stopped by itself

    procs.append(Proc(cfg, tmp_path / "bot2.log"))
    await worker_running(http, url)
    assert (await sender.text("songtao", "报修 地点:教室7 设备:电脑 描述:第7台坏了")).status == 200
    assert len(await replies(emulator, "songtao", "报修已登记")) == 1


async def test_one_worker_applies_a_sqlite_file_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "LOCK_POLL_SECONDS", 0.02)
    database = str(tmp_path / "infodesk.db")
    never = asyncio.Event()
    second_applies = asyncio.Event()

    async def second() -> None:
        async with apply_lock(database, never) as locked:
            assert locked
            second_applies.set()

    async with apply_lock(database, never) as locked:
        assert locked
        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.3)
        assert not second_applies.is_set(), "a second worker applied beside the first"
    await asyncio.wait_for(waiting, 5)  # the first let go: the second goes on

    stopped = asyncio.Event()
    async with apply_lock(database, never):
        stopping = asyncio.create_task(_told_to_stop(database, stopped))
        await asyncio.sleep(0.1)
        stopped.set()  # SIGTERM while it waits: it gives up without applying
        assert await asyncio.wait_for(stopping, 5) is False
    async with apply_lock(None, never) as locked:  # PostgreSQL: replicas apply side by side
        assert locked


async def _told_to_stop(database: str, stop: asyncio.Event) -> bool:
    async with apply_lock(database, stop) as locked:
        return locked


async def test_the_front_hears_what_the_worker_applied_and_a_reset_link_is_the_worker_gone() -> None:
    counted: list[tuple[str, Outcome]] = []
    remote = RemoteApplier(["unused"], lambda channel, outcome: counted.append((channel, outcome)))
    waiter = remote.waiters.expect("msg:1")
    reader = asyncio.StreamReader()
    listening = asyncio.create_task(remote._listen(reader))
    reader.feed_data(b'r\n{"k": "msg:1", "o": "applied", "c": "app"}\nnot json\n{"k": "msg:2"}\n')
    await asyncio.wait_for(waiter, 5)
    # A worker that exits with wakes unread resets the socket: the front's reader gets ECONNRESET.
    reader.set_exception(ConnectionResetError(104, "Connection reset by peer"))
    await asyncio.wait_for(listening, 5)  # returns: no exception reaches the front's shutdown
    assert remote.state.state == "running"
    assert counted == [("app", Outcome.APPLIED)]
    assert waiter.done() and waiter.result() is Outcome.APPLIED


async def test_a_worker_not_heard_of_is_stopped_and_started_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(worker, "STALLED_SECONDS", 0.5)
    monkeypatch.setattr(worker, "RESTART_SECONDS", 0.05)
    # A "worker" whose event loop is stuck: it never says it is ready, nor that it is alive.
    remote = RemoteApplier([sys.executable, "-c", "import time; time.sleep(120)"], lambda *_: None)
    supervising = asyncio.create_task(remote.run())
    try:
        first = None
        for _ in range(200):
            first = first or remote.state.pid
            if remote.state.restarts >= 1 and remote.state.pid != first:
                break
            await asyncio.sleep(0.05)
        assert remote.state.restarts >= 1 and remote.state.pid != first
        assert first is not None and gone(first)  # the stuck one was stopped, not left running
    finally:
        remote.stop()
        await asyncio.wait_for(supervising, 30)
    assert remote.state.state == "stopped"


async def test_wakes_for_a_worker_that_does_not_read_do_not_pile_up() -> None:
    front, back = socket.socketpair()
    remote = RemoteApplier(["unused"], lambda *_: None)
    _, remote._writer = await asyncio.open_unix_connection(sock=front)
    try:
        for _ in range(300_000):  # far more than the socket's buffer holds
            remote.wake()
        assert remote._writer.transport.get_write_buffer_size() <= len(worker.WAKE)
    finally:
        remote._writer.close()
        back.close()


async def test_the_worker_gives_way_to_the_callbacks_the_front_has_in_hand() -> None:
    fd, shared = shared_count()
    front = Receiving(shared=shared, shared_fd=fd)
    in_worker = Receiving(remote=shared_count(fd)[1])  # as the worker process maps it
    said: list[str] = []

    def idle() -> None:  # the line over the link, as it were
        said.append("idle")
        in_worker.front_idle()

    front.on_idle = idle
    loop = asyncio.get_running_loop()

    started = loop.time()
    await in_worker.give_way(1.0)  # nothing in hand: no wait
    assert loop.time() - started < 0.1

    with front:  # a callback being received: the worker waits, up to its limit
        started = loop.time()
        await in_worker.give_way(0.2)
        assert loop.time() - started >= 0.2

    with front:  # ... and goes on as soon as the front has answered
        waiting = asyncio.create_task(in_worker.give_way(5.0))
        await asyncio.sleep(0.05)
        assert not waiting.done()
    await asyncio.wait_for(waiting, 0.5)

    async def burst() -> None:  # callbacks one after another: the count falls to 0 between them
        for _ in range(50):
            with front:
                await asyncio.sleep(0.002)

    with front:
        waiting = asyncio.create_task(in_worker.give_way(5.0))
        bursting = asyncio.create_task(burst())
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # halfway through the burst
    assert not waiting.done()  # the gaps of a burst are not the front being idle
    await bursting
    await asyncio.wait_for(waiting, 0.5)
    said.clear()
    for _ in range(100):  # a burst while the worker is not giving way: the front says nothing
        with front:
            pass
    assert said == []
    os.close(fd)


async def test_the_front_wakes_its_worker_once_per_look_not_once_per_callback() -> None:
    fd, shared = shared_count()
    receiving = Receiving(shared=shared, shared_fd=fd)
    in_worker = Receiving(remote=shared_count(fd)[1])
    front_end, back = socket.socketpair()
    remote = RemoteApplier(["unused"], lambda *_: None, receiving=receiving)
    _, remote._writer = await asyncio.open_unix_connection(sock=front_end)
    back.setblocking(False)

    def lines() -> bytes:
        got = b""
        with contextlib.suppress(BlockingIOError):
            while chunk := back.recv(4096):
                got += chunk
        return got

    try:
        for _ in range(50):  # recorded while the worker applies (it did not ask)
            remote.wake()
        await asyncio.sleep(0.05)
        assert lines() == b""
        in_worker.expect_rows()  # the worker is about to look
        for _ in range(50):
            remote.wake()
        await asyncio.sleep(0.05)
        assert lines() == worker.WAKE  # one wake for the look, whatever was recorded after it
        remote._writer.write(b"x" * 8_000_000)  # a worker that stopped reading: the buffer stays full
        assert remote._writer.transport.get_write_buffer_size()
        in_worker.expect_rows()
        remote.wake()  # held back: the worker's wish stays, for the next row once it reads again
        assert in_worker.remote is not None and in_worker.remote[ROWS_WANTED] == 1
    finally:
        remote._writer.close()
        back.close()
        os.close(fd)
