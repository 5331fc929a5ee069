"""WeCom callback crypto (doc 90968): SHA1 signature, AES-256-CBC with a 32-byte PKCS#7 block.

The cipher is wechatpy's (`wechatpy[cryptography]`); the framing is checked strictly here because
wechatpy's own decrypt trusts the padding byte and compares signatures with `!=`, and hostile
input must end as a clean 4xx, never as garbage text or a timing leak.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import struct

from wechatpy.crypto.cryptography import WeChatCipher

BLOCK = 32  # WeCom's PKCS#7 pads to 32 bytes, not AES's 16 (official PKCS7Encoder)


class CryptoError(Exception):
    """Undecryptable input; `reason` is a short stable code for logs."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def signature(token: str, timestamp: str, nonce: str, data: str) -> str:
    """sha1 of the four strings sorted lexically and joined without separator (hex, lowercase)."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, data])).encode()).hexdigest()


class WeComCrypto:
    """Sign, verify, encrypt and decrypt for one (token, EncodingAESKey, receive id)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        key = base64.b64decode(encoding_aes_key + "=")
        if len(key) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes")
        self._token = token
        self._key = key
        self.receive_id = receive_id

    def sign(self, timestamp: str, nonce: str, data: str) -> str:
        """The msg_signature WeCom would send for this data."""
        return signature(self._token, timestamp, nonce, data)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, data: str) -> bool:
        """Constant-time signature check."""
        expected = self.sign(timestamp, nonce, data)
        return hmac.compare_digest(expected.encode(), msg_signature.lower().encode())

    def decrypt(self, encrypted: str) -> str:
        """Decrypt a base64 `Encrypt`/`echostr`; check padding, length and the receive id."""
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError("bad_base64") from None
        if not raw or len(raw) % 16:
            raise CryptoError("bad_length")
        plain = WeChatCipher(self._key).decrypt(raw)
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad_padding")
        content = plain[16:-pad]
        if len(content) < 4:
            raise CryptoError("bad_length")
        (msg_len,) = struct.unpack(">I", content[:4])
        if msg_len > len(content) - 4:
            raise CryptoError("bad_length")
        msg, receive_id = content[4 : 4 + msg_len], content[4 + msg_len :]
        if not hmac.compare_digest(receive_id, self.receive_id.encode()):
            raise CryptoError("bad_receive_id")
        try:
            text: str = msg.decode("utf-8")
        except UnicodeDecodeError:
            raise CryptoError("bad_utf8") from None
        return text

    def encrypt(self, msg: str, random_prefix: bytes | None = None) -> str:
        """Encrypt as WeCom does; `random_prefix` (16 bytes) only to reproduce official vectors."""
        prefix = random_prefix if random_prefix is not None else os.urandom(16)
        if len(prefix) != 16:
            raise ValueError("random prefix must be 16 bytes")
        body = msg.encode()
        text = prefix + struct.pack(">I", len(body)) + body + self.receive_id.encode()
        pad = BLOCK - len(text) % BLOCK
        text += bytes([pad]) * pad
        return base64.b64encode(WeChatCipher(self._key).encrypt(text)).decode()

    def reply_xml(self, msg: str, timestamp: str, nonce: str) -> str:
        """An encrypted passive reply body (official XMLParse.AES_TEXT_RESPONSE_TEMPLATE)."""
        enc = self.encrypt(msg)
        sig = self.sign(timestamp, nonce, enc)
        return (
            f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{sig}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )

    def reply_json(self, msg: str, timestamp: str, nonce: str) -> str:
        """An encrypted passive reply for JSON-mode callbacks (smart robot)."""
        enc = self.encrypt(msg)
        return json.dumps(
            {"encrypt": enc, "msgsignature": self.sign(timestamp, nonce, enc), "timestamp": timestamp, "nonce": nonce}
        )
