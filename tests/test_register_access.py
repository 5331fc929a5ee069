"""Who may have which register from chat: the footage registers only the director and the CCTV operators."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import select

from bot.appkeys import PIPELINE
from storage.models import MediaFile
from tests.scene import Scene


def files_to(scene: Scene, userid: str) -> list[dict[str, Any]]:
    """The file messages the member received, oldest first."""
    return [d.body for d in scene.emu.messages_to(userid) if d.msgtype == "file"]


async def kept_exports(scene: Scene) -> list[tuple[str, str]]:
    """(owner, subject) of every export kept for the dispatcher to upload."""
    async with scene.bot.app[PIPELINE].sessions() as s:
        rows = await s.execute(select(MediaFile.owner, MediaFile.subject).where(MediaFile.subject.like("export:%")))
        return [(owner, subject) for owner, subject in rows.all()]


async def test_footage_registers_only_for_director_and_cctv_operators(scene: Scene) -> None:
    """A technician and a platform editor are refused 监控调取申请表 at once (nothing kept, uploaded
    or sent); the CCTV operator and the director receive it, with safe = 1; a technician still
    exports a register that is not confidential."""
    await scene.say("zhaolei", "调监控 地点:302教室 时间:今天 8:00-9:00 原因:教师物品丢失 类型:教职工")

    refused = await scene.say("zhanglei", "导出 监控调取申请表 本月")  # 张磊: technician only
    assert "监控调取申请表是保密登记表" in refused and "只有信息中心主任和监控室人员可以导出" in refused
    assert "302教室" not in refused and "共" not in refused
    assert "导出哪张登记表" in await scene.say("zhouyan", "导出")  # 周燕: platform editor; the form asks
    refused = await scene.say("zhouyan", "监控申请")
    assert "监控调取申请表是保密登记表" in refused and "302教室" not in refused
    assert "保密登记表" in await scene.say("zhouyan", "导出 监控登记 本月")  # the log register too
    assert "没有正在填写" in await scene.say("zhouyan", "取消")  # the refusal closed the form
    assert not scene.emu.calls_to("media/upload")
    assert files_to(scene, "zhanglei") == [] and files_to(scene, "zhouyan") == []
    assert await kept_exports(scene) == []

    # The same technician still has a register that is not confidential.
    assert "设备维修登记表（2026-11-01 至 2026-11-30）：共 0 行" in await scene.say("zhanglei", "导出 维修 本月")
    (repairs,) = files_to(scene, "zhanglei")
    assert "safe" not in repairs

    # The CCTV operator (林雪) and the director (陈浩) receive it, as a file no one can forward.
    for userid in ("linxue", "chenhao"):
        assert "监控调取申请表（2026-11-01 至 2026-11-30）：共 1 行" in await scene.say(userid, "导出 监控申请 本月")
        (sent,) = files_to(scene, userid)
        assert sent["safe"] == 1
        sheet = load_workbook(io.BytesIO(scene.emu.media[sent["file"]["media_id"]])).active
        rows = list(sheet.iter_rows(values_only=True))
        assert rows[1][4] == "调取地点" and rows[2][4] == "302教室"
    # A technician who is also a CCTV operator (王鹏) has them through the operator role.
    assert "监控调取登记表（2026-11-01 至 2026-11-30）：共 0 行" in await scene.say("wangpeng", "导出 监控登记 本月")
    assert len(scene.emu.calls_to("media/upload")) == 4
    assert sorted(await kept_exports(scene)) == [
        ("chenhao", "export:footage-requests"),
        ("linxue", "export:footage-requests"),
        ("wangpeng", "export:footage-log"),
        ("zhanglei", "export:repairs"),
    ]
