"""`python -m bot serve` as a real process: SIGKILL with pending work, SIGTERM, logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.clock import CLOCK_OFFSET_ENV, ShiftedClock, SystemClock, clock_from_env
from bot.emulator.sender import CallbackSender
from bot.emulator.server import Emulator
from tests.conftest import ROOT, example_raw

USERS = ["zhaolei", "majun", "yangfan", "zhangwei", "liyan", "liuna", "chenjing", "songtao", "luwei", "fengyu"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, api_base: str, db_url: str, port: int) -> None:
    text = (ROOT / "infodesk" / "config.example.toml").read_text(encoding="utf-8")
    text = text.replace('api_base = "https://qyapi.weixin.qq.com"', f'api_base = "{api_base}"')
    text = text.replace('url = "sqlite+aiosqlite:///infodesk.db"', f'url = "{db_url}"')
    text = text.replace("port = 8080", f"port = {port}")
    text = text.replace("poll_interval_seconds = 1.0", "poll_interval_seconds = 0.1")
    text = text.replace("request_timeout_seconds = 10", "request_timeout_seconds = 2")
    text = text.replace("max_backoff_seconds = 300", "max_backoff_seconds = 1")
    path.write_text(text, encoding="utf-8")


class Proc:
    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.fh = open(log, "ab")  # noqa: SIM115  (kept open for the child process's lifetime)
        self.p = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--config", str(config)],
            cwd=ROOT,
            stdout=self.fh,
            stderr=self.fh,
            env={**os.environ},
        )

    def workers(self) -> list[int]:
        """The worker processes `serve` started (bot/worker.py)."""
        try:
            children = Path(f"/proc/{self.p.pid}/task/{self.p.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(c) for c in children]

    def kill(self) -> None:
        """SIGKILL the front and its worker at once, as a power cut or the OOM killer would (the
        worker is killed first: a worker that outlived its front would stop gracefully)."""
        for pid in self.workers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()

    def close(self) -> None:
        if self.p.poll() is None:
            self.kill()
        self.fh.close()


# Where the served processes' clock stands when a test starts them (INFODESK_CLOCK_OFFSET_SECONDS,
# one offset for the whole test, so a restarted process goes on from where the killed one was): a
# Wednesday afternoon with no scheduled job due within the catch-up grace or the next minutes, so a
# job's message never mixes with what a test counts or meets the error it injects, whatever the
# real date and hour (CI runs at any hour, on weekends too). A test may set its own offset after.
QUIET_AT = datetime(2026, 11, 18, 13, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def procs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Proc]]:
    monkeypatch.setenv(CLOCK_OFFSET_ENV, repr(QUIET_AT.timestamp() - time.time()))
    started: list[Proc] = []
    yield started
    for p in started:
        p.close()


async def wait_healthy(http: aiohttp.ClientSession, url: str, timeout: float = 60) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            async with http.get(url + "/healthz") as resp:
                return await resp.json()
        except aiohttp.ClientError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


def served_now() -> float:
    """The served processes' time (the system clock moved by the offset `procs` set), as a timestamp."""
    return time.time() + float(os.environ.get(CLOCK_OFFSET_ENV) or 0)


def sender_for(http: aiohttp.ClientSession, url: str) -> CallbackSender:
    w = example_raw()["wecom"]
    return CallbackSender(
        http,
        url + "/wecom/callback",
        token=w["token"],
        encoding_aes_key=w["encoding_aes_key"],
        corp_id=w["corp_id"],
        agent_id=w["agent_id"],
        clock=served_now,  # callbacks stamped with the served clock's time, or they are stale to it
    )


async def serve(
    emulator: Emulator, db_url: str, tmp_path: Path, http: aiohttp.ClientSession, procs: list[Proc]
) -> tuple[Path, str, CallbackSender]:
    """Start `python -m bot serve` on a free port; return its config, URL and a sender."""
    port = free_port()
    cfg = tmp_path / "bot.toml"
    write_config(cfg, emulator.base_url, db_url, port)
    url = f"http://127.0.0.1:{port}"
    procs.append(Proc(cfg, tmp_path / "bot.log"))
    await wait_healthy(http, url)
    return cfg, url, sender_for(http, url)


async def test_sigkill_with_pending_outbox_delivers_each_once_after_restart(
    emulator: Emulator, db_url: str, tmp_path: Path, http: aiohttp.ClientSession, procs: list[Proc]
) -> None:
    cfg, url, sender = await serve(emulator, db_url, tmp_path, http, procs)
    # WeCom answers slowly, so at the kill some sends are in flight and the rest still queued.
    emulator.set_delay("message/send", 0.4)
    for i, u in enumerate(USERS):
        assert (await sender.text(u, f"报修 地点:教室{i} 设备:电脑 描述:第{i}台坏了")).status == 200
    await asyncio.sleep(0.6)
    procs[0].kill()
    delivered_before = sum("报修已登记" in t for u in USERS for t in emulator.texts_to(u))
    assert delivered_before < len(USERS), "the kill came too late to test anything"
    emulator.set_delay("message/send", 0)
    procs.append(Proc(cfg, tmp_path / "bot2.log"))
    await wait_healthy(http, url)
    # Rows that were in flight at the kill wait for their lease to run out, then are re-sent
    # with WeCom's duplicate check; wait until nothing is pending, then count deliveries.
    for _ in range(300):
        health = await wait_healthy(http, url)
        if health["inbound"]["pending"] == 0 and health["outbox"]["pending"] == 0:
            break
        await asyncio.sleep(0.1)
    assert health["outbox"]["failed"] == 0
    # Every sent row reached WeCom's member exactly once (replies to the reporters, cards to the
    # technicians), even those that were in flight at the kill.
    assert len(emulator.delivered) == health["outbox"]["sent"]
    for i, u in enumerate(USERS):
        texts = [t for t in emulator.texts_to(u) if "报修已登记" in t]  # a group admin also gets prompts
        assert len(texts) == 1, (u, texts)
        assert f"教室{i}" in texts[0]


