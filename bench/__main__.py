"""`python -m bench callback`: Infodesk against the floor and the tutorial peer, in one run.

    python -m bench callback [--seconds 8] [--concurrency 16] [--rate 200]

Every server runs as its own process on loopback; the WeCom emulator too. One load generator
(this process) posts fresh encrypted callbacks (unique MsgIds, signed as WeCom signs) with a fixed
number in flight, for a fixed time, from the example's people and 1,000 bench teachers in turn (so
no member is sent more than WeCom's 30 messages a minute; the bench prints the most it saw), to:

  (a) floor   — bare aiohttp: verify + decrypt (wechatpy), answer 200
  (b) peer    — Flask + wechatpy under gunicorn (2 workers), a synchronous message/send per message
  (c) sqlite  — Infodesk (`python -m bot serve`) on SQLite
  (d) pg      — Infodesk on PostgreSQL, when INFODESK_BENCH_PG_URL (or the CI database) answers

Two loads: `帮助` (a reply) and `报修 …` (a ticket, SLA timers, technicians' cards and a reply, in one
transaction). Then Infodesk at a steady rate (default 200 req/s) for the p99 target. Prints
req/s, p50, p99, max, errors, and the ratios c/a and c/b; for Infodesk, which answers once a
message is durably recorded and applies it right after (bot/journal.py), also how long after the
load the last message was applied, and the messages applied per second over the whole run. The
peers' dependencies are the `bench` extra: `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import make_url

from bot.emulator.sender import CallbackSender

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "infodesk" / "config.example.toml"
RAW = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
W = RAW["wecom"]
PEOPLE = [p["userid"] for p in RAW["people"]]
# WeCom takes at most 30 messages a minute (1,000 an hour) from one app to one member (doc 90312):
# the callback load comes from the configured people and this many more teachers, taken in turn
# over the whole run, so no member is sent more than a handful of replies a minute (a production
# load, not ten a second to each of 37 people piling up in the outbox). The bench prints the most
# messages any one member sent to a replying server (peer, Infodesk) within a minute. More people
# would cost Infodesk start-up time (config coverage is quadratic in people) and per-message scans.
EXTRA_TEACHERS = 1000
# A unit of the example's departments and its campus, for the extra teachers.
TEACHER_UNITS = (("it", "main"), ("mech", "donghu"), ("biz", "xishan"), ("preschool", "nanan"), ("research", "main"))
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华玉萍红娥玲兰凤洁梅琳素云莲真环雪荣爱妹香月莺媛瑞凡佳嘉琼勤珍贞莉"


def teachers(n: int = EXTRA_TEACHERS) -> list[dict[str, str]]:
    """`n` plain teachers (no role) spread over the example's departments: bench-only people."""
    out = []
    for i in range(n):
        unit, campus = TEACHER_UNITS[i % len(TEACHER_UNITS)]
        name = SURNAMES[i % len(SURNAMES)] + GIVEN[(i // len(SURNAMES)) % len(GIVEN)] + GIVEN[i % len(GIVEN)]
        out.append({"userid": f"bench_t{i:05d}", "name": name, "campus": campus, "unit": unit})
    return out


TEACHERS = teachers()
SENDERS = PEOPLE + [t["userid"] for t in TEACHERS]
_senders = itertools.cycle(SENDERS)  # in turn over the whole run, not per run
_recent: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
_peak = {"per_minute": 0}  # the most messages one member sent to replying servers in 60 s


def _count(userid: str, now: float) -> None:
    """Note a message from `userid` to a server that answers it (peer or Infodesk)."""
    q = _recent[userid]
    q.append(now)
    while q[0] <= now - 60:
        q.popleft()
    _peak["per_minute"] = max(_peak["per_minute"], len(q))


LOADS = {
    "帮助": lambda i: "帮助",
    "报修": lambda i: f"报修 地点:实训楼{300 + i % 50} 设备:电脑 描述:第{i}号机开不了机",
}
_msg_ids = itertools.count(8_000_000_000_000_000_000 + secrets.randbelow(10**15))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Result:
    name: str
    load: str
    count: int
    errors: int
    seconds: float
    latencies: list[float]
    drain: float | None = None  # Infodesk: seconds after the load until the journal was applied

    @property
    def rps(self) -> float:
        return self.count / self.seconds

    def pct(self, p: float) -> float:
        s = sorted(self.latencies) or [0.0]
        return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] * 1000

    def line(self) -> str:
        mx = max(self.latencies, default=0) * 1000
        return (
            f"{self.name:<8} {self.load:<4} {self.rps:8.0f} req/s   p50 {self.pct(50):7.1f} ms   "
            f"p99 {self.pct(99):7.1f} ms   max {mx:7.1f} ms   errors {self.errors}"
            + (
                ""
                if self.drain is None
                else f"   applied {self.drain:4.1f} s after the load ({self.applied_rps:.0f} applied/s)"
            )
        )

    @property
    def applied_rps(self) -> float:
        """Messages applied per second, from the load's start until the journal was empty."""
        return (self.count - self.errors) / (self.seconds + (self.drain or 0.0))


async def drained(http: aiohttp.ClientSession, url: str) -> float:
    """Seconds until Infodesk has applied every message it answered (its journal is empty)."""
    start = time.perf_counter()
    while True:
        async with http.get(url + "/healthz") as r:
            if (await r.json())["inbound"]["pending"] == 0:
                return time.perf_counter() - start
        await asyncio.sleep(0.05)


class Server:
    """A server subprocess on a free port, waited for until /healthz answers."""

    def __init__(self, argv: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.argv = argv
        self.err = tempfile.TemporaryFile()  # noqa: SIM115  (the child writes to it until stop())
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=self.err
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, http: aiohttp.ClientSession) -> None:
        for _ in range(300):
            if self.proc.poll() is not None:
                self.err.seek(0)
                tail = self.err.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"{' '.join(self.argv[:4])} exited with {self.proc.returncode}:\n{tail}")
            with suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(self.url + "/healthz", timeout=aiohttp.ClientTimeout(total=1)) as r:
                    if r.status < 500:
                        return
            await asyncio.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def drive(
    http: aiohttp.ClientSession,
    url: str,
    load: str,
    seconds: float,
    concurrency: int,
    rate: float | None = None,
    replies: bool = True,
) -> Result:
    """Fixed concurrency (or a steady rate) of fresh encrypted callbacks for `seconds`."""
    sender = CallbackSender(
        http,
        url + "/wecom/callback",
        token=W["token"],
        encoding_aes_key=W["encoding_aes_key"],
        corp_id=W["corp_id"],
        agent_id=W["agent_id"],
    )
    make = LOADS[load]
    latencies: list[float] = []
    errors = 0
    counter = itertools.count()
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def one() -> None:
        nonlocal errors
        i = next(counter)
        userid = next(_senders)
        if replies:
            _count(userid, time.monotonic())
        xml, _ = sender.text_xml(userid, make(i), msg_id=str(next(_msg_ids)))
        query, body = sender.envelope(xml)
        t0 = time.perf_counter()
        try:
            posted = await sender.post_raw(query, body)
            ok = posted.status == 200
        except (TimeoutError, aiohttp.ClientError):
            ok = False
        latencies.append(time.perf_counter() - t0)
        if not ok:
            errors += 1

    async def worker() -> None:
        while loop.time() < end:
            await one()

    start = loop.time()
    if rate is None:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    else:  # open loop: start one request every 1/rate s, whatever the answers do
        tasks = []
        k = 0
        while loop.time() < end:
            tasks.append(asyncio.create_task(one()))
            k += 1
            await asyncio.sleep(max(0.0, start + k / rate - loop.time()))
        await asyncio.gather(*tasks)
    return Result("", load, len(latencies), errors, loop.time() - start, latencies)


