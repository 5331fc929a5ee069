"""Async WeCom server API client (aiohttp).

wechatpy's client is synchronous, hard-codes the gettoken host and retries without limit, so
calls go through here. Every URL, gettoken included, is built on `api_base` so tests and the
demo can point the client at the bundled emulator. The client makes one attempt (plus one
token refresh); backing off and retrying is the outbox dispatcher's job, which keeps per-recipient
order and never blocks other recipients behind a slow one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from bot.clock import Clock
from bot.config import Config, Secrets
from bot.logs import log

logger = logging.getLogger("infodesk.wecom")

# Global error codes (doc 90313): token problems are refreshed once; system busy and frequency
# limits are retried later; everything else is the message's own fault and is not retried.
TOKEN_ERRORS = frozenset({40001, 40014, 41001, 42001})
TRANSIENT_ERRORS = frozenset({-1, 45009, 45033})
TOKEN_MARGIN = timedelta(minutes=5)

# Configuration errors (WECOM.md, "Corrections"): WeCom refuses every call of the app, one API, or
# one member until an admin changes the console or the config. Trying again soon cannot help and
# the message is not at fault: the outbox pauses delivery for the cause (bot/pauses.py).
IP_NOT_TRUSTED = 60020  # the caller's IP is not in the app's 企业可信IP list
API_FORBIDDEN = 48002  # the app may not call this API
INVALID_USER = 81013  # user & party & tag all invalid: not in the directory or the app's visible range
# Credentials: invalid secret / corpid / token / agentid, missing token / corpid / secret, token
# expired (after the one refresh `call` makes, a token error is no longer the token's fault).
CREDENTIAL_ERRORS = frozenset({40001, 40013, 40014, 40056, 40091, 41001, 41002, 41004, 42001})
APP_CONFIG_ERRORS = CREDENTIAL_ERRORS | {IP_NOT_TRUSTED}


@dataclass
class WeComError(Exception):
    """A failed call; `transient` says whether trying again later may succeed."""

    errcode: int
    errmsg: str
    transient: bool

    def __str__(self) -> str:
        return f"errcode={self.errcode} {self.errmsg}"


@dataclass(frozen=True)
class Media:
    """A temporary medium's bytes as media/get returned them."""

    content: bytes
    content_type: str
    filename: str


