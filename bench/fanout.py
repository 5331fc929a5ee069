"""`python -m bench fanout`: 1,000 managed groups' daily push against WeCom's limits.

    python -m bench fanout [--groups 1000] [--items 2] [--members 50] [--starts 5]

Method. A configuration with `--groups` managed groups (2 in 5 app groups `appchat`, 2 in 5 group
robots `webhook`, 1 in 5 customer groups `customer_group`) is generated in a temp dir from
infodesk/config.example.toml (its own groups removed). The WeCom emulator (bot/emulator/) runs in
this process (not as bench/emulator_proc.py, which forgets what it delivered every second: here
every message is counted; this process does nothing else meanwhile) and knows every group: the app
groups with `--members` members each, the robots' keys, the customer groups and their owners. The
database is migrated and seeded with `--items` approved items (音频课堂 notices) for today, each for
every group. Then `python -m bot serve` starts on the system clock with every group's push_time set
to the current minute (Asia/Shanghai) and a 2-minute grace: the push is due at start, so the bench
depends on no date or time of day, and the admins' prompts an hour earlier fall outside the grace
(not sent). The bench waits until the emulator has accepted every message: one markdown message per
item into each app group (appchat/send) and robot (webhook/send), one mass-send task per customer
group (externalcontact/add_msg_template).

Figures:
- time: from the first push call the emulator saw to the last message it accepted, against the
  limit-bound optimum, the least time WeCom's limits (as the emulator enforces them, printed)
  allow for these messages; percentage = optimum / time. The calls per path and per 10 s, and the
  45009 answers, show where the time went; the wait from a ready /healthz to the first push call
  (the scheduler's first tick) is printed apart.
- duplicates: messages the emulator accepted more than once, by recipient and content.
- RSS: VmHWM (peak), the largest sampled VmRSS and Pss of the bot over the push: its two processes (the
  front and its worker, bot/worker.py) summed.
- start-up: from spawning `python -m bot serve` (the same config and database, nothing due) to a
  `/healthz` that answers; median of `--starts` starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp

from bench.__main__ import PEOPLE, RAW, Server, bot_config, free_port
from bot.emulator.server import APPCHAT_CORP_LIMITS, APPCHAT_MEMBER_LIMITS, Emulator
from storage.db import make_engine, make_sessionmaker, migrate
from storage.models import AudioClass, Request

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEBHOOK_PER_MIN = 20  # per robot (doc 91770), as bot/emulator/server.py enforces
TARGET_PCT, TARGET_DUPS, TARGET_RSS_MB, TARGET_START_S = 90.0, 0, 150.0, 1.5
PUSH_PATHS = ("appchat/send", "webhook/send", "externalcontact/add_msg_template")


@dataclass
class Group:
    chat_id: str
    channel: str
    admins: tuple[str, str]
    members: list[str]
    key: str = ""
    owner: str = ""

    def toml(self, push_time: str) -> str:
        lines = [
            "[[groups]]",
            f'chat_id = "{self.chat_id}"',
            f'name = "压测群{self.chat_id[-4:]}{self.channel}"',
            f'audience = "{"教职工" if self.channel == "appchat" else "在校生"}"',
            f"admins = {json.dumps(list(self.admins))}",
            f'channel = "{self.channel}"',
            f'push_time = "{push_time}"',
        ]
        if self.key:
            lines.append(f'webhook_key = "{self.key}"')
        if self.owner:
            lines.append(f'owner = "{self.owner}"')
        return "\n".join(lines) + "\n"


def make_groups(n: int, members: int) -> list[Group]:
    groups = []
    for i in range(n):
        admins = (PEOPLE[i % len(PEOPLE)], PEOPLE[(i * 7 + 3) % len(PEOPLE)])
        kind = ("appchat", "appchat", "webhook", "webhook", "customer_group")[i % 5]
        if kind == "appchat":
            others = [f"fan{i:04d}m{j}" for j in range(members - len(set(admins)))]
            groups.append(Group(f"fanout{i:04d}", kind, admins, [*dict.fromkeys(admins), *others]))
        elif kind == "webhook":
            groups.append(Group(f"robot{i:04d}", kind, admins, [], key=f"fanout-key-{i:04d}"))
        else:
            groups.append(Group(f"wrFanout{i:04d}", kind, admins, [], owner=admins[0]))
    return groups


def optimum(groups: list[Group], items: int) -> tuple[float, list[str]]:
    """The least time from the first to the last send that WeCom's limits allow (sliding windows:
    n messages under `cap` per `w` seconds need at least (ceil(n / cap) - 1) * w), and why."""
    why: list[str] = []
    spans = [0.0]
    app = [g for g in groups if g.channel == "appchat"]
    if app:
        size = max(len(g.members) for g in app)
        persons = sum(len(g.members) for g in app) * items
        for w, cap in APPCHAT_CORP_LIMITS:
            per_window = cap // size  # whole messages per window (every group has `size` members)
            span = (math.ceil(len(app) * items / per_window) - 1) * w
            spans.append(span)
            why.append(f"appchat corp {cap:,} person-msgs/{w}s: {persons:,} person-msgs -> >= {span:.0f} s")
        per_member = Counter(u for g in app for u in g.members)
        busiest, count = per_member.most_common(1)[0]
        for w, cap in APPCHAT_MEMBER_LIMITS:
            span = (math.ceil(count * items / cap) - 1) * w
            spans.append(span)
            why.append(f"appchat per member {cap}/{w}s: busiest ({busiest}) gets {count * items} -> >= {span:.0f} s")
    if any(g.channel == "webhook" for g in groups):
        span = (math.ceil(items / WEBHOOK_PER_MIN) - 1) * 60
        spans.append(span)
        why.append(f"webhook {WEBHOOK_PER_MIN}/60s per robot: {items} each -> >= {span:.0f} s")
    if any(g.channel == "customer_group" for g in groups):
        why.append("customer groups: one task each (receive limit: a month's days; not binding) -> >= 0 s")
    return max(spans), why


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in kB of `pid` and its children (the front and its worker, bot/worker.py),
    summed; empty once it is gone. Two peaks summed may overstate the peak of the sum."""
    out: dict[str, int] = {}
    with suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for each in (pid, *map(int, children)):
            status = Path(f"/proc/{each}/status").read_text().splitlines()
            # Pss: each page shared by the two (the libraries' code) counted once between them.
            rollup = Path(f"/proc/{each}/smaps_rollup").read_text().splitlines()
            for line in status + rollup:
                if line.startswith(("VmRSS:", "VmHWM:", "Pss:")):
                    key = line.split(":")[0]
                    out[key] = out.get(key, 0) + int(line.split()[1])
    return out


