"""Parsing decrypted callback XML (text, image, events, template_card_event)."""

from __future__ import annotations

from html import escape

import pytest
import xmltodict
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.inbound import BadXML, parse_inbound, parse_xml

CARD_EVENT = """<xml>
<ToUserName><![CDATA[toUser]]></ToUserName>
<FromUserName><![CDATA[FromUser]]></FromUserName>
<CreateTime>123456789</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[template_card_event]]></Event>
<EventKey><![CDATA[key111]]></EventKey>
<TaskId><![CDATA[taskid111]]></TaskId>
<CardType><![CDATA[text_notice]]></CardType>
<ResponseCode><![CDATA[ResponseCode]]></ResponseCode>
<AgentID>1</AgentID>
<SelectedItems>
    <SelectedItem>
        <QuestionKey><![CDATA[QuestionKey1]]></QuestionKey>
        <OptionIds>
            <OptionId><![CDATA[OptionId1]]></OptionId>
            <OptionId><![CDATA[OptionId2]]></OptionId>
        </OptionIds>
    </SelectedItem>
    <SelectedItem>
        <QuestionKey><![CDATA[QuestionKey2]]></QuestionKey>
        <OptionIds>
            <OptionId><![CDATA[OptionId3]]></OptionId>
        </OptionIds>
    </SelectedItem>
</SelectedItems>
</xml>"""


def test_template_card_event_from_the_docs() -> None:
    ev = parse_inbound(CARD_EVENT)
    assert ev.kind == "card_click"
    assert (ev.from_user, ev.create_time, ev.event_key, ev.task_id) == ("FromUser", 123456789, "key111", "taskid111")
    assert (ev.card_type, ev.response_code) == ("text_notice", "ResponseCode")
    assert ev.selected == {"QuestionKey1": ["OptionId1", "OptionId2"], "QuestionKey2": ["OptionId3"]}
    assert ev.dedupe_key == "evt:FromUser:123456789:template_card_event:key111:taskid111"


def test_text_image_and_enter_agent() -> None:
    text = parse_inbound(
        "<xml><ToUserName>c</ToUserName><FromUserName>u1</FromUserName><CreateTime>5</CreateTime>"
        "<MsgType>text</MsgType><Content><![CDATA[报修]]></Content><MsgId>99</MsgId>"
        "<AgentID>1</AgentID></xml>"
    )
    assert (text.kind, text.content, text.dedupe_key) == ("text", "报修", "msg:99")
    image = parse_inbound(
        "<xml><ToUserName>c</ToUserName><FromUserName>u1</FromUserName><CreateTime>5</CreateTime>"
        "<MsgType>image</MsgType><PicUrl>http://p</PicUrl><MediaId>m1</MediaId><MsgId>100</MsgId>"
        "<AgentID>1</AgentID></xml>"
    )
    assert (image.kind, image.media_id, image.pic_url) == ("image", "m1", "http://p")
    enter = parse_inbound(
        "<xml><ToUserName>c</ToUserName><FromUserName>u1</FromUserName><CreateTime>7</CreateTime>"
        "<MsgType>event</MsgType><Event>enter_agent</Event><EventKey></EventKey>"
        "<AgentID>1</AgentID></xml>"
    )
    assert (enter.kind, enter.event, enter.dedupe_key) == ("event", "enter_agent", "evt:u1:7:enter_agent::")


def test_unknown_message_type_is_kept_as_unknown() -> None:
    ev = parse_inbound(
        "<xml><ToUserName>c</ToUserName><FromUserName>u1</FromUserName><CreateTime>5</CreateTime>"
        "<MsgType>location</MsgType><MsgId>101</MsgId><AgentID>1</AgentID></xml>"
    )
    assert ev.kind == "unknown" and ev.dedupe_key == "msg:101"


@pytest.mark.parametrize(
    "xml",
    [
        "<xml><FromUserName>u</FromUserName></xml>",
        "<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><CreateTime>x</CreateTime></xml>",
        "<notxml/>",
        '<!DOCTYPE a [<!ENTITY b "c">]><xml/>',
    ],
)
def test_bad_messages(xml: str) -> None:
    with pytest.raises(BadXML):
        parse_inbound(xml)


# parse_xml builds xmltodict's shape from the standard library's parser (a third of the time on
# every callback): the same dict for any document, whitespace, CDATA, attributes, repeats and
# mixed text included, and BadXML where xmltodict fails.
TAGS = st.sampled_from(["ToUserName", "MsgType", "Content", "SelectedItem", "OptionId", "a", "b"])
TEXT = st.text(alphabet=st.sampled_from(list(" \t\n报修ab1<>&'\"]")), max_size=8)


@st.composite
def elements(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(TAGS)
    attrs = "".join(f' {k}="{escape(v, quote=True)}"' for k, v in draw(st.dictionaries(TAGS, TEXT, max_size=2)).items())
    parts = []
    for _ in range(draw(st.integers(0, 3 if depth < 3 else 0))):
        parts.append(draw(elements(depth + 1)))
        parts.append(escape(draw(TEXT)))
    text = draw(TEXT)
    lead = f"<![CDATA[{text.replace(']]>', '')}]]>" if draw(st.booleans()) else escape(text)
    return f"<{tag}{attrs}>{lead}{''.join(parts)}</{tag}>"


@given(st.lists(elements(), max_size=6), st.sampled_from(["", "\n  ", '<?xml version="1.0" encoding="utf-8"?>']))
@settings(max_examples=300, deadline=None)
def test_parse_xml_is_xmltodict_shaped(children: list[str], prolog: str) -> None:
    doc = f"{prolog}<xml>{''.join(children)}</xml>".encode()
    expected = xmltodict.parse(doc, encoding="utf-8", disable_entities=True)["xml"]
    if isinstance(expected, dict):
        assert parse_xml(doc) == expected
    else:
        with pytest.raises(BadXML):
            parse_xml(doc)


@pytest.mark.parametrize(
    "doc",
    [
        b"<xml><a>1</a>",  # truncated
        b"<xml><a>&unknown;</a></xml>",  # an entity no DTD defines
        b"<xml>text only</xml>",
        b"<xml/>",
        b"<other><a>1</a></other>",
        b"\xef\xbb\xbf<xml><a>\xff</a></xml>",  # not UTF-8
        '<?xml version="1.0" encoding="UTF-16"?><xml><a>1</a></xml>'.encode("utf-16"),
        b'<!DOCTYPE xml [<!ENTITY a "b">]><xml><a>&a;</a></xml>',
        b'<xml><a>1</a></xml><!DOCTYPE x SYSTEM "file:///etc/passwd">',
    ],
)
def test_parse_xml_refuses(doc: bytes) -> None:
    with pytest.raises(BadXML):
        parse_xml(doc)


def test_parse_xml_reads_the_five_entities_and_character_references() -> None:
    assert parse_xml(b"<xml><a>&lt;&amp;&gt;&quot;&apos;&#25253;&#x4FEE;</a></xml>") == {"a": "<&>\"'报修"}


def test_parse_xml_refuses_a_document_nested_deeper_than_wecom_nests() -> None:
    deep = b"<xml>" + b"<a>" * 5000 + b"1" + b"</a>" * 5000 + b"</xml>"  # 15 KB, before any signature
    with pytest.raises(BadXML, match="too_deep"):
        parse_xml(deep)
    card = parse_inbound(CARD_EVENT)  # the deepest WeCom sends still parses
    assert card.selected["QuestionKey1"] == ["OptionId1", "OptionId2"]
