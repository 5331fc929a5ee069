"""What `check-config` and a refused start say about a configuration, in Chinese and English.

The texts are a catalogue of `str.format` templates keyed by the kind of problem, each with its
Simplified Chinese and English wording side by side, rather than Jinja files under
bot/templates: configuration errors are produced while the config is being read, before there
is a renderer (and `check-config` must work when the template folders are the very thing that
is broken); each text is one line with a few named fields, which `str.format` fills with no
logic; and keeping both languages on adjacent lines makes a missing translation visible in
review (a test checks that both templates of every kind take the same fields).

Validators raise `problem(kind, **fields)`; a value that itself differs by language (an entity's
label, a list of choices) is passed as a `Text` and rendered in the same language.
"""

from __future__ import annotations

import os
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
LANG_ENV = "INFODESK_LANG"  # the language of configuration errors for `serve` (zh or en)

# kind → (Simplified Chinese, English)
MESSAGES: dict[str, tuple[str, str]] = {
    # --- the report around the problems (infodesk.cli)
    "header": ("{file}：配置有 {count} 处错误：", "{file}: configuration has {count} problem(s):"),
    "warning": ("警告：{text}", "warning: {text}"),
    "ok": (
        "{file}：OK（{people} 人，{units} 个单位，{campuses} 个校区，{groups} 个群）",
        "{file}: OK ({people} people, {units} units, {campuses} campuses, {groups} managed groups)",
    ),
    # --- reading the file
    "file_not_found": ("{file}：文件不存在", "{file}: file not found"),
    "file_is_directory": (
        "{file}：这是一个目录，不是配置文件（容器挂载了一个不存在的文件？）",
        "{file}: is a directory, not a config file (a container bind mount of a missing file?)",
    ),
    "file_unreadable": (
        "{file}：无法读取（{reason}）；请检查文件权限",
        "{file}: cannot be read ({reason}); check its permissions",
    ),
    "file_not_toml": ("{file}：不是有效的 TOML：{reason}", "{file}: not valid TOML: {reason}"),
    # --- where a problem is: "{where}：{what}"
    "at": ("{where}：{what}", "{where}: {what}"),
    "top_level": ("配置文件顶层", "the top level"),
    "section": ("[{table}] 的 {key}", "[{table}] {key}"),
    "table": ("[{table}]", "[{table}]"),
    "entry": ("[[{table}]] 第 {n} 项", "[[{table}]] entry {n}"),
    "person": ("{name}（{userid}）", "{name} ({userid})"),
    "unit": ('单位 "{name}"', 'unit "{name}"'),
    "campus": ('校区 "{name}"', 'campus "{name}"'),
    "class": ('班级 "{name}"', 'class "{name}"'),
    "venue": ('场地 "{name}"', 'venue "{name}"'),
    "group": ('群 "{name}"', 'group "{name}"'),
    "duty": ('提醒 "{name}"', 'duty "{name}"'),
    "computer_room": ('微机室 "{name}"', 'computer room "{name}"'),
    "not_ours": ('不归信息中心维修的 "{name}"', 'not_ours "{name}"'),
    "chain": ('审批链 "{name}"（chains.{key}）', 'approval chain "{name}" (chains.{key})'),
    "chain_step": ('审批链 "{name}"（chains.{key}）第 {n} 步', 'approval chain "{name}" (chains.{key}) step {n}'),
    "every_unit": ("全部单位", "every unit"),
    # --- pydantic's own errors, translated
    "missing": ("缺少这一项", "is required but missing"),
    "missing_secret": (
        "缺少这一项；写在配置文件里，或设置环境变量 {env}",
        "is required but missing; set it in the file or in the environment variable {env}",
    ),
    "extra_forbidden": (
        "未知的键 '{key}'（拼写错误？请对照 infodesk/config.example.toml）",
        "unknown key '{key}' (a typo? check the spelling against infodesk/config.example.toml)",
    ),
    "literal_error": ('"{value}" 不存在；可选：{choices}', '"{value}" does not exist; choose from: {choices}'),
    "string_type": ("应为文本（用双引号括起来）", 'must be text (in "double quotes")'),
    "int_type": ("应为整数", "must be a whole number"),
    "float_type": ("应为数字", "must be a number"),
    "bool_type": ("应为 true 或 false", "must be true or false"),
    "date_type": ("应为日期，例如 2027-01-15", "must be a date such as 2027-01-15"),
    "list_type": ('应为列表，例如 ["a", "b"]', 'must be a list such as ["a", "b"]'),
    "table_type": ("应为一个表（[表名] 或 {{ 键 = 值 }}）", "must be a table ([name] or {{ key = value }})"),
    "too_short": ("至少要有 {min} 项", "needs at least {min} item(s)"),
    "string_too_short": ("不能为空", "must not be empty"),
    "greater_than": ("必须大于 {limit}", "must be greater than {limit}"),
    "greater_than_equal": ("不能小于 {limit}", "must be at least {limit}"),
    "less_than": ("必须小于 {limit}", "must be less than {limit}"),
    "less_than_equal": ("不能大于 {limit}", "must be at most {limit}"),
    "invalid": ("取值无效：{detail}", "{detail}"),
    # --- the sections' own checks
    "aes_key": (
        "必须正好是 43 个字母或数字；请从管理后台复制 EncodingAESKey（应用 → 接收消息 → 设置API接收）",
        "must be exactly 43 characters from [A-Za-z0-9]; copy EncodingAESKey from the admin console "
        "(应用 → 接收消息 → 设置API接收)",
    ),
    "token": (
        "必须是 1-32 个字母或数字，与“设置API接收”里填写的一致",
        "must be 1-32 letters or digits, as entered in 设置API接收",
    ),
    "secret_empty": (
        "不能为空；写在配置文件里，或设置环境变量 {env}",
        "must not be empty; set it here or in {env}",
    ),
    "api_base": (
        "必须是 http(s) 网址，例如 https://qyapi.weixin.qq.com",
        "must be an http(s) URL such as https://qyapi.weixin.qq.com",
    ),
    "url_path": ("必须以 '/' 开头，例如 /wecom/callback", "must start with '/', e.g. /wecom/callback"),
    "networks": (
        "必须是 IP 网段或地址，例如 10.0.0.0/8（{detail}）",
        "must be IP networks or addresses such as 10.0.0.0/8 ({detail})",
    ),
    "database_url": (
        "必须以 sqlite+aiosqlite:// 或 postgresql+asyncpg:// 开头（例如 sqlite+aiosqlite:///infodesk.db）",
        "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// (e.g. sqlite+aiosqlite:///infodesk.db)",
    ),
    "timezone": (
        "必须是 IANA 时区名，例如 Asia/Shanghai",
        "must be an IANA time zone name such as Asia/Shanghai",
    ),
    "userid": (
        "必须是企业微信的 userid：1-64 个字母、数字或 _ . @ -",
        "must be the WeCom userid: 1-64 letters, digits or _ . @ -",
    ),
    "push_time_none": ('至少要有一个推送时间，例如 "19:00"', 'give at least one push time, e.g. "19:00"'),
    "push_time_format": (
        "'{time}' 必须是 24 小时制的 HH:MM，例如 19:00",
        "'{time}' must be HH:MM in 24-hour time, e.g. 19:00",
    ),
    "push_time_twice": ("有推送时间重复了", "a push time is listed twice"),
    "weekdays": ("星期为 1（周一）到 7（周日），至少一个", "weekdays are 1 (Monday) to 7 (Sunday), at least one"),
    "webhook_key": (
        "channel = 'webhook' 需要 webhook_key（机器人网址中 key=... 的部分）",
        "channel = 'webhook' needs webhook_key (the key=... of the robot URL)",
    ),
    "appchat_id": (
        "应用群聊的 chat_id 是 1-32 个字母或数字（现在是 '{chat_id}'）",
        "an app group's chat_id is 1-32 letters or digits (got '{chat_id}')",
    ),
    "appchat_external": (
        "受众 '{audience}' 是外部联系人，而应用群聊（appchat）只能有本单位成员；"
        "请用 channel = 'customer_group'（填客户群的 chat id 和群主 owner），或群机器人（webhook）",
        "audience '{audience}' are external contacts, and an app group chat (appchat) holds members of the "
        "organisation only; use channel = 'customer_group' with the customer group's chat id and its owner, "
        "or a group robot (webhook)",
    ),
    "customer_group_id": (
        "客户群的 chat_id 是企业微信给它的 id，以 'wr' 开头（现在是 '{chat_id}'；"
        "externalcontact/groupchat/list 可以查到）",
        "a customer group's chat_id is WeCom's id of it, starting with 'wr' "
        "(got '{chat_id}'; externalcontact/groupchat/list gives it)",
    ),
    "customer_group_owner": (
        "channel = 'customer_group' 需要 owner（确认群发的群主）",
        "channel = 'customer_group' needs owner (the 群主 who confirms mass sends)",
    ),
    "customer_group_limit": (
        "推送安排每{period}最多推送 {most} 次，但客户群每{period}最多只能收到 {allowed} 条群发"
        "（receive_limit = '{limit}'）；请减少推送时间或星期",
        "its schedule pushes up to {most} times a {period}, but a customer group receives at most {allowed} "
        "mass messages a {period} (receive_limit = '{limit}'); use fewer push times or weekdays",
    ),
    "escalation_order": (
        "escalate_after_hours 必须比 remind_after_hours 长",
        "escalate_after_hours must be longer than remind_after_hours",
    ),
    "sla_computer": (
        "computer 最多 24（计算机的维修周期不能超过 24 个小时）",
        "computer must be at most 24 (计算机的维修周期不能超过 24 个小时)",
    ),
    "sla_computer_wall": (
        'computer 只能是 "wall"（计算机的维修周期按自然时间 24 个小时算）',
        'computer must be "wall" (计算机的维修周期按自然时间 24 个小时算)',
    ),
    "working_hours_empty": (
        '至少要有一段工作时间，例如 ["08:00-12:00", "14:00-17:30"]',
        'must list at least one working window, e.g. ["08:00-12:00", "14:00-17:30"]',
    ),
    "working_hours": (
        '“{value}”不是一段工作时间（写成 "08:00-12:00"，各段不重叠）',
        '"{value}" is not a working window (write "08:00-12:00"; windows must not overlap)',
    ),
    "sla_positive": ("每个维修时限都必须是正的小时数", "every SLA must be a positive number of hours"),
    "not_ours_words": (
        '要列出大家对这些东西的叫法，例如 words = ["空调", "打印机"]',
        'must list the words people use for these things, e.g. words = ["空调", "打印机"]',
    ),
    "not_ours_office": (
        '要写明负责的部门，例如 office = "总务处"',
        'must name the office that handles these, e.g. office = "总务处"',
    ),
    "not_ours_twice": (
        "'{word}' 同时列在 '{first}' 和 '{second}' 下；一个词只能指向一个部门",
        "the word '{word}' is listed under both '{first}' and '{second}'; each word may point to one office",
    ),
    "cron_fields": (
        "必须是 5 段的 crontab 表达式 “分 时 日 月 星期”，例如 '0 8 * * mon-fri'",
        "must be a 5-field crontab expression 'minute hour day month weekday', e.g. '0 8 * * mon-fri'",
    ),
    "cron_weekday_digits": (
        "星期请写英文缩写（mon-fri、sat、sun）：APScheduler 把 0 当作周一，与 crontab 不同，数字会有歧义",
        "write weekdays as names (mon-fri, sat, sun): APScheduler counts 0 as Monday, unlike crontab, "
        "so digits are ambiguous",
    ),
    "cron_invalid": ("不是有效的 crontab 表达式：{detail}", "is not a valid crontab expression: {detail}"),
    # --- references between sections (Config._references)
    "duplicate_userid": (
        '[[people]] 里 userid "{userid}" 出现了 {times} 次；每个 userid 只能出现一次',
        '[[people]] lists userid "{userid}" {times} times; every userid must be unique',
    ),
    "duplicate_venue": (
        '[[venues]] 里 key "{key}" 出现了 {times} 次；每个场地的 key 必须不同',
        '[[venues]] lists key "{key}" {times} times; every venue key must be unique',
    ),
    "duplicate_chat_id": (
        '[[groups]] 里 chat_id "{chat_id}" 出现了 {times} 次；每个群的 chat_id 必须不同',
        '[[groups]] lists chat_id "{chat_id}" {times} times; every chat_id must be unique',
    ),
    "unknown_user": (
        '{where} "{userid}" 不在 [[people]] 里',
        "{where} '{userid}' is not a userid listed in [[people]]",
    ),
    "unknown_campus": ('{where} "{campus}" 不在 [[campuses]] 里', "{where} '{campus}' is not a [[campuses]] key"),
    "unknown_unit": ('{where} "{unit}" 不在 [[units]] 里', "{where} '{unit}' is not a [[units]] key"),
    "not_a_department": (
        '{where} "{unit}" 不是 [[units]] 里的系部（kind = "系部"）',
        "{where} '{unit}' is not a 系部 in [[units]]",
    ),
    "person_partial": (
        "[[people]] 里的 {who} 缺少 {fields}；请补上，或在 [directory] 里设 enabled = true，由企业微信通讯录提供",
        "[[people]] entry {who} lacks {fields}; give them, or set enabled = true under [directory] to take them from"
        " WeCom's directory",
    ),
    "ambiguous_person": (
        '{where} "{name}" 在 [[people]] 里有 {count} 人同名（{userids}）；请改写 userid',
        "{where} '{name}' names {count} people in [[people]] ({userids}); write the userid instead",
    ),
    "technician_skills": (
        "{who}是技术员（technician），至少要有一项技能；可选：{choices}",
        "{who} is a technician and needs at least one skill; choose from: {choices}",
    ),
    # --- approval chains (bot.config_coverage, bot.org)
    "chain_uncovered": (
        "{step}的角色 {role}（{role_name}）没有人担任，这些申请人的申请无人审批：{whom}；{fix}",
        "{step}: role '{role}' ({role_name}) is held by nobody for requesters of {whom}; {fix}",
    ),
    "chain_self_uncovered": (
        "{step}：{who}自己申请时，{role}（{role_name}）是本人，[approval.next_level] 里的上一级也没有人能审批；"
        "请给 {role} 指定一个有人担任的上一级",
        "{step}: when {who} requests, role '{role}' ({role_name}) is themself and no level above it in "
        "[approval.next_level] approves; give {role} a next level someone holds",
    ),
    "chain_fallback": (
        "{step}：{who}自己担任 {role}（{role_name}），本人申请时改由 {to}（{to_name}）{approvers} 审批",
        "{step}: {who} hold(s) role '{role}' ({role_name}) themselves; their own requests go to "
        "'{to}' ({to_name}) {approvers} instead",
    ),
    "fix_global": (
        '请在 [[people]] 中给某人的 roles 加上 "{role}"',
        'give the role to someone: roles = ["{role}"] in [[people]]',
    ),
    "fix_unit": (
        "请填写这些单位在 [[units]] 里的 {key}（或从审批链里去掉这一步）",
        "set {key} for these units in [[units]] (or remove the step from the chain)",
    ),
    "fix_office_lead": (
        '科室负责人是 [[units]] 里 kind = "科室" 的单位的 head；请检查这些单位',
        'the office lead is the head of a kind = "科室" unit in [[units]]; check these units',
    ),
    "fix_campus": ("请填写这些校区在 [[campuses]] 里的 vp", "set vp for these campuses in [[campuses]]"),
    "fix_class": (
        "这一步需要班级：请给审批链加上 needs_class = true",
        "this step needs a class: set needs_class = true",
    ),
    "chain_required": (
        "缺少审批链 [chains.{key}]：{label} 需要它；参见 infodesk/config.example.toml",
        "chains.{key}: is required by {label}; see infodesk/config.example.toml",
    ),
    "and_more": ("{shown} 等 {total} 个", "{shown}, … ({total} in all)"),
}

