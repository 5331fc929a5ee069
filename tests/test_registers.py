"""Registers exported as spreadsheets with the manual's columns, from what the workflows recorded."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from openpyxl import load_workbook

from bot.appkeys import PIPELINE
from bot.clock import FakeClock
from handlers.registers import REGISTERS, export, find_register
from tests.assets import register_assets
from tests.conftest import ROOT
from tests.scene import Scene

START = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


async def sheet(scene: Scene, name: str, tmp_path: Path) -> list[list[object]]:
    register = find_register(name)
    assert register is not None
    path = tmp_path / f"{register.key}.xlsx"
    async with scene.bot.app[PIPELINE].sessions() as s:
        await export(s, scene.bot.config, register, date(2026, 11, 1), date(2026, 11, 30), path)
    ws = load_workbook(path).active
    return [list(r) for r in ws.iter_rows(values_only=True)]


async def test_repair_register(scene: Scene, clock: FakeClock, tmp_path: Path) -> None:
    await scene.say("zhaolei", "报修 地点:302教室 设备:投影 描述:投影仪不亮")
    await scene.say("zhanglei", "接单 #1")
    clock.advance(2 * 3600)
    await scene.say("zhanglei", "完成 #1 更换灯泡 人为损坏")
    await scene.say("majun", "报修 地点:机房B 设备:电脑 描述:无法开机")
    rows = await sheet(scene, "设备维修登记表", tmp_path)
    assert rows[0][0].startswith("设备维修登记表")
    assert rows[1] == ["序号", "日期", "部门", "申请人", "维修项目", "是否处理", "维修时长", "技术员", "备注"]
    assert rows[2][:8] == [1, "2026-11-25", "信息技术系", "赵磊", "投影：投影仪不亮", "是", "2.0小时", "张磊"]
    assert "人为损坏·追责" in rows[2][8]
    assert rows[3][5] == "否" and rows[3][7] is None


async def test_footage_and_computer_registers(scene: Scene, tmp_path: Path) -> None:
    await scene.say("zhaolei", "调监控 地点:302 时间:今天 8:00-9:00 原因:物品丢失 类型:教职工")
    await scene.say("majun", "同意 #1")
    await scene.say("liuyang", "同意 #1")
    await scene.say("linxue", "登记 #1 调取人:赵磊 时间:今天10点 内容:302录像 交付方式:现场查看")
    await register_assets(scene.bot, "computer", "PC-9")
    await scene.say("huangli", "领电脑 用途:办公 数量:1 配置:i5")
    for who in ("zhengmei", "zhaomin", "wangjianguo", "chenhao"):
        await scene.say(who, "同意 #2")
    await scene.say("lihua", "发放 #2 资产号:PC-9")
    await scene.say("huangli", "确认领取 #2")
    requests = await sheet(scene, "footage-requests", tmp_path)
    assert requests[2][2:8] == ["赵磊", "信息技术系", "302", "2026-11-25 08:00-09:00", "物品丢失", "教职工"]
    assert "马军" in requests[2][9] and "刘洋" in requests[2][9] and requests[2][10] == "已批准"
    log = await sheet(scene, "监控调取登记表", tmp_path)
    assert log[2][2:7] == ["赵磊", "2026-11-25 10点", "302录像", "现场查看", "林雪"]  # 今天, as of the log
    apps = await sheet(scene, "计算机领取申请表", tmp_path)
    assert apps[1] == [
        "领取人",
        "领取用途",
        "所属部门",
        "直属领导签字",
        "主管副校长签字",
        "校长签字",
        "信息中心主任签字",
        "领取日期",
    ]
    assert apps[2][0:3] == ["黄丽", "科室办公", "校长办公室"]
    assert apps[2][3].startswith("郑梅") and apps[2][4].startswith("赵敏") and apps[2][5].startswith("王建国")
    assert apps[2][6].startswith("陈浩")  # the director signs as the chain's last step, not the technician
    issues = await sheet(scene, "计算机领取/发放登记表", tmp_path)
    assert issues[2][2:5] == ["校长办公室", "科室办公", "i5"] and issues[2][5].startswith("黄丽")
    assert "PC-9" in issues[2][6]


async def test_stage_register_prints_flags_and_condition_in_chinese(scene: Scene, tmp_path: Path) -> None:
    """Stored as yes/no and abnormal; the register reads 是 and 异常 (from the stage workflow's labels)."""
    await scene.say(
        "zhaolei", "借舞台 场地:本部礼堂 日期:明天 时间:14:00-16:00 活动:运动会 户外:是 校外:否 重大活动:否"
    )
    await scene.say("chenhao", "同意 #1")
    await scene.say("liuyang", "同意 #1")
    await scene.say("zhaolei", "设备情况 #1 异常 左侧音箱有杂音")
    rows = await sheet(scene, "舞台设备使用登记表", tmp_path)
    assert rows[2][1:7] == ["2026-11-26", "信息技术系", "赵磊", "14:00-16:00", "是", "异常"]
    assert rows[2][7] == "运动会 左侧音箱有杂音 报修 #1"
    # The technician on duty, and what the closing checklist left undone.
    await scene.say("zhanglei", "接舞台 #1")
    scene.bot.clock.advance(2 * 86400)  # type: ignore[attr-defined]
    await scene.say("zhanglei", "舞台检查 #1 1,2")
    rows = await sheet(scene, "舞台设备使用登记表", tmp_path)
    assert rows[2][7] == "运动会 左侧音箱有杂音 报修 #1 技术员张磊 收场未完成：门已上锁、设备已擦拭"


def test_every_register_has_the_manual_title() -> None:
    assert all(r.numbered == (r.columns[0] == "序号") for r in REGISTERS)
    titles = {r.title for r in REGISTERS}
    assert {
        "设备维修登记表",
        "舞台设备使用登记表",
        "监控调取申请表",
        "监控调取登记表",
        "计算机领取申请表",
        "计算机领取/发放登记表",
    } <= titles


def test_export_cli(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        (ROOT / "infodesk" / "config.example.toml")
        .read_text(encoding="utf-8")
        .replace('url = "sqlite+aiosqlite:///infodesk.db"', f'url = "sqlite+aiosqlite:///{tmp_path}/x.db"'),
        encoding="utf-8",
    )
    out = tmp_path / "r.xlsx"
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "export",
            "设备维修登记表",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "-o",
            str(out),
            "--config",
            str(cfg),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert out.exists() and "0 rows" in ok.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "export",
            "不存在的表",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "-o",
            str(out),
            "--config",
            str(cfg),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "设备维修登记表" in bad.stderr
