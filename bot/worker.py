"""`serve` in two processes: the front answers WeCom, the worker applies.

Why: applying a message costs milliseconds of CPU (the ORM's statements, the workflow, rendering),
and on one event loop every callback that arrives meanwhile waits for it. Measured on the 2-core
CI machine at a steady 200 callbacks a second (BENCHMARKS.md), one process answered with a p99 of
14-84 ms; with the applying moved out, the front's p99 was 3-13 ms, on SQLite and on PostgreSQL.

- **The front** (the process `serve` starts) serves HTTP: it verifies, decrypts and records each
  callback in the inbound journal (bot/journal.py), answers, and wakes the worker. It reads the
  database for /healthz and /metrics and writes nothing else.
- **The worker** (`python -m bot worker`, started and watched by the front) does everything that
  writes the database: it applies the journal, delivers the outbox and runs the schedulers. It
  tells the front what it applied (for `answer_wait_seconds` and the metrics).

The two talk over a socket pair, one line per message: the front sends `w` (rows were recorded)
and `i` (it has no callback in hand), each only when the worker asked for it in the bytes they share
(bot/journal.Receiving); the worker sends `r` once it is up and one JSON line per message applied.
Nothing durable goes over the link: a message is in the journal before the front wakes anyone, so a
lost wake costs at most the worker's poll (bot/journal.POLL_SECONDS).

A worker that exits is started again after `RESTART_SECONDS`; callbacks are recorded meanwhile and
wait in the journal. A running worker sends `h` every HEARTBEAT_SECONDS; one silent for
STALLED_SECONDS (its event loop is stuck) is stopped and started again. A worker whose front goes
away (the link closes: the front was killed) stops as on SIGTERM; Ctrl-C is the front's to handle.
On SQLite one worker applies a journal file at a time: the next waits for the previous one's lock
(`apply.lock` beside the database), so a worker started while the last is still stopping does not
apply beside it. The worker reads the configuration file when it starts: a file changed since the
front started reaches a restarted worker only (restart `serve` after changing it).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import mmap
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from aiohttp import web

from bot.journal import Receiving, Waiters
from bot.logs import log
from bot.pipeline import Applied, Outcome

logger = logging.getLogger("infodesk.worker")

RESTART_SECONDS = 1.0  # before a worker that exited is started again
# A stopping worker gets its own stop's worth after SIGTERM (`stop_seconds`), then SIGKILL.
STOP_MARGIN_SECONDS = 5.0
HEARTBEAT_SECONDS = 5.0  # a running worker says so this often
STALLED_SECONDS = 60.0  # a worker not heard of for this long is stopped and started again
WAKE = b"w\n"
IDLE = b"i\n"
READY = b"r\n"
ALIVE = b"h\n"


@dataclass
class WorkerState:
    """What /healthz says of the worker."""

    state: str = "starting"  # starting | running | stalled | restarting | stopped
    pid: int | None = None
    restarts: int = 0

    def health(self) -> dict[str, object]:
        return {"state": self.state, "pid": self.pid, "restarts": self.restarts}


def stop_seconds(shutdown_timeout: float, request_timeout: float) -> float:
    """How long a worker may take to stop: the apply in hand (up to the server's shutdown timeout),
    the WeCom calls in flight (up to the outbox's request timeout), and a margin for the rest."""
    return shutdown_timeout + request_timeout + STOP_MARGIN_SECONDS


@dataclass
class RemoteApplier:
    """The front's side: starts and watches the worker, wakes it, hears what it applied.

    It stands where the in-process Applier stands in bot/journal.Journal (wake, run, stop), and
    resolves the journal's waiters with what the worker reports."""

    argv: Sequence[str]  # the worker's command line; `--link-fd N` is added
    on_applied: Callable[[str, Outcome], None]  # channel, outcome (the metrics)
    stop_seconds: float = stop_seconds(10.0, 10.0)  # the defaults' (`stop_seconds`)
    receiving: Receiving | None = None  # what the front shares with its worker (callbacks in hand, wants)
    state: WorkerState = field(default_factory=WorkerState)
    waiters: Waiters = field(default_factory=Waiters)
    _writer: asyncio.StreamWriter | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _heard: float = 0.0  # time.monotonic() of the worker's last line

    def __post_init__(self) -> None:
        if self.receiving is not None:
            self.receiving.on_idle = self._idle

    def wake(self) -> None:
        # The worker's flag is lowered only by a wake that goes out: one held back leaves it raised
        # for the next row, instead of the worker sleeping until its poll.
        link = self._free_link()
        if link is not None and (self.receiving is None or self.receiving.rows_wanted()):
            link.write(WAKE)

    def _idle(self) -> None:
        if (link := self._free_link()) is not None:
            link.write(IDLE)

    def _free_link(self) -> asyncio.StreamWriter | None:
        """The link, when nothing sent on it waits unread: one line not yet read is enough, and a
        worker that is not reading is not sent more."""
        writer = self._writer
        if writer is None or writer.is_closing() or writer.transport.get_write_buffer_size():
            return None
        return writer

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Run the worker until stopped; start it again whenever it exits."""
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                await self._run_once()
            except Exception:  # whatever went wrong with this worker, the next one is started
                logger.exception("worker_supervision_failed")
            finally:
                self._writer = None
            if self._stopping.is_set():
                break
            self.state.state, self.state.restarts = "restarting", self.state.restarts + 1
            # A worker that keeps failing at start is not restarted in a tight loop.
            pause = RESTART_SECONDS if time.monotonic() - started > 10 else RESTART_SECONDS * 5
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)
        self.state.state = "stopped"

    async def _run_once(self) -> None:
        front, back = socket.socketpair()
        try:
            argv, fds = [*self.argv, "--link-fd", str(back.fileno())], [back.fileno()]
            shared_fd = self.receiving.shared_fd if self.receiving is not None else None
            if shared_fd is not None:
                argv += ["--receiving-fd", str(shared_fd)]
                fds.append(shared_fd)
            proc = await asyncio.create_subprocess_exec(*argv, pass_fds=fds)
        except OSError as exc:
            log(logger, logging.ERROR, "worker_start_failed", error=str(exc)[:200])
            front.close()
            back.close()
            return
        back.close()
        self.state.pid = proc.pid
        try:
            await self._supervise(proc, front)
        finally:  # supervision failed or was cancelled: no worker is left running unwatched
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    async def _supervise(self, proc: asyncio.subprocess.Process, front: socket.socket) -> None:
        reader, self._writer = await asyncio.open_unix_connection(sock=front)
        self._writer.write(WAKE)  # rows may have been recorded before it was up
        log(logger, logging.INFO, "worker_started", pid=proc.pid)
        self._heard = time.monotonic()
        listening = asyncio.create_task(self._listen(reader))
        exited = asyncio.create_task(proc.wait())
        stopping = asyncio.create_task(self._stopping.wait())
        watching = asyncio.create_task(self._watch())
        await asyncio.wait([exited, stopping, watching], return_when=asyncio.FIRST_COMPLETED)
        if not exited.done():
            await self._terminate(proc, exited)
        stopping.cancel()
        watching.cancel()
        await listening  # the link closes when the worker has gone
        self._writer.close()
        level = logging.INFO if self._stopping.is_set() and proc.returncode == 0 else logging.ERROR
        log(logger, level, "worker_exited", pid=proc.pid, code=proc.returncode)

    async def _terminate(self, proc: asyncio.subprocess.Process, exited: asyncio.Task[int]) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(exited), self.stop_seconds)
        except TimeoutError:
            log(logger, logging.ERROR, "worker_killed", pid=proc.pid, after_s=self.stop_seconds)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await exited

    async def _watch(self) -> None:
        """Return when the worker has not been heard of for STALLED_SECONDS (its loop is stuck)."""
        while time.monotonic() - self._heard < STALLED_SECONDS:
            await asyncio.sleep(HEARTBEAT_SECONDS)
        self.state.state = "stalled"
        log(logger, logging.ERROR, "worker_stalled", pid=self.state.pid, silent_s=STALLED_SECONDS)

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        # A worker that exits with wakes unread resets the link: that is its end too.
        with contextlib.suppress(ConnectionError):
            await self._read(reader)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            self._heard = time.monotonic()
            if line == ALIVE:
                continue
            if line == READY:
                self.state.state = "running"
                continue
            with contextlib.suppress(ValueError, KeyError, TypeError):
                done = json.loads(line)
                outcome = Outcome(done["o"])
                self.on_applied(done["c"], outcome)
                self.waiters.resolve(done["k"], outcome)


@dataclass
class WorkerLink:
    """The worker's side of the link: wakes arrive, what was applied goes back."""

    sock: socket.socket
    receiving: mmap.mmap | None = None  # what the front shares (journal.Receiving)
    idle: Callable[[], None] | None = None  # the front said it has no callback in hand
    _writer: asyncio.StreamWriter | None = None

    async def open(self, wake: Callable[[], None]) -> asyncio.Task[None]:
        """Start listening; the task ends when the front goes away."""
        reader, self._writer = await asyncio.open_unix_connection(sock=self.sock)

        async def listen() -> None:
            with contextlib.suppress(ConnectionError):
                while line := await reader.readline():
                    if line == WAKE:
                        wake()
                    elif line == IDLE and self.idle is not None:
                        self.idle()

        return asyncio.create_task(listen(), name="worker-link")

    def ready(self) -> None:
        self._send(READY)

    async def heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            self._send(ALIVE)

    def applied(self, done: Applied) -> None:
        self._send(json.dumps({"k": done.key, "o": done.outcome.value, "c": done.channel}).encode() + b"\n")

    def _send(self, line: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(line)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


LOCK_POLL_SECONDS = 0.5  # how often a worker waiting for another's lock tries again


@contextlib.asynccontextmanager
async def apply_lock(database: str | None, stop: asyncio.Event) -> AsyncIterator[bool]:
    """On a SQLite file, the lock one worker holds while it applies (`apply.lock` beside it);
    waits, saying so, while another holds it. Yields False when `stop` was set first (nothing to
    do then). PostgreSQL (`database` None): nothing to wait for, replicas apply side by side."""
    if database is None:
        yield True
        return
    path = Path(database).resolve().with_name(f"{Path(database).stem}.apply.lock")
    handle: IO[bytes] = path.open("ab")
    try:
        said = False
        while not stop.is_set():
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said:
                    log(logger, logging.WARNING, "worker_waiting_for_lock", lock=str(path))
                    said = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), LOCK_POLL_SECONDS)
        yield not stop.is_set()
    finally:
        handle.close()  # releases the lock (a killed process's is released by the kernel)


async def run_worker(app: web.Application, link: WorkerLink, wake: Callable[[], None], database: str | None) -> None:
    """Take the SQLite file's lock (`apply_lock`), start the worker's app (no HTTP: its cleanup
    contexts are the work), tell the front, and run until SIGTERM or the front going away; then
    stop as the server stops. The front hears the heartbeat from the start, lock wait included."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # Ctrl-C in a terminal reaches the whole process group: the front stops the worker itself, after
    # the requests in flight (a worker stopping on its own meanwhile would be started again).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    listening = await link.open(wake)
    listening.add_done_callback(lambda _: stop.set())
    beating = asyncio.create_task(link.heartbeat(), name="worker-heartbeat")
    async with apply_lock(database, stop) as locked:
        if locked:
            runner = web.AppRunner(app, handle_signals=False)
            await runner.setup()
            link.ready()
            log(logger, logging.INFO, "worker_ready", pid=os.getpid())
            await stop.wait()
            await runner.cleanup()
    beating.cancel()
    link.close()