# How the bot calls each role (as bot/templates/role_name.j2 does in replies to staff).
ROLE_NAMES: dict[str, tuple[str, str]] = {
    "director": ("信息中心主任", "director of the information center"),
    "technician": ("技术员", "technician"),
    "cctv_operator": ("监控室", "CCTV operator"),
    "platform_editor": ("平台编辑", "platform editor"),
    "publicity_reviewer": ("文宣审稿", "publicity reviewer"),
    "photo_reviewer": ("照片审核", "photo reviewer"),
    "video_editor": ("微课视频编辑部", "video editor"),
    "class_teacher": ("班主任", "class teacher"),
    "dept_head": ("系主任", "department head"),
    "dept_deputy": ("系主管副主任", "deputy department head"),
    "office_lead": ("科室负责人", "office lead"),
    "vp_supervising": ("主管副校长", "supervising vice principal"),
    "vp_campus": ("校区督导副校长", "campus vice principal"),
    "vp_info_center": ("信息中心主管校长", "vice principal for the information center"),
    "principal": ("校长", "principal"),
    "committee": ("校委会", "school committee"),
    "group_admin": ("族群管理员", "group admin"),
    "sysadmin": ("系统管理员", "system administrator"),
}

# The chains the workflows submit to, as their commands name them (handlers' requires_chain).
CHAIN_NAMES: dict[str, str] = {
    "footage_student": "调监控（学生）",
    "footage_staff": "调监控（教职工）",
    "computer_office": "领电脑（科室）",
    "computer_department": "领电脑（系部）",
    "stage": "借舞台",
    "stage_outdoor": "借舞台（户外）",
    "stage_offsite": "借舞台（校外）",
    "stage_outdoor_offsite": "借舞台（户外且校外）",
    "audio_class": "音频课堂",
    "draft_phone": "投稿（含联系电话）",
}

