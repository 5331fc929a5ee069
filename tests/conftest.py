"""Fixtures: a real bot (aiohttp on loopback) against the real WeCom emulator, per database engine."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select, text

from bot.appkeys import DISPATCHER, PIPELINE
from infodesk.app import create_app
from bot.clock import Clock, FakeClock
from bot.config import Config, parse_config
from bot.emulator.sender import CallbackSender
from bot.emulator.server import Emulator
from storage.db import make_engine
from storage.models import Base, OutboxMessage, OutboxStatus

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("INFODESK_TEST_PG_URL")
ENGINES = ["sqlite"] + (["postgresql"] if PG_URL else [])


def example_raw() -> dict[str, Any]:
    return tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))


def make_config(api_base: str, db_url: str, **sections: dict[str, Any]) -> Config:
    """The example organisation, pointed at an emulator and a test database."""
    raw = example_raw()
    raw["wecom"]["api_base"] = api_base
    raw["database"] = {"url": db_url}
    raw["outbox"] = {"poll_interval_seconds": 0.05, "request_timeout_seconds": 2, "max_backoff_seconds": 1}
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return parse_config(raw, environ={})


async def reset_postgres(url: str) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(params=ENGINES)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh empty database: SQLite always, PostgreSQL when INFODESK_TEST_PG_URL is set."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    assert PG_URL
    await reset_postgres(PG_URL)
    return PG_URL


@pytest.fixture
async def emulator(example_people: set[str]) -> AsyncIterator[Emulator]:
    raw = example_raw()
    emu = Emulator(corp_id=raw["wecom"]["corp_id"], secret=raw["wecom"]["secret"],
                   agent_id=raw["wecom"]["agent_id"], known_users=example_people)
    emu.webhook_keys = {g["webhook_key"] for g in raw["groups"] if "webhook_key" in g}
    for g in raw["groups"]:  # the app created its group chats long ago
        if g.get("channel", "appchat") == "appchat":
            emu.chats[g["chat_id"]] = {"chatid": g["chat_id"], "name": g["name"], "owner": g["admins"][0],
                                       "userlist": list(g["admins"])}
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
def example_people() -> set[str]:
    return {p["userid"] for p in example_raw()["people"]}


@dataclass
class Bot:
    """A running bot: its URL, a WeCom-like sender, and the app for inspection."""

    app: web.Application
    runner: web.AppRunner
    url: str
    sender: CallbackSender
    config: Config
    http: aiohttp.ClientSession

    async def count(self, model: type[Base], *where: Any) -> int:
        async with self.app[PIPELINE].sessions() as s:
            return int((await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one())

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until the outbox has nothing pending (the dispatcher runs in the background)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while await self.count(OutboxMessage, OutboxMessage.status == OutboxStatus.PENDING):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("outbox still has pending rows")
            await self.app[DISPATCHER].drain_once()
            await asyncio.sleep(0.02)

    async def health(self) -> dict[str, Any]:
        async with self.http.get(f"{self.url}/healthz") as resp:
            return await resp.json()

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_bot(
    config: Config, http: aiohttp.ClientSession, clock: Clock | None = None, **kw: Any
) -> Bot:
    app = create_app(config, clock=clock, **kw)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    sender = CallbackSender(
        http, url + config.server.callback_path,
        token=config.wecom.token.get_secret_value(),
        encoding_aes_key=config.wecom.encoding_aes_key.get_secret_value(),
        corp_id=config.wecom.corp_id, agent_id=config.wecom.agent_id,
        clock=(lambda: clock.now().timestamp()) if clock else __import__("time").time,
    )
    return Bot(app, runner, url, sender, config, http)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# Scenario tests run on a fake clock: 2026-11-25 09:00 in Shanghai, a Wednesday.
SCENE_START = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(SCENE_START)


@pytest.fixture
async def scene(emulator: Emulator, db_url: str, http: aiohttp.ClientSession,
                clock: FakeClock) -> AsyncIterator[Scene]:
    """A bot whose dispatcher and scheduler run when the test says, on a clock shared with WeCom."""
    emulator.clock = lambda: clock.now().timestamp()
    b = await start_bot(make_config(emulator.base_url, db_url), http, clock=clock, run_dispatcher=False)
    yield Scene(b, emulator)
    await b.stop()


@pytest.fixture
async def bot(emulator: Emulator, db_url: str, http: aiohttp.ClientSession) -> AsyncIterator[Bot]:
    # Recurring jobs follow the wall clock; tests of them use a fake clock (tests/test_groups_http.py).
    b = await start_bot(make_config(emulator.base_url, db_url), http, run_jobs=False)
    yield b
    await b.stop()


from tests.scene import Scene  # noqa: E402  (scene.py imports Bot from here)
