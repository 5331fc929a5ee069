"""Callback-path latency: p50/p99 of an encrypted POST until the bot's 200, against a baseline.

The bot runs as its own process (`python -m bot serve`) on SQLite (or the URL in
INFODESK_BENCH_DB_URL); the WeCom emulator and the client run here. Each sample is one member's
`报修 ...` message: verify, decrypt, parse, one transaction (dedupe row, ticket, outbox row), 200.
The baseline, measured in the same run on the same process, is `GET /healthz` (a database
round trip and the outbox counts, no crypto).

    python bench/callback_latency.py [N]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.emulator.sender import CallbackSender  # noqa: E402
from bot.emulator.server import Emulator  # noqa: E402
from tests.test_process import example_raw, free_port, write_config  # noqa: E402


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] * 1000


async def main(n: int) -> None:
    raw = example_raw()
    emu = Emulator(corp_id=raw["wecom"]["corp_id"], secret=raw["wecom"]["secret"], agent_id=raw["wecom"]["agent_id"])
    await emu.start()
    with tempfile.TemporaryDirectory() as tmp:
        db = os.environ.get("INFODESK_BENCH_DB_URL") or f"sqlite+aiosqlite:///{tmp}/bench.db"
        port = free_port()
        cfg = Path(tmp) / "bot.toml"
        write_config(cfg, emu.base_url, db, port)
        cfg.write_text(cfg.read_text().replace('level = "INFO"', 'level = "WARNING"'))
        proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--config", str(cfg)], cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(200):
                    try:
                        async with http.get(url + "/healthz") as r:
                            await r.read()
                        break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.1)
                w = raw["wecom"]
                sender = CallbackSender(
                    http,
                    url + "/wecom/callback",
                    token=w["token"],
                    encoding_aes_key=w["encoding_aes_key"],
                    corp_id=w["corp_id"],
                    agent_id=w["agent_id"],
                )
                users = [p["userid"] for p in raw["people"]]
                bodies = []
                for i in range(n + 50):
                    xml, _ = sender.text_xml(users[i % len(users)], f"报修 地点:教室{i} 设备:电脑 描述:第{i}台不亮")
                    bodies.append(sender.envelope(xml))
                callback: list[float] = []
                baseline: list[float] = []
                for i, (query, body) in enumerate(bodies):
                    t0 = time.perf_counter()
                    async with http.post(url + "/wecom/callback", params=query, data=body) as r:
                        await r.read()
                        assert r.status == 200, r.status
                    t1 = time.perf_counter()
                    async with http.get(url + "/healthz") as r:
                        await r.read()
                    t2 = time.perf_counter()
                    if i >= 50:  # warm-up excluded
                        callback.append(t1 - t0)
                        baseline.append(t2 - t1)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
            await emu.stop()
    engine = db.split(":", 1)[0]
    print(f"engine={engine} samples={n}")
    print(
        f"callback POST  p50={pct(callback, 50):.2f} ms  p99={pct(callback, 99):.2f} ms  "
        f"mean={statistics.mean(callback) * 1000:.2f} ms"
    )
    print(f"baseline GET /healthz  p50={pct(baseline, 50):.2f} ms  p99={pct(baseline, 99):.2f} ms")
    print(
        f"ratio callback/baseline  p50={pct(callback, 50) / pct(baseline, 50):.2f}  "
        f"p99={pct(callback, 99) / pct(baseline, 99):.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
