"""Configuration: TOML validated by a pydantic schema; secrets may come from the environment."""

from __future__ import annotations

import os
import re
import tomllib
from collections import Counter
from collections.abc import Sequence
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
from bot.config_coverage import coverage
from bot.config_errors import problems_of
from bot.config_labs import ComputerRoom, LessonsConfig, check_rooms
from bot.config_messages import PERIODS, ConfigProblem, Lang, Text, entity_label, lang_from, msg, of, problem
from bot.config_workflows import (  # noqa: F401  (re-exported)
    LEGACY_DUTY_KEYS,
    ActivityConfig,
    ApprovalConfig,
    CalendarConfig,
    Chain,
    ChainStep,
    ComputersConfig,
    Duty,
    FaultsConfig,
    FootageConfig,
    MicroLessonsConfig,
    PublishingConfig,
    ReportsConfig,
    SchedulesConfig,
    StageConfig,
    TrainingConfig,
    Venue,
    check_cron,
)

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
        raise problem("aes_key")
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
            raise problem("token")
        return v

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value():
            raise problem("secret_empty", env="INFODESK_WECOM_SECRET")
        return v

    _aes = field_validator("encoding_aes_key")(_check_aes_key)

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/.*)?$", v):
            raise problem("api_base")
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
    # A callback is answered once its message is durably recorded; it is applied right after
    # (bot/journal.py). Above 0, the answer also waits up to this long for the apply (then answers
    # anyway: the message is kept). WeCom gives up on an answer after 5 s.
    answer_wait_seconds: float = Field(default=0.0, ge=0, le=60)
    # `serve` applies, delivers and runs the schedules in a worker process of its own, so that
    # answering WeCom never waits for that work (bot/worker.py). false: one process does all.
    # (A SQLite database in memory or with URI options is always one process.)
    worker_process: bool = True
    # GET /metrics (Prometheus): off unless set; then served to loopback clients and these networks.
    metrics: bool = False
    metrics_allow: tuple[str, ...] = ()  # e.g. ["10.0.0.0/8", "192.168.1.20"]

    @field_validator("callback_path", "robot_path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise problem("url_path")
        return v

    @field_validator("metrics_allow")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        try:
            return tuple(str(ipaddress.ip_network(n.strip(), strict=False)) for n in v)
        except ValueError as exc:
            raise problem("networks", detail=str(exc)) from None


class DatabaseConfig(_Strict):
    url: str = "sqlite+aiosqlite:///infodesk.db"

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not (v.startswith("sqlite+aiosqlite://") or v.startswith("postgresql+asyncpg://")):
            raise problem("database_url")
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
            raise problem("timezone") from None
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
    """A person the bot works with.

    With `[directory] enabled`, an entry may give only what WeCom does not know (`userid` plus
    roles or skills): `name`, `campus` and `unit` are then left empty here and filled from WeCom's
    listing by bot/directory.py's `with_directory`, which leaves out such an entry until WeCom
    lists the member in a department mapped to a unit.
    """

    userid: str
    name: str = ""
    campus: str = ""
    unit: str = ""
    roles: tuple[Role, ...] = ()
    skills: tuple[Skill, ...] = ()

    @property
    def partial(self) -> bool:
        """Whether WeCom's directory must still supply the name, campus or unit."""
        return not (self.name and self.campus and self.unit)

    @field_validator("userid")
    @classmethod
    def _userid(cls, v: str) -> str:
        if not USERID_RE.match(v):
            raise problem("userid")
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
            raise problem("push_time_none")
        for t in v:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", t):
                raise problem("push_time_format", time=t)
        if len(set(v)) != len(v):
            raise problem("push_time_twice")
        return tuple(sorted(v))

    @field_validator("push_weekdays")
    @classmethod
    def _weekdays(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(d not in WEEKDAYS for d in v):
            raise problem("weekdays")
        return tuple(sorted(set(v)))

    @model_validator(mode="after")
    def _channel(self) -> ManagedGroup:
        # The error's location names the group (群 "…"), so the messages do not repeat it.
        if self.channel == "webhook" and not self.webhook_key:
            raise problem("webhook_key")
        if self.channel == "appchat":
            if not APPCHAT_ID_RE.match(self.chat_id):
                raise problem("appchat_id", chat_id=self.chat_id)
            if self.audience in EXTERNAL_AUDIENCES:
                raise problem("appchat_external", audience=self.audience)
        if self.channel == "customer_group":
            if not CUSTOMER_GROUP_ID_RE.match(self.chat_id):
                raise problem("customer_group_id", chat_id=self.chat_id)
            if not self.owner:
                raise problem("customer_group_owner")
            most, allowed = self.most_pushes()
            if most > allowed:
                limit = self.receive_limit
                period = Text(PERIODS[limit], limit)
                raise problem("customer_group_limit", most=most, allowed=allowed, limit=limit, period=period)
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


class DirectoryConfig(_Strict):
    """The organisation read from WeCom's directory (通讯录) besides `[[people]]`.

    Members WeCom lists in a department mapped here join as people of that unit (name from WeCom,
    roles and skills from their tags); `[[people]]` keeps what WeCom does not know (roles, skills,
    the people of unmapped departments) and wins where both speak; an entry may then give only the
    userid (plus roles and skills). A unit's head comes from its department's leader in WeCom once
    the configured head has left, or always with `heads_from_wecom`. A member who leaves WeCom (or
    is disabled) stops being a person: their pending approvals go to the next level up and the
    director is told. Needs the app to read the directory (its visible range, or the 通讯录 secret).
    """

    enabled: bool = False
    sync_time: str = "06:40"  # daily, local time
    departments: dict[str, str] = Field(default_factory=dict)  # WeCom department name -> unit key
    role_tags: dict[str, Role] = Field(default_factory=dict)  # WeCom tag name -> role
    skill_tags: dict[str, Skill] = Field(default_factory=dict)  # WeCom tag name -> technician skill
    # A unit's head from its department's leaders (部门负责人) in WeCom, even while the configured
    # head is still there; when false, only once the configured head has left.
    heads_from_wecom: bool = False

    @field_validator("sync_time")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", v):
            raise ValueError("must be HH:MM in 24-hour time, e.g. 06:40")
        return v


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
    directory: DirectoryConfig = DirectoryConfig()
    approval: ApprovalConfig = ApprovalConfig()
    chains: dict[str, Chain] = Field(default_factory=dict)
    footage: FootageConfig = FootageConfig()
    faults: FaultsConfig = FaultsConfig()
    stage: StageConfig = StageConfig()
    activity: ActivityConfig = ActivityConfig()
    venues: tuple[Venue, ...] = ()
    duties: tuple[Duty, ...] = ()
    calendar: CalendarConfig = CalendarConfig()
    publishing: PublishingConfig = PublishingConfig()
    schedules: SchedulesConfig = SchedulesConfig()
    computers: ComputersConfig = ComputersConfig()
    training: TrainingConfig = TrainingConfig()
    microlessons: MicroLessonsConfig = MicroLessonsConfig()
    reports: ReportsConfig = ReportsConfig()
    lessons: LessonsConfig = LessonsConfig()  # the bell schedule (作息时间)
    computer_rooms: tuple[ComputerRoom, ...] = ()  # 微机室 (handlers/computer_room.py)

    @model_validator(mode="after")
    def _references(self) -> Config:
        """Every key naming another entry names one that exists; each problem names the entry.

        A key naming a person may give their userid or their name in `[[people]]` (`head =
        "马军"`); a name is replaced by the userid here, so the rest of the bot sees userids only.
        """
        errors: list[Text] = []
        users = {p.userid for p in self.people}
        named: dict[str, list[str]] = {}
        for p in self.people:
            if p.name:
                named.setdefault(p.name, []).append(p.userid)
        campuses = {c.key for c in self.campuses}
        units = {u.key: u for u in self.units}

        def label(section: str, entry: _Strict) -> Text:
            return entity_label(section, entry.model_dump()) or Text(section, section)

        def twice(kind: str, field: str, values: list[str]) -> None:
            for value, times in Counter(values).items():
                if times > 1:
                    errors.append(msg(kind, times=times, **{field: value}))

        def need(kind: str, where: Text, **value: str | None) -> None:
            [(field, key)] = value.items()
            known = {"unknown_user": users, "unknown_campus": campuses, "unknown_unit": units}[kind]
            if key is not None and key not in known:
                errors.append(msg(kind, where=where, **{field: key}))

        def user(where: Text, value: str | None) -> str | None:
            """The userid a reference names (a userid, else a name [[people]] gives once)."""
            if value is None or value in users or value not in named:
                return value
            found = named[value]
            if len(found) == 1:
                return found[0]
            errors.append(msg("ambiguous_person", where=where, name=value, count=len(found), userids=tuple(found)))
            return None

        def resolve(entry: Any, section: str, fields: Sequence[str]) -> Any:
            """`entry` with each of `fields` (a reference or a list of them) naming a userid."""
            update: dict[str, Any] = {}
            for f in fields:
                value, where = getattr(entry, f), of(label(section, entry), f)
                if isinstance(value, tuple):
                    update[f] = tuple(u for u in (user(where, v) for v in value) if u is not None)
                else:
                    update[f] = user(where, value)
            return entry.model_copy(update=update) if update != {f: getattr(entry, f) for f in fields} else entry

        # Frozen models: the resolved entries replace the tuples once, before anything reads them.
        for section, fields in (
            ("campuses", ("vp",)),
            ("units", ("head", "deputy", "vp_supervising")),
            ("classes", ("class_teacher",)),
            ("groups", ("admins", "owner")),
            ("duties", ("users",)),
        ):
            object.__setattr__(self, section, tuple(resolve(e, section, fields) for e in getattr(self, section)))

        twice("duplicate_userid", "userid", [p.userid for p in self.people])
        for department, unit_key in self.directory.departments.items():
            where = Text(f'[directory] 部门 "{department}" 对应的单位', f'[directory] department "{department}" unit')
            need("unknown_unit", where, unit=unit_key)
        for c in self.campuses:
            need("unknown_user", of(label("campuses", c), "vp"), userid=c.vp)
        for u in self.units:
            unit = label("units", u)
            need("unknown_campus", of(unit, "campus"), campus=u.campus)
            for field in ("head", "deputy", "vp_supervising"):
                need("unknown_user", of(unit, field), userid=getattr(u, field))
        for k in self.classes:
            klass = label("classes", k)
            if units.get(k.department) is None or units[k.department].kind != "系部":
                errors.append(msg("not_a_department", where=of(klass, "department"), unit=k.department))
            need("unknown_user", of(klass, "class_teacher"), userid=k.class_teacher)
        for p in self.people:
            who = label("people", p)
            if p.partial and not self.directory.enabled:
                missing = tuple(f for f in ("name", "campus", "unit") if not getattr(p, f))
                errors.append(msg("person_partial", who=who, fields=missing))
            need("unknown_campus", of(who, "campus"), campus=p.campus or None)
            need("unknown_unit", of(who, "unit"), unit=p.unit or None)
            if "technician" in p.roles and not p.skills:
                errors.append(msg("technician_skills", who=who, choices=SKILLS))
        for v in self.venues:
            need("unknown_campus", of(label("venues", v), "campus"), campus=v.campus)
        twice("duplicate_venue", "key", [v.key for v in self.venues])
        for g in self.groups:
            group = label("groups", g)
            for a in dict.fromkeys(g.admins):
                need("unknown_user", of(group, "admins"), userid=a)
            need("unknown_user", of(group, "owner"), userid=g.owner)
        twice("duplicate_chat_id", "chat_id", [g.chat_id for g in self.groups])
        for d in self.duties:
            for userid in dict.fromkeys(d.users):
                need("unknown_user", of(label("duties", d), "users"), userid=userid)
        where = Text("[microlessons] 的 research_unit", "[microlessons] research_unit")
        need("unknown_unit", where, unit=self.microlessons.research_unit or None)
        errors += check_rooms(self.computer_rooms, self.lessons, users, campuses)
        if errors:
            raise ConfigProblem(*errors)
        return self

    def person(self, userid: str) -> Person | None:
        """The configured person with this WeCom userid, if any (the first, as listed)."""
        return _people_index(self.people).get(userid)


# userid → person, by the identity of a config's (immutable) people tuple: a lookup on every message
# was a scan of every person. Not a cached_property: model_copy(update={"people": …}) would copy it.
_PEOPLE_INDEXES: dict[int, tuple[tuple[Person, ...], dict[str, Person]]] = {}


def _people_index(people: tuple[Person, ...]) -> dict[str, Person]:
    entry = _PEOPLE_INDEXES.get(id(people))
    if entry is None or entry[0] is not people:
        if len(_PEOPLE_INDEXES) >= 64:  # configs replaced (directory sync, tests): forget the old
            _PEOPLE_INDEXES.clear()
        entry = (people, {p.userid: p for p in reversed(people)})  # the first of a userid wins
        _PEOPLE_INDEXES[id(people)] = entry
    return entry[1]


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` name each bad key and the fix, once each.

    The problems are kept in every language: `problems` are in `lang` (INFODESK_LANG, else
    Chinese), `lines(lang)` in another.
    """

    def __init__(self, problems: Sequence[Text | str], lang: Lang | None = None) -> None:
        self.texts = tuple(dict.fromkeys(p if isinstance(p, Text) else Text(p, p) for p in problems))
        self.lang: Lang = lang or lang_from()
        self.problems = self.lines(self.lang)
        super().__init__("\n".join(self.problems))

    def lines(self, lang: Lang) -> list[str]:
        """The problems in `lang`."""
        return [t.in_(lang) for t in self.texts]


# (section, key) → the environment variable that may supply it.
SECRET_ENV: dict[tuple[str, ...], str] = {keys: var for var, keys in ENV_OVERRIDES.items()}


def _apply_env(raw: dict[str, Any], environ: dict[str, str]) -> None:
    for var, (section, key) in ENV_OVERRIDES.items():
        value = environ.get(var)
        if value:
            raw.setdefault(section, {})[key] = value


def parse_config(raw: dict[str, Any], environ: dict[str, str] | None = None, lang: Lang | None = None) -> Config:
    """Validate a parsed TOML document; raise ConfigError naming every bad key."""
    env = dict(os.environ) if environ is None else environ
    lang = lang or lang_from(env)
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    _apply_env(raw, env)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(problems_of(exc, raw, SECRET_ENV), lang) from None
    problems = coverage(config).problems
    if problems:
        raise ConfigError(problems, lang)
    return config


def load_config(path: str | Path, environ: dict[str, str] | None = None, lang: Lang | None = None) -> Config:
    """Read and validate a TOML config file."""
    lang = lang or lang_from(environ)
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([msg("file_not_found", file=str(path))], lang) from None
    except IsADirectoryError:
        raise ConfigError([msg("file_is_directory", file=str(path))], lang) from None
    except OSError as exc:
        reason = str(exc.strerror or exc)
        raise ConfigError([msg("file_unreadable", file=str(path), reason=reason)], lang) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([msg("file_not_toml", file=str(path), reason=str(exc))], lang) from None
    return parse_config(raw, environ, lang)


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