async def seed(db_url: str, groups: list[Group], items: int, day: str, now: datetime) -> None:
    engine = make_engine(db_url)
    try:
        await migrate(engine)
        async with make_sessionmaker(engine)() as s, s.begin():
            chats = [g.chat_id for g in groups]
            for k in range(items):
                req = Request(
                    workflow="audio_class",
                    chain="audio_class",
                    requester=PEOPLE[0],
                    fields={"day": day, "title": f"压测第{k + 1}课"},
                    flow={},
                    status="approved",
                    stage="scheduled",
                    created_at=now,
                    updated_at=now,
                    step_started_at=now,
                )
                s.add(req)
                await s.flush()
                s.add(
                    AudioClass(
                        request_id=req.id,
                        kind="audio",
                        day=day,
                        class_time="19:30",
                        title=f"压测第{k + 1}课",
                        speaker="张老师",
                        link=f"https://example.edu.cn/audio/{k + 1}",
                        groups={"chats": chats},
                        pushed={},
                    )
                )
    finally:
        await engine.dispose()


def emulator_for(groups: list[Group]) -> Emulator:
    w = RAW["wecom"]
    emu = Emulator(corp_id=w["corp_id"], secret=w["secret"], agent_id=w["agent_id"])
    emu.known_users = None  # the app groups' members are not in [[people]]
    for g in groups:
        if g.channel == "appchat":
            emu.chats[g.chat_id] = {
                "chatid": g.chat_id,
                "name": g.chat_id,
                "owner": g.admins[0],
                "userlist": g.members,
                "visible": True,
            }
        elif g.channel == "webhook":
            emu.webhook_keys.add(g.key)
        else:
            emu.customer.add(g.chat_id, g.chat_id, g.owner)
    return emu


