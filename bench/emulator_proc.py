"""The WeCom emulator in its own process (so the load generator does not share its event loop).

python -m bench.emulator_proc PORT
"""

from __future__ import annotations

import asyncio
import sys
import tomllib
from pathlib import Path

from bot.emulator.server import Emulator

EXAMPLE = Path(__file__).resolve().parent.parent / "infodesk" / "config.example.toml"


async def main(port: int) -> None:
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    w = raw["wecom"]
    emu = Emulator(corp_id=w["corp_id"], secret=w["secret"], agent_id=w["agent_id"])
    emu.known_users = None  # any member: the load uses many senders
    await emu.start(port=port)
    while True:  # keep memory flat over a long run
        await asyncio.sleep(1)
        emu.delivered.clear()
        emu.calls.clear()
        emu._requests.clear()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