# Keys of the organisation's entries, as a Chinese sentence names them ("李华（lihua）的技能").
FIELD_NAMES: dict[str, str] = {
    "skills": "技能",
    "roles": "角色",
    "campus": "校区",
    "unit": "单位",
    "name": "名称 name",
    "kind": "类型 kind",
    "head": "负责人 head",
    "deputy": "副主任 deputy",
    "vp_supervising": "主管副校长 vp_supervising",
    "vp": "督导副校长 vp",
    "department": "系部 department",
    "class_teacher": "班主任 class_teacher",
    "admins": "管理员 admins",
    "owner": "群主 owner",
    "audience": "受众 audience",
    "channel": "渠道 channel",
    "users": "提醒对象 users",
    "role": "角色",
    "mode": "方式 mode",
}

PERIODS = {"day": "天", "week": "周", "month": "月"}


@dataclass(frozen=True)
class Text:
    """One message in every language."""

    zh: str
    en: str

    def in_(self, lang: Lang) -> str:
        return self.zh if lang == "zh" else self.en

    def __str__(self) -> str:
        return self.en


Value = str | int | float | Text | tuple["Value", ...]


def _render(value: Value, lang: Lang) -> str:
    if isinstance(value, Text):
        return value.in_(lang)
    if isinstance(value, tuple):
        return ("、" if lang == "zh" else ", ").join(_render(v, lang) for v in value)
    return str(value)


