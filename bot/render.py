"""Every user-facing text comes from a Jinja2 template (zh-CN).

The kernel's own texts (asking for a field, malformed input, apologies, shared card labels) are
in `bot/templates`; each workflow keeps its texts in its router's template folder. All folders
form one namespace: a name found in two folders is an error at start, so a workflow can never
silently shadow another's text.

Rendering is deterministic (the sandbox offers no clock and no randomness a template uses), so a
text rendered once for the same values of the variables its template can see is kept and reused:
帮助 alone renders about seventy blocks per message, nearly all the same for the same reader.
Templates are read once at start (no file check per render: a changed template needs a restart).
"""

from __future__ import annotations

import datetime
import decimal
import enum
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader, PackageLoader, StrictUndefined, Template, meta
from jinja2.sandbox import SandboxedEnvironment

# Values a memo key may hold: plain data whose equality says the rendering is the same.
_SCALARS = (int, float, bool, type(None), datetime.date, datetime.time, datetime.timedelta, decimal.Decimal, enum.Enum)
MEMO_SIZE = 8192  # rendered texts kept; the memo starts afresh when full


class _Unkeyable(Exception):
    """A value that is not plain data: render it, do not memoise."""


def _freeze(value: Any) -> Any:
    if type(value) is str:
        return value
    if isinstance(value, str):  # a str subclass (StrEnum) renders as itself: keep its type
        return (type(value), str(value))
    if isinstance(value, _SCALARS):
        return (type(value), value)  # 1, 1.0 and True are equal, yet render differently
    if isinstance(value, list | tuple):
        return (type(value), tuple(_freeze(v) for v in value))
    if isinstance(value, dict):
        return (dict, tuple((_freeze(k), _freeze(v)) for k, v in value.items()))
    raise _Unkeyable


_MISSING = object()


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
            auto_reload=False,
        )
        self._templates: dict[str, Template] = {}
        self._seen: dict[str, tuple[str, ...] | None] = {}  # template → the variables it can see
        self._memo: dict[tuple[Any, ...], str | None] = {}

    def _template(self, file: str) -> Template:
        tmpl = self._templates.get(file)
        if tmpl is None:
            tmpl = self._templates[file] = self._env.get_template(file)
        return tmpl

    def _variables(self, file: str) -> tuple[str, ...] | None:
        """The context variables `file` and the templates it extends, includes or imports read;
        None when it names a template by a variable (then nothing is memoised)."""
        if file in self._seen:
            return self._seen[file]
        names: set[str] = set()
        todo, done = [file], set()
        found: tuple[str, ...] | None = None
        while todo:
            name = todo.pop()
            if name in done:
                continue
            done.add(name)
            assert self._env.loader is not None
            source = self._env.loader.get_source(self._env, name)[0]
            ast = self._env.parse(source)
            names |= meta.find_undeclared_variables(ast)
            refs = list(meta.find_referenced_templates(ast))
            if any(r is None for r in refs):
                break
            todo.extend(r for r in refs if r is not None)
        else:
            found = tuple(sorted(names))
        self._seen[file] = found
        return found

    def _key(self, file: str, block: str | None, context: dict[str, Any]) -> tuple[Any, ...] | None:
        names = self._variables(file)
        if names is None:
            return None
        try:
            return (file, block, *(_freeze(context[n]) if n in context else _MISSING for n in names))
        except _Unkeyable:
            return None

    def _remember(self, key: tuple[Any, ...] | None, text: str | None) -> str | None:
        if key is not None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = text
        return text

    def text(self, name: str, /, **context: Any) -> str:
        """Render `<name>.j2`."""
        file = f"{name}.j2"
        key = self._key(file, None, context)
        if key is not None and (hit := self._memo.get(key)) is not None:
            return hit
        text = self._template(file).render(**context).strip()
        self._remember(key, text)
        return text

    def block(self, name: str, block: str, /, **context: Any) -> str | None:
        """Render one `{% block %}` of `<name>.j2`, or None if it has no such block."""
        file = f"{name}.j2"
        tmpl = self._template(file)
        fn = tmpl.blocks.get(block)
        if fn is None:
            return None
        key = self._key(file, block, context)
        if key is not None and (hit := self._memo.get(key)) is not None:
            return hit
        return self._remember(key, "".join(fn(tmpl.new_context(dict(context)))).strip())
