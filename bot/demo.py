"""`python -m bot demo`: the bot and the WeCom emulator on loopback, a scripted conversation.

Everything goes over real HTTP: callbacks are encrypted and signed as WeCom does, the bot
answers through its outbox, and the emulator records what each person received.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.app import create_app
from bot.config import Config, parse_config
from bot.emulator.sender import CallbackSender
from bot.emulator.server import Delivered, Emulator
from bot.logs import setup_logging

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def demo_config(api_base: str, db_path: str) -> Config:
    """The example organisation, pointed at the emulator and a temporary SQLite file."""
    raw: dict[str, Any] = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    raw["wecom"]["api_base"] = api_base
    raw["database"] = {"url": f"sqlite+aiosqlite:///{db_path}"}
    raw["server"] = {**raw.get("server", {}), "host": "127.0.0.1", "port": 0}
    raw["outbox"] = {**raw.get("outbox", {}), "poll_interval_seconds": 0.2}
    return parse_config(raw, environ={})


def draw(d: Delivered, names: dict[str, str]) -> str:
    """A delivered message as readable text; cards with their buttons."""
    body = d.body
    if d.msgtype == "text":
        return body["text"]["content"]
    if d.msgtype == "markdown":
        return body["markdown"]["content"]
    if d.msgtype == "template_card":
        card = body["template_card"]
        lines = [f"┌ [卡片] {card.get('main_title', {}).get('title', '')}"]
        if card.get("main_title", {}).get("desc"):
            lines.append(f"│ {card['main_title']['desc']}")
        for item in card.get("horizontal_content_list", []):
            lines.append(f"│ {item.get('keyname')}：{item.get('value')}")
        buttons = "  ".join(f"[{b['text']}]" for b in card.get("button_list", []))
        if buttons:
            lines.append(f"│ {buttons}")
        lines.append("└")
        return "\n".join(lines)
    return f"({d.msgtype})"


# (who, what they type, what their reply must contain)
SCRIPT: tuple[tuple[str, str, str], ...] = (
    ("zhaolei", "帮助", "报修"),
    ("zhaolei", "报修 地点:302教室 描述:投影仪开机没有画面", "编号 #"),
    ("majun", "報修 地點：機房B 設備：電腦", "描述"),  # Traditional characters, full-width colon
    ("majun", "第三排5号机开不了机", "编号 #"),
    ("zhangwei", "保修", "您是想“报修”吗"),
    ("zhangwei", "报修 颜色:红", "格式不对"),
    ("liyan", "报修", "在哪里"),
    ("liyan", "取消", "已取消"),
)


class Transcript:
    """Prints who said what and what each person received."""

    def __init__(self, emulator: Emulator, config: Config) -> None:
        self.emulator = emulator
        self.names = {p.userid: p.name for p in config.people}
        self.seen = 0

    def said(self, userid: str, text: str) -> None:
        print(f"\n{self.names.get(userid, userid)}（{userid}）：{text}")

    def note(self, text: str) -> None:
        print(f"  ※ {text}")

    def flush(self) -> int:
        new = self.emulator.delivered[self.seen:]
        self.seen = len(self.emulator.delivered)
        for d in new:
            who = d.to.split(":", 1)[1]
            print(f"  → {self.names.get(who, who)} 收到：")
            print(textwrap.indent(draw(d, self.names), "      "))
        return len(new)


async def _settle(http: aiohttp.ClientSession, bot_url: str) -> None:
    """Wait until the bot's outbox has nothing pending."""
    for _ in range(200):
        async with http.get(f"{bot_url}/healthz") as resp:
            health = await resp.json()
        if health["outbox"]["pending"] == 0:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the outbox did not drain")


async def run_demo(verbose: bool = False) -> int:
    """Play the script; return 0 when every step behaved as expected."""
    setup_logging("INFO" if verbose else "CRITICAL")
    if not verbose:
        logging.getLogger().setLevel(logging.CRITICAL)
    emulator = Emulator()
    with tempfile.TemporaryDirectory(prefix="infodesk-demo-") as tmp:
        api_base = await emulator.start()
        config = demo_config(api_base, str(Path(tmp) / "demo.db"))
        emulator.corp_id = config.wecom.corp_id
        emulator.secret = config.wecom.secret.get_secret_value()
        emulator.agent_id = config.wecom.agent_id
        emulator.known_users = {p.userid for p in config.people}
        emulator.webhook_keys = {g.webhook_key.get_secret_value() for g in config.groups if g.webhook_key}
        runner = web.AppRunner(create_app(config), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        bot_url = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                sender = CallbackSender(
                    http, bot_url + config.server.callback_path,
                    token=config.wecom.token.get_secret_value(),
                    encoding_aes_key=config.wecom.encoding_aes_key.get_secret_value(),
                    corp_id=config.wecom.corp_id, agent_id=config.wecom.agent_id,
                )
                return await _script(http, bot_url, sender, Transcript(emulator, config))
        finally:
            await runner.cleanup()
            await emulator.stop()


async def _script(http: aiohttp.ClientSession, bot_url: str, sender: CallbackSender, t: Transcript) -> int:
    print("Infodesk 演示：机器人与企业微信模拟器在本机回环地址上运行，所有消息经真实 HTTP 加密回调。")
    verified = await sender.verify_url("demo-echo-20261125")
    print(f"\n[管理后台] 校验回调 URL → HTTP {verified.status}，回显 {verified.text!r}")
    failures = 0 if verified.text == "demo-echo-20261125" else 1

    async def say(userid: str, text: str, expect: str) -> int:
        """One line of the script; 1 if the reply does not contain what a user would expect."""
        t.said(userid, text)
        posted = await sender.text(userid, text)
        await _settle(http, bot_url)
        before = t.seen
        t.flush()
        got = [draw(d, t.names) for d in t.emulator.delivered[before:]]
        if posted.status != 200 or not any(expect in g for g in got):
            t.note(f"预期回复中含“{expect}”，实际 HTTP {posted.status}")
            return 1
        return 0

    for userid, text, expect in SCRIPT:
        failures += await say(userid, text, expect)

    t.said("hejun", "报修 地点:南岸校区图书馆 设备:网络 描述:无线网连不上")
    xml, _ = sender.text_xml("hejun", "报修 地点:南岸校区图书馆 设备:网络 描述:无线网连不上")
    query, body = sender.envelope(xml)
    statuses = [(await sender.post_raw(query, body)).status for _ in range(3)]
    await _settle(http, bot_url)
    t.note(f"企业微信超时重试：同一回调投递 3 次（HTTP {statuses}），只处理一次")
    failures += 0 if t.flush() == 1 else 1

    forged = await sender.post_raw({**query, "msg_signature": "0" * 40}, body)
    t.note(f"伪造签名的回调 → HTTP {forged.status}，什么也没改变")
    failures += 0 if forged.status == 403 else 1

    async with http.get(f"{bot_url}/healthz") as resp:
        health = await resp.json()
    print(f"\n[运维] GET /healthz → 数据库 {health['database']}，待发 {health['outbox']['pending']}，"
          f"已发 {health['outbox']['sent']}，失败 {health['outbox']['failed']}")
    print("\n演示结束。" if not failures else f"\n演示有 {failures} 步不符合预期。")
    return 0 if not failures else 1
