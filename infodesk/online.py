"""What only WeCom can tell: `check-config --online` and `create-groups`.

`check_online` asks the API whether the configuration matches the corp: the credentials give a
token; every customer group's chat id is a customer group WeCom knows (`externalcontact/groupchat/
get`) whose owner is the configured owner (the mass sends are theirs to confirm); every app group
exists (`appchat/get`). Each problem names the group.

`create_groups` creates the configured app groups that do not exist yet, sends each new group its
first message (a new app group shows in no client until then, doc 90245), adds configured admins
missing from an existing group (`appchat/update`), and reports what it did and what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.config import Config, ManagedGroup
from bot.wecom_api import WeComAPI, WeComError


@dataclass
class Report:
    done: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _label(g: ManagedGroup) -> str:
    return f"群「{g.name}」（{g.chat_id}）"


async def check_online(cfg: Config, api: WeComAPI) -> Report:
    report = Report()
    try:
        await api.access_token()
    except WeComError as exc:
        report.problems.append(f"企业微信凭据：取不到 access_token（{exc}）；请核对 corp_id、secret 与企业可信 IP")
        return report
    report.done.append("企业微信凭据：可以取得 access_token")
    for g in cfg.groups:
        if g.channel == "customer_group":
            try:
                info = await api.externalcontact("groupchat/get", {"chat_id": g.chat_id, "need_name": 1})
            except WeComError as exc:
                report.problems.append(f"{_label(g)}：企业微信里没有这个客户群，或应用没有客户联系权限（{exc}）")
                continue
            owner = (info.get("group_chat") or {}).get("owner")
            if owner != g.owner:
                report.problems.append(
                    f"{_label(g)}：群主是 {owner}，配置里写的是 {g.owner}；企业群发只能由群主确认，请改 owner"
                )
            else:
                report.done.append(f"{_label(g)}：客户群存在，群主 {owner}")
        elif g.channel == "appchat":
            try:
                await api.appchat_get(g.chat_id)
                report.done.append(f"{_label(g)}：应用群存在")
            except WeComError as exc:
                report.problems.append(f"{_label(g)}：应用群不存在，请运行 python -m bot create-groups（{exc}）")
    return report


async def create_groups(cfg: Config, api: WeComAPI, first_message: str) -> Report:
    report = Report()
    for g in (g for g in cfg.groups if g.channel == "appchat"):
        members = list(dict.fromkeys(g.admins))
        try:
            chat = (await api.appchat_get(g.chat_id)).get("chat_info") or {}
        except WeComError as exc:
            if exc.transient:
                report.problems.append(f"{_label(g)}：企业微信暂时连不上（{exc}），请稍后再试")
                continue
            chat = None
        if chat is not None:
            missing = [u for u in members if u not in (chat.get("userlist") or [])]
            if not missing:
                report.done.append(f"{_label(g)}：已存在")
                continue
            try:
                await api.appchat_update({"chatid": g.chat_id, "add_user_list": missing})
                report.done.append(f"{_label(g)}：已存在，补加管理员 {'、'.join(missing)}")
            except WeComError as exc:
                report.problems.append(f"{_label(g)}：补加管理员 {'、'.join(missing)} 失败（{exc}）")
            continue
        if len(members) < 2:
            report.problems.append(f"{_label(g)}：群聊至少要 2 名成员，请在 [[groups]] 的 admins 里再加一人")
            continue
        try:
            await api.appchat_create(
                {"name": g.name[:50], "owner": members[0], "userlist": members, "chatid": g.chat_id}
            )
        except WeComError as exc:
            report.problems.append(f"{_label(g)}：没能创建（{exc}）")
            continue
        try:
            # A new group is invisible in every client until its first message (doc 90245).
            await api.appchat_send({"chatid": g.chat_id, "msgtype": "text", "text": {"content": first_message}})
            report.done.append(f"{_label(g)}：已创建（{len(members)} 人）并发出第一条消息；其他成员请在企业微信里拉入")
        except WeComError as exc:
            report.problems.append(
                f"{_label(g)}：已创建，但第一条消息没发出（{exc}）；群在客户端里要等第一次推送后才看得到"
            )
    return report