async def test_sigterm_stops_cleanly_and_logs_are_structured_without_secrets(
    emulator: Emulator, db_url: str, tmp_path: Path, http: aiohttp.ClientSession, procs: list[Proc]
) -> None:
    _, _, sender = await serve(emulator, db_url, tmp_path, http, procs)
    proc = procs[0]
    posted = await sender.text("zhaolei", "报修 地点:302 设备:投影 描述:不亮")
    assert posted.status == 200
    await emulator.wait_for(lambda: emulator.texts_to("zhaolei"))
    proc.p.send_signal(signal.SIGTERM)
    assert proc.p.wait(timeout=60) == 0
    lines = [ln for ln in proc.log.read_text(encoding="utf-8").splitlines() if ln.strip()]
    events = [json.loads(ln) for ln in lines]  # every line is one JSON object
    applied = [e for e in events if e["event"] == "inbound_applied"]
    assert applied and applied[0]["msg_id"]
    w = example_raw()["wecom"]
    log_text = proc.log.read_text(encoding="utf-8")
    for secret in (w["secret"], w["token"], w["encoding_aes_key"]):
        assert secret not in log_text
    assert "access_token=emu_" not in log_text


async def test_two_bot_processes_fire_each_scheduled_occurrence_once(
    emulator: Emulator, db_url: str, tmp_path: Path, http: aiohttp.ClientSession, procs: list[Proc]
) -> None:
    """Two replicas on one database, a job due every minute: each occurrence is sent once."""
    cfgs = []
    for n in (1, 2):
        port = free_port()
        cfg = tmp_path / f"bot{n}.toml"
        write_config(cfg, emulator.base_url, db_url, port)
        cfg.write_text(
            cfg.read_text(encoding="utf-8").replace(
                'key = "ups_check"\ncron = "0 10 * * *"', 'key = "ups_check"\ncron = "* * * * *"'
            ),
            encoding="utf-8",
        )
        cfgs.append((cfg, f"http://127.0.0.1:{port}"))
    for n, (cfg, _) in enumerate(cfgs):
        procs.append(Proc(cfg, tmp_path / f"bot{n}.log"))
    for _, url in cfgs:
        await wait_healthy(http, url)
    # Both processes run their start-up catch-up and their first ticks (their workers start after
    # them: on a loaded machine that takes seconds), then any second delivery would have come.
    await emulator.wait_for(lambda: [t for t in emulator.texts_to("lihua") if "UPS" in t], timeout=30)
    await asyncio.sleep(3)
    ups = [t for t in emulator.texts_to("lihua") if "UPS" in t]
    fired = [
        json.loads(ln)
        for p in procs
        for ln in p.log.read_text(encoding="utf-8").splitlines()
        if '"job_fired"' in ln and "duty:ups_check" in ln
    ]
    assert len(ups) >= 1
    assert len(ups) == len(fired)  # one delivery per claimed occurrence, whichever process claimed it
    assert len({f["scheduled_at"] for f in fired}) == len(fired)  # no occurrence claimed twice


async def test_create_groups_cli_creates_missing_app_group_chats(emulator: Emulator, tmp_path: Path) -> None:
    emulator.chats.clear()
    cfg = tmp_path / "bot.toml"
    write_config(cfg, emulator.base_url, f"sqlite+aiosqlite:///{tmp_path}/x.db", free_port())
    cmd = [sys.executable, "-m", "bot", "create-groups", "--config", str(cfg)]
    first = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await first.communicate()
    assert first.returncode == 0, err.decode()
    # Only the internal staff group is an app group; customer groups and group robots need no chat.
    assert set(emulator.chats) == {"itteachers2024"}
    assert emulator.chats["itteachers2024"]["userlist"] == ["zhangwei", "zhouyan"]
    again = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, _ = await again.communicate()
    assert again.returncode == 0 and out.decode().count("已存在") == 1
    assert emulator.chats["itteachers2024"]["visible"]  # greeted once created: a new group is invisible until then


async def test_check_config_online_names_a_customer_group_wecom_does_not_know(
    emulator: Emulator, tmp_path: Path
) -> None:
    del emulator.customer.groups["wrOgQhDgAAparents2024AAAAA"]
    cfg = tmp_path / "bot.toml"
    write_config(cfg, emulator.base_url, f"sqlite+aiosqlite:///{tmp_path}/x.db", free_port())
    cmd = [sys.executable, "-m", "bot", "check-config", "--online", str(cfg)]
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 1
    assert "群「24级家长群」（wrOgQhDgAAparents2024AAAAA）：企业微信里没有这个客户群" in err.decode()
    assert "群「24级信息技术在校生群」（wrOgQhDgAAstudents2024AAAA）：客户群存在，群主 zhouyan" in out.decode()


def test_serve_runs_on_a_clock_shifted_by_the_environment() -> None:
    """INFODESK_CLOCK_OFFSET_SECONDS (a drill, or tests/test_replicas.py) moves `serve`'s clock."""
    assert isinstance(clock_from_env({}), SystemClock)
    shifted = clock_from_env({CLOCK_OFFSET_ENV: "-86400.5"})
    assert isinstance(shifted, ShiftedClock)
    assert shifted.offset.total_seconds() == -86400.5
    assert shifted.now() < datetime.now(UTC)
    for bad in ("tomorrow", "nan", "inf"):
        with pytest.raises(ValueError, match=CLOCK_OFFSET_ENV):
            clock_from_env({CLOCK_OFFSET_ENV: bad})
