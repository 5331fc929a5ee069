"""pydantic's validation errors as sentences an IT teacher can act on, naming the entry.

A location such as `people[7].skills[1]` becomes "李华（lihua）的技能", read from the entry
itself in the parsed TOML; pydantic's own error types are translated through the catalogue in
bot.config_messages, and a validator's `ConfigProblem` is read back from the exception pydantic
keeps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bot.config_messages import ConfigProblem, Text, chain_name, entity_label, msg, of, shorten

# Arrays of tables whose entries have a name to show instead of their index.
ENTRY_SECTIONS = frozenset({"people", "units", "campuses", "classes", "venues", "groups", "duties", "computer_rooms"})

_TYPES = {
    "string_type": "string_type",
    "int_type": "int_type",
    "int_parsing": "int_type",
    "int_from_float": "int_type",
    "float_type": "float_type",
    "float_parsing": "float_type",
    "bool_type": "bool_type",
    "bool_parsing": "bool_type",
    "date_type": "date_type",
    "date_parsing": "date_type",
    "date_from_datetime_parsing": "date_type",
    "date_from_datetime_inexact": "date_type",
    "list_type": "list_type",
    "tuple_type": "list_type",
    "set_type": "list_type",
    "dict_type": "table_type",
    "model_type": "table_type",
    "model_attributes_type": "table_type",
    "string_too_short": "string_too_short",
}
_LIMITS = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}


def _at(raw: Any, *path: str | int) -> Any:
    node = raw
    for part in path:
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(part, str) and isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


def _with_fields(label: Text, rest: Sequence[str | int]) -> Text:
    keys = [p for p in rest if isinstance(p, str) and p != "[key]"]  # item indexes add nothing
    if not keys:
        return label
    return of(label, ".".join(keys))


def where(loc: Sequence[str | int], raw: Mapping[str, Any]) -> Text | None:
    """The entry and key a pydantic location points at, by name where the entry has one."""
    parts = list(loc)
    if not parts:
        return None
    head = parts[0]
    if head in ENTRY_SECTIONS and len(parts) > 1 and isinstance(parts[1], int):
        entry = _at(raw, head, parts[1])
        label = entity_label(str(head), entry) if isinstance(entry, dict) else None
        return _with_fields(label or msg("entry", table=head, n=parts[1] + 1), parts[2:])
    if head == "chains" and len(parts) > 1:
        key = str(parts[1])
        if len(parts) > 3 and parts[2] == "steps" and isinstance(parts[3], int):
            return _with_fields(msg("chain_step", name=chain_name(key), key=key, n=parts[3] + 1), parts[4:])
        return _with_fields(msg("chain", name=chain_name(key), key=key), parts[2:])
    if parts[:2] == ["faults", "not_ours"] and len(parts) > 2 and isinstance(parts[2], int):
        entry = _at(raw, "faults", "not_ours", parts[2])
        label = entity_label("not_ours", entry) if isinstance(entry, dict) else None
        return _with_fields(label or msg("entry", table="faults.not_ours", n=parts[2] + 1), parts[3:])
    tables: list[str] = []
    for part in parts[:-1]:
        if not (isinstance(part, str) and isinstance(_at(raw, *tables, part), dict)):
            break
        tables.append(part)
    keys = [str(p) for p in parts[len(tables) :] if isinstance(p, str) and p != "[key]"]
    if not tables:
        return msg("table", table=".".join(keys))
    if not keys:
        return msg("table", table=".".join(tables))
    return msg("section", table=".".join(tables), key=".".join(keys))


def _what(err: ErrorDetails, loc: Sequence[str | int], secret_env: Mapping[tuple[str, ...], str]) -> Text:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "missing":
        env = secret_env.get(tuple(str(p) for p in loc))
        return msg("missing_secret", env=env) if env else msg("missing")
    if kind == "literal_error":
        choices = tuple(re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
        return msg("literal_error", value=str(err.get("input")), choices=shorten(choices, 20))
    if kind == "too_short":
        return msg("too_short", min=ctx.get("min_length", 1))
    if kind in _LIMITS:
        return msg(kind, limit=ctx.get(_LIMITS[kind], ""))
    if kind in _TYPES:
        return msg(_TYPES[kind])
    detail = err["msg"].removeprefix("Value error, ")
    return msg("invalid", detail=detail)


def problems_of(exc: ValidationError, raw: Mapping[str, Any], secret_env: Mapping[tuple[str, ...], str]) -> list[Text]:
    """Every error pydantic found, once, each naming where it is and what to do."""
    found: list[Text] = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
        error = (err.get("ctx") or {}).get("error")
        if err["type"] == "extra_forbidden":
            key, loc = str(loc[-1]), loc[:-1]
            texts: tuple[Text, ...] = (msg("extra_forbidden", key=key),)
        elif isinstance(error, ConfigProblem):
            texts = error.texts
        else:
            texts = (_what(err, loc, secret_env),)
        place = where(loc, raw)
        for text in texts:
            if place is None:
                found.append(text)
            elif err["type"] == "literal_error":  # 李华（lihua）的技能 "电工" 不存在；可选：…
                found.append(Text(f"{place.zh} {text.zh}", f"{place.en} {text.en}"))
            else:
                found.append(msg("at", where=place, what=text))
    return list(dict.fromkeys(found))
