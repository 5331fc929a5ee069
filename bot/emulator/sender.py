"""Sends callbacks to the bot exactly as WeCom does: encrypted XML, signed query string."""

from __future__ import annotations

import itertools
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.crypto import WeComCrypto

_msg_ids = itertools.count(7_300_000_000_000_000_000 + secrets.randbelow(10**15))


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@dataclass
class Posted:
    """What the bot answered to one callback."""

    status: int
    text: str
    msg_id: str | None


class CallbackSender:
    """A member's WeCom client, as seen by the bot's callback URL."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        token: str,
        encoding_aes_key: str,
        corp_id: str,
        agent_id: int,
        clock: Any = time.time,
    ) -> None:
        self.session = session
        self.url = url
        self.crypto = WeComCrypto(token, encoding_aes_key, corp_id)
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.clock = clock

    def signed_query(self, data: str, timestamp: str | None = None) -> dict[str, str]:
        ts = timestamp or str(int(self.clock()))
        nonce = str(secrets.randbelow(10**9))
        return {"msg_signature": self.crypto.sign(ts, nonce, data), "timestamp": ts, "nonce": nonce}

    def envelope(self, plain_xml: str) -> tuple[dict[str, str], str]:
        """The query string and body WeCom would POST for this plaintext message."""
        enc = self.crypto.encrypt(plain_xml)
        body = (
            f"<xml><ToUserName>{_cdata(self.corp_id)}</ToUserName><Encrypt>{_cdata(enc)}</Encrypt>"
            f"<AgentID>{_cdata(str(self.agent_id))}</AgentID></xml>"
        )
        return self.signed_query(enc), body

    async def post_raw(self, query: dict[str, str], body: str | bytes) -> Posted:
        async with self.session.post(self.url, params=query, data=body, headers={"Content-Type": "text/xml"}) as resp:
            return Posted(resp.status, await resp.text(), None)

    async def post_plain(self, plain_xml: str, msg_id: str | None = None) -> Posted:
        query, body = self.envelope(plain_xml)
        posted = await self.post_raw(query, body)
        posted.msg_id = msg_id
        return posted

    def _head(self, userid: str, msgtype: str, create_time: int | None) -> str:
        ts = create_time if create_time is not None else int(self.clock())
        return (
            f"<xml><ToUserName>{_cdata(self.corp_id)}</ToUserName>"
            f"<FromUserName>{_cdata(userid)}</FromUserName><CreateTime>{ts}</CreateTime>"
            f"<MsgType>{_cdata(msgtype)}</MsgType>"
        )

    def text_xml(self, userid: str, content: str, msg_id: str | None = None) -> tuple[str, str]:
        mid = msg_id or str(next(_msg_ids))
        xml = (
            self._head(userid, "text", None) + f"<Content>{_cdata(content)}</Content>"
            f"<MsgId>{mid}</MsgId><AgentID>{self.agent_id}</AgentID></xml>"
        )
        return xml, mid

    async def text(self, userid: str, content: str, msg_id: str | None = None) -> Posted:
        """The member types `content` in the app's chat."""
        xml, mid = self.text_xml(userid, content, msg_id)
        return await self.post_plain(xml, mid)

    async def image(self, userid: str, media_id: str, pic_url: str = "https://wework.qpic.cn/x.jpg") -> Posted:
        mid = str(next(_msg_ids))
        xml = (
            self._head(userid, "image", None) + f"<PicUrl>{_cdata(pic_url)}</PicUrl>"
            f"<MediaId>{_cdata(media_id)}</MediaId><MsgId>{mid}</MsgId><AgentID>{self.agent_id}</AgentID></xml>"
        )
        return await self.post_plain(xml, mid)

    async def file(self, userid: str, media_id: str, filename: str) -> Posted:
        """The member sends a file (an .xlsx, a .pdf) in the app's chat."""
        mid = str(next(_msg_ids))
        xml = (
            self._head(userid, "file", None) + f"<MediaId>{_cdata(media_id)}</MediaId>"
            f"<FileName>{_cdata(filename)}</FileName><MsgId>{mid}</MsgId><AgentID>{self.agent_id}</AgentID></xml>"
        )
        return await self.post_plain(xml, mid)

    async def event(self, userid: str, event: str, key: str = "", create_time: int | None = None) -> Posted:
        xml = (
            self._head(userid, "event", create_time) + f"<Event>{_cdata(event)}</Event>"
            f"<EventKey>{_cdata(key)}</EventKey><AgentID>{self.agent_id}</AgentID></xml>"
        )
        return await self.post_plain(xml)

    def card_click_xml(
        self,
        userid: str,
        task_id: str,
        key: str,
        response_code: str,
        card_type: str = "button_interaction",
        create_time: int | None = None,
    ) -> str:
        """The plaintext of a click on button `key` of the card `task_id` (doc 90240 模板卡片事件推送)."""
        return (
            self._head(userid, "event", create_time)
            + f"<Event>{_cdata('template_card_event')}</Event><EventKey>{_cdata(key)}</EventKey>"
            f"<TaskId>{_cdata(task_id)}</TaskId><CardType>{_cdata(card_type)}</CardType>"
            f"<ResponseCode>{_cdata(response_code)}</ResponseCode><AgentID>{self.agent_id}</AgentID></xml>"
        )

    async def card_click(
        self,
        userid: str,
        task_id: str,
        key: str,
        response_code: str,
        card_type: str = "button_interaction",
        create_time: int | None = None,
    ) -> Posted:
        """The member clicks button `key` on the card `task_id`."""
        return await self.post_plain(self.card_click_xml(userid, task_id, key, response_code, card_type, create_time))

    async def verify_url(self, echo: str | None = None) -> Posted:
        """The admin console's URL check: GET with an encrypted echostr."""
        echo = echo or str(secrets.randbelow(10**19))
        enc = self.crypto.encrypt(echo)
        query = {**self.signed_query(enc), "echostr": enc}
        async with self.session.get(self.url, params=query) as resp:
            return Posted(resp.status, await resp.text(), None)


