"""Configuration: TOML validated by a pydantic schema; secrets may come from the environment."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.config_base import ROLES, SKILLS, Role, Skill, _Strict  # noqa: F401  (re-exported)
from bot.config_workflows import (  # noqa: F401  (re-exported)
    DUTY_KEYS,
    ApprovalConfig,
    Chain,
    ChainStep,
    ComputersConfig,
    Duty,
    FaultsConfig,
    FootageConfig,
    PublishingConfig,
    SchedulesConfig,
    StageConfig,
    Venue,
    check_cron,
)
from bot.org import chain_problems

AES_KEY_RE = re.compile(r"^[A-Za-z0-9]{43}$")
USERID_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")

# Environment variables that override (or supply) secret keys; never logged.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "INFODESK_WECOM_SECRET": ("wecom", "secret"),
    "INFODESK_WECOM_TOKEN": ("wecom", "token"),
    "INFODESK_WECOM_AES_KEY": ("wecom", "encoding_aes_key"),
    "INFODESK_ROBOT_TOKEN": ("robot", "token"),
    "INFODESK_ROBOT_AES_KEY": ("robot", "encoding_aes_key"),
    "INFODESK_DATABASE_URL": ("database", "url"),
}


def _check_aes_key(value: SecretStr) -> SecretStr:
    if not AES_KEY_RE.match(value.get_secret_value()):
        raise ValueError(
            "must be exactly 43 characters from [A-Za-z0-9]; copy EncodingAESKey from the "
            "admin console (应用 → 接收消息 → 设置API接收)"
        )
    return value


class WecomConfig(_Strict):
    corp_id: str = Field(min_length=1, description="企业ID (CorpID), 'My company' page")
    agent_id: int = Field(gt=0, description="AgentId of the self-built app")
    secret: SecretStr = Field(description="the app's Secret (env INFODESK_WECOM_SECRET)")
    token: SecretStr = Field(description="callback Token (env INFODESK_WECOM_TOKEN)")
    encoding_aes_key: SecretStr = Field(description="callback EncodingAESKey (env INFODESK_WECOM_AES_KEY)")
    api_base: str = "https://qyapi.weixin.qq.com"
    timestamp_window_seconds: int = Field(default=300, ge=1)

    @field_validator("token")
    @classmethod
    def _token(cls, v: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[A-Za-z0-9]{1,32}", v.get_secret_value()):
            raise ValueError("must be 1-32 letters or digits, as entered in 设置API接收")
        return v

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value():
            raise ValueError("must not be empty; set it here or in INFODESK_WECOM_SECRET")
        return v

    _aes = field_validator("encoding_aes_key")(_check_aes_key)

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/.*)?$", v):
            raise ValueError("must be an http(s) URL such as https://qyapi.weixin.qq.com")
        return v.rstrip("/")


class RobotConfig(_Strict):
    token: SecretStr
    encoding_aes_key: SecretStr
    _aes = field_validator("encoding_aes_key")(_check_aes_key)


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    callback_path: str = "/wecom/callback"
    robot_path: str = "/wecom/robot"
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    shutdown_timeout_seconds: float = Field(default=10.0, gt=0)
    # GET /metrics (Prometheus): off unless set; then served to loopback clients and these networks.
    metrics: bool = False
    metrics_allow: tuple[str, ...] = ()  # e.g. ["10.0.0.0/8", "192.168.1.20"]

    @field_validator("callback_path", "robot_path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must start with '/', e.g. /wecom/callback")
        return v

    @field_validator("metrics_allow")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        try:
            return tuple(str(ipaddress.ip_network(n.strip(), strict=False)) for n in v)
        except ValueError as exc:
            raise ValueError(f"must be IP networks or addresses such as 10.0.0.0/8 ({exc})") from None


class DatabaseConfig(_Strict):
    url: str = "sqlite+aiosqlite:///infodesk.db"

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not (v.startswith("sqlite+aiosqlite://") or v.startswith("postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// (e.g. sqlite+aiosqlite:///infodesk.db)"
            )
        return v


class SchedulerConfig(_Strict):
    timezone: str = "Asia/Shanghai"
    tick_seconds: float = Field(default=30.0, gt=0)  # how often timers and idle approvals are checked

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone name such as Asia/Shanghai") from None
        return v


class OutboxConfig(_Strict):
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    max_backoff_seconds: float = Field(default=300.0, gt=0)
    concurrency: int = Field(default=8, ge=1, le=64)
    request_timeout_seconds: float = Field(default=10.0, gt=0)
    keep_sent_days: int = Field(default=30, ge=1)  # sent rows are deleted after this (failed ones stay)


class ConversationConfig(_Strict):
    timeout_minutes: int = Field(default=30, ge=1)


class LoggingConfig(_Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Campus(_Strict):
    key: str
    name: str
    vp: str = Field(description="userid of the campus supervising vice principal (校区督导副校长)")


class Unit(_Strict):
    """A department (系部) or an office (科室)."""

    key: str
    name: str
    kind: Literal["系部", "科室"]
    campus: str
    head: str
    deputy: str | None = None
    vp_supervising: str


class SchoolClass(_Strict):
    key: str
    name: str
    department: str
    class_teacher: str


class Person(_Strict):
    userid: str
    name: str
    campus: str
    unit: str
    roles: tuple[Role, ...] = ()
    skills: tuple[Skill, ...] = ()

    @field_validator("userid")
    @classmethod
    def _userid(cls, v: str) -> str:
        if not USERID_RE.match(v):
            raise ValueError("must be the WeCom userid: 1-64 letters, digits or _ . @ -")
        return v


EXTERNAL_AUDIENCES = ("在校生", "毕业生", "家长", "社会人士")
APPCHAT_ID_RE = re.compile(r"^[0-9a-zA-Z]{1,32}$")  # doc 90245
CUSTOMER_GROUP_ID_RE = re.compile(r"^wr[0-9A-Za-z_-]{6,62}$")  # WeCom's customer-group chat ids
WEEKDAYS = (1, 2, 3, 4, 5, 6, 7)


class ManagedGroup(_Strict):
    """A managed group (微信族群) and the channel its pushes take.

    - appchat: a group the app created; members of the organisation only (doc 90244), so only an
      internal audience (教职工).
    - customer_group: a WeCom customer group (客户群) holding external contacts (students, parents,
      graduates, the public); pushes are enterprise mass sends its `owner` confirms in WeCom.
    - webhook: a group robot added to the group; its key is the credential.
    """

    chat_id: str
    name: str
    audience: Literal["教职工", "在校生", "毕业生", "家长", "社会人士"]
    admins: tuple[str, ...]
    channel: Literal["appchat", "webhook", "customer_group"] = "appchat"
    webhook_key: SecretStr | None = None
    owner: str | None = None  # customer_group: the group owner (群主), who confirms each mass send
    # The local times of the daily push; one time or a list ("07:30" or ["07:30", "19:00"]).
    push_time: tuple[str, ...] = ("19:05",)  # not :00 or :30, when most apps push (doc 90236)
    push_weekdays: tuple[int, ...] = WEEKDAYS  # 1 = Monday … 7 = Sunday
    prompt_minutes_before: int = Field(default=60, ge=0)  # admins are prompted this much earlier
    # customer_group: the receive limit the WeCom admin set for mass messages per customer group:
    # "month" (as many a month as it has days, WeCom's default), "week" (7 a week) or "day" (1).
    receive_limit: Literal["month", "week", "day"] = "month"

    @field_validator("push_time", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @field_validator("push_time")
    @classmethod
    def _hhmm(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError('give at least one push time, e.g. "19:00"')
        for t in v:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", t):
                raise ValueError(f"'{t}' must be HH:MM in 24-hour time, e.g. 19:00")
        if len(set(v)) != len(v):
            raise ValueError("a push time is listed twice")
        return tuple(sorted(v))

    @field_validator("push_weekdays")
    @classmethod
    def _weekdays(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(d not in WEEKDAYS for d in v):
            raise ValueError("weekdays are 1 (Monday) to 7 (Sunday), at least one")
        return tuple(sorted(set(v)))

    @model_validator(mode="after")
    def _channel(self) -> ManagedGroup:
        where = f"group '{self.name}'"
        if self.channel == "webhook" and not self.webhook_key:
            raise ValueError(f"{where}: channel = 'webhook' needs webhook_key (the key=... of the robot URL)")
        if self.channel == "appchat":
            if not APPCHAT_ID_RE.match(self.chat_id):
                raise ValueError(f"{where}: an app group's chat_id is 1-32 letters or digits (got '{self.chat_id}')")
            if self.audience in EXTERNAL_AUDIENCES:
                raise ValueError(
                    f"{where}: audience '{self.audience}' are external contacts, and an app group chat "
                    "(appchat) holds members of the organisation only; use channel = 'customer_group' "
                    "with the customer group's chat id and its owner, or a group robot (webhook)"
                )
        if self.channel == "customer_group":
            if not CUSTOMER_GROUP_ID_RE.match(self.chat_id):
                raise ValueError(
                    f"{where}: a customer group's chat_id is WeCom's id of it, starting with 'wr' "
                    f"(got '{self.chat_id}'; externalcontact/groupchat/list gives it)"
                )
            if not self.owner:
                raise ValueError(f"{where}: channel = 'customer_group' needs owner (the 群主 who confirms mass sends)")
            most, allowed = self.most_pushes()
            if most > allowed:
                raise ValueError(
                    f"{where}: its schedule pushes up to {most} times a {self.receive_limit}, but a customer "
                    f"group receives at most {allowed} mass messages a {self.receive_limit} "
                    f"(receive_limit = '{self.receive_limit}'); use fewer push times or weekdays"
                )
        return self

    def most_pushes(self) -> tuple[int, int]:
        """(the most pushes the schedule makes in one period of the receive limit, the limit)."""
        per_day = len(self.push_time)
        if self.receive_limit == "day":
            return per_day, 1
        if self.receive_limit == "week":
            return per_day * len(self.push_weekdays), 7
        # The worst month: every length (28-31 days) starting on every weekday.
        worst, limit = 0, 31
        for days in (28, 29, 30, 31):
            for first in range(7):
                n = per_day * sum(1 for d in range(days) if (first + d) % 7 + 1 in self.push_weekdays)
                if n - days > worst - limit:
                    worst, limit = n, days
        return worst, limit


class MassSendConfig(_Strict):
    """Following customer-group mass sends until their owners confirm (or the day is over)."""

    poll_minutes: int = Field(default=10, ge=1)  # how often WeCom is asked whether it went out
    first_reminder_minutes: int = Field(default=20, ge=0)  # WeCom's reminder to the owner, first
    remind_every_minutes: int = Field(default=40, ge=1)  # then again (at most 3 in 24 h), then 1:1
    confirm_hours: float = Field(default=4, gt=0)  # unconfirmed this long: reported and cancelled


class Config(_Strict):
    wecom: WecomConfig
    robot: RobotConfig | None = None
    server: ServerConfig = ServerConfig()
    database: DatabaseConfig = DatabaseConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    outbox: OutboxConfig = OutboxConfig()
    conversation: ConversationConfig = ConversationConfig()
    logging: LoggingConfig = LoggingConfig()
    campuses: tuple[Campus, ...] = ()
    units: tuple[Unit, ...] = ()
    classes: tuple[SchoolClass, ...] = ()
    people: tuple[Person, ...] = ()
    groups: tuple[ManagedGroup, ...] = ()
    mass_send: MassSendConfig = MassSendConfig()
    approval: ApprovalConfig = ApprovalConfig()
    chains: dict[str, Chain] = Field(default_factory=dict)
    footage: FootageConfig = FootageConfig()
    faults: FaultsConfig = FaultsConfig()
    stage: StageConfig = StageConfig()
    venues: tuple[Venue, ...] = ()
    duties: tuple[Duty, ...] = ()
    publishing: PublishingConfig = PublishingConfig()
    schedules: SchedulesConfig = SchedulesConfig()
    computers: ComputersConfig = ComputersConfig()

    @model_validator(mode="after")
    def _references(self) -> Config:
        errors: list[str] = []
        users = {p.userid for p in self.people}
        campuses = {c.key for c in self.campuses}
        units = {u.key: u for u in self.units}
        if len(users) != len(self.people):
            errors.append("people: every userid must be unique")

        def need_user(where: str, userid: str | None) -> None:
            if userid is not None and userid not in users:
                errors.append(f"{where}: '{userid}' is not a userid listed in [[people]]")

        for i, c in enumerate(self.campuses):
            need_user(f"campuses[{i}].vp", c.vp)
        for i, u in enumerate(self.units):
            if u.campus not in campuses:
                errors.append(f"units[{i}].campus: '{u.campus}' is not a [[campuses]] key")
            need_user(f"units[{i}].head", u.head)
            need_user(f"units[{i}].deputy", u.deputy)
            need_user(f"units[{i}].vp_supervising", u.vp_supervising)
        for i, k in enumerate(self.classes):
            if units.get(k.department) is None or units[k.department].kind != "系部":
                errors.append(f"classes[{i}].department: '{k.department}' is not a 系部 in [[units]]")
            need_user(f"classes[{i}].class_teacher", k.class_teacher)
        for i, p in enumerate(self.people):
            if p.campus not in campuses:
                errors.append(f"people[{i}].campus: '{p.campus}' is not a [[campuses]] key")
            if p.unit not in units:
                errors.append(f"people[{i}].unit: '{p.unit}' is not a [[units]] key")
            if "technician" in p.roles and not p.skills:
                errors.append(f"people[{i}].skills: technician '{p.userid}' needs at least one of {list(SKILLS)}")
        for i, v in enumerate(self.venues):
            if v.campus not in campuses:
                errors.append(f"venues[{i}].campus: '{v.campus}' is not a [[campuses]] key")
        if len({v.key for v in self.venues}) != len(self.venues):
            errors.append("venues: every key must be unique")
        for i, g in enumerate(self.groups):
            for a in g.admins:
                need_user(f"groups[{i}].admins", a)
            need_user(f"groups[{i}].owner", g.owner)
        if len({g.chat_id for g in self.groups}) != len(self.groups):
            errors.append("groups: every chat_id must be unique")
        for i, d in enumerate(self.duties):
            for userid in d.users:
                need_user(f"duties[{i}].users", userid)
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def person(self, userid: str) -> Person | None:
        """The configured person with this WeCom userid, if any."""
        return next((p for p in self.people if p.userid == userid), None)


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` name each bad key and the fix."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _apply_env(raw: dict[str, Any], environ: dict[str, str]) -> None:
    for var, (section, key) in ENV_OVERRIDES.items():
        value = environ.get(var)
        if value:
            raw.setdefault(section, {})[key] = value


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def parse_config(raw: dict[str, Any], environ: dict[str, str] | None = None) -> Config:
    """Validate a parsed TOML document; raise ConfigError naming every bad key."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    _apply_env(raw, dict(os.environ) if environ is None else environ)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            key = _loc(tuple(p for p in err["loc"] if not str(p).startswith("function-")))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "is required but missing"
            elif err["type"] == "extra_forbidden":
                msg = "is not a known key (check the spelling against infodesk/config.example.toml)"
            problems.append(f"{key or '(top level)'}: {msg}" if key else msg)
        raise ConfigError(problems) from None
    problems = chain_problems(config)
    if problems:
        raise ConfigError(problems)
    return config


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> Config:
    """Read and validate a TOML config file."""
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except IsADirectoryError:
        raise ConfigError(
            [f"{path}: is a directory, not a config file (a container bind mount of a missing file?)"]
        ) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read ({exc.strerror or exc}); check its permissions"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_config(raw, environ)


@dataclass(frozen=True)
class Secrets:
    """The raw secret values, unwrapped only where they are used."""

    token: str
    aes_key: str
    secret: str

    @classmethod
    def of(cls, cfg: WecomConfig | RobotConfig) -> Secrets:
        secret = cfg.secret.get_secret_value() if isinstance(cfg, WecomConfig) else ""
        return cls(cfg.token.get_secret_value(), cfg.encoding_aes_key.get_secret_value(), secret)