def accepted(emu: Emulator) -> list[tuple[str, str, float]]:
    """(recipient, content, when) of every push message the emulator accepted."""
    out = []
    for d in emu.delivered:
        if d.to.startswith(("chat:", "webhook:")):
            out.append((d.to, json.dumps(d.body.get(d.msgtype), ensure_ascii=False, sort_keys=True), d.at))
    for t in emu.customer.tasks.values():
        out.extend((f"cgroup:{c}", t.text, t.created) for c in t.chat_ids)
    return out


async def until_ready(server: Server, http: aiohttp.ClientSession, timeout: float = 60.0) -> None:
    """Poll /healthz every 10 ms until it answers (finer than Server.ready, for start-up time)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if server.proc.poll() is not None:
            await server.ready(http)  # raises with the process's stderr
        with suppress(aiohttp.ClientError, asyncio.TimeoutError):
            async with http.get(server.url + "/healthz", timeout=aiohttp.ClientTimeout(total=1)) as r:
                if r.status < 500:
                    return
        await asyncio.sleep(0.01)
    raise RuntimeError("the bot did not answer /healthz")


def per_slot(offsets: list[float], width: float) -> list[int]:
    slots = [0] * (int(max(offsets, default=0) // width) + 1)
    for t in offsets:
        slots[int(t // width)] += 1
    return slots


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


async def run(args: argparse.Namespace) -> int:
    groups = make_groups(args.groups, args.members)
    expected = sum(args.items if g.channel != "customer_group" else 1 for g in groups)
    emu = emulator_for(groups)
    api = await emu.start()
    tmp = Path(tempfile.mkdtemp(prefix="infodesk-fanout-"))
    bot: Server | None = None
    try:
        now = datetime.now(UTC)
        local = now.astimezone(SHANGHAI)
        push_time, day = local.strftime("%H:%M"), local.date().isoformat()
        port = free_port()
        cfg = tmp / "fanout.toml"
        db_url = f"sqlite+aiosqlite:///{tmp}/fanout.db"
        bot_config(cfg, api, db_url, port)
        text = cfg.read_text(encoding="utf-8")
        start, end = text.index("[[groups]]"), text.index("# The organisation from WeCom's directory")
        text = text[:start] + "".join(g.toml(push_time) for g in groups) + "\n" + text[end:]
        text = text.replace("grace_minutes = 120", "grace_minutes = 2")
        if args.one_process:
            text = text.replace("worker_process = true", "worker_process = false")
        cfg.write_text(text, encoding="utf-8")
        await seed(db_url, groups, args.items, day, now)
        best, why = optimum(groups, args.items)
        kinds = Counter(g.channel for g in groups)
        print(
            f"{len(groups)} groups ({kinds['appchat']} appchat of {args.members} members, {kinds['webhook']} webhook, "
            f"{kinds['customer_group']} customer_group), {args.items} items: {expected} messages; push at {push_time}"
        )
        print("limits the emulator enforces, and the optimum they allow:")
        for line in why:
            print("   " + line)

        rss_peak = pss_peak = 0
        async with aiohttp.ClientSession() as http:
            argv = [sys.executable, "-m", "bot", "serve", "--config", str(cfg)]
            # Bytecode cached as an installed package has it (pip compiles on install), kept in the
            # temp dir: the first start compiles, the timed ones after it read the cache.
            env = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(tmp / "pycache")}
            spawned = time.perf_counter()
            bot = Server(argv, port, env)
            await until_ready(bot, http)
            first_start = time.perf_counter() - spawned
            ready_at = time.time()  # the emulator's clock
            deadline = time.perf_counter() + args.timeout
            while len({(to, c) for to, c, _ in accepted(emu)}) < expected:
                sampled = proc_status(bot.proc.pid)
                rss_peak = max(rss_peak, sampled.get("VmRSS", 0))
                pss_peak = max(pss_peak, sampled.get("Pss", 0))
                if time.perf_counter() > deadline:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(args.settle)  # a late duplicate would arrive meanwhile
            status = proc_status(bot.proc.pid)
            rss_peak = max(rss_peak, status.get("VmRSS", 0))
            pss_peak = max(pss_peak, status.get("Pss", 0))
            processes = 1 + len(Path(f"/proc/{bot.proc.pid}/task/{bot.proc.pid}/children").read_text().split())
            hwm = status.get("VmHWM", 0)
            bot.stop()
            bot = None

            starts = []
            for _ in range(args.starts):
                spawned = time.perf_counter()
                bot = Server(argv, port, env)
                await until_ready(bot, http)
                starts.append(time.perf_counter() - spawned)
                bot.stop()
                bot = None

        got = accepted(emu)
        counts = Counter((to, c) for to, c, _ in got)
        dups = sum(n - 1 for n in counts.values() if n > 1)
        missing = expected - len(counts)
        pushes = [c for c in emu.calls if c.path in PUSH_PATHS]
        t0 = min(c.at for c in pushes)
        took = max(at for _, _, at in got) - t0
        refused = Counter(c.path for c in pushes if c.errcode == 45009)
        dropped = sum(1 for d in emu.dropped if d.msgtype == "markdown")
        print(f"\npush calls {len(pushes)}, 45009 answers {dict(refused) or 0}, person-messages dropped {dropped}")
        for path in PUSH_PATHS:
            mine = [c.at - t0 for c in pushes if c.path == path]
            late = [c.at - t0 for c in pushes if c.path == path and c.errcode == 45009]
            if mine:
                print(
                    f"   {path:<34} {len(mine):5d} calls from +{min(mine):5.1f} s to +{max(mine):5.1f} s"
                    + (f"; 45009 from +{min(late):.1f} s to +{max(late):.1f} s" if late else "")
                )
        print(f"   the first push call came {t0 - ready_at:.1f} s after /healthz was ready (the first tick)")
        print("   calls per 10 s: " + " ".join(str(n) for n in per_slot([c.at - t0 for c in pushes], 10.0)))
        print(f"accepted {len(counts)} of {expected} messages (missing {missing})")
        if best > 0:
            pct = 100 * best / took if took > 0 else 0.0
            print(
                f"time      {took:7.1f} s against the optimum {best:.0f} s = {pct:5.1f} %   "
                f"(target >= {TARGET_PCT:.0f} %)  {verdict(pct >= TARGET_PCT and missing == 0)}"
            )
        else:
            print(f"time      {took:7.1f} s; the limits do not bind at this load (optimum 0 s): no percentage")
        print(f"duplicates {dups:6d}   (target {TARGET_DUPS})  {verdict(dups == TARGET_DUPS)}")
        print(
            f"RSS       VmHWM {hwm / 1024:6.1f} MB, largest VmRSS sampled {rss_peak / 1024:6.1f} MB, "
            f"largest Pss sampled {pss_peak / 1024:6.1f} MB, {processes} process(es)   "
            f"(target <= {TARGET_RSS_MB:.0f} MB)  {verdict(0 < hwm / 1024 <= TARGET_RSS_MB)}"
        )
        median = statistics.median(starts) if starts else first_start
        print(
            f"start-up  median {median:5.2f} s of {len(starts)} starts "
            f"({', '.join(f'{s:.2f}' for s in starts)}; the first, compiling and migrating, {first_start:.2f} s)   "
            f"(target <= {TARGET_START_S} s)  {verdict(median <= TARGET_START_S)}"
        )
        print(f"(load average while running: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs)")
        return 0
    finally:
        if bot is not None:
            bot.stop()
        await emu.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--groups", type=int, default=1000)
    p.add_argument("--items", type=int, default=2, help="approved items per group today")
    p.add_argument("--members", type=int, default=50, help="members of each app group")
    p.add_argument("--starts", type=int, default=5, help="start-ups timed for the median")
    p.add_argument("--timeout", type=float, default=900.0, help="give up waiting for the push after this")
    p.add_argument("--settle", type=float, default=3.0, help="seconds to wait for late duplicates")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (config, database)")
    p.add_argument(
        "--one-process", action="store_true", help="serve with server.worker_process = false (bot/worker.py)"
    )


def main(args: argparse.Namespace) -> int:
    return asyncio.run(run(args))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.fanout")
    add_arguments(parser)
    raise SystemExit(main(parser.parse_args()))
