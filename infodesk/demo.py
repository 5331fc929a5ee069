"""`python -m bot demo`: the bot and the WeCom emulator on loopback, a scripted conversation.

Everything goes over real HTTP: callbacks are encrypted and signed as WeCom does, the bot
answers through its outbox, and the emulator records what each person received.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import textwrap
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from bot.appkeys import API, PIPELINE
from bot.clock import FakeClock
from bot.config import Config, parse_config
from bot.config_workflows import CalendarConfig
from bot.directory import sync as sync_directory
from bot.emulator.sender import CallbackSender, RobotSender
from bot.emulator.server import Delivered, Emulator
from bot.inbound import Inbound
from bot.logs import setup_logging
from bot.pipeline import Pipeline
from handlers import asset_store
from handlers.asset_import import AssetImportRejected, import_assets
from handlers.asset_import import problems_text as asset_problems
from infodesk.app import TIMERS, create_app

EXAMPLE = Path(__file__).with_name("config.example.toml")  # packaged with infodesk
SHANGHAI = ZoneInfo("Asia/Shanghai")


def demo_config(api_base: str, db_path: str) -> Config:
    """The example organisation, pointed at the emulator and a temporary SQLite file."""
    raw: dict[str, Any] = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    raw["wecom"]["api_base"] = api_base
    raw["database"] = {"url": f"sqlite+aiosqlite:///{db_path}"}
    raw["server"] = {**raw.get("server", {}), "host": "127.0.0.1", "port": 0}
    raw["outbox"] = {**raw.get("outbox", {}), "poll_interval_seconds": 0.2}
    raw["directory"] = {**raw.get("directory", {}), "enabled": True}  # the emulator serves a directory
    return parse_config(raw, environ={})


def draw(d: Delivered, names: dict[str, str]) -> str:
    """A delivered message as readable text; cards with their buttons."""
    body = d.body
    if d.msgtype == "text":
        return str(body["text"]["content"])
    if d.msgtype == "markdown":
        return str(body["markdown"]["content"])
    if d.msgtype == "groupmsg_task":
        return f"（企业微信通知：有一条企业群发等您确认，发到{'、'.join(body['groups'])}）"
    if d.msgtype == "groupmsg_remind":
        return f"（企业微信提醒：发到{'、'.join(body['groups'])}的企业群发还没有发送）"
    if d.msgtype == "mass":
        links = "".join(f"\n[链接] {a['link']['title']} <{a['link']['url']}>" for a in body.get("attachments", []))
        return f"[企业群发] {body['text']['content']}{links}"
    if d.msgtype == "file":
        return "[文件] 一个 Excel 文件（经 media/upload 上传后以文件消息发送）"
    if d.msgtype == "update_template_card":
        return f"（卡片更新：按钮变为「{body.get('button', {}).get('replace_name', '')}」）"
    if d.msgtype == "template_card":
        card = body["template_card"]
        lines = [f"┌ [卡片] {card.get('main_title', {}).get('title', '')}"]
        if card.get("main_title", {}).get("desc"):
            lines.append(f"│ {card['main_title']['desc']}")
        if card.get("sub_title_text"):
            lines.append(f"│ {card['sub_title_text']}")
        for item in card.get("horizontal_content_list", []):
            url = f" <{item['url']}>" if item.get("url") else ""
            lines.append(f"│ {item.get('keyname')}：{item.get('value')}{url}")
        buttons = "  ".join(f"[{b['text']}]" for b in card.get("button_list", []))
        if buttons:
            lines.append(f"│ {buttons}")
        lines.append("└")
        return "\n".join(lines)
    return f"({d.msgtype})"


# The asset register the center imports (python -m bot import-assets 资产.csv), as the file reads.
ASSET_SHEET = """编号,类别,型号/配置,校区,存放地点,使用部门,使用人,状态,备注
PC-0301,计算机,联想启天M720 i5/8G/256G,本部,302机房,信息技术系,张伟,在用,教师机
PC-0302,计算机,联想启天M720 i5/8G/256G,本部,302机房,信息技术系,,在用,
PC-0303,计算机,联想启天M720 i5/8G/256G,本部,302机房,信息技术系,,在用,
TY-0201,投影仪,爱普生CB-X05,本部,201教室,,,在用,吊装
YX-0001,音响,JBL EON610,东湖,,,,在库,
"""

# ("import", file name, its content, expect): the command line imports the asset register |
# ("say", who, what they type, what the answers must contain) | ("click", who, button, expect) |
# ("group", who, what they @mention the robot with in a group, expect) |
# ("at", "HH:MM", "", expect): the clock moves to that time today (or "明天 HH:MM") and the scheduler runs |
# ("section", title, "", "")
SCRIPT: tuple[tuple[str, str, str, str], ...] = (
    ("section", "早上：值班任务（定时生成；完成要确认，逾期先提醒再报告主任；时钟由演示拨动）", "", ""),
    ("at", "07:40", "", "机房打扫"),
    ("click", "lihua", "完成", "已完成"),
    ("at", "12:10", "", "（UPS 检查）截止"),
    ("section", "通讯录：新来的技术员不用写进配置（从企业微信通讯录同步）", "", ""),
    ("directory", "wangfang", "王芳 信息技术系 技术员 电脑维修", "新加入 王芳（wangfang）"),
    ("say", "wangfang", "帮助", "报修"),
    ("section", "帮助与报修（技术员接单 → 完成，24 小时时限）", "", ""),
    ("say", "zhaolei", "帮助", "报修"),
    ("say", "zhaolei", "报修 地点:302教室 描述:投影仪开机没有画面", "编号 #"),
    ("click", "zhanglei", "接单", "已由技术员张磊接单"),
    ("say", "zhanglei", "完成 #1 更换投影灯泡，已恢复", "处理完成"),
    ("say", "majun", "報修 地點：機房B 設備：電腦", "描述"),  # Traditional characters, full-width colon
    ("say", "majun", "第三排5号机开不了机", "编号 #"),
    ("say", "zhangwei", "保修", "您是想“报修”吗"),
    ("say", "zhangwei", "报修 颜色:红", "格式不对"),
    ("say", "liyan", "报修", "在哪里"),
    # A slip of the command word while a question waits: asked, never written into the place.
    ("say", "liyan", "保修 地点:学前楼钢琴室 设备:音响 描述:左边音箱有杂音", "看起来是一条新的“报修”"),
    ("say", "liyan", "是", "编号 #"),
    ("say", "liyan", "报修", "在哪里"),
    ("say", "liyan", "取消", "已取消"),
    # Plain words, no command: offered as a 报修 with what was recognised, one tap to confirm.
    ("say", "hejun", "图书馆三楼电脑死机了", "您是要“报修”吗"),
    ("click", "hejun", "确认", "编号 #"),
    ("section", "调监控（学生相关：班主任 → 系主任 → 信息中心主管校长 → 监控室）", "", ""),
    (
        "say",
        "zhaolei",
        "调监控 地点:实训楼二楼走廊 时间:昨天 下午2点到3点 原因:学生手机丢失 类型:学生 班级:24级机电技术2班",
        "监控调取申请 #1",
    ),
    ("click", "liuna", "同意", "已同意·刘娜"),
    ("click", "songtao", "同意", "刘洋"),
    ("say", "lihua", "进度 申请 #1", "没有找到编号 #1 的申请"),  # confidential: others cannot see it
    ("click", "liuyang", "同意", "调取监控 #1"),
    ("click", "linxue", "登记交付", "调取人"),
    ("say", "linxue", "赵磊", "调取时间"),
    ("say", "linxue", "今天 10:30", "内容"),
    ("say", "linxue", "实训楼二楼走廊摄像头 14:00-15:00 录像", "交付方式"),
    ("say", "linxue", "现场查看", "交付方式：现场查看"),
    ("section", "领电脑（科室：科室负责人 → 主管副校长 → 校长 → 信息中心主任 → 发放 → 确认领取）", "", ""),
    ("say", "huangli", "领电脑 用途:办公 数量:1 配置:i5/16G/512G 装好Office", "计算机领取申请 #2"),
    ("say", "zhengmei", "同意 #2", "赵敏"),
    ("click", "zhaomin", "同意", "王建国"),
    ("click", "wangjianguo", "同意", "陈浩"),
    ("click", "chenhao", "同意", "发放电脑 #2"),
    ("say", "lihua", "发放 #2 资产号:XX-PC-0231", "确认领取 #2"),
    ("say", "huangli", "确认领取 #2", "已确认领取"),
    ("say", "huangli", "我的申请", "已通过"),
    ("section", "借舞台（冲突检测 → 中心主任审批；户外加主管副校长）", "", ""),
    (
        "say",
        "zhaolei",
        "借舞台 场地:本部礼堂 日期:明天 时间:下午2点到4点 活动:合唱排练 户外:否 校外:否 重大活动:否",
        "舞台使用申请 #3",
    ),
    (
        "say",
        "songtao",
        "借舞台 场地:本部礼堂 日期:明天 时间:15:00-17:00 活动:技能展示 户外:否 校外:否 重大活动:否",
        "最近的空闲时段",
    ),
    ("say", "songtao", "时间:16:00-18:00", "舞台使用申请 #4"),
    ("click", "chenhao", "同意", "已审批通过"),
    (
        "say",
        "songtao",
        "借舞台 场地:东湖校区舞台 日期:后天 时间:9:00-11:00 活动:运动会 户外:是 校外:否 重大活动:否",
        "信息中心主任 → 主管副校长",
    ),
    ("say", "chenhao", "同意 #5", "孙丽"),
    ("click", "sunli", "同意", "已审批通过"),
    ("section", "群聊里 @机器人（智能机器人；调监控等保密事项转私聊）", "", ""),
    ("group", "zhangwei", "报修 地点:实训楼201 设备:电脑 描述:教师机蓝屏", "报修已登记"),
    ("group", "zhangwei", "调监控 地点:实训楼201 原因:设备被挪动", "已转私聊处理"),
    ("say", "zhangwei", "取消", "已取消"),
    ("section", "投稿（文字、照片并行审核 → 平台编辑两版发布）", "", ""),
    (
        "say",
        "zhaolei",
        "投稿 标题:我校第十一届技能节开幕 正文:11月25日上午，我校第十一届技能节在本部礼堂开幕……",
        "已建稿 #1",
    ),
    ("say", "zhaolei", "提交", "审核中"),
    ("click", "huangli", "通过", "二次编辑发布 #1"),
    (
        "say",
        "zhouyan",
        "预览 #1 网站:https://www.school.edu.cn/preview/1 公众号:https://mp.weixin.qq.com/s/preview1",
        "网站版",
    ),
    ("say", "zhouyan", "发布 #1 网站 https://www.school.edu.cn/news/1", "还差：公众号"),
    ("say", "zhouyan", "发布 #1 公众号 https://mp.weixin.qq.com/s/1", "两个平台都已发布"),
    ("section", "音频课堂与新闻推送（领导批准后，到点推送到群；未批准的不推送）", "", ""),
    (
        "say",
        "zhangwei",
        "音频课堂 日期:今天 时间:19:30 标题:Excel 数据透视表入门 主讲:周燕 "
        "链接:https://example.edu.cn/audio/12 群:24级信息技术在校生群",
        "音频课堂推送申请",
    ),
    (
        "say",
        "liyan",
        "音频课堂 日期:今天 时间:20:00 标题:家庭教育十讲 主讲:李燕 链接:https://example.edu.cn/audio/13 群:24级家长群",
        "音频课堂推送申请",
    ),
    (
        "say",
        "zhouyan",
        "推送链接 日期:今天 标题:我校学子获省技能大赛一等奖 链接:https://www.school.edu.cn/news/1 受众:教职工、毕业生",
        "链接推送申请",
    ),
    ("say", "liuyang", "同意 #6", "已同意"),
    ("say", "liuyang", "同意 #7", "已同意"),
    ("say", "liuyang", "同意 #8", "已同意"),
    ("at", "18:05", "", "将推送《家庭教育十讲》"),
    # Staff group (app group) and graduates' group (group robot): at once. Students' and parents'
    # groups are customer groups (external): WeCom asks each group owner to confirm the mass send.
    ("at", "19:05", "", "推荐阅读"),
    ("confirm", "liyan", "", "[企业群发] 【今日音频课堂】家庭教育十讲"),  # the parents' group owner confirms
    # 周燕 never confirms the students' group: WeCom reminds her three times, the bot once, then
    # the mass send is withdrawn and the director told.
    ("at", "23:15", "", "群发没有发出"),
    ("section", "监控室（值班与交接班记录、留存录像；只增不改，写错了另记一条更正）", "", ""),
    ("say", "linxue", "接班 设备正常", "已接班：值班记录 #Z1"),
    (
        "say",
        "linxue",
        "留存录像 类型:打架 事件:两名学生在操场发生冲突 地点:操场北侧 时间:今天 21:10-21:30 存放:NAS-1 /留存/打架-01",
        "已登记留存录像：留存录像 #L1",
    ),
    ("say", "linxue", "交班 交接:设备正常，3号摄像头画面模糊已报修", "已交班：值班记录 #Z2"),
    ("say", "linxue", "更正 #Z2 交接:3号摄像头画面模糊已报修；东门夜间有施工车辆进出", "更正 值班记录 #Z2"),
    ("say", "linxue", "接班", "（已更正）"),  # the next shift reads the handover as corrected
    ("say", "chenhao", "值班记录", "已更正，见 #Z3"),
    ("say", "zhaolei", "留存记录", "只有监控室、信息中心主任可以使用"),
    ("section", "数字化校园培训与考核（培训通知 → 参加/请假 → 考核 → 成绩 → 补考 → 人资部量化名单）", "", ""),
    ("say", "sunyue", "培训通知 模块:办公OA 对象:信息技术系 时间:明天 14:30 地点:行政楼三楼会议室", "共通知 5 人"),
    ("click", "zhangwei", "参加", "已确认您参加"),
    ("click", "zhaolei", "请假", "请假原因"),
    ("say", "zhaolei", "外出参加技能大赛", "已为您请假"),
    ("say", "sunyue", "考核安排 模块:办公OA 时间:后天 9:30 地点:三楼机房", "考核通知"),
    ("say", "sunyue", "导入成绩 模块:办公OA 成绩单:\n张伟 85 90\n马军 58 70\n李四 60 60", "第 3 行：人员名单里没有"),
    ("say", "sunyue", "导入成绩 模块:办公OA 成绩单:\n张伟 85 90\n马军 58 70\n杨帆 75 80", "通过 2 人"),
    ("say", "sunyue", "补考安排 模块:办公OA 时间:下周三 9:30 地点:三楼机房", "补考通知"),
    ("say", "sunyue", "量化名单 模块:办公OA", "补考还没有举行"),  # the list waits for the make-up
    ("say", "majun", "我的培训", "补考 #3"),
    ("section", "活动服务（微课视频编辑部拍照摄像：安排有空的同事 → 活动前提醒 → 登记素材存放位置）", "", ""),
    (
        "say",
        "zhengmei",
        "活动服务 活动:德国职业教育考察团来访 地点:行政楼三楼会议室 日期:明天 时间:9:00-11:00 "
        "类型:拍照和摄像 联系人:郑梅 电话:13800001234",
        "已安排微课视频编辑部郭庆负责",
    ),
    ("click", "guoqing", "收到", "现场联系人 郑梅"),
    ("at", "明天 08:00", "", "提醒：活动服务 #1"),
    ("at", "明天 11:30", "", "交付 #1 存放:路径或网盘链接 照片:张数 视频:段数"),
    ("say", "guoqing", "交付 #1 存放:https://pan.school.edu.cn/s/kaocha 照片:86 视频:2", "照片 86 张，视频 2 段"),
    ("section", "舞台值守（舞台技术员接单 → 开始前提醒到场 → 活动后收场检查）", "", ""),
    (
        "say",
        "zhaolei",
        "借舞台 场地:本部报告厅 日期:明天 时间:10:00-11:00 活动:家长会 户外:否 校外:否 重大活动:否",
        "舞台使用申请",
    ),
    ("click", "chenhao", "同意", "已审批通过"),
    ("click", "zhanglei", "接单", "您已接单"),  # the stage technicians' claim card: first wins
    ("at", "明天 09:30", "", "30 分钟后开始"),
    ("at", "11:30", "", "收场检查"),
    ("click", "zhanglei", "1. 话筒电池取出", "还差"),
    ("click", "zhanglei", "2. 电源关闭", "还差"),
    ("click", "zhanglei", "3. 门已上锁", "还差：设备已擦拭"),
    ("click", "zhanglei", "确认收场", "未完成：设备已擦拭"),
    # A weekly rehearsal: every occurrence shown before confirming, one approval for the series.
    (
        "say",
        "majun",
        "借舞台 场地:东湖校区舞台 时间:每周五 16:00-17:30 共4次 活动:社团排练 户外:否 校外:否 重大活动:否",
        "每一次都空闲",
    ),
    ("say", "majun", "是", "已提交每周预约"),
    ("click", "chenhao", "同意", "已审批通过"),
    ("section", "微课（录制计划公示给教师，冲突拒绝；校外教师视频审核：重新录制 → 新版本通过）", "", ""),
    (
        "say",
        "sunyu",
        "微课计划 教师:张伟 课程:Python程序设计 主题:循环语句 时间:明天 10:00-10:40 地点:本部录播室",
        "已排期并公示给张伟老师",
    ),
    ("click", "zhangwei", "收到", "已确认"),
    ("say", "liting", "微课计划 教师:李燕 课程:幼儿歌曲 主题:律动 时间:明天 10:20 地点:本部录播室", "这个安排有冲突"),
    ("say", "liting", "取消", "已取消"),
    (
        "say",
        "sunyu",
        "微课投稿 教师:王芳（市实验幼儿园） 课程:幼儿心理学 主题:儿童注意力的发展 视频:https://pan.example.cn/s/abc123",
        "已登记为微课 #2",
    ),
    ("click", "liting", "重新录制", "请写重录意见"),
    ("say", "liting", "声音太小，后半段画面模糊", "已要求重新录制"),
    ("say", "sunyu", "微课重交 #2 视频:https://pan.example.cn/s/def456", "第2版"),
    ("click", "guoqing", "通过", "审核通过"),
    ("click", "sunyu", "已剪辑", "下一步：已转换格式"),
    ("section", "资产登记与财产盘查（表格导入 → 查资产 → 报修关联资产 → 盘点：一台找不到 → 差异清单给主任）", "", ""),
    ("import", "资产.csv", ASSET_SHEET, "5 件新登记"),
    ("say", "lihua", "资产 PC-0301", "使用人：张伟"),
    ("say", "zhangwei", "报修 地点:302机房 设备:电脑 描述:PC-0302 开机蓝屏", "该资产近一年第 1 次报修"),
    ("say", "chenhao", "开始盘点 本部", "盘点 #1"),
    ("click", "lihua", "PC-0301 在", "PC-0301：在位"),
    ("click", "lihua", "PC-0302 在", "PC-0302：在位"),
    ("say", "lihua", "盘点 #1 缺 PC-0303", "PC-0303：缺失"),
    ("say", "wangfang", "盘点 #1 在 XX-PC-0231 XX-PC-0232 XX-PJ-0107 XX-YX-0012", "XX-YX-0012：在位"),
    ("say", "zhanglei", "盘点 #1 在 TY-0201", "缺失 1 件"),  # the last one: the round ends by itself
    ("say", "chenhao", "资产 PC-0303", "盘点未找到"),
    ("section", "领投影仪（借用 → 按资产号发放 → 领取检查软硬件 → 归还 → 回收时发现人为损坏 → 维修单与追责）", "", ""),
    ("say", "huangli", "领投影仪 用途:临时借用 数量:1 配置:便携 带HDMI线 归还:后天", "投影仪领取申请已提交"),
    ("click", "zhengmei", "同意", "赵敏"),
    ("click", "zhaomin", "同意", "王建国"),
    ("click", "wangjianguo", "同意", "陈浩"),
    ("click", "chenhao", "同意", "发放投影仪 #14"),
    ("say", "zhanglei", "发放 #14 资产号:XX-PC-0231", "不是投影仪"),  # a computer, and already issued
    ("click", "zhanglei", "登记发放", "资产号"),
    ("say", "zhanglei", "XX-PJ-0107", "已登记申请 #14 的发放"),
    ("click", "huangli", "完好", "硬件、软件完好"),
    ("say", "huangli", "归还 #14", "已通知张磊"),
    ("say", "zhanglei", "回收 #14 损坏 镜头有裂痕", "人为损坏：XX-PJ-0107 镜头有裂痕（报修 #"),
    ("say", "zhanglei", "追责 #14 200", "赔偿金额 200 元"),
    ("click", "huangli", "接受", "已记录：您接受"),
    ("say", "zhanglei", "追责 #14 已付", "已付清"),
    ("say", "chenhao", "借出清单", "XX-PC-0231 · 黄丽（校长办公室）"),
    (
        "section",
        "微机室（上机登记：每个机位一行、每节课一行，异常机位自动报修；违纪登记；外来人员须管理员批准）",
        "",
        "",
    ),
    ("say", "zhaolei", "上机登记 微机室1 第3节 24级计算机应用1班 座位1-40 正常 12号异常 键盘失灵", "已报修 #"),
    ("say", "zhaolei", "违纪登记 微机室1 第3节 张三 15号 玩游戏 处理:扣2分，课后谈话", "已登记违纪 #1"),
    ("say", "zhaolei", "外来人员 微机室1 王明 兄弟学校来访参观", "等待李华审批"),
    ("click", "lihua", "批准", "请安排或指定人员陪同"),
    ("section", "登记表（平台人员登记点击统计，重登即更正；主任在聊天里导出登记表，收到 Excel 文件）", "", ""),
    ("say", "zhouyan", "点击统计 网站 本月 浏览量12000 访客3400", "已登记点击统计"),
    ("say", "zhouyan", "点击统计 网站 本月 浏览量12500 访客3400", "更正"),
    ("say", "zhouyan", "点击统计 公众号 本周 阅读8000 阅读人数2100 新增关注120", "已登记点击统计"),
    ("say", "zhaolei", "导出 维修", "只有"),
    ("say", "chenhao", "导出 维修 本月", "[文件]"),
    (
        "section",
        "工作报告（主任随时要本周报告：报修、任务、服务、投稿、推送、培训、资产，附图表和 Excel；每周一自动发送）",
        "",
        "",
    ),
    ("say", "chenhao", "报告 本周", "周报"),
)

# The center's numbered equipment the demo issues (资产登记). Kept in one small function until the
# demo imports the asset register from a spreadsheet: then that import replaces it.
DEMO_ASSETS = (
    ("XX-PC-0231", "computer", "联想 启天 M437 i5/16G/512G"),
    ("XX-PC-0232", "computer", "联想 启天 M437 i5/16G/512G"),
    ("XX-PJ-0107", "projector", "爱普生 CB-X06 便携投影仪"),
    ("XX-YX-0012", "speaker", "JBL EON710 便携音箱"),
)


async def register_demo_assets(app: web.Application, at: datetime) -> None:
    async with app[PIPELINE].sessions() as s, s.begin():
        for number, kind, model in DEMO_ASSETS:
            await asset_store.register(
                s, number=number, kind=kind, actor="import", at=at, model=model, campus="main", location="信息中心库房"
            )


class Transcript:
    """Prints who said what and what each person (or group) received."""

    def __init__(self, emulator: Emulator, config: Config) -> None:
        self.emulator = emulator
        self.names = {p.userid: p.name for p in config.people}
        self.names.update({g.chat_id: f"群「{g.name}」" for g in config.groups})
        # A group robot's deliveries are addressed by its key (a secret): show the group instead.
        self.names.update({g.webhook_key.get_secret_value(): f"群「{g.name}」" for g in config.groups if g.webhook_key})
        self.seen = 0
        self.pending: list[str] = []  # what a command-line step printed, checked like a reply

    def said(self, userid: str, text: str, where: str = "") -> None:
        print(f"\n{self.names.get(userid, userid)}（{userid}）{where}：{text}")

    def note(self, text: str) -> None:
        print(f"  ※ {text}")

    def flush(self, only: set[str] | None = None) -> list[str]:
        """Print what arrived since the last flush (to `only` these people, when given); return it."""
        new = self.emulator.delivered[self.seen :]
        self.seen = len(self.emulator.delivered)
        out, self.pending = self.pending, []
        if only is not None and len([d for d in new if d.to.split(":", 1)[1] not in only]):
            self.note("时钟拨到第二天：只列出本节相关人员收到的消息（其他提醒略）")
        for d in new:
            kind, who = d.to.split(":", 1)
            if only is not None and who not in only:
                continue
            label = "群聊（机器人回复）" if kind == "robot" else self.names.get(who, who)
            text = draw(d, self.names)
            print(f"  → {label} 收到：")
            print(textwrap.indent(text, "      "))
            out.append(text)
        return out


@dataclass
class Demo:
    http: aiohttp.ClientSession
    bot_url: str
    app: web.Application
    clock: FakeClock
    sender: CallbackSender
    robot: RobotSender
    t: Transcript

    async def settle(self) -> None:
        """Wait until the bot has applied every message it answered and its outbox has nothing pending."""
        for _ in range(400):
            async with self.http.get(f"{self.bot_url}/healthz") as resp:
                health = await resp.json()
            if health["inbound"]["pending"] == 0 and health["outbox"]["pending"] == 0:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("the outbox did not drain")

    async def holiday(self) -> bool:
        return await _holiday(self)

    async def step(self, kind: str, who: str, text: str) -> int:
        """Play one step; return the HTTP status the bot answered (200 for scheduler steps)."""
        if kind == "say":
            self.t.said(who, text)
            status = (await self.sender.text(who, text)).status
        elif kind == "click":
            cards = [d.body["template_card"] for d in self.t.emulator.messages_to(who) if d.msgtype == "template_card"]
            card = next(c for c in reversed(cards) if any(b["text"] == text for b in c.get("button_list", [])))
            key = next(b["key"] for b in card["button_list"] if b["text"] == text)
            print(f"\n{self.t.names.get(who, who)}（{who}）：点击卡片「{card['main_title']['title']}」的 [{text}]")
            code = self.t.emulator.issue_click_code(card["task_id"], who)
            status = (await self.sender.card_click(who, card["task_id"], key, code)).status
        elif kind == "group":
            self.t.said(who, f"@信息中心助手 {text}", where="在群「信息技术组教师群」")
            status = (
                await self.robot.mention(who, text, self.t.emulator.new_response_url(), chat_id="itteachers2024")
            ).status
        elif kind == "directory":  # someone joins WeCom's directory; the bot syncs it
            name, department, *tags = text.split()
            print(f"\n[企业微信通讯录] {name}（{who}）加入{department}，标签：{'、'.join(tags)}；机器人同步通讯录")
            self.t.emulator.directory.add(who, name, department, tags=tuple(tags))
            if self.t.emulator.known_users is not None:
                self.t.emulator.known_users.add(who)
            await sync_directory(self.app[PIPELINE], self.app[API])
            self.t.names[who] = name
            status = 200
        elif kind == "import":  # what `python -m bot import-assets FILE` does, on the demo's database
            print(f"\n[命令行] python -m bot import-assets {who} --config config.toml（{who}：）")
            print(textwrap.indent(text.strip(), "      "))
            result = await import_sheet(self.app[PIPELINE], who, text.encode())
            print(f"  → {result}")
            self.t.pending.append(result)
            status = 200
        elif kind == "confirm":  # a customer group's owner taps 发送 in WeCom (the emulator's endpoint)
            print(f"\n{self.t.names.get(who, who)}（{who}）：在企业微信里确认发送企业群发")
            async with self.http.post(
                f"{self.t.emulator.base_url}/emulator/groupmsg/confirm", json={"sender": who}
            ) as resp:
                status = resp.status
        else:  # "at": move the (demo) clock to HH:MM today (or 明天 HH:MM), the scheduler running as it goes
            day, _, hhmm = who.rpartition(" ")
            hh, mm = (int(x) for x in hhmm.split(":"))
            target = self.clock.now().astimezone(SHANGHAI).replace(hour=hh, minute=mm, second=0)
            target += timedelta(days=1 if day == "明天" else 0)
            print(f"\n[时钟] {who}")
            while True:  # in steps of at most 10 minutes, as the scheduler's ticks would see it
                step = min(600.0, (target - self.clock.now()).total_seconds())
                if step > 0:
                    self.clock.advance(step)
                for _ in range(2):  # a timer, the call it queues, the timer WeCom's answer fires
                    await self.app[TIMERS].tick()
                    await self.settle()
                if step <= 0 or self.clock.now() >= target:
                    break
            status = 200
        await self.settle()
        return status


async def import_sheet(pipeline: Pipeline, filename: str, content: bytes) -> str:
    """Import an asset sheet as the command line does (all rows or none); what it reports."""
    inbound = Inbound(kind="cli", msg_type="cli", from_user="import", create_time=int(pipeline.clock.now().timestamp()))
    async with pipeline.sessions() as s, s.begin():
        ctx = pipeline.ctx(s, inbound, None)
        try:
            counts = await import_assets(ctx, filename, content, ctx.now())
        except AssetImportRejected as bad:
            return f"没有导入：{asset_problems(ctx, bad.problems).strip()}"
    return f"{counts['new']} 件新登记，{counts['updated']} 件更新，{counts['same']} 件没有变化"


async def _holiday(demo: Demo) -> bool:
    """Jump to the next weekday with no school (a holiday, or the vacation), 07:00 to 10:30: the
    school-day duty (机房打扫 at 07:25) is not created, the every-day one (UPS 检查 at 10:00) is."""
    calendar = demo.app[PIPELINE].config.calendar
    day = demo.clock.now().astimezone(SHANGHAI).date() + timedelta(days=1)
    while day.weekday() >= 5 or calendar.runs_on("school_days", day):
        day += timedelta(days=1)
    why = "节假日" if calendar.holiday(day) else "假期"
    start = datetime.combine(day, time(7), SHANGHAI)
    demo.clock.advance((start - demo.clock.now()).total_seconds())
    for _ in range(2):  # what came due meanwhile (reminders, sweeps) is not part of this scene
        await demo.app[TIMERS].tick()
        await demo.settle()
    demo.t.seen = len(demo.t.emulator.delivered)
    print(f"\n[时钟] 跳到 {day:%Y-%m-%d}（{WEEKDAYS[day.weekday()]}，校历上是{why}）07:00，一直走到 10:30")
    hh, mm = 10, 30
    while demo.clock.now() < start.replace(hour=hh, minute=mm):
        demo.clock.advance(600)
        await demo.app[TIMERS].tick()
        await demo.settle()
    new = demo.t.emulator.delivered[demo.t.seen :]
    demo.t.seen = len(demo.t.emulator.delivered)
    titles = sorted(
        {
            d.body["template_card"]["main_title"]["title"].split(" · ", 1)[-1]
            for d in new
            if d.msgtype == "template_card" and "任务 #T" in d.body["template_card"]["main_title"]["title"]
        }
    )
    print(f"  这天生成的值班任务：{'、'.join(titles) or '（无）'}")
    ok = "UPS 检查" in titles and "机房打扫" not in titles
    demo.t.note("机房打扫（上课日）没有生成；UPS 检查（每天）照常生成" if ok else "节假日的值班任务不符合预期")
    return ok


WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


def demo_day(today: date, calendar: CalendarConfig | None = None) -> date:
    """The school day the demo plays: today when it is one, else the next.

    The script expects school-day duties (the 07:25 room cleaning runs mon-fri on school days),
    so the demo must not take the machine's date as it is: a weekend, a holiday or a vacation day
    (by the example's school calendar, when given) moves it to the next school day.
    """
    day = today
    for _ in range(400):
        if day.weekday() < 5 if calendar is None else calendar.runs_on("school_days", day):
            return day
        day += timedelta(days=1)
    return today + timedelta(days=(7 - today.weekday()) % 7 if today.weekday() >= 5 else 0)


def keep_config(directory: Path, api_base: str) -> Path:
    """`DIR/config.toml`: the example organisation on the demo's database, for every command's
    `--config` (export, backup, outbox …); WeCom points at the (stopped) emulator."""
    text = EXAMPLE.read_text(encoding="utf-8")
    db = (directory / "demo.db").resolve()
    text = text.replace('api_base = "https://qyapi.weixin.qq.com"', f'api_base = "{api_base}"', 1)
    text = text.replace('url = "sqlite+aiosqlite:///infodesk.db"', f'url = "sqlite+aiosqlite:///{db.as_posix()}"', 1)
    path = directory / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def run_demo(verbose: bool = False, today: date | None = None, keep: Path | None = None) -> int:
    """Play the script; return 0 when every step behaved as expected.

    `today` is the wall-clock date to start from (the machine's, in Shanghai, by default); the
    demo itself runs on a fake clock set to 07:00 of `demo_day(today)` and moved by the script.
    """
    setup_logging("INFO" if verbose else "CRITICAL")
    if not verbose:
        logging.getLogger().setLevel(logging.CRITICAL)
    example = parse_config(tomllib.loads(EXAMPLE.read_text(encoding="utf-8")), environ={})
    day = demo_day(today or datetime.now(SHANGHAI).date(), example.calendar)
    clock = FakeClock(datetime.combine(day, time(7, 0), SHANGHAI).astimezone(UTC))
    emulator = Emulator(clock=lambda: clock.now().timestamp())
    with contextlib.ExitStack() as stack:
        tmp = (
            str(keep) if keep is not None else stack.enter_context(tempfile.TemporaryDirectory(prefix="infodesk-demo-"))
        )
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for old in keep.glob("demo.db*"):  # a fresh day each time
                old.unlink()
        api_base = await emulator.start()
        config = demo_config(api_base, str(Path(tmp) / "demo.db"))
        emulator.corp_id = config.wecom.corp_id
        emulator.secret = config.wecom.secret.get_secret_value()
        emulator.agent_id = config.wecom.agent_id
        emulator.known_users = {p.userid for p in config.people}
        emulator.webhook_keys = {g.webhook_key.get_secret_value() for g in config.groups if g.webhook_key}
        for g in config.groups:  # the groups the app created when it was set up
            if g.channel == "appchat":
                emulator.chats[g.chat_id] = {
                    "chatid": g.chat_id,
                    "name": g.name,
                    "owner": g.admins[0],
                    "userlist": list(g.admins),
                    "visible": True,
                }
            elif g.channel == "customer_group" and g.owner:  # the owners' customer groups
                emulator.customer.add(g.chat_id, g.name, g.owner)
        app = create_app(config, clock=clock, run_jobs=True)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        # WeCom's directory lists the organisation; the bot reads it once before the day starts.
        units = {u.key: u.name for u in config.units}
        for p in config.people:
            emulator.directory.add(p.userid, p.name, units[p.unit])
        await sync_directory(app[PIPELINE], app[API])
        await register_demo_assets(app, clock.now())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        bot_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            async with aiohttp.ClientSession() as http:
                stamp = lambda: clock.now().timestamp()  # noqa: E731
                sender = CallbackSender(
                    http,
                    bot_url + config.server.callback_path,
                    token=config.wecom.token.get_secret_value(),
                    encoding_aes_key=config.wecom.encoding_aes_key.get_secret_value(),
                    corp_id=config.wecom.corp_id,
                    agent_id=config.wecom.agent_id,
                    clock=stamp,
                )
                assert config.robot is not None
                robot = RobotSender(
                    http,
                    bot_url + config.server.robot_path,
                    token=config.robot.token.get_secret_value(),
                    encoding_aes_key=config.robot.encoding_aes_key.get_secret_value(),
                    clock=stamp,
                )
                demo = Demo(http, bot_url, app, clock, sender, robot, Transcript(emulator, config))
                result = await _script(demo)
        finally:
            await runner.cleanup()
            await emulator.stop()
        if keep is not None:
            print(f"\n数据库与配置已保留：{keep_config(keep, api_base)}（其他命令用 --config 指向它）")
        return result


async def _script(demo: Demo) -> int:
    t = demo.t
    print("Infodesk 演示：机器人与企业微信模拟器在本机回环地址上运行，所有消息经真实 HTTP 加密回调。")
    verified = await demo.sender.verify_url("demo-echo-20261125")
    print(f"\n[管理后台] 校验回调 URL → HTTP {verified.status}，回显 {verified.text!r}")
    failures = 0 if verified.text == "demo-echo-20261125" else 1
    people: set[str] = set()  # who spoke in this section: a move to the next day shows only them
    for kind, who, text, expect in SCRIPT:
        if kind == "section":
            print(f"\n━━ {who} ━━")
            people = set()
            continue
        people |= {who} if kind in ("say", "click") else set()
        status = await demo.step(kind, who, text)
        got = t.flush(only=people if kind == "at" and who.startswith("明天") else None)
        if status != 200 or not any(expect in g for g in got):
            t.note(f"预期回复中含“{expect}”，实际 HTTP {status}")
            failures += 1

    print("\n━━ 校历：节假日不上课，“上课日”的值班任务不生成 ━━")
    failures += 0 if await demo.holiday() else 1

    print("\n━━ 可靠性 ━━")
    t.said("liyan", "报修 地点:南岸校区图书馆 设备:网络 描述:无线网连不上")
    xml, _ = demo.sender.text_xml("liyan", "报修 地点:南岸校区图书馆 设备:网络 描述:无线网连不上")
    query, body = demo.sender.envelope(xml)
    statuses = [(await demo.sender.post_raw(query, body)).status for _ in range(3)]
    await demo.settle()
    t.note(f"企业微信超时重试：同一回调投递 3 次（HTTP {statuses}），只处理一次")
    before = t.seen
    t.flush()
    failures += 0 if len([d for d in t.emulator.delivered[before:] if d.to == "user:liyan"]) == 1 else 1
    forged = await demo.sender.post_raw({**query, "msg_signature": "0" * 40}, body)
    t.note(f"伪造签名的回调 → HTTP {forged.status}，什么也没改变")
    failures += 0 if forged.status == 403 else 1

    async with demo.http.get(f"{demo.bot_url}/healthz") as resp:
        health = await resp.json()
    print(
        f"\n[运维] GET /healthz → 数据库 {health['database']}，待发 {health['outbox']['pending']}，"
        f"已发 {health['outbox']['sent']}，失败 {health['outbox']['failed']}"
    )
    print("\n演示结束。" if not failures else f"\n演示有 {failures} 步不符合预期。")
    return 0 if not failures else 1
