"""WeCom callback crypto against the official vectors (WECOM.md §1.7) and hostile input."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.crypto import CryptoError, WeComCrypto

A = WeComCrypto("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")
B = WeComCrypto("hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo", "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt", "ww1436e0e65a779aee")

A_ECHO = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
A_POST = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3"
    "TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5g"
    "sijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQ"
    "Uax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyP"
    "IGHBZZIs2pDBS8R07+qN+E7Q=="
)
A_POST_PLAIN = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
    "<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n"
    "<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>"
)
B_ECHO = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="


def test_official_signatures_verify() -> None:
    assert A.verify("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780", A_ECHO)
    assert A.verify("477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149", A_POST)
    assert B.verify("012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683", B_ECHO)
    assert not A.verify("477715d11cdb4164915debcba66cb864d751f3e7", "1409659813", "1372623149", A_POST)


def test_official_vectors_decrypt() -> None:
    assert A.decrypt(A_ECHO) == "1616140317555161061"
    assert A.decrypt(A_POST) == A_POST_PLAIN
    assert B.decrypt(B_ECHO) == "1288432023552776189"


def test_encrypt_reproduces_official_ciphertext_with_same_prefix() -> None:
    assert A.encrypt(A_POST_PLAIN, random_prefix=b"0960688932c47ef1") == A_POST
    assert A.encrypt("1616140317555161061", random_prefix=b"c41b64491c2468d0") == A_ECHO


def test_derived_reply_vector() -> None:
    plain = (
        "<xml><ToUserName><![CDATA[mycreate]]></ToUserName><FromUserName><![CDATA[wx5823bf96d3bd56c7]]>"
        "</FromUserName><CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[this is a test]]></Content></xml>"
    )
    enc = A.encrypt(plain, random_prefix=b"0123456789abcdef")
    assert A.sign("1409659813", "1372623149", enc) == "68f5dc43743f9cc82ad8ea2a52b524c675af7803"


def test_wrong_receive_id_is_refused() -> None:
    other = WeComCrypto("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "ww_someone_else")
    with pytest.raises(CryptoError) as err:
        other.decrypt(A_POST)
    assert err.value.reason == "bad_receive_id"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("not base64!!", "bad_base64"),
        ("", "bad_length"),
        (base64.b64encode(b"x" * 17).decode(), "bad_length"),
        (base64.b64encode(b"\x00" * 32).decode(), "bad_padding"),
        (A_POST[:-24] + "AAAAAAAAAAAAAAAAAAAAAA==", "bad_padding"),
    ],
)
def test_hostile_ciphertext_raises_clean_error(data: str, reason: str) -> None:
    with pytest.raises(CryptoError) as err:
        A.decrypt(data)
    assert err.value.reason == reason


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_round_trip_any_text(text: str) -> None:
    assert B.decrypt(B.encrypt(text)) == text


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=400))
def test_random_bytes_never_crash(raw: bytes) -> None:
    data = base64.b64encode(raw).decode()
    with contextlib.suppress(CryptoError):
        A.decrypt(data)
