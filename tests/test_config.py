"""Configuration: the example validates; problems name the entry and the fix, in Chinese or English."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError, load_config, parse_config
from bot.config_coverage import coverage
from bot.config_messages import MESSAGES, template_fields
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
    found = problems(raw)
    assert len(found) == 6, found
    text = "\n".join(found)
    assert "[wecom] 的 encoding_aes_key：必须正好是 43 个字母或数字" in text
    assert "[wecom] 的 agent_id：应为整数" in text
    assert "[server] 的 callback_path：必须以 '/' 开头" in text
    assert "[database] 的 url：必须以 sqlite+aiosqlite:// 或 postgresql+asyncpg:// 开头" in text
    assert "[scheduler] 的 timezone：必须是 IANA 时区名" in text
    assert "[server]：未知的键 'prot'（拼写错误？" in text


def test_english_on_request() -> None:
    raw = example_raw()
    raw["wecom"]["encoding_aes_key"] = "tooshort"
    raw["server"]["prot"] = 1
    raw["people"][7]["skills"] = ["computer", "电工"]
    with pytest.raises(ConfigError) as err:
        parse_config(raw, environ={}, lang="en")
    text = "\n".join(err.value.problems)
    assert "[wecom] encoding_aes_key: must be exactly 43 characters" in text
    assert "[server]: unknown key 'prot' (a typo?" in text
    assert '李华 (lihua) skills "电工" does not exist; choose from: computer, projector' in text
    assert err.value.lines("zh") != err.value.problems  # both languages are kept
    with pytest.raises(ConfigError) as err:
        parse_config(raw, environ={"INFODESK_LANG": "en"})
    assert err.value.problems[0].startswith("[wecom] encoding_aes_key: must be")


def test_a_bad_skill_names_the_person_in_chinese() -> None:
    raw = example_raw()
    raw["people"][7]["skills"] = ["computer", "电工"]
    assert problems(raw) == ['李华（lihua）的技能 "电工" 不存在；可选：computer、projector、stage、cctv、network']


def test_missing_required_key_and_broken_references() -> None:
    raw = example_raw()
    del raw["wecom"]["corp_id"]
    assert problems(raw) == ["[wecom] 的 corp_id：缺少这一项"]
    raw = example_raw()
    raw["units"][0]["head"] = "nobody"
    raw["units"][0]["campus"] = "yy"
    raw["people"][7]["skills"] = []
    raw["venues"][0]["campus"] = "nowhere"
    found = problems(raw)
    assert found == [
        '单位 "信息技术系" 的校区 "yy" 不在 [[campuses]] 里',
        '单位 "信息技术系" 的负责人 head "nobody" 不在 [[people]] 里',
        "李华（lihua）是技术员（technician），至少要有一项技能；可选：computer、projector、stage、cctv、network",
        '场地 "本部礼堂" 的校区 "nowhere" 不在 [[campuses]] 里',
    ]


def test_several_errors_are_each_reported_once_and_counted(tmp_path: Path) -> None:
    raw = example_raw()
    raw["groups"][0]["admins"] = ["ghost", "ghost", "zhouyan"]  # one unknown admin, listed twice
    raw["people"].append(dict(raw["people"][0]))  # wangjianguo twice
    raw["people"].append(dict(raw["people"][0]))  # … three times: still one problem
    raw["classes"][0]["department"] = "office"  # a 科室, not a 系部
    found = problems(raw)
    assert found == [
        '[[people]] 里 userid "wangjianguo" 出现了 3 次；每个 userid 只能出现一次',
        '班级 "24级计算机应用1班" 的系部 department "office" 不是 [[units]] 里的系部（kind = "系部"）',
        '群 "24级信息技术在校生群" 的管理员 admins "ghost" 不在 [[people]] 里',
    ]
    raw = example_raw()
    raw["people"][7]["skills"] = ["电工"]
    raw["people"][8]["roles"] = ["technician", "boss"]
    raw["logging"]["level"] = "TRACE"
    found = problems(raw)
    assert len(found) == 3 and len(set(found)) == 3
    assert any(p.startswith('张磊（zhanglei）的角色 "boss" 不存在；可选：director、technician') for p in found)
    assert '[logging] 的 level "TRACE" 不存在；可选：DEBUG、INFO、WARNING、ERROR' in found


def test_missing_secrets_name_their_environment_variables() -> None:
    raw = example_raw()
    for key in ("secret", "token", "encoding_aes_key"):
        del raw["wecom"][key]
    assert problems(raw) == [
        f"[wecom] 的 {key}：缺少这一项；写在配置文件里，或设置环境变量 {env}"
        for key, env in (
            ("secret", "INFODESK_WECOM_SECRET"),
            ("token", "INFODESK_WECOM_TOKEN"),
            ("encoding_aes_key", "INFODESK_WECOM_AES_KEY"),
        )
    ]
    del raw["robot"]["token"]
    assert "[robot] 的 token：缺少这一项；写在配置文件里，或设置环境变量 INFODESK_ROBOT_TOKEN" in problems(raw)


def test_secrets_may_come_from_the_environment() -> None:
    raw = example_raw()
    for key in ("secret", "token", "encoding_aes_key"):
        del raw["wecom"][key]
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


def test_a_chain_role_held_by_nobody_fails_listing_the_units() -> None:
    raw = example_raw()
    for p in raw["people"]:
        if "director" in p["roles"]:
            p["roles"].remove("director")  # 借舞台 would quietly go to vp_info_center (next_level)
    for unit in raw["units"]:
        if unit["key"] in ("mech", "preschool"):
            del unit["deputy"]
    found = problems(raw)
    assert len(found) == 7, found  # the director ends both 领电脑 chains, signs 借舞台 and more
    assert (
        '审批链 "领电脑（系部）"（chains.computer_department）第 1 步的角色 dept_deputy（系主管副主任）没有人担任，'
        '这些申请人的申请无人审批：单位 "机电工程系"、单位 "学前教育系"；'
        "请填写这些单位在 [[units]] 里的 deputy（或从审批链里去掉这一步）"
    ) in found
    [stage] = [f for f in found if f.startswith('审批链 "借舞台"（chains.stage）')]
    assert stage.startswith('审批链 "借舞台"（chains.stage）第 1 步的角色 director（信息中心主任）没有人担任')
    assert "全部单位" in stage and '给某人的 roles 加上 "director"' in stage
    raw["campuses"][1]["vp"] = "nobody"
    assert '校区 "东湖校区" 的督导副校长 vp "nobody" 不在 [[people]] 里' in problems(raw)


def test_fallback_past_the_next_level_is_a_warning(tmp_path: Path) -> None:
    raw = example_raw()
    raw["units"][5]["vp_supervising"] = "zhengmei"  # the office's head supervises it herself
    cfg = parse_config(raw, environ={})
    [first, *_] = coverage(cfg).warnings
    assert first.zh == (
        '审批链 "调监控（教职工）"（chains.footage_staff）第 1 步：郑梅（zhengmei）自己担任 dept_head（系主任），'
        "本人申请时改由 principal（校长）王建国（wangjianguo） 审批"
    )
    assert coverage(parse_config(example_raw(), environ={})).warnings == []
    text = (ROOT / "infodesk" / "config.example.toml").read_text(encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(
        text.replace('head = "zhengmei"\nvp_supervising = "zhaomin"', 'head = "zhengmei"\nvp_supervising = "zhengmei"'),
        encoding="utf-8",
    )
    res = check_config(path)
    assert res.returncode == 0 and "OK" in res.stdout
    assert '警告：审批链 "调监控（教职工）"' in res.stderr


def test_every_message_has_both_languages_with_the_same_fields() -> None:
    for kind, (zh, en) in MESSAGES.items():
        assert template_fields(zh) == template_fields(en), kind


def check_config(path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("INFODESK_")}
    return subprocess.run(
        [sys.executable, "-m", "bot", "check-config", *args, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**environ, **(env or {})},
    )


def test_check_config_cli(tmp_path: Path) -> None:
    ok = check_config(ROOT / "infodesk" / "config.example.toml")
    assert ok.returncode == 0 and "OK" in ok.stdout and ok.stderr == ""
    bad = tmp_path / "bad.toml"
    bad.write_text(
        (ROOT / "infodesk" / "config.example.toml")
        .read_text(encoding="utf-8")
        .replace('corp_id = "ww_demo_corp"', 'corp_id = ""')
        .replace('skills = ["computer", "network"]', 'skills = ["computer", "电工"]'),
        encoding="utf-8",
    )
    res = check_config(bad)
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        f"{bad}：配置有 2 处错误：",
        "  - [wecom] 的 corp_id：不能为空",
        '  - 李华（lihua）的技能 "电工" 不存在；可选：computer、projector、stage、cctv、network',
    ]
    assert "demo-secret" not in res.stderr + res.stdout
    en = check_config(bad, "--lang", "en")
    assert en.returncode == 2 and en.stderr.startswith(f"{bad}: configuration has 2 problem(s):\n")
    assert "  - [wecom] corp_id: must not be empty" in en.stderr
    assert check_config(bad, env={"INFODESK_LANG": "en"}).stderr == en.stderr
    missing = check_config(tmp_path / "nope.toml")
    assert missing.returncode == 2 and f"{tmp_path / 'nope.toml'}：文件不存在" in missing.stderr


def test_a_people_entry_with_only_a_userid_needs_the_directory() -> None:
    raw = example_raw()
    raw["people"].append({"userid": "wangfang", "roles": ["technician"], "skills": ["computer"]})
    raw["people"].append({"userid": "liqiang", "name": "李强"})
    fix = "请补上，或在 [directory] 里设 enabled = true，由企业微信通讯录提供"
    assert problems(raw) == [
        f"[[people]] 里的 wangfang 缺少 name、campus、unit；{fix}",
        f"[[people]] 里的 李强（liqiang） 缺少 campus、unit；{fix}",
    ]
    raw["directory"]["enabled"] = True
    cfg = parse_config(raw, environ={})  # WeCom will say the rest (bot/directory.py)
    partial = cfg.person("wangfang")
    assert partial is not None and partial.partial and partial.skills == ("computer",)


def test_people_may_be_named_by_name_where_a_userid_is_expected() -> None:
    raw = example_raw()
    raw["units"][0]["head"] = "马军"
    raw["groups"][0]["admins"] = ["马军"]
    cfg = parse_config(raw, environ={})
    assert cfg.units[0].head == "majun" and cfg.groups[0].admins == ("majun",)

    raw["people"].append({"userid": "majun2", "name": "马军", "campus": "main", "unit": "it"})
    raw["units"][1]["deputy"] = "无名氏"
    assert problems(raw) == [
        '单位 "信息技术系" 的负责人 head "马军" 在 [[people]] 里有 2 人同名（majun、majun2）；请改写 userid',
        '群 "24级信息技术在校生群" 的管理员 admins "马军" 在 [[people]] 里有 2 人同名（majun、majun2）；请改写 userid',
        '单位 "机电工程系" 的副主任 deputy "无名氏" 不在 [[people]] 里',
    ]


def test_computer_rooms_name_the_room_and_key() -> None:
    raw = example_raw()
    room = raw["computer_rooms"][0]
    room["seats"] = "40-1"
    room["administrators"] = ["nobody"]
    room["timetable"][0]["period"] = 12
    raw["computer_rooms"][1]["campus"] = "moon"
    raw["lessons"]["periods"][1] = "9:55-09:40"
    text = "\n".join(problems(raw))
    assert '微机室 "微机室1" 的 seats：取值无效：must be a range of seat numbers, e.g. "1-40"' in text
    assert '[lessons] 的 periods：取值无效：period 2 "9:55-09:40" must be HH:MM-HH:MM' in text
    raw["computer_rooms"][0]["seats"] = "1-40"
    raw["lessons"]["periods"][1] = "08:55-09:40"
    text = "\n".join(problems(raw))
    assert '微机室 "微机室1" 的 administrators "nobody" 不在 [[people]] 里' in text
    assert '微机室 "微机室1" 的 timetable 第 1 项的 period = 12：[lessons] periods 只有 8 节' in text
    assert '微机室 "东湖微机室" 的校区 "moon" 不在 [[campuses]] 里' in text


def test_a_person_is_found_in_the_config_they_are_in_and_not_in_one_without_them() -> None:
    """The directory sync replaces the people (model_copy): the lookup follows the new list."""
    cfg = load_config(ROOT / "infodesk" / "config.example.toml", environ={})
    first = cfg.people[0]
    assert cfg.person(first.userid) is first
    renamed = first.model_copy(update={"name": "新名字"})
    synced = cfg.model_copy(update={"people": (renamed, *cfg.people[1:])})
    assert synced.person(first.userid) is renamed
    without = cfg.model_copy(update={"people": cfg.people[1:]})
    assert without.person(first.userid) is None
    assert cfg.person(first.userid) is first  # the original is unchanged
    assert cfg.person("nobody") is None
