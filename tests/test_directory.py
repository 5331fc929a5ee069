"""The organisation from WeCom's directory: members join without being typed into the TOML,
leavers stop deciding, the director hears both; `sync-directory` from the command line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.appkeys import API, PIPELINE
from bot.clock import FakeClock
from bot.config import Config, ConfigError, parse_config
from bot.directory import sync
from bot.emulator.server import Emulator
from storage.models import DirectoryMember, Request
from tests.conftest import ROOT, example_raw, make_config, start_bot
from tests.scene import Scene


def seed(emulator: Emulator, cfg: Config) -> None:
    """WeCom lists everyone the TOML names, each in their unit's department."""
    units = {u.key: u.name for u in cfg.units}
    for p in cfg.people:
        emulator.directory.add(p.userid, p.name, units[p.unit])


@pytest.fixture
async def dscene(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> AsyncIterator[Scene]:
    emulator.clock = lambda: clock.now().timestamp()
    cfg = make_config(emulator.base_url, db_url, directory={"enabled": True})
    seed(emulator, cfg)
    bot = await start_bot(cfg, http, clock=clock, run_dispatcher=False)
    yield Scene(bot, emulator)
    await bot.stop()


async def run_sync(scene: Scene) -> None:
    await sync(scene.bot.app[PIPELINE], scene.bot.app[API])
    await scene.bot.settle()


async def test_a_member_wecom_lists_joins_without_being_typed_in(dscene: Scene) -> None:
    dscene.emu.directory.add("wangfang", "王芳", "信息技术系", tags=("技术员", "电脑维修"))
    assert dscene.emu.known_users is not None
    dscene.emu.known_users.add("wangfang")
    assert "还不在信息中心的人员名单里" in await dscene.say("wangfang", "帮助")
    await run_sync(dscene)  # the first sync records everyone: no one is "new"
    assert not any("通讯录同步" in t for t in dscene.texts("chenhao"))
    assert "报修" in await dscene.say("wangfang", "帮助")  # a person now: name, unit, roles from WeCom

    await dscene.say("zhaolei", "报修 地点:302 设备:电脑 描述:蓝屏")
    assert dscene.card("wangfang")["main_title"]["title"] == "报修 #1 · 电脑"  # a computer technician by tag

    dscene.emu.directory.add("liqiang", "李强", "机电工程系")
    dscene.emu.directory.add("outsider", "外聘", "食堂")  # a department the bot does not serve
    await run_sync(dscene)
    [note] = [t for t in dscene.texts("chenhao") if "通讯录同步" in t]
    assert "新加入 李强（liqiang）" in note and "另有 1 人加入了未对应单位的部门" in note


async def test_a_leaver_stops_deciding_and_the_director_hears(dscene: Scene) -> None:
    await run_sync(dscene)
    await dscene.say("zhaolei", "调监控 地点:302教室 时间:今天 8:00-9:00 原因:教师物品丢失 类型:教职工")
    assert dscene.card("majun")  # the department head decides step 1
    dscene.emu.directory.leave("majun")
    await run_sync(dscene)
    [note] = [t for t in dscene.texts("chenhao") if "通讯录同步" in t]
    assert "已离开或停用 马军（majun）" in note
    await dscene.tick()  # the idle-approval sweep passes the step up at once
    async with dscene.bot.app[PIPELINE].sessions() as s:
        req = (await s.execute(select(Request))).scalar_one()
        member = await s.get(DirectoryMember, "majun")
    pending = req.flow["steps"][req.flow["current"]]["approvers"]
    assert "liuyang" in pending  # the next level up (the supervising VP) may decide it now
    assert dscene.card("liuyang")["main_title"]["title"] == "监控调取申请 #1"
    assert member is not None and not member.active and member.left_at is not None
    assert "还不在信息中心的人员名单里" in await dscene.say("majun", "帮助")

    dscene.emu.directory.add("majun", "马军", "信息技术系")  # back (a mistaken removal)
    await run_sync(dscene)
    assert "报修" in await dscene.say("majun", "帮助")


async def test_sync_directory_command(emulator: Emulator, tmp_path: Path) -> None:
    raw = example_raw()
    seed(emulator, make_config(emulator.base_url, "sqlite+aiosqlite:///:memory:"))
    text = (ROOT / "infodesk" / "config.example.toml").read_text(encoding="utf-8")
    text = text.replace('api_base = "https://qyapi.weixin.qq.com"', f'api_base = "{emulator.base_url}"')
    text = text.replace('url = "sqlite+aiosqlite:///infodesk.db"', f'url = "sqlite+aiosqlite:///{tmp_path}/d.db"')
    cfg = tmp_path / "bot.toml"
    cfg.write_text(text, encoding="utf-8")
    cmd = [sys.executable, "-m", "bot", "sync-directory", "--config", str(cfg)]
    off = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = await off.communicate()
    assert off.returncode == 2 and "enabled = false" in err.decode()
    cfg.write_text(text.replace("[directory]\nenabled = false", "[directory]\nenabled = true"), encoding="utf-8")
    on = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await on.communicate()
    assert on.returncode == 0, err.decode()
    assert f"企业微信列出 {len(raw['people'])} 人，机器人服务 {len(raw['people'])} 人" in out.decode()


async def test_a_unit_whose_head_left_takes_the_department_leader_from_wecom(dscene: Scene) -> None:
    dscene.emu.directory.add("wangfang", "王芳", "信息技术系")
    dscene.emu.directory.lead("信息技术系", "wangfang")
    assert dscene.emu.known_users is not None
    dscene.emu.known_users.add("wangfang")
    await run_sync(dscene)
    await dscene.say("zhaolei", "调监控 地点:302教室 时间:今天 8:00-9:00 原因:教师物品丢失 类型:教职工")
    assert dscene.card("majun")  # the configured head is still there: WeCom's leader waits
    assert not dscene.cards("wangfang")

    dscene.emu.directory.leave("majun")
    await run_sync(dscene)
    assert dscene.bot.app[PIPELINE].org.unit("it").head == "wangfang"
    await dscene.say("zhaolei", "调监控 地点:303教室 时间:今天 9:00-10:00 原因:教师物品丢失 类型:教职工")
    assert dscene.card("wangfang")["main_title"]["title"] == "监控调取申请 #2"


async def test_heads_from_wecom_takes_every_led_units_head_from_wecom(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    emulator.clock = lambda: clock.now().timestamp()
    cfg = make_config(emulator.base_url, db_url, directory={"enabled": True, "heads_from_wecom": True})
    seed(emulator, cfg)
    emulator.directory.lead("信息技术系", "yangfan", "majun")  # the first leader heads the unit
    bot = await start_bot(cfg, http, clock=clock, run_dispatcher=False)
    scene = Scene(bot, emulator)
    try:
        await run_sync(scene)
        org = bot.app[PIPELINE].org
        assert org.unit("it").head == "yangfan"
        assert org.unit("mech").head == "songtao"  # no leader in WeCom: the configured head stays
        await scene.say("zhaolei", "调监控 地点:302教室 时间:今天 8:00-9:00 原因:教师物品丢失 类型:教职工")
        assert scene.card("yangfan") and not scene.cards("majun")
    finally:
        await bot.stop()


def partial_config(emulator: Emulator, db_url: str, enabled: bool = True) -> Config:
    """The example organisation plus entries that give only what WeCom does not know; a unit's
    head named by name."""
    raw = example_raw()
    raw["wecom"]["api_base"] = emulator.base_url
    raw["database"] = {"url": db_url}
    raw["outbox"] = {"poll_interval_seconds": 0.05, "request_timeout_seconds": 2, "max_backoff_seconds": 1}
    raw["directory"] = {**raw["directory"], "enabled": enabled}
    raw["units"][0]["head"] = "马军"
    raw["people"] += [
        {"userid": "wangfang", "roles": ["technician"], "skills": ["computer"]},
        {"userid": "cook", "roles": ["group_admin"]},
    ]
    return parse_config(raw, environ={})


async def test_a_people_entry_may_leave_name_unit_and_campus_to_wecom(
    emulator: Emulator, db_url: str, http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    emulator.clock = lambda: clock.now().timestamp()
    cfg = partial_config(emulator, db_url)
    seed(emulator, cfg.model_copy(update={"people": tuple(p for p in cfg.people if not p.partial)}))
    bot = await start_bot(cfg, http, clock=clock, run_dispatcher=False)
    scene = Scene(bot, emulator)
    try:
        org = bot.app[PIPELINE].org
        assert org.person("wangfang") is None  # not listed yet: no person, and nothing crashes
        assert "wangfang" not in org.with_role("technician")
        assert emulator.known_users is not None
        emulator.known_users |= {"wangfang", "cook"}
        assert "还不在信息中心的人员名单里" in await scene.say("wangfang", "帮助")

        emulator.directory.add("wangfang", "王芳", "信息技术系")
        emulator.directory.add("cook", "厨师", "食堂")  # a department the bot does not serve
        await run_sync(scene)
        org = bot.app[PIPELINE].org
        wangfang = org.person("wangfang")
        assert wangfang is not None
        assert (wangfang.name, wangfang.unit, wangfang.campus) == ("王芳", "it", "main")
        assert wangfang.roles == ("technician",) and wangfang.skills == ("computer",)  # from the TOML
        assert org.person("cook") is None
        assert "报修" in await scene.say("wangfang", "帮助")
        await scene.say("zhaolei", "报修 地点:302 设备:电脑 描述:蓝屏")
        assert scene.card("wangfang")["main_title"]["title"] == "报修 #1 · 电脑"
        await scene.say("zhaolei", "调监控 地点:302教室 时间:今天 8:00-9:00 原因:教师物品丢失 类型:教职工")
        assert scene.card("majun")["main_title"]["title"] == "监控调取申请 #1"  # head = "马军"
    finally:
        await bot.stop()


def test_a_partial_people_entry_needs_the_directory(emulator: Emulator) -> None:
    with pytest.raises(ConfigError) as exc:
        partial_config(emulator, "sqlite+aiosqlite:///:memory:", enabled=False)
    assert "[[people]] 里的 wangfang 缺少 name、campus、unit；" in str(exc.value)
    assert "enabled = true" in str(exc.value)
