"""(b) The tutorial peer: Flask + wechatpy under gunicorn, replying with a synchronous message/send.

This is the pattern most WeCom tutorials show: verify and decrypt, parse, then call the API
inside the request (token fetched once per worker), and answer. Run by gunicorn:

    INFODESK_PEER=TOKEN,AES_KEY,CORP_ID,SECRET,AGENT_ID,API_BASE gunicorn -w 2 -b 127.0.0.1:PORT \
        bench.peers.flask_peer:app
"""

from __future__ import annotations

import os

import requests
from flask import Flask, request
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import WeChatCrypto

TOKEN, AES_KEY, CORP_ID, SECRET, AGENT_ID, API_BASE = os.environ["INFODESK_PEER"].split(",")
crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
http = requests.Session()
app = Flask(__name__)
_token: dict[str, str] = {}


def access_token() -> str:
    if "t" not in _token:
        r = http.get(f"{API_BASE}/cgi-bin/gettoken", params={"corpid": CORP_ID, "corpsecret": SECRET}, timeout=5)
        _token["t"] = r.json()["access_token"]
    return _token["t"]


@app.post("/wecom/callback")
def callback() -> tuple[str, int]:
    q = request.args
    try:
        xml = crypto.decrypt_message(request.get_data(), q["msg_signature"], q["timestamp"], q["nonce"])
    except Exception:
        return "", 403
    msg = parse_message(xml)
    reply = "收到：" + (getattr(msg, "content", "") or "")[:100]
    http.post(
        f"{API_BASE}/cgi-bin/message/send",
        params={"access_token": access_token()},
        json={"touser": msg.source, "msgtype": "text", "agentid": int(AGENT_ID), "text": {"content": reply}},
        timeout=5,
    )
    return "", 200


@app.get("/healthz")
def healthz() -> str:
    return "ok"