def msg(kind: str, **fields: Value) -> Text:
    """The catalogue's message `kind` with its fields filled in, in both languages."""
    zh, en = MESSAGES[kind]
    return Text(
        zh.format(**{k: _render(v, "zh") for k, v in fields.items()}),
        en.format(**{k: _render(v, "en") for k, v in fields.items()}),
    )


def template_fields(template: str) -> set[str]:
    """The named fields a template takes."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def role_name(role: str) -> Text:
    zh, en = ROLE_NAMES.get(role, (role, role))
    return Text(zh, en)


def chain_name(key: str) -> str:
    return CHAIN_NAMES.get(key, key)


def field_name(key: str) -> Text:
    return Text(FIELD_NAMES.get(key, key), key)


def of(entity: Text, field: str) -> Text:
    """An entry's key: 李华（lihua）的技能, 单位 "信息技术系" 的校区; in English "unit "…" campus"."""
    name = field_name(field)
    before = " " if entity.zh.endswith('"') else ""
    after = " " if name.zh[:1].isascii() else ""  # 的 head, 的技能
    return Text(f"{entity.zh}{before}的{after}{name.zh}", f"{entity.en} {name.en}")


def shorten(items: Iterable[Value], limit: int = 5) -> Value:
    """At most `limit` items; the rest counted ("a、b 等 7 个")."""
    items = tuple(dict.fromkeys(items))
    if len(items) <= limit:
        return items
    return msg("and_more", shown=items[:limit], total=len(items))


