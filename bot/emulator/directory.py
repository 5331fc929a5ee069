"""WeCom's directory (通讯录) in the emulator: departments, members and tags.

Serves `department/list` (with each department's leaders, `department_leader`),
`user/list?department_id=` (the members directly in that department), `tag/list` and
`tag/get?tagid=`, in WeCom's shapes. Member status: 1 active, 2 disabled,
4 not yet activated, 5 quit (a member who quit is simply no longer listed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Member:
    userid: str
    name: str
    departments: list[int]
    status: int = 1
    tags: list[str] = field(default_factory=list)


class Directory:
    def __init__(self) -> None:
        self.departments: dict[int, tuple[str, int]] = {1: ("学校", 0)}  # id -> (name, parent)
        self.members: dict[str, Member] = {}
        self.leaders: dict[int, list[str]] = {}  # department id -> its leaders' userids (部门负责人)

    def department(self, name: str, parent: int = 1) -> int:
        """The id of the department called `name`, created under `parent` if new."""
        for i, (n, _) in self.departments.items():
            if n == name:
                return i
        new = max(self.departments) + 1
        self.departments[new] = (name, parent)
        return new

    def add(self, userid: str, name: str, department: str, tags: tuple[str, ...] = ()) -> None:
        self.members[userid] = Member(userid, name, [self.department(department)], tags=list(tags))

    def lead(self, department: str, *userids: str) -> None:
        """Make these members the leaders of `department`, in this order (none: no leader)."""
        self.leaders[self.department(department)] = list(userids)

    def leave(self, userid: str) -> None:
        self.members.pop(userid, None)
        for leaders in self.leaders.values():  # WeCom drops a leaver from the leaders too
            if userid in leaders:
                leaders.remove(userid)

    def disable(self, userid: str) -> None:
        self.members[userid].status = 2

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/cgi-bin/department/list", self._department_list),
            ("GET", "/cgi-bin/user/list", self._user_list),
            ("GET", "/cgi-bin/tag/list", self._tag_list),
            ("GET", "/cgi-bin/tag/get", self._tag_get),
        ]

    def _tags(self) -> list[str]:
        return sorted({t for m in self.members.values() for t in m.tags})

    async def _department_list(self, request: web.Request) -> dict[str, Any]:
        rows = [
            {"id": i, "name": n, "parentid": p, "order": i, "department_leader": list(self.leaders.get(i, []))}
            for i, (n, p) in sorted(self.departments.items())
        ]
        return {"errcode": 0, "errmsg": "ok", "department": rows}

    async def _user_list(self, request: web.Request) -> dict[str, Any]:
        try:
            department = int(request.query.get("department_id", ""))
        except ValueError:
            return {"errcode": 40009, "errmsg": "invalid department_id"}
        if department not in self.departments:
            return {"errcode": 60003, "errmsg": "department not found"}
        rows = [
            {
                "userid": m.userid,
                "name": m.name,
                "department": m.departments,
                "main_department": m.departments[0],
                "status": m.status,
            }
            for m in self.members.values()
            if department in m.departments
        ]
        return {"errcode": 0, "errmsg": "ok", "userlist": rows}

    async def _tag_list(self, request: web.Request) -> dict[str, Any]:
        return {
            "errcode": 0,
            "errmsg": "ok",
            "taglist": [{"tagid": i + 1, "tagname": t} for i, t in enumerate(self._tags())],
        }

    async def _tag_get(self, request: web.Request) -> dict[str, Any]:
        tags = self._tags()
        try:
            name = tags[int(request.query.get("tagid", "")) - 1]
        except (ValueError, IndexError):
            return {"errcode": 40068, "errmsg": "invalid tagid"}
        users = [{"userid": m.userid, "name": m.name} for m in self.members.values() if name in m.tags]
        return {"errcode": 0, "errmsg": "ok", "tagname": name, "userlist": users, "partylist": []}