class RobotSender:
    """A group member @mentioning the smart robot, as WeCom delivers it (encrypted JSON)."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, *, token: str, encoding_aes_key: str, clock: Any = time.time
    ) -> None:
        self.session = session
        self.url = url
        self.crypto = WeComCrypto(token, encoding_aes_key, "")  # robots use an empty receive id
        self.clock = clock

    def body(self, message: dict[str, Any]) -> tuple[dict[str, str], str]:
        enc = self.crypto.encrypt(json.dumps(message, ensure_ascii=False))
        ts = str(int(self.clock()))
        nonce = str(secrets.randbelow(10**9))
        return {"msg_signature": self.crypto.sign(ts, nonce, enc), "timestamp": ts, "nonce": nonce}, json.dumps(
            {"encrypt": enc}
        )

    async def post(self, message: dict[str, Any]) -> Posted:
        query, body = self.body(message)
        async with self.session.post(
            self.url, params=query, data=body, headers={"Content-Type": "application/json"}
        ) as resp:
            return Posted(resp.status, await resp.text(), message.get("msgid"))

    async def mention(
        self,
        userid: str,
        text: str,
        response_url: str,
        chat_id: str | None = "wrkSFfCgAAxxxx",
        robot_name: str = "信息中心助手",
        msgid: str | None = None,
    ) -> Posted:
        """`@robot text` in a group (or, with chat_id None, in a one-to-one chat with the robot)."""
        message = {
            "msgid": msgid or secrets.token_hex(12),
            "aibotid": "AIBOTID",
            "chattype": "group" if chat_id else "single",
            "from": {"userid": userid},
            "response_url": response_url,
            "msgtype": "text",
            "text": {"content": f"@{robot_name} {text}" if chat_id else text},
        }
        if chat_id:
            message["chatid"] = chat_id
        return await self.post(message)
