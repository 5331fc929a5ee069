"""Command matching and field parsing (pure functions)."""

from __future__ import annotations

import pytest

from bot.router import MalformedFields, Registry, normalise, parse_fields
from handlers import ROUTERS

REGISTRY = Registry(ROUTERS)
REPORT = REGISTRY.get("report_fault")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("報修　地點：三樓機房", "报修 地点:三楼机房"),  # Traditional, ideographic space, full-width colon
        ("ＲＥＰＡＩＲ　ｌｏｃａｔｉｏｎ：３０２", "REPAIR location:302"),
        ("  报修 \n\n 地点:1  \n", "报修\n地点:1"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize("text", ["报修 地点:1", "報修", "repair", "Report location:x", "报修地点:1"])
def test_aliases_match(text: str) -> None:
    match = REGISTRY.match(normalise(text))
    assert match is not None and match[0].key == "report_fault"


def test_ascii_alias_needs_a_word_boundary() -> None:
    assert REGISTRY.match("helpdesk") is None
    assert REGISTRY.match("help me")[0].key == "help"  # type: ignore[index]


def test_labelled_fields_with_spaces_inside_values() -> None:
    assert REPORT is not None
    values = parse_fields(REPORT, "地点:行政楼 3楼 描述:投影 不亮 有 异响")
    assert values == {"location": "行政楼 3楼", "description": "投影 不亮 有 异响"}


def test_unlabelled_text_goes_to_the_default_field() -> None:
    assert REPORT is not None
    assert parse_fields(REPORT, "投影仪不亮 地点:302") == {"description": "投影仪不亮", "location": "302"}


@pytest.mark.parametrize("text", ["颜色:红", "地点:1 地点:2"])
def test_malformed_fields(text: str) -> None:
    assert REPORT is not None
    with pytest.raises(MalformedFields):
        parse_fields(REPORT, text)


def test_suggestions() -> None:
    assert REGISTRY.suggest("保修").key == "report_fault"  # type: ignore[union-attr]
    assert REGISTRY.suggest("我要报修电脑").key == "report_fault"  # type: ignore[union-attr]
    assert REGISTRY.suggest("zzzzzz") is None


@pytest.mark.parametrize(
    "typed",
    [
        "地点:三楼机房 设备:电脑 描述:3号机开不了机",
        "地点：三楼机房，设备：电脑，描述：3号机开不了机",  # full-width colons and commas
        "地点:三楼机房、设备:电脑；描述:3号机开不了机",
        "地点:三楼机房\n设备:电脑\n描述:3号机开不了机",
        "地点三楼机房设备电脑描述3号机开不了机",  # no separators at all
        "地点 三楼机房 设备 电脑 描述 3号机开不了机",  # labels followed by a space
        "：地点:三楼机房 设备:电脑 描述:3号机开不了机",  # a colon right after the command
        "地点:三楼机房设备:电脑描述:3号机开不了机",  # colons, no spaces
    ],
)
def test_fields_in_any_form_people_type(typed: str) -> None:
    assert REPORT is not None
    assert parse_fields(REPORT, normalise(typed)) == {
        "location": "三楼机房",
        "category": "电脑",
        "description": "3号机开不了机",
    }


def test_values_keep_inner_punctuation_and_label_words_after_a_colon() -> None:
    assert REPORT is not None
    values = parse_fields(REPORT, normalise("地点:302 描述:投影仪的设备灯不亮，闪烁、有异响"))
    assert values == {"location": "302", "description": "投影仪的设备灯不亮，闪烁、有异响"}
    # Without labels the whole text is the description, label-like words and all.
    assert parse_fields(REPORT, normalise("投影仪的设备灯不亮")) == {"description": "投影仪的设备灯不亮"}


def test_whole_message_forms_match_the_command() -> None:
    match = REGISTRY.match(normalise("报修地点:302设备:投影描述:不亮"))
    assert match is not None and match[0].key == "report_fault"
    assert parse_fields(match[0], match[1]) == {"location": "302", "category": "投影", "description": "不亮"}
    match = REGISTRY.match(normalise("报修：三楼机房3号电脑开不了机"))  # no stray colon in the value
    assert match is not None
    assert parse_fields(match[0], match[1]) == {"description": "三楼机房3号电脑开不了机"}
