"""Every user-facing text comes from a Jinja2 template under bot/templates (zh-CN)."""

from __future__ import annotations

from typing import Any

from jinja2 import PackageLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment


class Renderer:
    """A sandboxed, strict-undefined template environment; a missing variable is an error."""

    def __init__(self) -> None:
        self._env = SandboxedEnvironment(
            loader=PackageLoader("bot", "templates"),
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def text(self, name: str, /, **context: Any) -> str:
        """Render `templates/<name>.j2`."""
        return self._env.get_template(f"{name}.j2").render(**context).strip()

    def block(self, name: str, block: str, /, **context: Any) -> str | None:
        """Render one `{% block %}` of `templates/<name>.j2`, or None if it has no such block."""
        tmpl = self._env.get_template(f"{name}.j2")
        fn = tmpl.blocks.get(block)
        if fn is None:
            return None
        return "".join(fn(tmpl.new_context(dict(context)))).strip()
