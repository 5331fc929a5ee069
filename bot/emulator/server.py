"""A WeCom server-API emulator: a real aiohttp server for tests and the demo.

It implements gettoken and the endpoints the bot calls, records every call, enforces the
documented limits (doc 90312: 30 messages/min and 1000/h from one app to one member; doc 91770:
20/min per group robot; doc 90248: app group chats, below) by answering 45009 or dropping what
WeCom drops, and can inject errcodes, HTTP 5xx and delays.
Where WeCom's exact behaviour is undocumented the choice is noted beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import secrets
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.emulator.customer import CustomerGroups
from bot.emulator.directory import Directory

TASK_ID_RE = re.compile(r"^[A-Za-z0-9_@-]{1,128}$")
CARD_TYPES = {"text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction"}
INTERACTIVE = {"button_interaction", "vote_interaction", "multiple_interaction"}
RESPONSE_CODE_TTL = 72 * 3600
MEDIA_TTL = 3 * 24 * 3600  # temporary media, inbound and uploaded, live 3 days (doc 96484)
INVALID_MEDIA = 40007
# App group chats (appchat/send, doc 90248): per corp at most 20,000 person-messages a minute (a
# message into a group of 100 counts 100) and 150,000 an hour (the smallest tier); WeCom's answer
# past them is undocumented: 45009 (frequency limit), as for the other limits, is chosen. Each
# member receives at most 200 group messages a minute from one app: the excess is dropped silently.
APPCHAT_CORP_LIMITS = ((60, 20_000), (3600, 150_000))
APPCHAT_MEMBER_LIMITS = ((60, 200),)


@dataclass
class Call:
    """One request the emulator received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float
    errcode: int | None = None
    status: int = 200


@dataclass
class Delivered:
    """A message that reached a member, group or robot."""

    to: str
    msgtype: str
    body: dict[str, Any]
    at: float


@dataclass
class _Faults:
    errcodes: dict[str, deque[int]] = field(default_factory=lambda: defaultdict(deque))
    statuses: dict[str, deque[int]] = field(default_factory=lambda: defaultdict(deque))
    delays: dict[str, float] = field(default_factory=dict)
    lost: dict[str, deque[int]] = field(default_factory=lambda: defaultdict(deque))  # done, answer lost
    # Persistent refusals: path -> [(errcode, only for this touser or None)], until unblocked.
    blocks: dict[str, list[tuple[int, str | None]]] = field(default_factory=lambda: defaultdict(list))


# The faults `Emulator.chaos` draws from, by name: HTTP 5xx before the work ("5xx"), system busy
# ("-1"), frequency limit ("45009"), every token expiring so this call answers 42001 ("42001"),
# the work done but the answer lost to a 5xx ("lost"), and an answer 1-3 s late ("delay").
CHAOS_KINDS = ("5xx", "-1", "45009", "42001", "lost", "delay")


@dataclass
class _Chaos:
    """Random faults on some paths: each call draws a fault with probability `rate`."""

    rate: float
    rng: random.Random
    kinds: dict[str, float]  # kind -> weight
    paths: frozenset[str]
    injected: Counter[str] = field(default_factory=Counter)

    def draw(self, path: str) -> str | None:
        if path not in self.paths or self.rng.random() >= self.rate:
            return None
        kind = self.rng.choices(list(self.kinds), weights=list(self.kinds.values()))[0]
        self.injected[kind] += 1
        return kind


# The errmsg WeCom gives for the persistent refusals `block` can stage.
BLOCK_MESSAGES = {
    60020: "not allow to access from your ip, hint: [1700000000000000000], from ip: {ip}, "
    "more info at https://open.work.weixin.qq.com/devtool/query?e=60020",
    48002: "api forbidden, hint: [1700000000000000001], more info at https://open.work.weixin.qq.com/devtool/query?e=48002",
    81013: "user & party & tag all invalid",
    40001: "invalid credential",
    40013: "invalid corpid",
    40056: "invalid agentid",
}


