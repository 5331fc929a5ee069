"""The asset register over HTTP (issue 14 point 1): imported from a spreadsheet on the command line
(a bad file names its rows and imports nothing; an identical row is a no-op, a changed one an
UPDATED event), `资产` answering where an asset is, who holds it and what happened to it, a fault
ticket naming the asset (under repair until done, its repair count on the ticket), registering and
retiring one, and a teacher kept out of the register."""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from bot.appkeys import PIPELINE
from storage.models import Asset, AssetEvent, AssetState
from tests.scene import Scene
from tests.test_cli_outbox import config_file, run_cli

__all__ = ["config_file"]  # the operator's --config, on the test's database

HEADER = ["编号", "类别", "型号/配置", "校区", "存放地点", "使用部门", "使用人", "状态", "备注"]
GOOD = [
    ["PC-0101", "计算机", "联想启天M720 i5/8G/256G", "本部", "302机房", "信息技术系", "张伟", "在用", ""],
    ["PC-0102", "电脑", "联想启天M720 i5/8G/256G", "本部校区", "302机房", "信息技术系", "", "", ""],
    ["TY-0201", "投影仪", "爱普生CB-X05", "本部", "201教室", "", "", "在用", "吊装"],
    ["YX-0001", "音响", "JBL EON610", "东湖", "", "", "", "在库", ""],
]


