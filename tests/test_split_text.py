"""Long replies are split at line boundaries into parts WeCom accepts (bot/context.split_text)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.context import TEXT_LIMIT, split_text

# A line: at most 10 characters of at most 4 bytes, so none is longer than the smallest limit.
LINES = st.lists(st.text(alphabet=st.sampled_from("ab中文😀 ：，"), max_size=10), min_size=1, max_size=60)


@settings(max_examples=300)
@given(lines=LINES, limit=st.integers(min_value=40, max_value=200))
def test_each_part_fits_and_whole_lines_stay_together_in_order(lines: list[str], limit: int) -> None:
    text = "\n".join(lines)
    parts = split_text(text, limit)
    assert all(len(p.encode()) <= limit for p in parts)
    # No line is longer than the limit here, so no line is cut: the parts are runs of whole lines,
    # in order (an empty line at the start of a part may be dropped, never a character).
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")
    rest = list(lines)
    for part in parts:
        for line in part.split("\n"):
            while rest and rest[0] != line and rest[0] == "":
                rest.pop(0)
            assert rest and rest.pop(0) == line


def test_a_text_that_fits_is_one_part_and_a_long_one_is_split_where_lines_end() -> None:
    assert split_text("报修\n借舞台") == ["报修\n借舞台"]
    assert split_text("") == []
    line = "报修说明" * 50  # 600 bytes: three lines to a part
    parts = split_text("\n".join([line] * 10))
    assert len(parts) == 4 and all(len(p.encode()) <= TEXT_LIMIT for p in parts)
    assert all(set(p.split("\n")) == {line} for p in parts)
