"""Every template the code names exists, in the folder of the workflow that owns it.

The kernel's texts are in `bot/templates`; each router's in `handlers/templates/<router name>/`.
All folders are one namespace (a name in two folders stops the bot at start). A workflow's
display words (names of stored values, card rows, its approval title) are blocks of its
`labels_<workflow>.j2`, read through a `handlers.labels.Labels`.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from bot.render import Renderer
from bot.router import Registry
from handlers import ROUTERS
from handlers.approval_engine import FlowStatus
from handlers.approvals import ApprovalChoice, WorkflowSpec
from handlers.labels import Labels
from handlers.publishing import DraftPart, Verdict
from tests.conftest import ROOT

KERNEL = ROOT / "bot" / "templates"
WORKFLOWS = ROOT / "handlers" / "templates"
FOLDERS: dict[str, Path] = {r.name: r.templates for r in ROUTERS if r.templates is not None}
RENDERER = Renderer(Registry(ROUTERS).template_dirs)

BOT = sorted(ROOT.glob("bot/*.py"))
HANDLERS = sorted(ROOT.glob("handlers/*.py"))
SOURCES = [*BOT, *HANDLERS, *ROOT.glob("schedules/*.py")]
# The router whose folder holds a handlers module's templates (approvals.py is the engine's service).
OWNER = {
    "approvals": "approvals",
    "approval_commands": "approvals",
    "approval_engine": "approvals",
    "stage_ops": "stage",  # registers on the stage router
    "lab_permits": "computer_room",
    "stage_damage": "stage",
    "stage_series": "stage",
    "asset_import": "assets",  # the register's spreadsheet import and export
    "loans": "computers",  # registers on the computers router
    "register_commands": "registers",
}

CALL = re.compile(r"""\b(?:reply|render|text)\(\s*f?"([a-z_/]+)"|\btell\([^,()]+,\s*"([a-z_/]+)\"""")
BLOCK = re.compile(r"""\bblock\(\s*"([a-z_/]+)",\s*"([a-z_]+)\"""")
BLOCK_OF = re.compile(r"""\bblock\(\s*"([a-z_/]+)\"""")  # the template, whatever the block
APPROVAL_CARD = re.compile(r"""\b_block\(\s*ctx,\s*"([a-z_]+)\"""")  # handlers/approvals.py's card blocks
LIABILITY_TEXT = re.compile(r"""\b(?:accepted(?:_you)?|refused_you|refused_committee|paid(?:_tell)?)="([a-z_]+)\"""")
# LABELS(ctx, "row_x"); LABELS.name(ctx, "kind", value); Field(…, show=LABELS.show("kind"))
LABEL_CALL = re.compile(r"""\b([A-Z_]+)(?:(\.name)\(\s*ctx,|\(\s*ctx,|(\.show)\()\s*"([a-z_]+)\"""")
INCLUDE = re.compile(r"""{%\s*(?:include|import|from|extends)\s+"([^"]+)\.j2\"""")


def names_in(path: Path) -> set[str]:
    """Template names a source file renders literally (texts and blocks)."""
    src = path.read_text(encoding="utf-8")
    found = {m.group(1) or m.group(2) for m in CALL.finditer(src)}
    found |= {m.group(1) for m in BLOCK_OF.finditer(src)}
    if APPROVAL_CARD.search(src):
        found.add("cards_approvals")
    if "liability.Kind(" in src:  # an accountability workflow names its replies (handlers/liability.py)
        found |= {m.group(1) for m in LIABILITY_TEXT.finditer(src)}
    return found


def folder_names(folder: Path) -> set[str]:
    return {p.relative_to(folder).with_suffix("").as_posix() for p in folder.rglob("*.j2")}


def source(name: str) -> str:
    """The text of a template, wherever it lives."""
    for folder in (KERNEL, *FOLDERS.values()):
        if (folder / f"{name}.j2").exists():
            return (folder / f"{name}.j2").read_text(encoding="utf-8")
    raise AssertionError(f"no template {name}")


def has_block(name: str, block: str) -> bool:
    return re.search(rf"{{%-?\s*block\s+{block}\s*-?%}}", source(name)) is not None


def labels_objects() -> list[tuple[str, str, Labels]]:
    """(module, attribute, Labels) for every Labels a handlers module defines or imports."""
    out = []
    for path in HANDLERS:
        module = importlib.import_module(f"handlers.{path.stem}")
        out += [(path.stem, attr, value) for attr, value in vars(module).items() if isinstance(value, Labels)]
    return out


# -- folders ----------------------------------------------------------------------------------
@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r.name)
def test_every_router_has_its_own_template_folder(router) -> None:  # type: ignore[no-untyped-def]
    if router.templates is None:  # a router that says nothing itself (intents only offers commands)
        assert not router.commands and not router.actions, router.name
        return
    assert router.templates == WORKFLOWS / router.name, router.name
    assert router.templates.is_dir() and any(router.templates.rglob("*.j2")), router.name


