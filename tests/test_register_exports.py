"""Registers as printed forms (.xlsx/.csv), click statistics, export from chat, and the ledger."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import date
from pathlib import Path

from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import select, text

from bot.appkeys import PIPELINE, RENDERER
from handlers.registers import REGISTERS, LedgerEnv, adopt, export, find_register, verify
from storage.models import RegisterEntry
from tests.conftest import ROOT
from tests.scene import Scene


def printed_form(ws: Worksheet, title: str, columns: tuple[str, ...]) -> list[list[object]]:
    """Check the sheet is the form as printed; return its data rows (below title and header)."""
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    assert str(rows[0][0]).startswith(title)
    assert tuple(rows[1]) == columns
    assert ws.freeze_panes == "A3" and ws.print_title_rows == "$1:$2"
    assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 9  # A4
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert all(ws.column_dimensions[c].width >= 6 for c in "ABC")
    return rows[2:]


async def test_click_statistics_exported_from_chat(scene: Scene) -> None:
    """Platform staff enter counts (a correction supersedes), the director gets the register as a
    file over media/upload; a teacher is refused at once."""
    refused = await scene.say("zhaolei", "导出 维修 本月")
    assert "导出" in refused and not scene.emu.calls_to("media/upload")
    assert "平台" in await scene.say("zhouyan", "点击统计 微博 2026-11 浏览量100")
    assert "小于 0" in await scene.say("zhouyan", "点击统计 网站 2026-11 浏览量-5")
    assert "第1条" in await scene.say("zhouyan", "點擊統計 网站 2026-11 浏览量12000 访客3400")
    fixed = await scene.say("zhouyan", "点击统计 网站 2026-11 浏览量12500 访客3400")
    assert "对第1条的更正" in fixed and "12000" in fixed
    await scene.say("zhouyan", "点击统计 公众号 第48周 阅读8000 阅读人数2100 新增关注120")
    assert "不能登记" in await scene.say("zhouyan", "点击统计 公众号 2026-W50 阅读1")

    said = await scene.say("chenhao", "导出 点击统计 本月")
    assert "共 3 行" in said
    (upload,) = scene.emu.calls_to("media/upload")
    assert upload.query["type"] == "file" and upload.errcode in (None, 0)
    (sent,) = [d for d in scene.emu.messages_to("chenhao") if d.msgtype == "file"]
    data = scene.emu.media[sent.body["file"]["media_id"]]
    ws = load_workbook(io.BytesIO(data)).active
    register = find_register("clicks")
    assert register is not None
    rows = printed_form(ws, "微信/网站点击情况登记(统计)表", register.columns)
    # The correction is a row of its own, and the row it corrects says so: no note below the form.
    assert len(rows) == 3
    assert [r[:7] for r in rows] == [
        [1, "网站", "2026年11月", "2026-11-01 至 2026-11-30", 12000, 3400, None],
        [2, "网站", "2026年11月", "2026-11-01 至 2026-11-30", 12500, 3400, None],
        [3, "微信公众号", "2026年第48周", "2026-11-23 至 2026-11-29", 8000, 2100, 120],
    ]
    assert rows[0][7] == "周燕" and "已被第2条更正" in rows[0][9] and "更正第1条" in rows[1][9]
    # The counts are the school's (one website, one official account): every campus's export has them.
    await scene.say("chenhao", "导出 點擊統計 2026-11 东湖")
    assert "共 3 行" in scene.last_text("chenhao")


async def test_ledger_corrections_csv_and_verify(scene: Scene, tmp_path: Path) -> None:
    """Each change of a ticket appends to the repairs chain; the CSV opens in Excel; a row changed
    with SQL is named by verify-registers (tests/test_register_ledger.py: the notes on corrections)."""
    await scene.say("zhaolei", "报修 地点:302教室 设备:投影 描述:投影仪不亮")
    await scene.say("zhanglei", "接单 #1")
    await scene.say("zhanglei", "完成 #1 更换灯泡")
    await scene.say("wangpeng", "报修 地点:东湖机房 设备:电脑 描述:无法开机")
    sessions = scene.bot.app[PIPELINE].sessions
    async with sessions() as s:
        chain = (await s.execute(select(RegisterEntry).order_by(RegisterEntry.seq))).scalars().all()
        assert [(e.register, e.seq, e.ref, e.corrects_seq) for e in chain] == [
            ("repairs", 1, "ticket:1", None),
            ("repairs", 2, "ticket:1", 1),
            ("repairs", 3, "ticket:1", 2),
            ("repairs", 4, "ticket:2", None),
        ]
        assert [v.broken for v in await verify(s, scene.bot.config)] == [""] * 12
        register = find_register("維修")  # a short name, in Traditional
        assert register is not None and register.key == "repairs"
        out = tmp_path / "r.xlsx"
        assert await export(s, scene.bot.config, register, date(2026, 11, 1), date(2026, 11, 30), out) == 2
        rows = printed_form(load_workbook(out).active, "设备维修登记表", register.columns)
        assert rows[0][:6] == [1, "2026-11-25", "信息技术系", "赵磊", "投影：投影仪不亮", "是"]
        assert len(rows) == 2  # claimed and repaired: the record going on, no correction noted
        for every in REGISTERS:  # each form prints the same way, rows or none
            path = tmp_path / f"{every.key}.xlsx"
            await export(s, scene.bot.config, every, date(2026, 11, 1), date(2026, 11, 30), path, campus="main")
            printed_form(load_workbook(path).active, every.title, every.columns)
        csv = tmp_path / "r.csv"
        await export(s, scene.bot.config, register, date(2026, 11, 1), date(2026, 11, 30), csv, campus="donghu")
        assert csv.read_bytes().startswith(b"\xef\xbb\xbf")
        lines = csv.read_text(encoding="utf-8-sig").splitlines()
        assert lines[0] == ",".join(register.columns) and len(lines) == 2 and "无法开机" in lines[1]
    async with sessions() as s, s.begin():
        await s.execute(text("UPDATE tickets SET owner = 'lihua' WHERE id = 1"))

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        (ROOT / "infodesk" / "config.example.toml")
        .read_text(encoding="utf-8")
        .replace('url = "sqlite+aiosqlite:///infodesk.db"', f'url = "{scene.bot.config.database.url}"'),
        encoding="utf-8",
    )
    run = [sys.executable, "-m", "bot", "verify-registers", "--config", str(cfg)]
    broken = subprocess.run(run, cwd=ROOT, capture_output=True, text=True)
    assert broken.returncode == 1, broken.stdout
    assert "设备维修登记表 (repairs): BROKEN at seq 3 (ticket:1)" in broken.stderr
    async with sessions() as s, s.begin():
        await s.execute(text("UPDATE tickets SET owner = 'zhanglei' WHERE id = 1"))
        repairs = next(v for v in await verify(s, scene.bot.config) if v.register.key == "repairs")
        assert (repairs.broken, repairs.entries, repairs.records) == ("", 4, 2)
        # A record from before the ledger (here: its entry gone) is named until adopted, knowingly.
        await s.execute(text("DELETE FROM register_ledger WHERE register = 'repairs' AND seq = 4"))
        repairs = next(v for v in await verify(s, scene.bot.config) if v.register.key == "repairs")
        assert repairs.broken == "ticket:2: a row the register never recorded"
        env = LedgerEnv(scene.bot.config, scene.bot.app[RENDERER], scene.bot.clock)
        assert await adopt(s, env) == 1
        assert [v.broken for v in await verify(s, scene.bot.config)] == [""] * 12
