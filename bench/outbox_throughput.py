"""Outbox delivery rate against direct API calls, in the same run, on the same emulator.

N text messages to N different members (so WeCom's per-member limits do not bind):
- baseline: `WeComAPI.send_message` called directly, `concurrency` at a time;
- outbox: the rows committed in one transaction, then drained by the dispatcher (claim with a
  lease, send, mark sent — three transactions a message).

    python bench/outbox_throughput.py [N]      (INFODESK_BENCH_DB_URL for PostgreSQL)
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.clock import SystemClock  # noqa: E402
from bot.config import OutboxConfig  # noqa: E402
from bot.emulator.server import Emulator  # noqa: E402
from bot.outbox import Dispatcher, enqueue  # noqa: E402
from bot.wecom_api import WeComAPI  # noqa: E402
from storage.db import make_engine, make_sessionmaker, migrate  # noqa: E402


async def main(n: int) -> None:
    emu = Emulator()
    await emu.start()
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("INFODESK_BENCH_DB_URL") or f"sqlite+aiosqlite:///{tmp}/bench.db"
        engine = make_engine(url)
        await migrate(engine)
        sessions = make_sessionmaker(engine)
        cfg = OutboxConfig(concurrency=8)
        async with aiohttp.ClientSession() as http:
            api = WeComAPI(
                http,
                api_base=emu.base_url,
                corp_id=emu.corp_id,
                secret=emu.secret,
                agent_id=emu.agent_id,
                clock=SystemClock(),
            )
            sem = asyncio.Semaphore(cfg.concurrency)

            async def direct(i: int) -> None:
                async with sem:
                    await api.send_message({"touser": f"base{i}", "msgtype": "text", "text": {"content": "x"}})

            t0 = time.perf_counter()
            await asyncio.gather(*(direct(i) for i in range(n)))
            baseline = time.perf_counter() - t0

            now = datetime.now(UTC)
            async with sessions() as s, s.begin():
                for i in range(n):
                    enqueue(
                        s,
                        now,
                        f"user:u{i}",
                        "message",
                        {"touser": f"u{i}", "msgtype": "text", "text": {"content": "x"}},
                    )
            dispatcher = Dispatcher(sessions, api, SystemClock(), cfg)
            t0 = time.perf_counter()
            while await dispatcher.drain_once():
                pass
            outbox = time.perf_counter() - t0
        await engine.dispose()
    await emu.stop()
    delivered = sum(1 for d in emu.delivered if d.to.startswith("user:u"))
    print(f"engine={url.split(':', 1)[0]} messages={n} delivered_via_outbox={delivered}")
    print(f"baseline direct API  {n / baseline:8.0f} msg/s  ({baseline:.2f} s)")
    print(f"outbox dispatcher    {n / outbox:8.0f} msg/s  ({outbox:.2f} s)")
    print(f"ratio outbox/baseline throughput {baseline / outbox:.2f}")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    if os.environ.get("INFODESK_BENCH_DB_URL"):
        print("note: rows stay in the benchmark database; the test suite resets its schema")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
