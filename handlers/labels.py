"""A workflow's display words, from its `labels_<workflow>.j2`.

What the bot *says* about a stored value lives in templates: the Chinese name of an enum value
(`kind_student` → 学生), the row labels of its cards (`row_location` → 地点), its approval title,
the names of its request stages, small formats (`count` → 2台) and the cells of its register.
What the bot *understands* (aliases, synonyms, field labels) stays as data in the module.

    LABELS = Labels("labels_footage", kind=FootageKind, stage=FootageStage)
    LABELS(ctx, "row_location")                  # one block, rendered with keyword context
    LABELS.name(ctx, "kind", FootageKind.STUDENT)  # the block `kind_student`

Every value given as `prefix=values` (an enum, or any iterable of strings) has a block
`<prefix>_<value>` (tests check it), so a new member without a name fails the suite rather than
a user's message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from bot.render import Renderer


class HasRenderer(Protocol):
    @property
    def renderer(self) -> Renderer: ...


class Labels:
    """The blocks of one labels template; a block that is missing is an error, never a blank."""

    def __init__(self, template: str, **names: Iterable[str]) -> None:
        self.template = template
        # block prefix → the values (an enum's members) that each have a block `<prefix>_<value>`
        self.names: dict[str, tuple[str, ...]] = {p: tuple(str(v) for v in vs) for p, vs in names.items()}

    def __call__(self, ctx: HasRenderer | Renderer, block: str, /, **context: Any) -> str:
        renderer = ctx if isinstance(ctx, Renderer) else ctx.renderer
        text = renderer.block(self.template, block, **context)
        if text is None:
            raise LookupError(f"{self.template}.j2 has no block {block!r}")
        return text

    def name(self, ctx: HasRenderer | Renderer, prefix: str, value: str, /) -> str:
        """The display name of a stored value (an enum member, or one of the declared strings)."""
        if str(value) not in self.names.get(prefix, ()):
            raise LookupError(f"{self.template}: {value!r} is not a known {prefix}")
        return self(ctx, f"{prefix}_{value}")

    def show(self, prefix: str) -> Callable[[str, Any], str]:
        """A `Field.show` that reads a parsed value back by its display name (用途=临时借用)."""
        return lambda value, ctx: self.name(ctx, prefix, value)