def xlsx(path: Path, rows: list[list[str]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in [HEADER, *rows]:
        sheet.append(row)
    book.save(path)
    return path


async def asset(scene: Scene, number: str) -> Asset:
    async with scene.bot.app[PIPELINE].sessions() as s:
        found = (await s.execute(select(Asset).where(Asset.number == number))).scalar_one()
        return found


async def test_import_query_and_a_repaired_asset(scene: Scene, tmp_path: Path, config_file: Path) -> None:
    # A CSV with a number twice and a unit and a person nobody knows: each named, nothing imported.
    bad = tmp_path / "assets.csv"
    lines = [HEADER, GOOD[0], ["PC-0101", "计算机", "", "本部", "303机房", "", "", "", ""]]
    lines += [["PC-0103", "计算机", "", "本部", "303机房", "火星系", "马云", "", ""], ["PC-0104", "平板", "", "北区"]]
    bad.write_text("\n".join(",".join(r) for r in lines), encoding="utf-8")
    code, out = await run_cli("import-assets", str(bad), "--config", str(config_file))
    assert code == 1 and "nothing imported" in out, out
    assert "第 3 行“编号”列：编号 PC-0101 重复了（第 2 行已有）" in out
    assert "第 4 行“使用部门”列：没有“火星系”这个部门" in out and "第 4 行“使用人”列：人员名单里没有“马云”" in out
    assert "第 5 行“类别”列：没有“平板”这个类别" in out and "第 5 行“校区”列：没有“北区”这个校区" in out
    assert await scene.bot.count(Asset) == 0 and await scene.bot.count(AssetEvent) == 0

    # The good sheet: four assets; imported again with one fact changed: one UPDATED event.
    code, out = await run_cli("import-assets", str(xlsx(tmp_path / "a.xlsx", GOOD)), "--config", str(config_file))
    assert code == 0 and "4 assets registered, 0 updated, 0 unchanged" in out, out
    changed = [list(r) for r in GOOD]
    changed[2][4] = "203教室"
    code, out = await run_cli("import-assets", str(xlsx(tmp_path / "b.xlsx", changed)), "--config", str(config_file))
    assert code == 0 and "0 assets registered, 1 updated, 3 unchanged" in out, out
    # 借出/维修中 come from loans and repairs, never from a sheet.
    lent = [list(r) for r in changed]
    lent[1][7] = "借出"
    code, out = await run_cli("import-assets", str(xlsx(tmp_path / "c.xlsx", lent)), "--config", str(config_file))
    assert code == 1 and "第 3 行“状态”列：这件资产现在是“在用”，表格里写的“借出”不能导入" in out, out

    # 资产: what it is, where, who holds it; the history of the projector shows the correction.
    reply = await scene.say("lihua", "资产 pc－0101")
    assert "资产 PC-0101：计算机，在用" in reply and "联想启天M720 i5/8G/256G" in reply
    assert "位置：本部校区 302机房" in reply and "使用部门：信息技术系" in reply and "使用人：张伟" in reply
    assert "登记（表格导入）" in reply
    assert "信息更正（表格导入）：地点 201教室→203教室" in await scene.say("lihua", "资产 TY-0201")
    # The holder may look up her own asset; another teacher may not, nor list the register.
    assert "使用人：张伟" in await scene.say("zhangwei", "资產 PC-0101")
    assert "不在您名下" in await scene.say("zhaolei", "资产 PC-0101")
    assert "只有" in await scene.say("zhaolei", "资产列表")

    # A fault report whose text names the asset: the ticket keeps it, the asset is under repair.
    reply = await scene.say("zhangwei", "报修 地点:302机房 设备:电脑 描述:PC-0101 开机蓝屏")
    assert "资产：PC-0101（计算机，联想启天M720 i5/8G/256G），已记为维修中；该资产近一年第 1 次报修" in reply
    assert (await asset(scene, "PC-0101")).state == AssetState.REPAIR
    card = scene.card("lihua")
    assert {"keyname": "资产", "value": "PC-0101（近一年第1次报修）"} in card["horizontal_content_list"]
    await scene.click("lihua", card, "接单")
    assert "资产：PC-0101（计算机，维修中），该资产近一年第 1 次报修" in await scene.say("zhangwei", "进度 报修 #1")
    assert "资产 PC-0101 现在为“在用”" in await scene.say("lihua", "完成 #1 更换内存条")
    reply = await scene.say("lihua", "资产 PC-0101")
    assert "报修记录：共 1 次，近一年 1 次" in reply
    assert "修好（李华）：状态 维修中→在用；更换内存条" in reply and "报修（张伟）：状态 在用→维修中" in reply
    # Named in its own field (full-width, lower case): the second repair this year.
    reply = await scene.say("zhangwei", "报修 地点:302机房 设备:电脑 描述:又蓝屏了 资产编号:pc－0101")
    assert "该资产近一年第 2 次报修" in reply
    assert "资产编号 XX-9 不在资产登记里" in await scene.say(
        "zhangwei", "报修 地点:302机房 设备:电脑 描述:键盘坏了 资产编号:XX-9"
    )

    # Register one, list, retire one (not while it is under repair).
    reply = await scene.say("lihua", "资产登记 PC-0105 计算机 联想启天M720 303机房")
    assert "已登记资产 PC-0105：计算机，在用" in reply and "位置：本部校区 303机房" in reply
    assert "已经登记过了" in await scene.say("lihua", "资产登记 PC-0105 计算机 联想 303机房")
    assert "没认出“平板”是哪类资产" in await scene.say("lihua", "资产登记 PC-0106 平板 华为 303机房")
    await scene.say("lihua", "取消")
    reply = await scene.say("chenhao", "资产列表 计算机 本部")
    assert "资产（本部校区、计算机）共 3 件" in reply and "PC-0105" in reply and "YX-0001" not in reply
    assert "请先完成它的报修单再报废" in await scene.say("lihua", "报废 PC-0101 主板坏了")
    assert "已报废 PC-0102" in await scene.say("lihua", "报废 PC-0102 主板烧毁无法维修")
    assert "报废（李华）：状态 在用→报废；主板烧毁无法维修" in await scene.say("lihua", "资产 PC-0102")

    # The export imports back unchanged.
    out_file = tmp_path / "export.xlsx"
    code, out = await run_cli("export-assets", "-o", str(out_file), "--config", str(config_file))
    assert code == 0, out
    sheet = load_workbook(out_file).worksheets[0]
    assert [c.value for c in sheet[1]] == HEADER and sheet.max_row == 6
    code, out = await run_cli("import-assets", str(out_file), "--config", str(config_file))
    assert code == 0 and "0 assets registered, 0 updated, 5 unchanged" in out, out
