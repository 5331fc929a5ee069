"""Every user-facing text comes from a Jinja2 template (zh-CN).

The kernel's own texts (asking for a field, malformed input, apologies, shared card labels) are
in `bot/templates`; each workflow keeps its texts in its router's template folder. All folders
form one namespace: a name found in two folders is an error at start, so a workflow can never
silently shadow another's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader, PackageLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment


class Renderer:
    """A sandboxed, strict-undefined template environment; a missing variable is an error."""

    def __init__(self, dirs: Sequence[Path] = ()) -> None:
        loaders: list[BaseLoader] = [PackageLoader("bot", "templates"), *(FileSystemLoader(str(d)) for d in dirs)]
        owner: dict[str, str] = {}
        for loader, where in zip(loaders, ["bot/templates", *map(str, dirs)], strict=True):
            for name in loader.list_templates():
                if name in owner:
                    raise ValueError(f"template {name!r} is in both {owner[name]} and {where}")
                owner[name] = where
        self.names = frozenset(owner)
        self._env = SandboxedEnvironment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def text(self, name: str, /, **context: Any) -> str:
        """Render `<name>.j2`."""
        return self._env.get_template(f"{name}.j2").render(**context).strip()

    def block(self, name: str, block: str, /, **context: Any) -> str | None:
        """Render one `{% block %}` of `<name>.j2`, or None if it has no such block."""
        tmpl = self._env.get_template(f"{name}.j2")
        fn = tmpl.blocks.get(block)
        if fn is None:
            return None
        return "".join(fn(tmpl.new_context(dict(context)))).strip()