def test_one_namespace_no_name_in_two_folders() -> None:
    seen: dict[str, str] = {}
    for where, folder in (("bot/templates", KERNEL), *FOLDERS.items()):
        for name in folder_names(folder):
            assert name not in seen, f"{name} is in {seen[name]} and {where}"
            seen[name] = where
    assert {f"{n}.j2" for n in seen} == set(RENDERER.names)
    # The renderer refuses a duplicate at start.
    with pytest.raises(ValueError, match="is in both"):
        Renderer([FOLDERS["faults"], FOLDERS["faults"]])


def test_no_folder_outside_the_routers() -> None:
    assert {p.name for p in WORKFLOWS.iterdir() if p.is_dir()} == set(FOLDERS)


def test_kernel_holds_only_what_the_kernel_renders() -> None:
    """bot/templates: exactly the names bot/*.py renders (the rest belongs to a workflow)."""
    used = set().union(*(names_in(p) for p in BOT))
    assert folder_names(KERNEL) == used


# -- names the code uses ----------------------------------------------------------------------
def _referenced() -> list[tuple[str, str]]:
    return sorted({(p.relative_to(ROOT).as_posix(), n) for p in SOURCES for n in names_in(p)})


@pytest.mark.parametrize(("where", "name"), _referenced())
def test_named_template_exists(where: str, name: str) -> None:
    assert f"{name}.j2" in RENDERER.names, f"{where} names {name}"


@pytest.mark.parametrize("path", HANDLERS, ids=lambda p: p.stem)
def test_workflow_templates_live_with_their_workflow(path: Path) -> None:
    """A handlers module names only its own router's templates (and the kernel's)."""
    owner = OWNER.get(path.stem, path.stem)
    if owner not in FOLDERS:
        assert not names_in(path) - folder_names(KERNEL), path.stem  # e.g. registers: labels objects only
        return
    mine = folder_names(FOLDERS[owner]) | folder_names(KERNEL)
    assert names_in(path) <= mine, (path.stem, names_in(path) - mine)


def _blocks() -> list[tuple[str, str]]:
    found = {(m.group(1), m.group(2)) for p in SOURCES for m in BLOCK.finditer(p.read_text(encoding="utf-8"))}
    src = (ROOT / "handlers" / "approvals.py").read_text(encoding="utf-8")
    found |= {("cards_approvals", m.group(1)) for m in APPROVAL_CARD.finditer(src)}
    # Built from values: the approval card's buttons and closed states, the draft review cards.
    found |= {("cards_approvals", c.value) for c in ApprovalChoice}
    found |= {("cards_approvals", f"state_{s}") for s in (*FlowStatus, "moved_on", "not_yours")}
    found |= {("cards_publishing", f"draft_done_{v}") for v in Verdict}
    found |= {("cards_publishing", f"draft_review_{p}") for p in (DraftPart.TEXT, DraftPart.PHOTO)}
    return sorted(found)


@pytest.mark.parametrize(("name", "block"), _blocks())
def test_named_block_exists(name: str, block: str) -> None:
    assert has_block(name, block), f"{name}.j2 has no block {block}"


def test_included_templates_exist() -> None:
    for folder in (KERNEL, *FOLDERS.values()):
        for path in folder.rglob("*.j2"):
            for m in INCLUDE.finditer(path.read_text(encoding="utf-8")):
                assert f"{m.group(1)}.j2" in RENDERER.names, (path, m.group(1))


# -- display words ----------------------------------------------------------------------------
@pytest.mark.parametrize(("module", "attr", "labels"), labels_objects(), ids=lambda x: x if isinstance(x, str) else "")
def test_labels_name_every_value(module: str, attr: str, labels: Labels) -> None:
    """Every value a workflow stores as an enum (or declares) has its display name."""
    assert f"{labels.template}.j2" in RENDERER.names, labels.template
    for prefix, values in labels.names.items():
        for value in values:
            assert has_block(labels.template, f"{prefix}_{value}"), f"{labels.template}: {prefix}_{value}"


@pytest.mark.parametrize("path", HANDLERS, ids=lambda p: p.stem)
def test_label_blocks_the_code_names_exist(path: Path) -> None:
    module = importlib.import_module(f"handlers.{path.stem}")
    for m in LABEL_CALL.finditer(path.read_text(encoding="utf-8")):
        labels, by_name, block = getattr(module, m.group(1), None), m.group(2) or m.group(3), m.group(4)
        if not isinstance(labels, Labels):
            continue
        if by_name:  # a stored value's name: the prefix must be declared (every value's block is checked above)
            assert block in labels.names, f"{path.stem}: {labels.template} declares no {block} names"
        else:
            assert has_block(labels.template, block), f"{path.stem}: {labels.template} has no {block}"


