"""Migration 0007: the Chinese words stored before it become enum values, and back, on both engines."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from openpyxl import load_workbook
from sqlalchemy import insert, select

from handlers.registers import export, find_register
from storage.db import alembic_config, make_engine, make_sessionmaker, migrate
from storage.models import Base, BookingCondition, ComputerPurpose
from tests.conftest import make_config

pytestmark = pytest.mark.empty_db  # they migrate the database themselves

BEFORE = "8a49a97a31d3"  # 0006
AT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
FLOW = {"requester": "zhaolei", "steps": [], "current": 0, "status": "approved"}

# (request id, workflow, fields as stored before 0007, the same fields after it)
REQUESTS = [
    (
        1,
        "stage",
        {
            "venue": "main_hall",
            "activity": "彩排",
            "outdoor": "是",
            "offsite": "否",
            "major": "是",
            "slot": "11月25日 16:00-18:00",
            "competing": "",
        },
        {
            "venue": "main_hall",
            "activity": "彩排",
            "outdoor": "yes",
            "offsite": "no",
            "major": "yes",
            "slot": "11月25日 16:00-18:00",
            "competing": "",
        },
    ),
    (
        2,
        "footage",
        {"location": "302", "time": "2026-11-25 08:00-09:00", "reason": "丢失", "kind": "学生", "class": "it2401"},
        {"location": "302", "time": "2026-11-25 08:00-09:00", "reason": "丢失", "kind": "student", "class": "it2401"},
    ),
    (
        3,
        "footage",
        {"location": "校门", "time": "2026-11-25 08:00-09:00", "reason": "查看", "kind": "教职工"},
        {"location": "校门", "time": "2026-11-25 08:00-09:00", "reason": "查看", "kind": "staff"},
    ),
    (
        4,
        "computer",
        {"purpose": "临时借用", "count": "1", "spec": "i5", "return_date": "2026-12-20"},
        {"purpose": "loan", "count": "1", "spec": "i5", "return_date": "2026-12-20"},
    ),
    (
        5,
        "computer",
        {"purpose": "系部备课", "count": "2", "spec": "i7"},
        {"purpose": "teaching", "count": "2", "spec": "i7"},
    ),
    (6, "audio", {"day": "2026-11-26", "title": "是"}, {"day": "2026-11-26", "title": "是"}),  # not a flag: kept
]
# (userid, command, half-filled form before, after)
FORMS = [
    (
        "zhaolei",
        "book_stage",
        {"venue": "main_hall", "outdoor": "否", "insist": "是"},
        {"venue": "main_hall", "outdoor": "no", "insist": "yes"},
    ),
    ("majun", "request_footage", {"kind": "教职工"}, {"kind": "staff"}),
    ("huangli", "request_computer", {"purpose": "科室办公"}, {"purpose": "office"}),
    ("songtao", "stage_condition", {"number": "1", "state": "异常"}, {"number": "1", "state": "abnormal"}),
    ("liyan", "report_fault", {"location": "是"}, {"location": "是"}),  # another form: untouched
]


def _seed(conn) -> None:  # type: ignore[no-untyped-def]
    m = Base.metadata.tables
    for rid, workflow, before, _after in REQUESTS:
        conn.execute(
            insert(m["requests"]).values(
                id=rid,
                workflow=workflow,
                chain="c",
                requester="zhaolei",
                fields=before,
                flow=FLOW,
                status="approved",
                stage="",
                confidential=False,
                created_at=AT,
                updated_at=AT,
                step_started_at=AT,
            )
        )
    for userid, cmd, before, _after in FORMS:
        conn.execute(
            insert(m["conversations"]).values(userid=userid, command=cmd, values=before, awaiting="x", updated_at=AT)
        )
    conn.execute(
        insert(m["bookings"]).values(
            id=1,
            request_id=1,
            venue="main_hall",
            start_at=AT,
            end_at=AT,
            activity="彩排",
            outdoor=True,
            offsite=False,
            major=True,
            holds=True,
            condition="异常",
            condition_note="左侧音箱有杂音",
        )
    )
    for iid, rid, purpose in ((1, 4, "临时借用"), (2, 5, "系部备课")):
        conn.execute(
            insert(m["computer_issues"]).values(
                id=iid,
                request_id=rid,
                recipient="zhaolei",
                unit="信息技术系",
                purpose=purpose,
                spec="i5",
                assets={"numbers": ["PC-1"]},
                issued_by="lihua",
                issued_at=AT,
            )
        )
    for aid, action, detail in (
        (1, "stage_condition", {"state": "异常", "note": "杂音"}),
        (2, "approve", {"state": "正常"}),
    ):  # only stage_condition rows carry a condition
        conn.execute(
            insert(m["approval_audit"]).values(
                id=aid,
                request_id=1,
                actor="zhaolei",
                action=action,
                prev_status="approved",
                new_status="approved",
                detail=detail,
                source="msg:1",
                at=AT,
            )
        )


def _state(conn) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    m = Base.metadata.tables
    r, c, b, i, a = m["requests"], m["conversations"], m["bookings"], m["computer_issues"], m["approval_audit"]
    return {
        "requests": dict(conn.execute(select(r.c.id, r.c.fields).order_by(r.c.id)).all()),
        "forms": dict(conn.execute(select(c.c.userid, c.c["values"])).all()),
        "condition": conn.execute(select(b.c.condition)).scalar_one(),
        "purposes": list(conn.execute(select(i.c.purpose).order_by(i.c.id)).scalars()),
        "audit": [d["state"] for d in conn.execute(select(a.c.detail).order_by(a.c.id)).scalars()],
    }


BEFORE_STATE = {
    "requests": {rid: before for rid, _w, before, _a in REQUESTS},
    "forms": {u: before for u, _c, before, _a in FORMS},
    "condition": "异常",
    "purposes": ["临时借用", "系部备课"],
    "audit": ["异常", "正常"],
}
AFTER_STATE = {
    "requests": {rid: after for rid, _w, _b, after in REQUESTS},
    "forms": {u: after for u, _c, _b, after in FORMS},
    "condition": BookingCondition.ABNORMAL,
    "purposes": [ComputerPurpose.LOAN, ComputerPurpose.TEACHING],
    "audit": ["abnormal", "正常"],
}


async def _alembic(engine, action: str, revision: str) -> None:  # type: ignore[no-untyped-def]
    def run(conn):  # type: ignore[no-untyped-def]
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def test_stored_words_become_enum_values_and_back(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await _alembic(engine, "upgrade", BEFORE)
        async with engine.begin() as conn:
            await conn.run_sync(_seed)

        await migrate(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_state) == AFTER_STATE
        await migrate(engine)  # at head already: nothing runs twice

        await _alembic(engine, "downgrade", BEFORE)
        async with engine.connect() as conn:
            assert await conn.run_sync(_state) == BEFORE_STATE

        await migrate(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_state) == AFTER_STATE
    finally:
        await engine.dispose()


async def _sheet(db_url: str, session_maker, name: str, tmp_path: Path) -> list[list[object]]:  # type: ignore[no-untyped-def]
    register = find_register(name)
    assert register is not None
    path = tmp_path / f"{register.key}.xlsx"
    async with session_maker() as s:
        await export(
            s, make_config("http://127.0.0.1:9", db_url), register, date(2026, 11, 1), date(2026, 11, 30), path
        )
    return [list(r) for r in load_workbook(path).active.iter_rows(values_only=True)]


async def test_registers_read_migrated_rows_in_chinese(db_url: str, tmp_path: Path) -> None:
    """Rows written before 0007 print the same words in the registers after it."""
    engine = make_engine(db_url)
    try:
        await _alembic(engine, "upgrade", BEFORE)
        async with engine.begin() as conn:
            await conn.run_sync(_seed)
        await migrate(engine)
        sessions = make_sessionmaker(engine)

        footage = await _sheet(db_url, sessions, "监控调取申请表", tmp_path)
        assert [row[7:9] for row in footage[2:]] == [["学生", "24级计算机应用1班"], ["教职工", None]]
        stage = await _sheet(db_url, sessions, "舞台设备使用登记表", tmp_path)
        assert stage[2][5:7] == ["是", "异常"] and "左侧音箱有杂音" in stage[2][7]
        applications = await _sheet(db_url, sessions, "计算机领取申请表", tmp_path)
        assert [row[1] for row in applications[2:]] == ["临时借用", "系部备课"]
        issues = await _sheet(db_url, sessions, "计算机领取/发放登记表", tmp_path)
        assert [row[3] for row in issues[2:]] == ["临时借用", "系部备课"]
    finally:
        await engine.dispose()