def bot_config(path: Path, api_base: str, db_url: str, port: int, extra_people: bool = False) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace('api_base = "https://qyapi.weixin.qq.com"', f'api_base = "{api_base}"')
    text = text.replace('url = "sqlite+aiosqlite:///infodesk.db"', f'url = "{db_url}"')
    text = text.replace("port = 8080", f"port = {port}")
    text = text.replace('level = "INFO"', 'level = "WARNING"')
    if extra_people:
        text += "".join("\n[[people]]\n" + "".join(f'{k} = "{v}"\n' for k, v in t.items()) for t in TEACHERS)
    path.write_text(text, encoding="utf-8")


def pg_server() -> str | None:
    """The PostgreSQL server the bench creates its databases on (INFODESK_BENCH_PG_URL's, or the
    CI machine's), when it answers."""
    url = os.environ.get("INFODESK_BENCH_PG_URL") or "postgresql+asyncpg://postgres@127.0.0.1:5432/infodesk_bench"

    async def probe() -> None:  # the server answers and lets us create databases
        await drop_pg(await fresh_pg(url, "probe"))

    with suppress(Exception):
        asyncio.run(probe())
        return url
    return None


@contextlib.asynccontextmanager
async def admin(url: str) -> AsyncIterator[Any]:
    """An asyncpg connection to the `postgres` database of the server at `url`."""
    import asyncpg

    dsn = make_url(url).set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=2)
    try:
        yield conn
    finally:
        await conn.close()


async def fresh_pg(url: str, suffix: str) -> str:
    """A new, empty database beside the one at `url`, named after it and `suffix`."""
    parsed = make_url(url)
    name = f"{parsed.database}_{suffix}"
    async with admin(url) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    return parsed.set(database=name).render_as_string(hide_password=False)


async def drop_pg(url: str) -> None:
    """Drop a database `fresh_pg` made, once the server that used it has stopped."""
    async with admin(url) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


