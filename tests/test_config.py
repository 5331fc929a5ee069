"""Configuration: the example validates; bad keys are named with the fix; env secrets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError, load_config, parse_config
from tests.conftest import ROOT, example_raw


def problems(raw: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(raw, environ=environ or {})
    return err.value.problems


def test_example_config_describes_a_complete_organisation() -> None:
    cfg = load_config(ROOT / "infodesk" / "config.example.toml", environ={})
    assert len(cfg.campuses) == 4
    assert {u.kind for u in cfg.units} == {"系部", "科室"}
    assert cfg.classes and all(cfg.person(c.class_teacher) for c in cfg.classes)
    roles = {r for p in cfg.people for r in p.roles}
    for role in (
        "director",
        "technician",
        "cctv_operator",
        "platform_editor",
        "publicity_reviewer",
        "photo_reviewer",
        "class_teacher",
        "dept_head",
        "dept_deputy",
        "office_lead",
        "vp_supervising",
        "vp_campus",
        "vp_info_center",
        "principal",
        "committee",
        "group_admin",
    ):
        assert role in roles, role
    skills = {s for p in cfg.people for s in p.skills}
    assert skills == {"computer", "projector", "stage", "cctv", "network"}
    assert cfg.wecom.api_base == "https://qyapi.weixin.qq.com"
    assert cfg.server.callback_path == "/wecom/callback" and cfg.server.robot_path == "/wecom/robot"


def test_bad_keys_are_named_with_the_fix() -> None:
    raw = example_raw()
    raw["wecom"]["encoding_aes_key"] = "tooshort"
    raw["wecom"]["agent_id"] = "abc"
    raw["server"]["callback_path"] = "wecom"
    raw["database"]["url"] = "mysql://x"
    raw["scheduler"] = {"timezone": "Mars/Olympus"}
    raw["server"]["prot"] = 1
    found = "\n".join(problems(raw))
    assert "wecom.encoding_aes_key: must be exactly 43 characters" in found
    assert "wecom.agent_id" in found
    assert "server.callback_path: must start with '/'" in found
    assert "database.url: must start with sqlite+aiosqlite://" in found
    assert "scheduler.timezone: must be an IANA time zone" in found
    assert "server.prot: is not a known key" in found


def test_missing_required_key_and_broken_references() -> None:
    raw = example_raw()
    del raw["wecom"]["corp_id"]
    assert any(p.startswith("wecom.corp_id: is required") for p in problems(raw))
    raw = example_raw()
    raw["units"][0]["head"] = "nobody"
    raw["people"][7]["skills"] = []
    found = "\n".join(problems(raw))
    assert "units[0].head: 'nobody' is not a userid listed in [[people]]" in found
    assert "people[7].skills: technician 'lihua' needs at least one of" in found


def test_secrets_may_come_from_the_environment() -> None:
    raw = example_raw()
    for key in ("secret", "token", "encoding_aes_key"):
        del raw["wecom"][key]
    assert len(problems(raw)) == 3
    cfg = parse_config(
        raw,
        environ={
            "INFODESK_WECOM_SECRET": "s3cr3t",
            "INFODESK_WECOM_TOKEN": "EnvToken1",
            "INFODESK_WECOM_AES_KEY": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
        },
    )
    assert cfg.wecom.secret.get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(cfg) and "EnvToken1" not in str(cfg)


def test_check_config_cli(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "bot", "check-config", str(ROOT / "infodesk" / "config.example.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "OK" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        (ROOT / "infodesk" / "config.example.toml")
        .read_text(encoding="utf-8")
        .replace('corp_id = "ww_demo_corp"', 'corp_id = ""'),
        encoding="utf-8",
    )
    res = subprocess.run(
        [sys.executable, "-m", "bot", "check-config", str(bad)], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode != 0 and "wecom.corp_id" in res.stderr
    assert "demo-secret" not in res.stderr + res.stdout
