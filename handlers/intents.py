"""Free text that is no command, read as the command it most likely is (offered, never run).

"三楼机房3号电脑开不了机" reads as a 报修 (place, equipment, description), "我要借舞台" as 借舞台,
"想调一下监控" as 调监控. Recognition is rules over word lists kept here as data, plus the venue
names from the configuration; no network service. The member confirms (a card, or "是") before
anything is recorded, and the command's own fields check every value then.
"""

from __future__ import annotations

import re

from bot.context import Ctx
from bot.router import Offer, Router
from bot.timeparse import find_date, local_now
from handlers.faults import CATEGORY_WORDS, category_of, not_ours

router = Router("intents")

# Words that say something is broken.
FAULT_WORDS = (
    "坏",
    "不亮",
    "开不了机",
    "开不开",
    "打不开",
    "不开机",
    "没声音",
    "没有声音",
    "没画面",
    "没有画面",
    "连不上",
    "上不了网",
    "没网",
    "断网",
    "故障",
    "不能用",
    "用不了",
    "无法",
    "黑屏",
    "蓝屏",
    "死机",
    "花屏",
    "卡顿",
    "很卡",
    "异响",
    "杂音",
    "不工作",
    "不出声",
    "失灵",
    "没反应",
    "没信号",
    "闪",
    "不转",
    "报错",
    "不显示",
)
# Where things are: rooms, labs, halls, floors.
# The longest opening that ends in a kind of place (a room number may follow a building): "三楼机房"
# (not "三楼机房3号": that is a machine), "学前楼201", "实训楼二楼走廊"; else a room number: "302".
PLACE_RE = re.compile(
    r"^\s*(.{0,10}(?:教室|办公室|会议室|礼堂|报告厅|实训室|实验室|图书馆|阅览室|机房|宿舍|食堂|体育馆|舞台|走廊|大厅"
    r"|楼(?:[A-Za-z]?\d{1,4}(?:室)?)?))"
)
ROOM_RE = re.compile(r"^\s*([A-Za-z]?\d{2,4}(?:室|教室)?)")
STAGE_PLACES = ("舞台", "礼堂", "报告厅", "场地")
STAGE_VERBS = ("借", "用", "订", "预约", "预定", "租")
FOOTAGE_THINGS = ("监控", "录像", "摄像头")
FOOTAGE_VERBS = ("调", "看", "查", "找", "拷")


def _place(ctx: Ctx, text: str) -> str | None:
    for venue in ctx.config.venues:
        if venue.name in text:
            return venue.name
    m = PLACE_RE.match(text) or ROOM_RE.match(text)
    return m.group(1).strip() if m else None


@router.free_text
def fault(ctx: Ctx, text: str) -> Offer | None:
    """Something named and broken: a 报修 with the place, equipment and description found."""
    broken = any(w in text for w in FAULT_WORDS)
    equipment = category_of(text)
    if not broken or (equipment is None and not any(w in text for ws in CATEGORY_WORDS.values() for w in ws)):
        return None
    values = {"description": text.strip()[:500]}
    place = _place(ctx, text)
    if place:
        values["location"] = place
    if equipment:
        values["category"] = text
    return Offer("report_fault", values, score=3 if place else 2)


@router.free_text
def stage(ctx: Ctx, text: str) -> Offer | None:
    """ "我要借舞台", "下周五想用礼堂": a 借舞台 with the venue and date if named."""
    if not (any(p in text for p in STAGE_PLACES) and any(v in text for v in STAGE_VERBS)):
        return None
    values: dict[str, str] = {}
    venue = next((v.name for v in ctx.config.venues if v.name in text), None)
    if venue:
        values["venue"] = venue
    today = local_now(ctx.now(), ctx.config.scheduler.timezone).date()
    found = find_date(text, today, prefer="future")
    if found:
        values["date"] = text[found[1][0] : found[1][1]]
    return Offer("book_stage", values, score=1)


@router.free_text
def footage(ctx: Ctx, text: str) -> Offer | None:
    """ "想调一下监控": a 调监控 (confidential; the form asks for everything)."""
    if any(w in text for w in FAULT_WORDS):
        return None  # "监控坏了" is a fault
    if not (any(t in text for t in FOOTAGE_THINGS) and any(v in text for v in FOOTAGE_VERBS)):
        return None
    values = {}
    place = _place(ctx, text)
    if place:
        values["location"] = place
    return Offer("request_footage", values, score=1)


@router.free_text
def elsewhere(ctx: Ctx, text: str) -> Offer | None:
    """ "办公室空调坏了": not the center's equipment — referred to the office that handles it at once
    (the 报修 form answers that without recording anything)."""
    if not any(w in text for w in FAULT_WORDS) or not_ours(ctx, text) is None:
        return None
    return Offer("report_fault", {"description": text.strip()[:500]}, score=5, direct=True)