@pytest.mark.parametrize("spec", [s for r in ROUTERS for s in r.approvals], ids=lambda s: s.key)
def test_every_approval_workflow_has_its_words(spec: WorkflowSpec) -> None:
    for block in ("title", "approved_note"):
        assert has_block(spec.labels.template, block), (spec.key, block)
    assert RENDERER.block(spec.labels.template, "title")


def test_no_stored_state_is_a_chinese_word() -> None:
    """Stored values are ASCII enum values; their Chinese names come from templates."""
    from enum import StrEnum

    import storage.models

    modules = [storage.models, *(importlib.import_module(f"handlers.{p.stem}") for p in HANDLERS)]
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, StrEnum) and value is not StrEnum:
                assert all(m.value.isascii() for m in value), value


def test_stored_values_read_back_in_chinese_and_parse_again() -> None:
    """A form keeps the enum value; it is shown by its name, and the value itself parses again
    (a card starts a form with a stored value, e.g. 设备情况 with `abnormal`)."""
    from handlers import computers, footage, publishing, stage
    from storage.models import BookingCondition, ComputerPurpose, Platform

    cases = [
        (stage.LABELS, "yes_no", stage.parse_yes_no, {"是": stage.YesNo.YES, "否": stage.YesNo.NO}),
        (
            footage.LABELS,
            "kind",
            footage.parse_kind,
            {"学生": footage.FootageKind.STUDENT, "教职工": footage.FootageKind.STAFF},
        ),
        (
            computers.LABELS,
            "purpose",
            computers.parse_purpose,
            {
                "科室办公": ComputerPurpose.OFFICE,
                "系部备课": ComputerPurpose.TEACHING,
                "临时借用": ComputerPurpose.LOAN,
            },
        ),
        (publishing.LABELS, "platform", publishing.parse_platform, {"网站": Platform.WEBSITE, "公众号": Platform.OA}),
        (publishing.LABELS, "part", publishing.parse_part, {"文字": DraftPart.TEXT, "照片": DraftPart.PHOTO}),
    ]
    for labels, prefix, parse, words in cases:
        for word, value in words.items():
            assert parse(word, None) is value
            assert parse(value.value, None) is value
            assert labels.show(prefix)(value.value, RENDERER) == word
    for word, value in {"正常": BookingCondition.NORMAL, "异常": BookingCondition.ABNORMAL}.items():
        assert stage._state(word) is value and stage._state(value.value) is value
        assert stage.LABELS.name(RENDERER, "condition", value) == word
    with pytest.raises(LookupError):
        stage.LABELS.name(RENDERER, "condition", "异常")  # a Chinese word is not a stored value


# -- forms and duties -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("router", "command"), [(r, c) for r in ROUTERS for c in r.commands], ids=lambda x: getattr(x, "key", "")
)
def test_every_command_has_a_form_with_an_example_in_its_folder(router, command) -> None:  # type: ignore[no-untyped-def]
    assert (router.templates / f"{command.template}.j2").exists(), (router.name, command.key)
    assert RENDERER.block(command.template, "example"), command.key


def test_legacy_duty_templates_exist() -> None:
    """A duty entry of the old closed catalogue may leave out its text: the shipped one is used."""
    from bot.config import LEGACY_DUTY_KEYS

    for key in LEGACY_DUTY_KEYS:
        assert (FOLDERS["duties"] / "duties" / f"{key}.j2").exists(), key


def test_every_template_is_used() -> None:
    """No orphan texts: each file is named by code, a command's form, a duty, or an include."""
    from bot.config import LEGACY_DUTY_KEYS

    used = set().union(*(names_in(p) for p in SOURCES))
    used |= {c.template for r in ROUTERS for c in r.commands} | {f"duties/{k}" for k in LEGACY_DUTY_KEYS}
    used |= {labels.template for _m, _a, labels in labels_objects()}
    for folder in (KERNEL, *FOLDERS.values()):
        for path in folder.rglob("*.j2"):
            used |= {m.group(1) for m in INCLUDE.finditer(path.read_text(encoding="utf-8"))}
    # Named by a value at run time: a workflow's guard returns the text refusing a final approval;
    # a request the system closes is told so (`"request_rejected" if … else "request_closed"`).
    used |= {"stage_slot_taken", "request_closed"}
    assert {n.removesuffix(".j2") for n in RENDERER.names} <= used


def test_templates_dirs_are_not_empty() -> None:
    assert len(RENDERER.names) > 150
    assert len(folder_names(KERNEL)) < 25  # the kernel says little: asking, refusing, apologising, pausing
