"""Assets in the register for scenario tests (as an import would put them there)."""

from __future__ import annotations

from bot.appkeys import PIPELINE
from handlers import asset_store
from storage.models import Asset, AssetEvent
from tests.conftest import Bot


async def register_assets(bot: Bot, kind: str, *numbers: str, **facts: str) -> None:
    """Register `numbers` as assets of `kind` (in store unless `state`/`holder` say otherwise)."""
    async with bot.app[PIPELINE].sessions() as s, s.begin():
        for n in numbers:
            await asset_store.register(s, number=n, kind=kind, actor="import", at=bot.clock.now(), **facts)


async def asset(bot: Bot, number: str) -> tuple[Asset, list[str]]:
    """The asset and the kinds of its history's events, oldest first."""
    async with bot.app[PIPELINE].sessions() as s:
        found = await asset_store.find(s, number)
        assert found is not None, number
        events: list[AssetEvent] = await asset_store.history(s, found)
        s.expunge(found)
        return found, [e.kind for e in events]
