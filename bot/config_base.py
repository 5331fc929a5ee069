"""Shared pieces of the configuration schema: roles, skills, strict models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

ROLES = (
    "director",
    "technician",
    "cctv_operator",
    "platform_editor",
    "publicity_reviewer",
    "photo_reviewer",
    "video_editor",  # 微课视频编辑部: photographs and films activities (W9), records micro-lessons
    "class_teacher",
    "dept_head",
    "dept_deputy",
    "office_lead",
    "vp_supervising",
    "vp_campus",
    "vp_info_center",
    "principal",
    "committee",
    "group_admin",
    "sysadmin",
)
SKILLS = ("computer", "projector", "stage", "cctv", "network")
Role = Literal[ROLES]  # type: ignore[valid-type]
Skill = Literal[SKILLS]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
