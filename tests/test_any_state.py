"""No command crashes in any state: random conversations from several people, over encrypted HTTP.

Hypothesis plays sequences of commands (whole, partial, typo'd, in Traditional or English),
answers, cancellations, yes/no, clicks on whatever cards people hold, and the clock moving on.
Whatever happens, nobody is told "处理您的消息时出错了" and nothing logs a traceback.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import FakeClock
from tests.scene import Scene

PEOPLE = ["zhaolei", "lihua", "chenhao", "liuyang", "zhouyan"]  # a reporter, a technician, approvers, an editor
TEXTS = [
    "帮助",
    "帮助 借舞台",
    "你好",
    "待办",
    "我的申请",
    "我的报修",
    "我的投稿",
    "取消",
    "是",
    "否",
    "算了",
    "报修",
    "报修 地点:302 设备:投影 描述:不亮",
    "保修 地点:机房 描述:电脑坏了",
    "报修：三楼机房3号电脑开不了机",
    "報修 地點：機房B 設備：電腦",
    "REPAIR location: lab device: network problem: no wifi",
    "地点302设备投影描述不亮",
    "302教室",
    "投影",
    "电脑",
    "空调",
    "开不了机",
    "接单 #1",
    "接单 #2",
    "完成 #1 换了灯泡",
    "完成 #1 人为损坏",
    "转交 #1 张磊",
    "改类别 #1 电脑",
    "改类别 #2 网络",
    "借舞台",
    "借舞台 场地:本部礼堂 日期:明天 时间:14:00-16:00 活动:排练 户外:否 校外:否 重大活动:否",
    "借舞台 场地:本部礼堂 日期:周五 时间:下午2点到4点 活动:比赛 户外:是 校外:否 重大活动:是",
    "仍要申请:是",
    "取消预约 #1",
    "设备情况 #1 正常",
    "设备情况 #1 异常 话筒坏了",
    "调监控 地点:校门口 时间:昨天 14:00-15:00 原因:丢东西 类型:教职工",
    "调监控",
    "学生",
    "24级计算机应用1班",
    "领电脑 用途:办公 数量:1 配置:i5",
    "领电脑 用途:临时借用 数量:2 配置:笔记本",
    "下周五",
    "发放 #1 资产号:PC-1",
    "确认领取 #1",
    "同意 #1",
    "同意 #2 好",
    "驳回 #1 不行",
    "转审 #1 刘洋",
    "撤销 #1",
    "催办 #1",
    "评论 #1 请尽快",
    "进度 #1",
    "进度 #2",
    "设置代理 刘洋 明天 后天",
    "投稿 标题:技能节 正文:今天开幕",
    "提交",
    "通过 #1 文字",
    "退回 #1 照片 太暗",
    "修改 #1 正文:改好了",
    "预览 #1 网站:https://a.cn/1 公众号:https://b.cn/1",
    "发布 #1 网站 https://a.cn/1",
    "音频课堂 日期:今天 时间:19:30 标题:课 主讲:周燕 链接:https://a.cn/x 群:24级信息技术在校生群",
    "公安调取 地点:门口 时间:昨天 单位:派出所 案由:事故 内容:录像 交付方式:U盘",
    "#1",
    "？",
    "   ",
    "a" * 300,
    "😀",
    "12:00",
    "全部",
]

action = st.one_of(
    st.tuples(st.just("say"), st.sampled_from(PEOPLE), st.sampled_from(TEXTS)),
    st.tuples(st.just("click"), st.sampled_from(PEOPLE), st.integers(0, 5)),
    st.tuples(st.just("wait"), st.just(""), st.sampled_from([60, 1800, 6 * 3600, 26 * 3600])),
)


class Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


@pytest.fixture
def tracebacks() -> Iterator[Tracebacks]:
    handler = Tracebacks()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


async def play(scene: Scene, clock: FakeClock, step: tuple[str, str, Any]) -> None:
    kind, who, what = step
    if kind == "say":
        await scene.say(who, what)
    elif kind == "click":
        cards = scene.cards(who)
        if cards:
            card = cards[-1 - what % len(cards)]
            buttons = card.get("button_list", [])
            if buttons:
                await scene.click(who, card, buttons[what % len(buttons)]["text"])
    else:
        clock.advance(what)
        await scene.tick()


@settings(
    max_examples=int(os.environ.get("INFODESK_STATE_EXAMPLES", 60)),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(action, min_size=1, max_size=14))
async def test_no_error_reply_and_no_traceback_in_any_state(
    scene: Scene, clock: FakeClock, tracebacks: Tracebacks, steps: list[tuple[str, str, Any]]
) -> None:
    for step in steps:
        await play(scene, clock, step)
    errors = [t for p in PEOPLE for t in scene.texts(p) if "出错了" in t]
    assert not errors, (steps, errors)
    assert not tracebacks.records, (steps, [r.getMessage() for r in tracebacks.records])