class WeComAPI:
    """One app's API client: token cached with a lock so only one refresh runs at a time."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_base: str,
        corp_id: str,
        secret: str,
        agent_id: int,
        clock: Clock,
        timeout: float = 10.0,
    ) -> None:
        self._session = session
        self._base = api_base.rstrip("/")
        self._corp_id = corp_id
        self._secret = secret
        self.agent_id = agent_id
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._token: str | None = None
        self._expires: datetime | None = None
        self._lock = asyncio.Lock()
        self.token_refreshes = 0

    # -- token -------------------------------------------------------------------------------

    @classmethod
    def of(cls, session: aiohttp.ClientSession, config: Config, clock: Clock) -> WeComAPI:
        """The client for the configured app (its secret from the config or the environment)."""
        return cls(
            session,
            api_base=config.wecom.api_base,
            corp_id=config.wecom.corp_id,
            secret=Secrets.of(config.wecom).secret,
            agent_id=config.wecom.agent_id,
            clock=clock,
            timeout=config.outbox.request_timeout_seconds,
        )

    async def access_token(self, stale: str | None = None) -> str:
        """A valid token; `stale` names a token WeCom just rejected, forcing one refresh."""
        async with self._lock:
            fresh = (
                self._token is not None
                and self._token != stale
                and self._expires is not None
                and self._clock.now() < self._expires - TOKEN_MARGIN
            )
            if fresh:
                assert self._token is not None
                return self._token
            data = await self._request(
                "GET", "/cgi-bin/gettoken", params={"corpid": self._corp_id, "corpsecret": self._secret}
            )
            errcode = int(data.get("errcode", 0))
            if errcode:
                # A bad secret or corpid is a configuration problem (the outbox pauses for it);
                # anything else (system busy) may pass on a later try.
                raise WeComError(errcode, str(data.get("errmsg", "")), transient=errcode not in APP_CONFIG_ERRORS)
            self._token = str(data["access_token"])
            self._expires = self._clock.now() + timedelta(seconds=int(data.get("expires_in", 7200)))
            self.token_refreshes += 1
            log(logger, logging.INFO, "wecom_token_refreshed", expires_in=data.get("expires_in"))
            return self._token

    # -- transport ---------------------------------------------------------------------------
    async def _request(
        self, method: str, url: str, *, params: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:
        full = url if url.startswith("http") else self._base + url
        try:
            async with self._session.request(method, full, params=params, timeout=self._timeout, **kw) as resp:
                if resp.status >= 500:
                    raise WeComError(-resp.status, f"http {resp.status}", transient=True)
                if resp.status != 200:
                    raise WeComError(-resp.status, f"http {resp.status}", transient=False)
                data = await resp.json(content_type=None)
        except TimeoutError:
            raise WeComError(-2, "timeout", transient=True) from None
        except aiohttp.ClientError as exc:
            raise WeComError(-3, f"connection: {type(exc).__name__}", transient=True) from None
        except ValueError:
            raise WeComError(-4, "response is not JSON", transient=True) from None
        if not isinstance(data, dict):
            raise WeComError(-4, "response is not a JSON object", transient=True)
        return data

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        data: Any = None,
    ) -> dict[str, Any]:
        """Call an access_token API; refresh the token once on 40001/40014/41001/42001."""
        token = await self.access_token()
        for attempt in range(2):
            q = dict(params or {}, access_token=token)
            result = await self._request(method, path, params=q, json=json, data=data)
            errcode = int(result.get("errcode", 0))
            if errcode in TOKEN_ERRORS and attempt == 0:
                log(logger, logging.WARNING, "wecom_token_rejected", path=path, errcode=errcode)
                token = await self.access_token(stale=token)
                continue
            return self._check(result, path)
        raise AssertionError("unreachable")

    def _check(self, result: dict[str, Any], path: str) -> dict[str, Any]:
        errcode = int(result.get("errcode", 0))
        if errcode:
            # A token error here survived the refresh: credentials (a configuration error).
            raise WeComError(errcode, str(result.get("errmsg", "")), transient=errcode in TRANSIENT_ERRORS)
        return result

    # -- endpoints ---------------------------------------------------------------------------
    async def send_message(self, body: dict[str, Any]) -> dict[str, Any]:
        """message/send (text, markdown, template_card, file); a wholly invalid recipient fails."""
        result = await self.call("POST", "/cgi-bin/message/send", json={**body, "agentid": self.agent_id})
        invalid = result.get("invaliduser") or result.get("unlicenseduser")
        if invalid and invalid == body.get("touser"):
            raise WeComError(INVALID_USER, f"invalid user {invalid}", transient=False)
        return result

    async def update_template_card(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "/cgi-bin/message/update_template_card", json={**body, "agentid": self.agent_id})

    async def appchat_create(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "/cgi-bin/appchat/create", json=body)

    async def appchat_get(self, chatid: str) -> dict[str, Any]:
        return await self.call("GET", "/cgi-bin/appchat/get", params={"chatid": chatid})

    async def appchat_update(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "/cgi-bin/appchat/update", json=body)

    async def externalcontact(self, api: str, body: dict[str, Any]) -> dict[str, Any]:
        """A customer-contact (客户联系) API: add_msg_template, get_groupmsg_send_result,
        remind_groupmsg_send, cancel_groupmsg_send, get_groupmsg_list_v2, groupchat/get."""
        return await self.call("POST", f"/cgi-bin/externalcontact/{api}", json=body)

    async def appchat_send(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", "/cgi-bin/appchat/send", json=body)

    async def media_upload(self, media_type: str, filename: str, content: bytes) -> dict[str, Any]:
        form = aiohttp.FormData()
        form.add_field("media", content, filename=filename, content_type="application/octet-stream")
        return await self.call("POST", "/cgi-bin/media/upload", params={"type": media_type}, data=form)

    async def media_get(self, media_id: str) -> Media:
        """media/get (doc 90254): the raw file on success, JSON with an errcode on failure (an
        expired or unknown media_id answers 40007); the token is refreshed once, as in `call`."""
        token = await self.access_token()
        for attempt in range(2):
            url = self._base + "/cgi-bin/media/get"
            try:
                async with self._session.get(
                    url, params={"access_token": token, "media_id": media_id}, timeout=self._timeout
                ) as resp:
                    if resp.status >= 500:
                        raise WeComError(-resp.status, f"http {resp.status}", transient=True)
                    if resp.status != 200:
                        raise WeComError(-resp.status, f"http {resp.status}", transient=False)
                    content = await resp.read()
                    content_type = resp.content_type
                    filename = (resp.content_disposition.filename if resp.content_disposition else None) or ""
            except TimeoutError:
                raise WeComError(-2, "timeout", transient=True) from None
            except aiohttp.ClientError as exc:
                raise WeComError(-3, f"connection: {type(exc).__name__}", transient=True) from None
            error = _json_error(content, content_type)
            if error is None:
                return Media(content, content_type, filename)
            if int(error.get("errcode", 0)) in TOKEN_ERRORS and attempt == 0:
                log(logger, logging.WARNING, "wecom_token_rejected", path="media/get", errcode=error["errcode"])
                token = await self.access_token(stale=token)
                continue
            self._check(error, "media/get")  # raises: the errcode is not 0
        raise AssertionError("unreachable")

    async def webhook_send(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """Group robot push (no access_token; the key is the credential)."""
        result = await self._request("POST", "/cgi-bin/webhook/send", params={"key": key}, json=body)
        return self._check(result, "webhook/send")

    async def robot_response(self, response_url: str, body: dict[str, Any]) -> dict[str, Any]:
        """Smart robot one-shot reply to the `response_url` of a callback (valid once, 1 h)."""
        result = await self._request("POST", response_url, json=body)
        return self._check(result, "aibot/response")


def _json_error(content: bytes, content_type: str) -> dict[str, Any] | None:
    """WeCom's JSON error answer to a download, or None when the body is the file itself.

    A JSON (or text) body with a non-zero `errcode` is an error; anything else, a JSON file a member sent
    included, is content.
    """
    if "json" not in content_type and not content_type.startswith("text/"):
        return None
    try:
        data = json.loads(content)
    except ValueError:
        return None
    return data if isinstance(data, dict) and int(data.get("errcode") or 0) != 0 else None
