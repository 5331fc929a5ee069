"""(a) The floor: a bare aiohttp endpoint that only verifies the signature and decrypts (wechatpy).

python -m bench.peers.floor PORT TOKEN AES_KEY CORP_ID
"""

from __future__ import annotations

import sys

from aiohttp import web
from wechatpy.enterprise.crypto import WeChatCrypto


def main() -> None:
    port, token, aes_key, corp_id = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    crypto = WeChatCrypto(token, aes_key, corp_id)

    async def callback(request: web.Request) -> web.Response:
        q = request.query
        try:
            crypto.decrypt_message(await request.read(), q["msg_signature"], q["timestamp"], q["nonce"])
        except Exception:
            return web.Response(status=403)
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/wecom/callback", callback)
    app.router.add_get("/healthz", lambda r: web.Response(text="ok"))  # type: ignore[arg-type,return-value]
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=lambda *_: None)


if __name__ == "__main__":
    main()
