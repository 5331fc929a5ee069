"""A register's row as its row functions return it (handlers/registers.py, handlers/lab_registers.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, true


class Row(list[Any]):
    """A register row's cells, with the id of the record it shows and that record's campus."""

    def __init__(self, cells: Iterable[Any], id: int, campus: str = "") -> None:
        super().__init__(cells)
        self.id = id
        self.campus = campus


def only_ids(only: frozenset[int] | None, column: Any, *, other: bool = False) -> ColumnElement[bool]:
    """The rows the ledger asked for (`only`; None: all). `other`: the register's second kind of
    record, whose rows carry negative ids (Register.other)."""
    if only is None:
        return true()
    ids = [-i for i in only if i < 0] if other else [i for i in only if i > 0]
    found: ColumnElement[bool] = column.in_(ids)
    return found
