"""A daily push into many groups while WeCom throttles app group chats: each group gets each item once.

WeCom lets an app send at most 20,000 person-messages a minute into app group chats (doc 90248; a
message into a group of 2,000 counts 2,000); past that it refuses. `python -m bench fanout` times
1,000 groups; this is its small, untimed check of what members would notice.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import aiohttp

from bot.appkeys import DISPATCHER
from bot.clock import FakeClock
from bot.emulator.server import Emulator
from infodesk.app import TIMERS
from tests.conftest import example_raw, start_scene
from tests.scene import Scene

START = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
PUSH = datetime(2026, 11, 25, 11, 5, tzinfo=UTC)  # 19:05 in Shanghai
APP_GROUPS = [f"fanout{i}" for i in range(6)]  # 6 groups x 2,000 members x 2 items = 24,000 > 20,000
ROBOTS = ["robot0", "robot1"]
CUSTOMER = "wrFanoutCustomer0"
AUDIO = "音频课堂 日期:今天 时间:19:30 标题:{title} 主讲:周燕 链接:https://example.edu.cn/a/{n} 群:{groups}"


async def test_a_throttled_push_reaches_every_group_once(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    raw = example_raw()
    common = {"admins": ["zhangwei"], "push_time": "19:05"}
    raw["groups"] = [
        *(
            {"chat_id": c, "name": f"教师群{c}", "audience": "教职工", "channel": "appchat", **common}
            for c in APP_GROUPS
        ),
        *(
            {"chat_id": r, "name": f"机器人群{r}", "audience": "毕业生", "channel": "webhook", "webhook_key": f"k-{r}"}
            | common
            for r in ROBOTS
        ),
        {"chat_id": CUSTOMER, "name": "家长群F", "audience": "家长", "channel": "customer_group", "owner": "zhouyan"}
        | common,
    ]
    for c in APP_GROUPS:
        members = ["zhangwei", *(f"{c}m{j}" for j in range(1999))]
        emulator.chats[c] = {"chatid": c, "name": c, "owner": "zhangwei", "userlist": members, "visible": True}
    emulator.webhook_keys |= {f"k-{r}" for r in ROBOTS}
    emulator.customer.add(CUSTOMER, "家长群F", "zhouyan")
    clock.advance((START - clock.now()).total_seconds())
    bot = await start_scene(raw, emulator, db_url, http, clock)
    scene = Scene(bot, emulator)
    try:
        names = "、".join(g["name"] for g in raw["groups"])
        for n, title in enumerate(("Excel 入门", "Word 排版"), start=1):
            assert f"编号 #{n}" in await scene.say("zhangwei", AUDIO.format(title=title, n=n, groups=names))
            await scene.say("liuyang", f"同意 #{n}")

        clock.advance((PUSH - clock.now()).total_seconds())
        await bot.app[TIMERS].tick()  # the push: more than WeCom takes in a minute
        for _ in range(5):
            await bot.app[DISPATCHER].drain_once()
        # The bot counts person-messages corp-wide: what fits the minute went, the rest waits for it.
        sent = [c for c in emulator.calls_to("appchat/send") if c.errcode == 0]
        assert 0 < len(sent) < len(APP_GROUPS) * 2
        assert all(c.errcode == 0 for c in emulator.calls_to("appchat/send"))  # never refused (45009)
        clock.advance(61)  # the minute is over
        await scene.tick()
        clock.advance(61)
        await scene.tick()

        by_group = Counter((d.to, d.body["markdown"]["content"]) for d in scene.group_deliveries())
        assert all(n == 1 for n in by_group.values()), by_group
        for to in [*(f"chat:{c}" for c in APP_GROUPS), *(f"webhook:k-{r}" for r in ROBOTS)]:
            texts = [c for t, c in by_group if t == to]
            assert len(texts) == 2 and any("Excel 入门" in t for t in texts) and any("Word 排版" in t for t in texts)
        [task] = emulator.customer.waiting("zhouyan")  # one mass send with both items, for the owner
        assert task.chat_ids == [CUSTOMER] and "Excel 入门" in task.text and "Word 排版" in task.text
    finally:
        await bot.stop()