async def _json(request: web.Request) -> Any:
    """The JSON body, or None (the body is cached by aiohttp after the first read)."""
    try:
        return await request.json()
    except ValueError:
        return None


def _err(errcode: int, errmsg: str, **extra: Any) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": errmsg, **extra}


class Emulator:
    """The emulated WeCom API for one corp and one app."""

    def __init__(
        self,
        corp_id: str = "ww_demo_corp",
        secret: str = "demo-secret",
        agent_id: int = 1000002,
        known_users: set[str] | None = None,
        token_ttl: int = 7200,
        clock: Any = time.time,
    ) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.known_users = known_users
        self.token_ttl = token_ttl
        self.clock = clock
        self.calls: list[Call] = []
        self.delivered: list[Delivered] = []
        self.cards: dict[str, dict[str, Any]] = {}  # response_code -> card info
        self.chats: dict[str, dict[str, Any]] = {}
        self.media: dict[str, bytes] = {}  # uploaded (media/upload)
        self.media_created: dict[str, float] = {}
        self.inbound_media: dict[str, tuple[bytes, float, str]] = {}  # members' MediaIds: bytes, when, name
        self.response_urls: dict[str, bool] = {}  # smart-robot response codes -> used
        self._response_url_issued: dict[str, float] = {}
        self._tokens: dict[str, float] = {}
        self._task_ids: set[str] = set()
        self._requests: list[tuple[str, float]] = []  # accepted message/send bodies (duplicate check)
        self.dropped: list[Delivered] = []  # messages WeCom accepted but silently did not deliver
        self._sent_to: dict[str, deque[float]] = defaultdict(deque)
        self._webhook_sent: dict[str, deque[float]] = defaultdict(deque)
        self._appchat_sent: deque[tuple[float, int]] = deque()  # (when, person-messages), corp-wide
        self._appchat_member: dict[str, deque[float]] = defaultdict(deque)
        self.webhook_keys: set[str] = set()
        self._faults = _Faults()
        self._chaos: _Chaos | None = None
        self._token_issued: dict[str, float] = {}
        self.customer = CustomerGroups(self, Delivered)
        self.directory = Directory()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.base_url = ""
        self.changed = asyncio.Event()

    # -- fault injection -----------------------------------------------------------------------
    def inject_errcodes(self, path: str, *codes: int) -> None:
        """The next calls to `path` (e.g. 'message/send') answer these errcodes, in order."""
        self._faults.errcodes[path].extend(codes)

    def inject_statuses(self, path: str, *statuses: int) -> None:
        """The next calls to `path` answer these HTTP statuses, in order."""
        self._faults.statuses[path].extend(statuses)

    def inject_lost_answers(self, path: str, *statuses: int) -> None:
        """The next calls to `path` are carried out, but the caller gets these HTTP statuses instead
        of the answer (a proxy or WeCom failing after the work was done)."""
        self._faults.lost[path].extend(statuses)

    def block(self, path: str, errcode: int, touser: str | None = None) -> None:
        """Every call to `path` (for `touser` only, if given) answers `errcode` until `unblock`:
        a configuration problem such as 60020 (IP not trusted), 48002 (API forbidden) or 81013
        (member not in the directory) that lasts until an admin fixes the console."""
        self._faults.blocks[path].append((errcode, touser))

    def unblock(self, path: str | None = None, touser: str | None = None) -> None:
        """Lift the blocks on `path` (for `touser` only, if given), or every block."""
        for p in [path] if path is not None else list(self._faults.blocks):
            self._faults.blocks[p] = [b for b in self._faults.blocks[p] if touser is not None and b[1] != touser]

    def _blocked(self, path: str, request: web.Request, body: Any) -> dict[str, Any] | None:
        touser = str(body.get("touser", "")).split("|") if isinstance(body, dict) else []
        for errcode, only in self._faults.blocks.get(path, ()):
            if only is None or only in touser:
                msg = BLOCK_MESSAGES.get(errcode, "blocked").format(ip=request.remote or "127.0.0.1")
                extra = {"invaliduser": only or "|".join(touser)} if errcode == 81013 else {}
                return _err(errcode, msg, **extra)
        return None

    def set_delay(self, path: str, seconds: float) -> None:
        """Every call to `path` waits this long before answering."""
        self._faults.delays[path] = seconds

    def chaos(
        self,
        rate: float,
        seed: int,
        kinds: Iterable[str] | Mapping[str, float] = CHAOS_KINDS,
        paths: Iterable[str] = ("message/send", "message/update_template_card"),
    ) -> None:
        """From now on each call to `paths` meets a random fault (CHAOS_KINDS) with probability
        `rate`, drawn from a generator seeded with `seed`; `kinds` gives the faults (weights, if a
        mapping). `chaos_injected` counts what was injected. The scripted faults (inject_*,
        set_delay, block) still apply, after the random one."""
        weights = dict(kinds) if isinstance(kinds, Mapping) else dict.fromkeys(kinds, 1.0)
        unknown = set(weights) - set(CHAOS_KINDS)
        if unknown:
            raise ValueError(f"unknown chaos kinds {sorted(unknown)}")
        self._chaos = _Chaos(rate, random.Random(seed), weights, frozenset(paths))

    @property
    def chaos_injected(self) -> Counter[str]:
        return Counter(self._chaos.injected) if self._chaos is not None else Counter()

    def _chaos_fault(self, path: str, request: web.Request) -> tuple[str | None, random.Random]:
        """The random fault this call meets (None: none), and the generator for its details."""
        chaos = self._chaos
        if chaos is None:
            return None, random.Random(0)
        fault = chaos.draw(path)
        if fault == "42001" and not self._expire_older_tokens(request.query.get("access_token", "")):
            chaos.injected["42001"] -= 1
            return None, chaos.rng
        return fault, chaos.rng

    def _expire_older_tokens(self, token: str, age: float = 10.0) -> bool:
        """Expire every token older than `age` seconds if `token` is one: a token expires after
        hours, so the fresh one a caller fetched after a 42001 never expires again at once."""
        cutoff = self.clock() - age
        if self._token_issued.get(token, cutoff + 1) > cutoff:
            return False
        for t, issued in self._token_issued.items():
            if issued <= cutoff:
                self._tokens[t] = 0
        return True

    def expire_tokens(self) -> None:
        """Every issued access_token expires now (the next call answers 42001)."""
        for t in self._tokens:
            self._tokens[t] = 0

    # -- views for tests -----------------------------------------------------------------------
    def messages_to(self, userid: str) -> list[Delivered]:
        return [d for d in self.delivered if d.to == f"user:{userid}"]

    def texts_to(self, userid: str) -> list[str]:
        return [d.body["text"]["content"] for d in self.messages_to(userid) if d.msgtype == "text"]

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Wait until `predicate()` is true (checked whenever a call arrives)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError("emulator condition not met in time")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.2))

    # -- server --------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=25 * 1024 * 1024)
        routes = [
            ("GET", "/cgi-bin/gettoken", self._gettoken),
            ("POST", "/cgi-bin/message/send", self._message_send),
            ("POST", "/cgi-bin/message/update_template_card", self._update_card),
            ("POST", "/cgi-bin/appchat/create", self._appchat_create),
            ("GET", "/cgi-bin/appchat/get", self._appchat_get),
            ("POST", "/cgi-bin/appchat/update", self._appchat_update),
            ("POST", "/cgi-bin/appchat/send", self._appchat_send),
            ("POST", "/cgi-bin/media/upload", self._media_upload),
            ("GET", "/cgi-bin/media/get", self._media_get),
            ("POST", "/cgi-bin/webhook/send", self._webhook_send),
            ("POST", "/cgi-bin/aibot/response", self._aibot_response),
            *self.customer.routes(),
            *self.directory.routes(),
        ]
        for method, path, handler in routes:
            # The handlers return the JSON body as a dict; the middleware records and sends it.
            app.router.add_route(method, path, cast(Handler, handler))
        return app

    async def start(self, host: str = "127.0.0.1", port: int | None = None) -> str:
        """Listen on loopback (port 0 = any free port; restart reuses the previous port)."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, self.port if port is None else port, reuse_address=True)
        await site.start()
        sockets = self._runner.addresses
        self.port = sockets[0][1]
        self.base_url = f"http://{host}:{self.port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop listening (clients then see connection errors, as when WeCom is unreachable)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path.removeprefix("/cgi-bin/")
        try:
            body: Any = await request.json() if request.content_type == "application/json" else None
        except ValueError:
            body = None
        call = Call(request.method, path, dict(request.query), body, self.clock())
        self.calls.append(call)
        try:
            fault, rng = self._chaos_fault(path, request)
            if fault == "delay":
                await asyncio.sleep(rng.uniform(1.0, 3.0))
            elif fault == "5xx":
                call.status = rng.choice((500, 502, 503, 504))
                return web.Response(status=call.status, text="injected")
            elif fault in ("-1", "45009"):
                call.errcode = int(fault)
                return web.json_response(
                    _err(call.errcode, "system busy" if fault == "-1" else "api freq out of limit")
                )
            delay = self._faults.delays.get(path)
            if delay:
                await asyncio.sleep(delay)
            statuses = self._faults.statuses.get(path)
            if statuses:
                call.status = statuses.popleft()
                return web.Response(status=call.status, text="injected")
            codes = self._faults.errcodes.get(path)
            if codes:
                call.errcode = codes.popleft()
                return web.json_response(_err(call.errcode, "injected"))
            blocked = self._blocked(path, request, body)
            if blocked:
                call.errcode = blocked["errcode"]
                return web.json_response(blocked)
            if path not in ("gettoken", "webhook/send", "aibot/response") and not path.startswith("/emulator/"):
                bad = self._check_token(request.query.get("access_token", ""))
                if bad:
                    call.errcode = bad["errcode"]
                    return web.json_response(bad)
            result = await handler(request)
            lost = self._faults.lost.get(path)
            if lost or fault == "lost":
                call.status = lost.popleft() if lost else 502
                return web.Response(status=call.status, text="injected after the work was done")
            if isinstance(result, dict):
                call.errcode = int(result.get("errcode", 0))
                return web.json_response(result)
            return cast(web.StreamResponse, result)
        finally:
            self.changed.set()

    def _check_token(self, token: str) -> dict[str, Any] | None:
        if not token:
            return _err(41001, "access_token missing")
        expires = self._tokens.get(token)
        if expires is None:
            return _err(40014, "invalid access_token")
        if expires <= self.clock():
            return _err(42001, "access_token expired")
        return None

    # -- endpoints -----------------------------------------------------------------------------
    async def _gettoken(self, request: web.Request) -> dict[str, Any]:
        if request.query.get("corpid") != self.corp_id:
            return _err(40013, "invalid corpid")
        if request.query.get("corpsecret") != self.secret:
            return _err(40001, "invalid credential")
        token = "emu_" + secrets.token_hex(16)
        self._tokens[token] = self.clock() + self.token_ttl
        self._token_issued[token] = self.clock()
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.token_ttl}

    def _limited(self, window: deque[float], limits: tuple[tuple[int, int], ...]) -> bool:
        now = self.clock()
        longest = max(w for w, _ in limits)
        while window and window[0] <= now - longest:
            window.popleft()
        return any(sum(1 for t in window if t > now - w) >= n for w, n in limits)

    def _validate_card(self, card: Any) -> str | None:
        if not isinstance(card, dict) or card.get("card_type") not in CARD_TYPES:
            return "invalid card_type"
        task_id = card.get("task_id")
        if card["card_type"] in INTERACTIVE or card.get("action_menu"):
            # WeCom answers both with 42014 "taskid has existed or empty or exceed max len".
            if not isinstance(task_id, str) or not TASK_ID_RE.match(task_id) or len(task_id.encode()) > 128:
                return "taskid has existed or empty or exceed max len"
            if task_id in self._task_ids:
                return "taskid has existed or empty or exceed max len"  # unique per app (doc 90236)
        if len(card.get("horizontal_content_list") or []) > 6:
            return "horizontal_content_list has more than 6 items"
        buttons = card.get("button_list") or []
        if len(buttons) > 6:
            return "button_list has more than 6 buttons"
        for b in buttons:
            if len(str(b.get("key", "")).encode()) > 1024:
                return "button key longer than 1024 bytes"
        return None

    async def _message_send(self, request: web.Request) -> dict[str, Any]:
        body = await _json(request)
        if not isinstance(body, dict):
            return _err(40058, "body is not json")
        if body.get("agentid") != self.agent_id:
            return _err(40056, "invalid agentid")
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "markdown", "template_card", "file", "image", "textcard", "news"):
            return _err(40008, "invalid message type")
        content = body.get(msgtype)
        if not isinstance(content, dict):
            return _err(40058, f"{msgtype} missing")
        if msgtype == "text" and len(str(content.get("content", "")).encode()) > 2048:
            return _err(45002, "content size out of limit")
        if msgtype == "template_card":
            problem = self._validate_card(content)
            if problem:
                return _err(42014 if problem.startswith("taskid") else 40058, problem)
        if msgtype in ("image", "file") and not self._media_valid(str(content.get("media_id", ""))):
            return _err(INVALID_MEDIA, "invalid media_id")  # never uploaded, or older than 3 days
        users = [u for u in str(body.get("touser", "")).split("|") if u]
        if not users:
            return _err(40058, "touser empty")
        invalid = [u for u in users if self.known_users is not None and u not in self.known_users]
        valid = [u for u in users if u not in invalid]
        if not valid:
            return _err(81013, "user & party & tag all invalid", invaliduser="|".join(invalid))
        result: dict[str, Any] = {
            "errcode": 0,
            "errmsg": "ok",
            "invaliduser": "|".join(invalid),
            "msgid": secrets.token_hex(12),
        }
        now = self.clock()
        whole = json.dumps(body, sort_keys=True, ensure_ascii=False)
        if body.get("enable_duplicate_check"):
            # The whole request JSON, within the interval (corrections in WECOM.md; doc 90236).
            interval = int(body.get("duplicate_check_interval", 1800))
            if any(b == whole and t > now - interval for b, t in self._requests):
                return result
        self._requests.append((whole, now))
        if msgtype == "template_card" and content.get("task_id"):
            self._task_ids.add(content["task_id"])
        for u in valid:
            if self._limited(self._sent_to[u], ((60, 30), (3600, 1000))):
                # Past 30/min or 1000/h per member, WeCom drops the excess without saying so.
                self.dropped.append(Delivered(f"user:{u}", msgtype, dict(body), now))
                continue
            self._sent_to[u].append(now)
            self.delivered.append(Delivered(f"user:{u}", msgtype, dict(body), now))
        if msgtype == "template_card" and content.get("card_type") in INTERACTIVE:
            # Only the interactive card types come back with a response_code (doc 94945).
            code = "rc_" + secrets.token_hex(12)
            self.cards[code] = {"card": content, "users": valid, "issued": now, "used": False}
            result["response_code"] = code
        return result

    def issue_click_code(self, task_id: str, userid: str) -> str:
        """A fresh ResponseCode for a click on the card `task_id` (what WeCom puts in the event)."""
        card = next(c for c in self.cards.values() if c["card"].get("task_id") == task_id)
        code = "rc_" + secrets.token_hex(12)
        self.cards[code] = {"card": card["card"], "users": [userid], "issued": self.clock(), "used": False}
        return code

    async def _update_card(self, request: web.Request) -> dict[str, Any]:
        body = await _json(request) or {}
        if body.get("agentid") != self.agent_id:
            return _err(40056, "invalid agentid")
        code = body.get("response_code")
        info = self.cards.get(code) if isinstance(code, str) else None
        if info is None or info["used"] or info["issued"] < self.clock() - RESPONSE_CODE_TTL:
            return _err(40058, "invalid response_code")  # single use, 72 h (doc 94945)
        info["used"] = True
        if "template_card" in body:
            problem = self._validate_card(
                {**body["template_card"], "task_id": info["card"].get("task_id")}
                if body["template_card"].get("card_type") in INTERACTIVE
                else body["template_card"]
            )
            if problem and problem != "task_id already used":
                return _err(40058, problem)
        for u in body.get("userids") or info["users"]:
            self.delivered.append(Delivered(f"user:{u}", "update_template_card", dict(body), self.clock()))
        return _err(0, "ok")

    async def _appchat_create(self, request: web.Request) -> dict[str, Any]:
        body = await _json(request) or {}
        users = body.get("userlist") or []
        if not 2 <= len(users) <= 2000:
            return _err(40050, "userlist must have 2..2000 members")
        chatid = body.get("chatid") or secrets.token_hex(8)
        if not re.fullmatch(r"[0-9a-zA-Z]{1,32}", chatid) or chatid in self.chats:
            return _err(86215, "invalid chatid")
        self.chats[chatid] = {
            "chatid": chatid,
            "name": body.get("name", ""),
            "owner": body.get("owner"),
            "userlist": users,
            # A new group shows in no client until its first message (doc 90245).
            "visible": False,
        }
        return {"errcode": 0, "errmsg": "ok", "chatid": chatid}

    async def _appchat_update(self, request: web.Request) -> dict[str, Any]:
        body = await _json(request) or {}
        chat = self.chats.get(body.get("chatid", ""))
        if chat is None:
            return _err(86003, "chat not found")
        add = [u for u in body.get("add_user_list") or [] if u not in chat["userlist"]]
        unknown = [u for u in add if self.known_users is not None and u not in self.known_users]
        if unknown:
            return _err(40031, "invalid userid in add_user_list")
        drop = set(body.get("del_user_list") or [])
        users = [u for u in chat["userlist"] if u not in drop] + add
        if len(users) > 2000:
            return _err(40050, "a group holds at most 2000 members")
        chat["userlist"] = users
        for key in ("name", "owner"):
            if body.get(key):
                chat[key] = body[key]
        return _err(0, "ok")

    async def _appchat_get(self, request: web.Request) -> dict[str, Any]:
        chat = self.chats.get(request.query.get("chatid", ""))
        if chat is None:
            return _err(86003, "chat not found")
        return {"errcode": 0, "errmsg": "ok", "chat_info": {k: v for k, v in chat.items() if k != "visible"}}

    async def _appchat_send(self, request: web.Request) -> dict[str, Any]:
        body = await _json(request) or {}
        chatid = body.get("chatid", "")
        if chatid not in self.chats:
            return _err(86003, "chat not found")
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "image", "voice", "video", "file", "textcard", "news", "mpnews", "markdown"):
            return _err(40008, "invalid message type")  # no template_card in appchat (doc 90248)
        members = list(self.chats[chatid]["userlist"])
        if self._appchat_over(len(members)):
            return _err(45009, "api freq out of limit")
        now = self.clock()
        self._appchat_sent.append((now, len(members)))
        for u in members:
            if self._limited(self._appchat_member[u], APPCHAT_MEMBER_LIMITS):
                self.dropped.append(Delivered(f"user:{u}", msgtype, dict(body), now))  # not shown to u
            else:
                self._appchat_member[u].append(now)
        self.chats[chatid]["visible"] = True
        self.delivered.append(Delivered(f"chat:{chatid}", msgtype, dict(body), now))
        return _err(0, "ok")

    def _appchat_over(self, persons: int) -> bool:
        """Whether `persons` more person-messages would pass the corp's appchat limits."""
        now = self.clock()
        window = self._appchat_sent
        while window and window[0][0] <= now - max(w for w, _ in APPCHAT_CORP_LIMITS):
            window.popleft()
        return any(sum(n for t, n in window if t > now - w) + persons > cap for w, cap in APPCHAT_CORP_LIMITS)

    async def _media_upload(self, request: web.Request) -> dict[str, Any]:
        if request.query.get("type") not in ("image", "voice", "video", "file"):
            return _err(40004, "invalid media type")
        reader = await request.multipart()
        part = await reader.next()
        if part is None:
            return _err(41005, "media data missing")
        data = await part.read()  # type: ignore[union-attr]
        media_id = "media_" + secrets.token_hex(10)
        self.media[media_id] = bytes(data)
        self.media_created[media_id] = self.clock()
        return {
            "errcode": 0,
            "errmsg": "ok",
            "type": request.query["type"],
            "media_id": media_id,
            "created_at": str(int(self.clock())),
        }

    def _media_valid(self, media_id: str) -> bool:
        created = self.media_created.get(media_id)
        return created is not None and created > self.clock() - MEDIA_TTL

    def add_inbound_media(self, media_id: str, data: bytes, filename: str = "") -> None:
        """A member sent this photo or file: WeCom holds it as `media_id` for 3 days from now."""
        self.inbound_media[media_id] = (data, self.clock(), filename or f"{media_id}.jpg")

    async def _media_get(self, request: web.Request) -> web.StreamResponse | dict[str, Any]:
        """The raw file (doc 90254), or JSON 40007 for an unknown or expired media_id."""
        media_id = request.query.get("media_id", "")
        held = self.inbound_media.get(media_id)
        if held is None and self._media_valid(media_id):
            held = (self.media[media_id], self.media_created[media_id], f"{media_id}.bin")
        if held is None or held[1] <= self.clock() - MEDIA_TTL:
            return _err(INVALID_MEDIA, "invalid media_id")
        data, _, filename = held
        return web.Response(
            body=data,
            content_type="image/jpeg" if filename.endswith((".jpg", ".jpeg")) else "application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    async def _webhook_send(self, request: web.Request) -> dict[str, Any]:
        key = request.query.get("key", "")
        if key not in self.webhook_keys:
            return _err(93000, "invalid webhook url")
        if self._limited(self._webhook_sent[key], ((60, 20),)):
            return _err(45009, "api freq out of limit")
        body = await _json(request) or {}
        msgtype = body.get("msgtype")
        if msgtype == "template_card" and (body.get("template_card") or {}).get("card_type") in INTERACTIVE:
            return _err(40008, "interactive cards are not allowed for group robots")
        self._webhook_sent[key].append(self.clock())
        self.delivered.append(Delivered(f"webhook:{key}", str(msgtype), dict(body), self.clock()))
        return _err(0, "ok")

    def new_response_url(self) -> str:
        """A one-shot smart-robot response_url pointing at this emulator (usable once, for 1 h)."""
        code = secrets.token_hex(12)
        self.response_urls[code] = False
        self._response_url_issued[code] = self.clock()
        return f"{self.base_url}/cgi-bin/aibot/response?response_code={code}"

    async def _aibot_response(self, request: web.Request) -> dict[str, Any]:
        code = request.query.get("response_code", "")
        if self.response_urls.get(code) is not False or self._response_url_issued.get(code, 0) < self.clock() - 3600:
            return _err(40058, "invalid response_code")  # usable once, 1 h (doc 101138)
        self.response_urls[code] = True
        body = await _json(request) or {}
        self.delivered.append(Delivered(f"robot:{code}", str(body.get("msgtype")), dict(body), self.clock()))
        return _err(0, "ok")


def dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1)