def entity_label(section: str, entry: Mapping[str, object]) -> Text | None:
    """How an entry of an array of tables is named: 李华（lihua）, 单位 "信息技术系", …"""

    def string(key: str) -> str | None:
        value = entry.get(key)
        return value if isinstance(value, str) and value else None

    if section == "people":
        name, userid = string("name"), string("userid")
        if name and userid:
            return msg("person", name=name, userid=userid)
        only = name or userid
        return Text(only, only) if only else None
    kind = {
        "units": "unit",
        "campuses": "campus",
        "classes": "class",
        "venues": "venue",
        "groups": "group",
        "duties": "duty",
        "computer_rooms": "computer_room",
        "not_ours": "not_ours",
    }.get(section)
    label = string("name") or string("title") or string("key") or string("office") or string("chat_id")
    if kind is None or label is None:
        return None
    return msg(kind, name=label)


class ConfigProblem(ValueError):
    """Raised by a validator: one or more problems, each in every language.

    A ValueError, so pydantic reports it as a value error at the validator's location and keeps
    the exception (its `ctx["error"]`), from which the texts are read back.
    """

    def __init__(self, *texts: Text) -> None:
        super().__init__("; ".join(t.en for t in texts))
        self.texts = texts


def problem(kind: str, **fields: Value) -> ConfigProblem:
    """A validator's error: `raise problem("aes_key")`."""
    return ConfigProblem(msg(kind, **fields))


def lang_from(environ: Mapping[str, str] | None = None) -> Lang:
    """The language chosen in INFODESK_LANG (zh unless it says en)."""
    value = (os.environ if environ is None else environ).get(LANG_ENV, "").strip().lower()
    return "en" if value.startswith("en") else "zh"
