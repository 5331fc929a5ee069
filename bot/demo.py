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
    if d.msgtype == "update_template_card":
        return f"（卡片更新：按钮变为「{body.get('button', {}).get('replace_name', '')}」）"
    if d.msgtype == "template_card":
        card = body["template_card"]
        lines = [f"┌ [卡片] {card.get('main_title', {}).get('title', '')}"]
        if card.get("main_title", {}).get("desc"):
            lines.append(f"│ {card['main_title']['desc']}")
        if card.get("sub_title_text"):
            lines.append(f"│ {card['sub_title_text']}")
        for item in card.get("horizontal_content_list", []):
            lines.append(f"│ {item.get('keyname')}：{item.get('value')}")
        buttons = "  ".join(f"[{b['text']}]" for b in card.get("button_list", []))
        if buttons:
            lines.append(f"│ {buttons}")
        lines.append("└")
        return "\n".join(lines)
    return f"({d.msgtype})"


# ("say", who, what they type, what the answers must contain) | ("click", who, button, ...) |
# ("section", title, "", "")
SCRIPT: tuple[tuple[str, str, str, str], ...] = (
    ("section", "帮助与报修（技术员接单 → 完成，24 小时时限）", "", ""),
    ("say", "zhaolei", "帮助", "报修"),
    ("say", "zhaolei", "报修 地点:302教室 描述:投影仪开机没有画面", "编号 #"),
    ("click", "zhanglei", "接单", "已由技术员张磊接单"),
    ("say", "zhanglei", "完成 #1 更换投影灯泡，已恢复", "处理完成"),
    ("say", "majun", "報修 地點：機房B 設備：電腦", "描述"),  # Traditional characters, full-width colon
    ("say", "majun", "第三排5号机开不了机", "编号 #"),
    ("say", "zhangwei", "保修", "您是想“报修”吗"),
    ("say", "zhangwei", "报修 颜色:红", "格式不对"),
    ("say", "liyan", "报修", "在哪里"),
    ("say", "liyan", "取消", "已取消"),
    ("section", "调监控（学生相关：班主任 → 系主任 → 信息中心主管校长 → 监控室）", "", ""),
    ("say", "zhaolei", "调监控 地点:实训楼二楼走廊 时间:昨天 下午2点到3点 原因:学生手机丢失 类型:学生 "
                       "班级:24级机电技术2班", "监控调取申请 #1"),
    ("click", "liuna", "同意", "已同意·刘娜"),
    ("click", "songtao", "同意", "刘洋"),
    ("say", "lihua", "进度 #1", "没有找到编号 #1"),  # confidential: others cannot see it
    ("click", "liuyang", "同意", "调取监控 #1"),
    ("click", "linxue", "登记交付", "调取人"),
    ("say", "linxue", "赵磊", "调取时间"),
    ("say", "linxue", "今天 10:30", "内容"),
    ("say", "linxue", "实训楼二楼走廊摄像头 14:00-15:00 录像", "交付方式"),
    ("say", "linxue", "现场查看", "交付方式：现场查看"),
    ("section", "领电脑（科室：科室负责人 → 主管副校长 → 校长 → 发放 → 确认领取）", "", ""),
    ("say", "huangli", "领电脑 用途:办公 数量:1 配置:i5/16G/512G 装好Office", "计算机领取申请 #2"),
    ("say", "zhengmei", "同意 #2", "赵敏"),
    ("click", "zhaomin", "同意", "王建国"),
    ("click", "wangjianguo", "同意", "发放电脑 #2"),
    ("say", "lihua", "发放 #2 资产号:XX-PC-0231", "确认领取 #2"),
    ("say", "huangli", "确认领取 #2", "已确认领取"),
    ("say", "huangli", "我的申请", "已通过"),
    ("section", "借舞台（冲突检测 → 中心主任审批；户外加主管副校长）", "", ""),
    ("say", "zhaolei", "借舞台 场地:本部礼堂 日期:明天 时间:下午2点到4点 活动:合唱排练 户外:否 校外:否 重大活动:否",
     "舞台使用申请 #3"),
    ("say", "songtao", "借舞台 场地:本部礼堂 日期:明天 时间:15:00-17:00 活动:技能展示 户外:否 校外:否 重大活动:否",
     "最近的空闲时段"),
    ("say", "songtao", "时间:16:00-18:00", "舞台使用申请 #4"),
    ("click", "chenhao", "同意", "已审批通过"),
    ("say", "songtao", "借舞台 场地:东湖校区舞台 日期:后天 时间:9:00-11:00 活动:运动会 户外:是 校外:否 重大活动:否",
     "信息中心主任 → 主管副校长"),
    ("say", "chenhao", "同意 #5", "孙丽"),
    ("click", "sunli", "同意", "已审批通过"),
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

    async def click(userid: str, button: str, expect: str) -> int:
        """The member presses `button` on the newest card that has it."""
        card = next(d.body["template_card"] for d in reversed(t.emulator.messages_to(userid))
                    if d.msgtype == "template_card"
                    and any(b["text"] == button for b in d.body["template_card"].get("button_list", [])))
        key = next(b["key"] for b in card["button_list"] if b["text"] == button)
        print(f"\n{t.names.get(userid, userid)}（{userid}）：点击卡片「{card['main_title']['title']}」的 [{button}]")
        code = t.emulator.issue_click_code(card["task_id"], userid)
        posted = await sender.card_click(userid, card["task_id"], key, code)
        await _settle(http, bot_url)
        before = t.seen
        t.flush()
        got = [draw(d, t.names) for d in t.emulator.delivered[before:]]
        if posted.status != 200 or not any(expect in g for g in got):
            t.note(f"预期回复中含“{expect}”，实际 HTTP {posted.status}")
            return 1
        return 0

    for kind, userid, text, expect in SCRIPT:
        if kind == "section":
            print(f"\n━━ {userid} ━━")
        elif kind == "say":
            failures += await say(userid, text, expect)
        else:
            failures += await click(userid, text, expect)

    print("\n━━ 可靠性 ━━")
    t.said("liyan", "报修 地点:南岸校区图书馆 设备:网络 描述:无线网连不上")
    xml, _ = sender.text_xml("liyan", "报修 地点:南岸校区图书馆 设备:网络 描述:无线网连不上")
    query, body = sender.envelope(xml)
    statuses = [(await sender.post_raw(query, body)).status for _ in range(3)]
    await _settle(http, bot_url)
    t.note(f"企业微信超时重试：同一回调投递 3 次（HTTP {statuses}），只处理一次")
    before = t.seen
    t.flush()
    failures += 0 if len([d for d in t.emulator.delivered[before:] if d.to == "user:liyan"]) == 1 else 1

    forged = await sender.post_raw({**query, "msg_signature": "0" * 40}, body)
    t.note(f"伪造签名的回调 → HTTP {forged.status}，什么也没改变")
    failures += 0 if forged.status == 403 else 1

    async with http.get(f"{bot_url}/healthz") as resp:
        health = await resp.json()
    print(f"\n[运维] GET /healthz → 数据库 {health['database']}，待发 {health['outbox']['pending']}，"
          f"已发 {health['outbox']['sent']}，失败 {health['outbox']['failed']}")
    print("\n演示结束。" if not failures else f"\n演示有 {failures} 步不符合预期。")
    return 0 if not failures else 1