class Infodesk:
    """`python -m bot serve` on a database of its own, started fresh for each run and stopped after
    it: what one run answered, applies and delivers never takes CPU from the next run (a burst of
    报修 leaves thousands of technicians' cards that WeCom's per-member limit spreads over hours)."""

    def __init__(self, tmp: Path, api: str, pg: str | None) -> None:
        self.tmp, self.api, self.pg = tmp, api, pg
        self.runs = itertools.count()

    @property
    def names(self) -> list[str]:
        return ["sqlite"] + (["pg"] if self.pg else [])

    @contextlib.asynccontextmanager
    async def serving(self, name: str, http: aiohttp.ClientSession) -> AsyncIterator[Server]:
        n = next(self.runs)
        if name == "pg":
            assert self.pg is not None
            db = await fresh_pg(self.pg, f"run{n}")
        else:
            db = f"sqlite+aiosqlite:///{self.tmp}/run{n}.db"
        port = free_port()
        cfg = self.tmp / f"run{n}.toml"
        bot_config(cfg, self.api, db, port, extra_people=True)
        server = Server([sys.executable, "-m", "bot", "serve", "--config", str(cfg)], port)
        try:
            await server.ready(http)
            yield server
        finally:
            server.stop()
            if name == "pg":
                await drop_pg(db)


async def run(args: argparse.Namespace, pg: str | None) -> int:
    emu_port = free_port()
    emulator = Server([sys.executable, "-m", "bench.emulator_proc", str(emu_port)], emu_port)
    api = emulator.url
    servers: dict[str, Server] = {}
    tmp = Path(tempfile.mkdtemp(prefix="infodesk-bench-"))
    infodesk = Infodesk(tmp, api, pg)
    if pg is None:
        print("pg skipped: PostgreSQL not reachable (set INFODESK_BENCH_PG_URL)")
    results: list[Result] = []
    try:
        port = free_port()
        servers["floor"] = Server(
            [sys.executable, "-m", "bench.peers.floor", str(port), W["token"], W["encoding_aes_key"], W["corp_id"]],
            port,
        )
        gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn")
        if gunicorn:
            port = free_port()
            peer_env = {
                "INFODESK_PEER": ",".join(
                    [W["token"], W["encoding_aes_key"], W["corp_id"], W["secret"], str(W["agent_id"]), api]
                )
            }
            servers["peer"] = Server(
                [
                    gunicorn,
                    "-w",
                    "2",
                    "-b",
                    f"127.0.0.1:{port}",
                    "--log-level",
                    "warning",
                    "bench.peers.flask_peer:app",
                ],
                port,
                peer_env,
            )
        else:
            print("peer skipped: gunicorn/flask not installed (pip install -e '.[bench]')")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await emulator.ready(http)
            for s in servers.values():
                await s.ready(http)
            print(
                f"{args.seconds:.0f} s per run, {args.concurrency} in flight, fresh encrypted callbacks from "
                f"{len(SENDERS):,} senders in turn ({len(PEOPLE)} configured + {len(TEACHERS):,} bench teachers);\n"
                "Infodesk on a fresh server and database for each run\n"
            )
            for load in LOADS:
                for name in [*servers, *infodesk.names]:
                    replies = name != "floor"
                    async with contextlib.AsyncExitStack() as stack:
                        fresh = name not in servers  # Infodesk: a server of its own for the run
                        s = await stack.enter_async_context(infodesk.serving(name, http)) if fresh else servers[name]
                        await drive(http, s.url, load, 1.0, args.concurrency, replies=replies)  # warm-up
                        if fresh:
                            await drained(http, s.url)
                        r = await drive(http, s.url, load, args.seconds, args.concurrency, replies=replies)
                        r.name = name
                        if fresh:
                            r.drain = await drained(http, s.url)
                    results.append(r)
                    print(r.line())
                by = {r.name: r for r in results if r.load == load}
                for db in infodesk.names:
                    parts = [f"{db}/floor = {by[db].rps / by['floor'].rps:.2f}"]
                    if "peer" in by:
                        parts.append(f"{db}/peer = {by[db].rps / by['peer'].rps:.2f}")
                    print("   ratios: " + ", ".join(parts))
                print()
            print(f"steady {args.rate:.0f} req/s for {args.seconds:.0f} s (open loop):")
            for name in infodesk.names:
                for load in LOADS:
                    async with infodesk.serving(name, http) as s:
                        r = await drive(http, s.url, load, args.seconds, 0, rate=args.rate)
                        r.name = name
                        r.drain = await drained(http, s.url)
                    print(r.line())
            print(
                f"\nmost messages from one member to a replying server within a minute: {_peak['per_minute']} "
                "(WeCom sends at most 30 a minute to one member)"
            )
    finally:
        for s in servers.values():
            s.stop()
        emulator.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("callback", help="Infodesk against the floor and the tutorial peer")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--rate", type=float, default=200.0)
    from bench import fanout

    fanout.add_arguments(sub.add_parser("fanout", help="1,000 managed groups' daily push against WeCom's limits"))
    args = parser.parse_args()
    if args.what == "fanout":
        return fanout.main(args)
    return asyncio.run(run(args, pg_server()))


if __name__ == "__main__":
    raise SystemExit(main())
