"""Backups of the SQLite database while the bot runs, and restores into a new one.

SQLite: the sqlite3 online backup API copies a consistent snapshot in one read transaction, so
the running bot (WAL mode) keeps writing meanwhile. PostgreSQL is backed up with its own tools:
`pg_commands` gives the pg_dump / pg_restore lines for the configured URL.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from storage.db import alembic_config, journal_file


class BackupError(Exception):
    """Why a backup or restore cannot be done (the message is for the operator)."""


@dataclass(frozen=True)
class Copied:
    """What a backup or restore copied: the file written, the schema revision, its size."""

    path: Path
    revision: str
    size: int
    set_aside: Path | None = None  # restore: the target's inbound journal, moved out of the way


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL (relative to the working directory, as the bot opens it);
    None for PostgreSQL."""
    u = make_url(url)
    if not u.drivername.startswith("sqlite"):
        return None
    if not u.database or u.database == ":memory:" or u.database.startswith("file:"):
        raise BackupError(f"{url}: not a database file (an in-memory or URI database cannot be backed up here)")
    return Path(u.database)


def pg_commands(url: str, file: str) -> tuple[str, str]:
    """The pg_dump and pg_restore lines for a PostgreSQL URL (the password is left to PGPASSWORD)."""
    u = make_url(url)
    conn = " ".join(
        shlex.quote(f"--{key}={value}")
        for key, value in (
            ("host", u.host or "localhost"),
            ("port", u.port or 5432),
            ("username", u.username or "postgres"),
            ("dbname", u.database or "postgres"),
        )
    )
    dump = f"pg_dump --format=custom {conn} --file={shlex.quote(file)}"
    restore = f"pg_restore --no-owner --exit-on-error {conn} {shlex.quote(file)}"
    return dump, restore


def _revisions() -> tuple[set[str], str | None]:
    from alembic.script import ScriptDirectory  # only here: the server does not load Alembic

    script = ScriptDirectory.from_config(alembic_config())
    return {r.revision for r in script.walk_revisions()}, script.get_current_head()


def _revision(conn: sqlite3.Connection, name: str) -> str:
    """The Alembic revision of an open SQLite database; BackupError unless it is an Infodesk one."""
    try:
        check = conn.execute("PRAGMA quick_check").fetchone()
        if not check or check[0] != "ok":
            raise BackupError(f"{name} is damaged (SQLite quick_check: {check[0] if check else 'no answer'})")
        has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'")
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone() if has_table.fetchone() else None
    except sqlite3.DatabaseError as exc:  # "file is not a database"
        raise BackupError(f"{name} is not an SQLite database ({exc})") from None
    if row is None:
        raise BackupError(f"{name} is not an Infodesk database (it has no migration version)")
    revision = str(row[0])
    known, head = _revisions()
    if revision not in known:
        raise BackupError(
            f"{name} is at schema {revision}, which this Infodesk does not know (its latest is {head}): "
            f"it was made by another program or a newer Infodesk"
        )
    return revision


def backup_sqlite(url: str, output: Path, *, force: bool = False) -> Copied:
    """Copy the configured SQLite database to `output` (one self-contained file, mode 0600)."""
    source = sqlite_file(url)
    if source is None:
        raise BackupError("not an SQLite database")
    if not source.is_file() or source.stat().st_size == 0:
        raise BackupError(f"there is no database at {source} (database.url = {url})")
    if output.exists() and not force:
        raise BackupError(f"{output} exists; give --force to overwrite it")
    # Written beside the target and renamed over it: a failed backup never leaves half a file.
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        waiting = _waiting(source)  # read first: see _waiting
        src = sqlite3.connect(source, timeout=30)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)  # one step: a consistent snapshot while WAL writers carry on
                dst.execute("PRAGMA journal_mode=DELETE")  # no -wal file to keep beside the copy
                revision = _revision(dst, str(source))
                if waiting:
                    with dst:
                        dst.executemany(
                            "INSERT OR IGNORE INTO inbound_journal"
                            " (dedupe_key, channel, from_user, payload, received_at) VALUES (?, ?, ?, ?, ?)",
                            waiting,
                        )
            finally:
                dst.close()
        finally:
            src.close()
        os.chmod(partial, 0o600)  # the whole organisation's requests and messages are in it
        os.replace(partial, output)
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {source} failed: {exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return Copied(output, revision, output.stat().st_size)


def _waiting(source: Path) -> list[tuple[object, ...]]:
    """The messages answered but not yet applied, in the inbound journal's own file beside the
    database (bot/journal.py). The backup keeps them in its database's own journal, which the bot
    started on it moves back into a file of their own and applies. They are read before the
    database is copied: a message applied in between is in both, and its second apply is found to
    be a duplicate; read after, a message applied in between would be in neither."""
    inbound = journal_file(source)
    if not inbound.is_file():
        return []
    conn = sqlite3.connect(f"{inbound.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(
            "SELECT dedupe_key, channel, from_user, payload, received_at FROM inbound_journal ORDER BY id"
        ).fetchall()
    except sqlite3.OperationalError:  # no table yet: nothing was ever recorded there
        return []
    finally:
        conn.close()


def restore_sqlite(url: str, backup: Path, *, force: bool = False) -> Copied:
    """Copy a backup into the configured SQLite database (the caller migrates it afterwards).

    Refuses a target that exists and is not empty unless `force`; a target the running bot holds
    cannot be replaced (switching it out of WAL mode needs it to itself).
    """
    target = sqlite_file(url)
    if target is None:
        raise BackupError("not an SQLite database")
    if not backup.is_file():
        raise BackupError(f"there is no backup at {backup}")
    src = _open_read_only(backup)
    try:
        revision = _revision(src, str(backup))
        existed = target.exists()
        if existed and target.stat().st_size > 0 and not force:
            raise BackupError(
                f"{target} exists and is not empty; stop the bot and give --force to replace it with {backup}"
            )
        if not target.parent.is_dir():
            raise BackupError(f"the directory of {target} does not exist")
        try:
            dst = sqlite3.connect(target, timeout=5)
            try:
                # Out of WAL mode first: this checkpoints and removes the old -wal file (whose pages
                # would otherwise be replayed over the restored ones), and fails while the bot runs.
                dst.execute("PRAGMA journal_mode=DELETE")
                src.backup(dst)
            finally:
                dst.close()
        except sqlite3.Error as exc:
            if not existed:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
            hint = " (is the bot still running? stop it first)" if "locked" in str(exc) else ""
            raise BackupError(f"restore into {target} failed: {exc}{hint}") from None
    finally:
        src.close()
    return Copied(target, revision, target.stat().st_size, _set_aside(journal_file(target)))


def _set_aside(journal: Path) -> Path | None:
    """Move the restored database's inbound journal file (and its -wal, -shm) out of the way: what
    it holds came after the copy was taken, and would be applied on the older state out of its
    context (the copy carries the messages that were waiting when it was taken)."""
    if not journal.exists():
        return None
    aside = journal.with_name(f"{journal.name}.before-restore-{int(time.time())}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{journal}{suffix}")
        if part.exists():
            part.rename(Path(f"{aside}{suffix}"))
    return aside


def _open_read_only(path: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {path}: {exc}") from None
