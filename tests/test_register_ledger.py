"""The registers' ledger as a reader of the printed form and an auditor sees it: a recorded value
changed later shows its old value in the export's notes (the record going on does not), and
verify-registers names a record changed with SQL into something the register cannot show."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import text

from bot.appkeys import PIPELINE
from handlers.registers import export, find_register, verify
from tests.conftest import ROOT
from tests.scene import Scene


async def test_a_changed_value_shows_its_old_value_in_the_notes_and_progress_does_not(
    scene: Scene, tmp_path: Path
) -> None:
    await scene.say("zhaolei", "报修 地点:302教室 设备:投影 描述:投影仪不亮")
    await scene.say("zhanglei", "接单 #1")
    await scene.say("zhanglei", "完成 #1 更换灯泡")  # the record going on: claimed, then repaired
    await scene.say("wangpeng", "报修 地点:东湖机房 设备:电脑 描述:无法开机")
    assert "已改为" in await scene.say("lihua", "改类别 #2 网络")  # a recorded value corrected
    register = find_register("设备维修登记表")
    assert register is not None
    async with scene.bot.app[PIPELINE].sessions() as s:
        xlsx, csv = tmp_path / "r.xlsx", tmp_path / "r.csv"
        assert await export(s, scene.bot.config, register, date(2026, 11, 1), date(2026, 11, 30), xlsx) == 2
        await export(s, scene.bot.config, register, date(2026, 11, 1), date(2026, 11, 30), csv)
    cells = [list(r) for r in load_workbook(xlsx).active.iter_rows(values_only=True)]
    rows, notes = cells[2:4], [str(r[0]) for r in cells[4:]]
    assert "网络" in str(rows[1][4])
    assert notes == [
        "更正：第2行（ticket:2）「维修项目」原登记为“电脑：无法开机”，2026-11-25 09:00 改为“网络：无法开机”。"
        "每次更改前的登记都保留在登记链中。"
    ]
    lines = csv.read_text(encoding="utf-8-sig").splitlines()
    assert lines[-2:] == ["", notes[0]]  # the CSV carries the notes below the form too


async def test_verify_names_a_record_changed_into_something_the_register_cannot_show(scene: Scene) -> None:
    await scene.say("zhaolei", "报修 地点:302教室 设备:投影 描述:投影仪不亮")
    await scene.say("wangpeng", "报修 地点:东湖机房 设备:电脑 描述:无法开机")
    sessions = scene.bot.app[PIPELINE].sessions
    async with sessions() as s:
        assert [v.broken for v in await verify(s, scene.bot.config)] == [""] * 12
    async with sessions() as s, s.begin():  # a state no workflow writes
        await s.execute(text("UPDATE tickets SET category = 'teleporter' WHERE id = 2"))
    async with sessions() as s:
        repairs = next(v for v in await verify(s, scene.bot.config) if v.register.key == "repairs")
    assert repairs.broken.startswith("seq 2 (ticket:2): the record can no longer be read as a row")


async def test_a_name_changed_in_the_configuration_is_entered_again_and_tampering_is_still_named(
    scene: Scene, tmp_path: Path
) -> None:
    await scene.say("zhaolei", "报修 地点:302教室 设备:投影 描述:投影仪不亮")
    await scene.say("wangpeng", "报修 地点:东湖机房 设备:电脑 描述:无法开机")
    await scene.say("zhaolei", "报修 地点:303教室 设备:投影 描述:没有声音")
    async with scene.bot.app[PIPELINE].sessions() as s, s.begin():  # and someone edits a row by hand
        await s.execute(text("UPDATE tickets SET description = '无' WHERE id = 3"))
    raw = (ROOT / "infodesk" / "config.example.toml").read_text(encoding="utf-8")
    assert raw.count('name = "赵磊"') == 1
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        raw.replace('url = "sqlite+aiosqlite:///infodesk.db"', f'url = "{scene.bot.config.database.url}"').replace(
            'name = "赵磊"', 'name = "赵磊磊"'
        ),
        encoding="utf-8",
    )
    verify_ = [sys.executable, "-m", "bot", "verify-registers", "--config", str(cfg)]
    before = subprocess.run(verify_, cwd=ROOT, capture_output=True, text=True)
    assert before.returncode == 1 and "BROKEN at seq 1 (ticket:1)" in before.stderr  # the rename shows
    bad = subprocess.run([*verify_, "--renamed", "赵磊"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "--renamed 赵磊=赵磊磊" in bad.stderr
    bad = subprocess.run([*verify_, "--renamed", "1=2"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "must be a person's name" in bad.stderr  # not any text in any cell
    after = subprocess.run([*verify_, "--renamed", "赵磊=赵磊磊"], cwd=ROOT, capture_output=True, text=True)
    assert "1 records entered again with the new names" in after.stdout  # ticket 1; ticket 3 was tampered with
    assert after.returncode == 1 and "BROKEN at seq 3 (ticket:3)" in after.stderr
    async with scene.bot.app[PIPELINE].sessions() as s, s.begin():
        await s.execute(text("UPDATE tickets SET description = '没有声音' WHERE id = 3"))
    again = subprocess.run([*verify_, "--renamed", "赵磊=赵磊磊"], cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "1 records entered again" in again.stdout  # ticket 3, now that it reads as recorded but renamed
    async with scene.bot.app[PIPELINE].sessions() as s:
        entries = (
            await s.execute(text("SELECT ref, corrects_seq FROM register_ledger WHERE seq > 3 ORDER BY seq"))
        ).all()
    assert [tuple(e) for e in entries] == [("ticket:1", 1), ("ticket:3", 3)]
