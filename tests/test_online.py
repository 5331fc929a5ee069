"""check-config --online and create-groups against the emulator: what only WeCom can tell."""

from __future__ import annotations

import aiohttp

from bot.clock import SystemClock
from bot.config import Config
from bot.emulator.server import Emulator
from bot.wecom_api import WeComAPI
from infodesk.online import check_online, create_groups
from tests.conftest import make_config

PARENTS = "wrOgQhDgAAparents2024AAAAA"


def api_for(cfg: Config, http: aiohttp.ClientSession) -> WeComAPI:
    return WeComAPI.of(http, cfg, SystemClock())


async def test_online_check_passes_when_wecom_matches(emulator: Emulator, http: aiohttp.ClientSession) -> None:
    cfg = make_config(emulator.base_url, "sqlite+aiosqlite:///:memory:")
    report = await check_online(cfg, api_for(cfg, http))
    assert report.problems == []
    assert "群「24级家长群」（wrOgQhDgAAparents2024AAAAA）：客户群存在，群主 liyan" in report.done


async def test_online_check_names_unknown_groups_and_wrong_owners(
    emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    del emulator.customer.groups[PARENTS]
    emulator.customer.groups["wrOgQhDgAAstudents2024AAAA"].owner = "zhangwei"
    emulator.chats.clear()
    cfg = make_config(emulator.base_url, "sqlite+aiosqlite:///:memory:")
    problems = (await check_online(cfg, api_for(cfg, http))).problems
    assert len(problems) == 3
    assert (
        problems[0].startswith("群「24级信息技术在校生群」") and "群主是 zhangwei，配置里写的是 zhouyan" in problems[0]
    )
    assert problems[1].startswith("群「24级家长群」（wrOgQhDgAAparents2024AAAAA）：企业微信里没有这个客户群")
    assert problems[2].startswith("群「信息技术组教师群」") and "create-groups" in problems[2]


async def test_online_check_stops_at_bad_credentials(emulator: Emulator, http: aiohttp.ClientSession) -> None:
    emulator.secret = "rotated"
    cfg = make_config(emulator.base_url, "sqlite+aiosqlite:///:memory:")
    problems = (await check_online(cfg, api_for(cfg, http))).problems
    assert len(problems) == 1 and "access_token" in problems[0]


async def test_create_groups_makes_new_groups_visible_and_adds_missing_admins(
    emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    emulator.chats.clear()
    cfg = make_config(emulator.base_url, "sqlite+aiosqlite:///:memory:")
    api = api_for(cfg, http)
    report = await create_groups(cfg, api, "信息中心助手已加入本群。")
    assert report.problems == [] and "已创建（2 人）并发出第一条消息" in report.done[0]
    chat = emulator.chats["itteachers2024"]
    assert chat["visible"] and chat["userlist"] == ["zhangwei", "zhouyan"]
    [first] = [d for d in emulator.delivered if d.to == "chat:itteachers2024"]
    assert first.body["text"]["content"] == "信息中心助手已加入本群。"

    chat["userlist"] = ["zhangwei", "lihua"]  # someone removed an admin in the client
    report = await create_groups(cfg, api, "信息中心助手已加入本群。")
    assert report.done == ["群「信息技术组教师群」（itteachers2024）：已存在，补加管理员 zhouyan"]
    assert chat["userlist"] == ["zhangwei", "lihua", "zhouyan"]
    report = await create_groups(cfg, api, "信息中心助手已加入本群。")
    assert report.done == ["群「信息技术组教师群」（itteachers2024）：已存在"]
    assert len([d for d in emulator.delivered if d.to == "chat:itteachers2024"]) == 1  # greeted once
