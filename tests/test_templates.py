"""Every template the code names exists, and every command has an example in 帮助."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.render import Renderer
from handlers import ROUTERS
from tests.conftest import ROOT

SOURCES = [*ROOT.glob("bot/*.py"), *ROOT.glob("handlers/*.py"), *ROOT.glob("schedules/*.py")]
CALL = re.compile(r"""\b(?:reply|render|text)\(\s*f?"([a-z_/]+)"|\btell\([^,()]+,\s*"([a-z_/]+)\"""")
BLOCK = re.compile(r"""\bblock\(\s*"(cards|forms/_common)",\s*f?"([a-z_]+)\"""")
TEMPLATES = ROOT / "bot" / "templates"


def names() -> set[str]:
    found: set[str] = set()
    for path in SOURCES:
        for m in CALL.finditer(path.read_text(encoding="utf-8")):
            found.add(m.group(1) or m.group(2))
    return found


@pytest.mark.parametrize("name", sorted(names()))
def test_named_template_exists(name: str) -> None:
    assert (TEMPLATES / f"{name}.j2").exists(), name


@pytest.mark.parametrize("block", sorted({m.group(2) for p in SOURCES for m in BLOCK.finditer(p.read_text())}))
def test_named_card_block_exists(block: str) -> None:
    text = (TEMPLATES / "cards.j2").read_text(encoding="utf-8") + (TEMPLATES / "forms/_common.j2").read_text()
    assert f"{{% block {block} %}}" in text, block


@pytest.mark.parametrize("command", [c for r in ROUTERS for c in r.commands], ids=lambda c: c.key)
def test_every_command_has_a_form_with_an_example(command) -> None:  # type: ignore[no-untyped-def]
    assert Renderer().block(command.template, "example"), command.key


def test_duty_templates_exist() -> None:
    from bot.config import DUTY_KEYS

    for key in DUTY_KEYS:
        assert (TEMPLATES / "duties" / f"{key}.j2").exists(), key


def test_templates_dir_is_not_empty() -> None:
    assert len(list(Path(TEMPLATES).rglob("*.j2"))) > 50
