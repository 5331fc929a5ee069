"""Command line: serve, demo, check-config, migrate, backup, restore, export, verify-registers, report,
import-scores, import-assets, export-assets, create-groups, outbox."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import check_registry
from bot.appkeys import JOURNAL
from bot.backup import BackupError, Copied, backup_sqlite, pg_commands, restore_sqlite, sqlite_file
from bot.clock import Clock, ShiftedClock, SystemClock, clock_from_env
from bot.config import Config, ConfigError, load_config
from bot.config_coverage import coverage
from bot.config_messages import LANG_ENV, LANGS, Lang, lang_from, msg
from bot.context import Ctx
from bot.directory import sync as sync_directory
from bot.inbound import Inbound
from bot.journal import shared_count
from bot.logs import log, setup_logging
from bot.outbox import failed_rows, resend
from bot.pauses import cleared_pauses, pause_health
from bot.pipeline import Pipeline
from bot.render import Renderer
from bot.router import Registry
from bot.wecom_api import WeComAPI, WeComError
from bot.worker import WorkerLink, run_worker
from handlers import ROUTERS
from handlers.asset_import import AssetImportRejected, export_assets, import_assets
from handlers.asset_import import problems_text as asset_problems
from handlers.registers import (
    REGISTERS,
    LedgerEnv,
    Verified,
    adopt,
    campus_key,
    export,
    find_register,
    restate,
    verify,
)
from handlers.reports import NoTerm, Span, build, period_of
from handlers.training import STAFF, ImportRejected, import_file, problems_text
from infodesk.app import create_app
from infodesk.demo import run_demo
from infodesk.online import Report, check_online, create_groups
from storage.db import make_engine, make_sessionmaker, migrate, shareable, sqlite_database

T = TypeVar("T")
logger = logging.getLogger("infodesk.cli")


def _load(path: str, lang: Lang | None = None) -> Config:
    """The config, checked like the bot checks it at start (including the workflows' chains);
    its problems are printed in `lang` (INFODESK_LANG, else Chinese)."""
    lang = lang or lang_from()
    try:
        config = load_config(path, lang=lang)
        check_registry(config, Registry(ROUTERS))
        return config
    except ConfigError as exc:
        lines = exc.lines(lang)
        print(msg("header", file=path, count=len(lines)).in_(lang), file=sys.stderr)
        for line in lines:
            print(f"  - {line}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a config file; role coverage warnings do not fail it."""
    cfg = _load(args.file, args.lang)
    lang = args.lang or lang_from()
    counts = {"people": len(cfg.people), "units": len(cfg.units), "campuses": len(cfg.campuses)}
    print(msg("ok", file=args.file, groups=len(cfg.groups), **counts).in_(lang))
    for warning in coverage(cfg).warnings:
        print(msg("warning", text=warning).in_(lang), file=sys.stderr)
    if args.online:  # what only WeCom can tell: groups it knows, their owners, the credentials
        return _print_report(_api_session(cfg, lambda api: check_online(cfg, api)))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:

    cfg = _load(args.config, args.lang)
    clock = _clock()
    if clock is None:
        return 2
    setup_logging(cfg.logging.level)
    if isinstance(clock, ShiftedClock):  # a drill or a test: the log says so
        now = clock.now().isoformat()
        log(logger, logging.WARNING, "clock_shifted", offset_s=clock.offset.total_seconds(), now=now)
    worker_argv = None
    if cfg.server.worker_process and shareable(cfg.database.url):  # bot/worker.py
        worker_argv = [sys.executable, "-m", "bot", "worker", "--config", str(Path(args.config).resolve())]
    app = create_app(cfg, clock=clock, worker_argv=worker_argv)
    # run_app turns SIGTERM/SIGINT into a graceful shutdown: stop accepting, let in-flight
    # requests finish (up to shutdown_timeout), then run cleanup_ctx (worker, dispatcher, database).
    web.run_app(
        app,
        host=cfg.server.host,
        port=cfg.server.port,
        shutdown_timeout=cfg.server.shutdown_timeout_seconds,
        access_log=None,
        print=lambda *_: None,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """The process `serve` starts to apply, deliver and run the schedules (bot/worker.py)."""
    cfg = _load(args.config)
    clock = _clock()
    if clock is None:
        return 2
    setup_logging(cfg.logging.level)
    receiving = shared_count(args.receiving_fd)[1] if args.receiving_fd is not None else None
    link = WorkerLink(socket.socket(fileno=args.link_fd), receiving)
    app = create_app(cfg, clock=clock, link=link)

    def wake() -> None:  # before the app is up there is nothing to wake: its applier starts by looking
        if JOURNAL in app:
            app[JOURNAL].applier.wake()

    asyncio.run(run_worker(app, link, wake, sqlite_database(cfg.database.url)))
    return 0


def _clock() -> Clock | None:
    try:
        return clock_from_env(os.environ)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return None


def _migrate(url: str) -> None:
    """Apply every pending migration to the database at `url`."""

    async def run() -> None:
        engine = make_engine(url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())


def cmd_migrate(args: argparse.Namespace) -> int:

    cfg = _load(args.config)
    _migrate(cfg.database.url)
    print("database is at the latest schema")
    return 0


def _sqlite_copy(cfg: Config, file: str, copy: Callable[[str], Copied]) -> Copied:
    """Run a backup or restore on an SQLite database; for PostgreSQL, print the pg_dump/pg_restore
    lines instead and exit 2; exit 1 when the copy cannot be done."""
    try:
        if sqlite_file(cfg.database.url) is not None:
            return copy(cfg.database.url)
    except BackupError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None
    dump, restore = pg_commands(cfg.database.url, file)
    print(
        "The database is PostgreSQL: back it up and restore it with PostgreSQL's own tools "
        "(the password from PGPASSWORD or ~/.pgpass):\n"
        f"  backup:  {dump}\n"
        f"  restore: {restore}\n"
        "           (into an empty database made with createdb; then `infodesk migrate --config …`)",
        file=sys.stderr,
    )
    raise SystemExit(2)


def cmd_backup(args: argparse.Namespace) -> int:
    """A consistent copy of the SQLite database, safe while the bot runs."""
    cfg = _load(args.config)
    done = _sqlite_copy(cfg, args.output, lambda url: backup_sqlite(url, Path(args.output), force=args.force))
    source = sqlite_file(cfg.database.url)
    print(f"backup of {source} (schema {done.revision}) written to {done.path} ({done.size} bytes)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """A backup into the configured SQLite database, then the migrations (the bot must be stopped)."""
    cfg = _load(args.config)
    done = _sqlite_copy(cfg, args.file, lambda url: restore_sqlite(url, Path(args.file), force=args.force))
    _migrate(cfg.database.url)
    print(f"{args.file} (schema {done.revision}) restored into {done.path}; the database is at the latest schema")
    if done.set_aside is not None:
        print(f"the inbound journal that was beside it is kept as {done.set_aside} (not applied)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """A register for a date range (and a campus) as .xlsx or .csv (UTF-8 with BOM), by the -o suffix."""
    cfg = _load(args.config)
    register = find_register(args.register)
    if register is None:
        names = "、".join(f"{r.title} ({r.key})" for r in REGISTERS)
        print(f"unknown register {args.register!r}; one of: {names}", file=sys.stderr)
        return 2
    try:
        first, last = date.fromisoformat(args.date_from), date.fromisoformat(args.date_to)
    except ValueError:
        print("--from and --to take dates like 2026-11-01", file=sys.stderr)
        return 2
    if last < first:
        print("--to is before --from", file=sys.stderr)
        return 2
    if Path(args.output).suffix.lower() not in (".xlsx", ".csv"):
        print("-o names an .xlsx or a .csv file", file=sys.stderr)
        return 2
    campus = None
    if args.campus:
        campus = campus_key(cfg, args.campus)
        if campus is None:
            names = "、".join(f"{c.name} ({c.key})" for c in cfg.campuses)
            print(f"unknown campus {args.campus!r}; one of: {names}", file=sys.stderr)
            return 2

    async def run() -> int:
        engine = make_engine(cfg.database.url)
        try:
            await migrate(engine)
            async with make_sessionmaker(engine)() as s:
                return await export(s, cfg, register, first, last, args.output, campus=campus)
        finally:
            await engine.dispose()

    count = asyncio.run(run())
    print(f"{register.title}: {count} rows written to {args.output}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """The director's report for the week/month/term/year containing --date: digest, chart, .xlsx."""
    cfg = _load(args.config)
    try:
        day = date.fromisoformat(args.date)
    except ValueError:
        print("--date takes a date like 2026-11-30", file=sys.stderr)
        return 2
    try:
        period = period_of(Span(args.span), day, cfg)
    except NoTerm:
        print(f"no term of [calendar] terms contains {day}", file=sys.stderr)
        return 2
    out = Path(args.output)
    if out.suffix.lower() != ".xlsx":
        print("-o names the .xlsx to write (the chart goes beside it as .png)", file=sys.stderr)
        return 2

    async def run() -> str:
        engine = make_engine(cfg.database.url)
        try:
            await migrate(engine)
            async with make_sessionmaker(engine)() as s:
                built = await build(s, cfg, Renderer(Registry(ROUTERS).template_dirs), period)
        finally:
            await engine.dispose()
        out.write_bytes(built.sheet)
        out.with_suffix(".png").write_bytes(built.chart)
        return built.text

    print(asyncio.run(run()))
    print(f"written: {out} and {out.with_suffix('.png')}")
    return 0


def cmd_verify_registers(args: argparse.Namespace) -> int:
    """Recompute each register's hash chain and compare it with the live records; exit 1 at the
    first broken record (register, seq, record), 0 with a line per register otherwise."""
    cfg = _load(args.config)
    renames = []
    names = {p.name for p in cfg.people}
    for pair in args.renamed:
        old, sep, new = (part.strip() for part in pair.partition("="))
        if not sep or not old or not new or old == new:
            print(f"--renamed {pair}: give the old and the new name, e.g. --renamed 赵磊=赵磊磊", file=sys.stderr)
            return 2
        # Only a person's rename: the new name is someone's in the configuration, the old one no one's.
        if new not in names or old in names:
            print(
                f"--renamed {pair}: {new!r} must be a person's name in the configuration and {old!r} nobody's",
                file=sys.stderr,
            )
            return 2
        renames.append((old, new))

    async def run() -> list[Verified]:
        engine = make_engine(cfg.database.url)
        try:
            await migrate(engine)
            renderer = Renderer(Registry(ROUTERS).template_dirs)
            if args.adopt:
                async with make_sessionmaker(engine)() as s, s.begin():
                    count = await adopt(s, LedgerEnv(cfg, renderer, SystemClock()))
                print(f"{count} records entered in the ledger for the first time")
            if renames:
                async with make_sessionmaker(engine)() as s, s.begin():
                    count = await restate(s, LedgerEnv(cfg, renderer, SystemClock()), renames)
                print(f"{count} records entered again with the new names ({', '.join(args.renamed)})")
            async with make_sessionmaker(engine)() as s:
                return await verify(s, cfg, renderer)
        finally:
            await engine.dispose()

    results = asyncio.run(run())
    for r in results:
        if r.broken:
            print(f"{r.register.title} ({r.register.key}): BROKEN at {r.broken}", file=sys.stderr)
            return 1
    for r in results:
        print(
            f"{r.register.title} ({r.register.key}): ok, {r.entries} entries, {r.records} records, head {r.head[:16]}"
        )
    return 0


def cmd_import_scores(args: argparse.Namespace) -> int:
    """Import a module's exam scores from an .xlsx or .csv (姓名 理论 实操): every row valid, or
    nothing is imported and each bad row is named. Each person is told their score by the bot."""
    cfg = _load(args.config)
    path = Path(args.file)
    if path.suffix.lower() not in (".xlsx", ".csv") or not path.is_file():
        print(f"{args.file}: give an existing .xlsx or .csv file", file=sys.stderr)
        return 2
    by = cfg.person(args.by)
    if by is None or not set(STAFF) & set(by.roles):
        print(f"--by {args.by}: not a person holding {' or '.join(STAFF)} in the config", file=sys.stderr)
        return 2
    content = path.read_bytes()

    async def run() -> int:
        engine = make_engine(cfg.database.url)
        try:
            await migrate(engine)
            registry = Registry(ROUTERS)
            clock = SystemClock()
            pipeline = Pipeline(make_sessionmaker(engine), clock, cfg, Renderer(registry.template_dirs), registry)
            inbound = Inbound(kind="cli", msg_type="cli", from_user=by.userid, create_time=int(clock.now().timestamp()))
            try:  # an exception leaving the transaction rolls it back: nothing imported
                async with pipeline.sessions() as s, s.begin():
                    ctx = pipeline.ctx(s, inbound, None)
                    counts = await import_file(ctx, args.module, path.name, content, by.userid)
            except ImportRejected as bad:
                print(f"{path.name}: nothing imported", file=sys.stderr)
                print(problems_text(ctx, bad.problems).strip(), file=sys.stderr)
                return 1
            except LookupError:
                print(f"module {args.module!r} has no exam yet (考核安排 first)", file=sys.stderr)
                return 1
        finally:
            await engine.dispose()
        print(
            f"{args.module}: {counts['total']} scores imported ({counts['passed']} passed, {counts['failed']} failed)"
        )
        return 0

    return asyncio.run(run())


def _cli_ctx_run(cfg: Config, work: Callable[[Ctx], Awaitable[T]]) -> T:
    """Run `work` in one transaction with a handler context (the configured database, migrated
    first; the sender is the command line): an exception leaving it rolls everything back."""

    async def run() -> T:
        engine = make_engine(cfg.database.url)
        try:
            await migrate(engine)
            registry = Registry(ROUTERS)
            clock = SystemClock()
            pipeline = Pipeline(make_sessionmaker(engine), clock, cfg, Renderer(registry.template_dirs), registry)
            inbound = Inbound(kind="cli", msg_type="cli", from_user="import", create_time=int(clock.now().timestamp()))
            async with pipeline.sessions() as s, s.begin():
                return await work(pipeline.ctx(s, inbound, None))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def cmd_import_assets(args: argparse.Namespace) -> int:
    """Import the asset register from an .xlsx or .csv (编号 类别 型号/配置 校区 存放地点 使用部门 使用人
    状态 备注): every row valid, or nothing is imported and each problem names its row and column."""
    cfg = _load(args.config)
    path = Path(args.file)
    if path.suffix.lower() not in (".xlsx", ".csv") or not path.is_file():
        print(f"{args.file}: give an existing .xlsx or .csv file", file=sys.stderr)
        return 2
    content = path.read_bytes()

    async def work(ctx: Ctx) -> dict[str, int] | str:
        try:
            return await import_assets(ctx, path.name, content, ctx.now())
        except AssetImportRejected as bad:
            return asset_problems(ctx, bad.problems).strip()

    result = _cli_ctx_run(cfg, work)
    if isinstance(result, str):
        print(f"{path.name}: nothing imported", file=sys.stderr)
        print(result, file=sys.stderr)
        return 1
    print(f"{path.name}: {result['new']} assets registered, {result['updated']} updated, {result['same']} unchanged")
    return 0


def cmd_export_assets(args: argparse.Namespace) -> int:
    """Write the asset register as an .xlsx with the import's columns."""
    cfg = _load(args.config)
    Path(args.output).write_bytes(_cli_ctx_run(cfg, export_assets))
    print(f"asset register written to {args.output}")
    return 0


def _api_session(cfg: Config, work: Callable[[WeComAPI], Awaitable[T]]) -> T:
    """Run `work` with an API client for the configured app."""

    async def run() -> T:
        async with aiohttp.ClientSession() as session:
            return await work(WeComAPI.of(session, cfg, SystemClock()))

    return asyncio.run(run())


def _print_report(report: Report) -> int:
    for line in report.done:
        print(line)
    for line in report.problems:
        print(line, file=sys.stderr)
    return 1 if report.problems else 0


def cmd_create_groups(args: argparse.Namespace) -> int:
    """Create the configured app groups that do not exist yet, greet each new one (a new group is
    invisible until its first message) and add configured admins missing from existing ones."""
    cfg = _load(args.config)
    greeting = "信息中心助手已加入本群，之后的通知和推送会发在这里。"
    return _print_report(_api_session(cfg, lambda api: create_groups(cfg, api, greeting)))


def _with_session(cfg: Config, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction on the configured database (migrated first, like the bot)."""

    async def run() -> T:
        engine = make_engine(cfg.database.url)
        try:
            await migrate(engine)
            async with make_sessionmaker(engine)() as s, s.begin():
                return await work(s)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _one_line(text: str | None, width: int = 60) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def cmd_outbox_failed(args: argparse.Namespace) -> int:
    """List the failed rows, newest first."""
    cfg = _load(args.config)
    rows = _with_session(cfg, lambda s: failed_rows(s, args.limit))
    if not rows:
        print("no failed rows")
        return 0
    print(f"{'id':>6}  {'recipient':<24} {'kind':<14} {'errcode':>7}  {'created (UTC)':<16}  last error")
    for r in rows:
        created = r.created_at.strftime("%Y-%m-%d %H:%M")
        print(
            f"{r.id:>6}  {r.recipient:<24} {r.kind:<14} {r.errcode if r.errcode is not None else '':>7}  "
            f"{created:<16}  {_one_line(r.last_error)}"
        )
    print(f"{len(rows)} failed row(s); `outbox resend ID …` or `outbox resend --all` puts them back in the queue")
    return 0


def cmd_outbox_resend(args: argparse.Namespace) -> int:
    """Failed rows back to pending, attempts reset (the running bot picks them up at its next poll)."""
    if bool(args.ids) == bool(args.all):
        print("give the ids of failed rows, or --all", file=sys.stderr)
        return 2
    cfg = _load(args.config)
    done = _with_session(cfg, lambda s: resend(s, SystemClock().now(), None if args.all else args.ids))
    if not done:
        print("no failed rows")
        return 0
    for r in done:
        state = "queued again" if r.queued else "not re-sent"
        print(f"{r.id}: {state}{f' ({r.note})' if r.note else ''}")
    queued = sum(r.queued for r in done)
    print(f"{queued} row(s) back in the queue, {len(done) - queued} not")
    return 0 if queued == len(done) else 1


def cmd_outbox_pauses(args: argparse.Namespace) -> int:
    """The active delivery pauses, then the latest cleared ones."""
    cfg = _load(args.config)

    async def both(s: AsyncSession) -> tuple[list[dict[str, object]], list[tuple[str, int, str, str]]]:
        ended = [
            (p.cause, p.errcode, p.since.isoformat(timespec="seconds"), (p.cleared_at or p.since).isoformat())
            for p in await cleared_pauses(s)
        ]
        return await pause_health(s), ended

    active, ended = _with_session(cfg, both)
    if not active:
        print("delivery is not paused")
    for p in active:
        print(
            f"PAUSED {p['cause']}: errcode {p['errcode']} since {p['since']}; {p['held']} row(s) held; "
            f"{p['probes']} probe(s), next at {p['next_probe']}; director told: {'yes' if p['director_told'] else 'no'}"
        )
        print(f"  {_one_line(str(p['error']), 200)}")
    for cause, errcode, since, cleared in ended:
        print(f"cleared {cause}: errcode {errcode} from {since} to {cleared}")
    return 0


def cmd_sync_directory(args: argparse.Namespace) -> int:
    """Read WeCom's directory once into the database (the running bot picks it up within a minute)."""
    cfg = _load(args.config)
    if not cfg.directory.enabled:
        print("[directory] enabled = false：先在配置里打开并填写部门与单位的对应关系", file=sys.stderr)
        return 2

    async def run() -> int:
        engine = make_engine(cfg.database.url)
        try:
            await migrate(engine)
            registry = Registry(ROUTERS)
            pipeline = Pipeline(
                make_sessionmaker(engine), SystemClock(), cfg, Renderer(registry.template_dirs), registry
            )
            async with aiohttp.ClientSession() as session:
                report = await sync_directory(pipeline, WeComAPI.of(session, cfg, SystemClock()))
        except WeComError as exc:
            print(f"读取通讯录失败（{exc}）：应用的可见范围要包含这些部门，或使用通讯录同步的 secret", file=sys.stderr)
            return 1
        finally:
            await engine.dispose()
        served = len(pipeline.config.people)
        print(f"通讯录：企业微信列出 {report.listed} 人，机器人服务 {served} 人")
        for label, people in (("新加入", report.joined), ("已离开或停用", report.left)):
            if people:
                print(f"{label}：{'、'.join(people)}")
        for userid, old, new in report.renamed:
            print(f"改名：{old} → {new}（{userid}）")
        return 0

    return asyncio.run(run())


def cmd_demo(args: argparse.Namespace) -> int:

    return asyncio.run(run_demo(verbose=args.verbose, keep=Path(args.keep) if args.keep else None))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infodesk", description="Infodesk WeCom bot")
    parser.add_argument("--version", action="version", version=f"infodesk {version('infodesk')}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the bot")
    p.add_argument("--config", required=True)
    p.add_argument("--lang", choices=LANGS, help=f"language of configuration errors (default: {LANG_ENV}, else zh)")
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("worker", help="the process `serve` starts to apply and deliver (not run by hand)")
    p.add_argument("--config", required=True)
    p.add_argument("--link-fd", type=int, required=True)
    p.add_argument("--receiving-fd", type=int)
    p.set_defaults(fn=cmd_worker)
    p = sub.add_parser("check-config", help="validate a config file (--online: also ask WeCom)")
    p.add_argument("file")
    p.add_argument("--lang", choices=LANGS, help=f"language of the report (default: {LANG_ENV}, else zh)")
    p.add_argument(
        "--online", action="store_true", help="ask the WeCom API: credentials, customer groups and owners, app groups"
    )
    p.set_defaults(fn=cmd_check_config)
    p = sub.add_parser("migrate", help="apply database migrations")
    p.add_argument("--config", required=True)
    p.set_defaults(fn=cmd_migrate)
    p = sub.add_parser("backup", help="copy the SQLite database to a file (safe while the bot runs)")
    p.add_argument("-o", "--output", required=True, help="the backup file to write")
    p.add_argument("--force", action="store_true", help="overwrite the file if it exists")
    p.add_argument("--config", required=True)
    p.set_defaults(fn=cmd_backup)
    p = sub.add_parser("restore", help="restore a backup into the configured SQLite database, then migrate")
    p.add_argument("file", help="a file written by `backup`")
    p.add_argument("--force", action="store_true", help="replace a database that is not empty (stop the bot first)")
    p.add_argument("--config", required=True)
    p.set_defaults(fn=cmd_restore)
    p = sub.add_parser("export", help="write a register as an .xlsx spreadsheet or a .csv (UTF-8 with BOM)")
    p.add_argument("register", help="the form's name (设备维修登记表), a short name (维修) or key (repairs)")
    p.add_argument("--from", dest="date_from", required=True, help="first day, e.g. 2026-11-01")
    p.add_argument("--to", dest="date_to", required=True, help="last day (inclusive)")
    p.add_argument("--campus", help="only this campus's records (东湖, 东湖校区 or donghu)")
    p.add_argument("-o", "--output", required=True, help="the .xlsx or .csv file to write")
    p.add_argument("--config", required=True)
    p.set_defaults(fn=cmd_export)
    p = sub.add_parser("report", help="the director's report for a period: digest, chart (.png) and .xlsx")
    p.add_argument("span", choices=[s.value for s in Span], help="week (Mon-Sun), month, term ([calendar]) or year")
    p.add_argument("--date", required=True, help="a day in the period, e.g. 2026-11-30")
    p.add_argument("-o", "--output", required=True, help="the .xlsx to write; the chart is written beside it as .png")
    p.add_argument("--config", required=True)
    p.set_defaults(fn=cmd_report)
    p = sub.add_parser("verify-registers", help="check every register's hash chain against the stored records")
    p.add_argument(
        "--adopt",
        action="store_true",
        help="first enter the records the ledger has never seen (written before it existed; run once after upgrading)",
    )
    p.add_argument(
        "--renamed",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="a name changed in the configuration: first enter again the records that differ by exactly such renames",
    )
    p.add_argument("--config", required=True)
    p.set_defaults(fn=cmd_verify_registers)
    p = sub.add_parser("import-scores", help="import a module's exam scores from .xlsx/.csv (姓名 理论 实操)")
    p.add_argument("file")
    p.add_argument("--module", required=True, help="the platform module, as in 考核安排")
    p.add_argument("--by", required=True, help="userid of the 数字化校园 staff member importing them")
    p.add_argument("--config", required=True)
    p.set_defaults(fn=cmd_import_scores)
    p = sub.add_parser("import-assets", help="import the asset register from .xlsx/.csv (编号 类别 型号/配置 校区 …)")
    p.add_argument("file")
    p.add_argument("--config", required=True)
    p.set_defaults(fn=cmd_import_assets)
    p = sub.add_parser("export-assets", help="write the asset register as an .xlsx (the import's columns)")
    p.add_argument("-o", "--output", required=True, help="the .xlsx file to write")
    p.add_argument("--config", required=True)
    p.set_defaults(fn=cmd_export_assets)
    p = sub.add_parser("create-groups", help="create the configured app group chats (appchat) in WeCom")
    p.add_argument("--config", required=True)
    p.set_defaults(fn=cmd_create_groups)
    p = sub.add_parser("outbox", help="inspect and repair outbound delivery")
    outbox = p.add_subparsers(dest="outbox_command", required=True)
    q = outbox.add_parser("failed", help="list the rows that failed for good (newest first)")
    q.add_argument("--limit", type=int, default=50, help="at most this many rows (default 50)")
    q.add_argument("--config", required=True)
    q.set_defaults(fn=cmd_outbox_failed)
    q = outbox.add_parser("resend", help="put failed rows back in the queue (attempts reset)")
    q.add_argument("ids", nargs="*", type=int, metavar="ID", help="outbox row ids (see `outbox failed`)")
    q.add_argument("--all", action="store_true", help="every failed row")
    q.add_argument("--config", required=True)
    q.set_defaults(fn=cmd_outbox_resend)
    q = outbox.add_parser("pauses", help="the delivery pauses (configuration errors WeCom keeps answering)")
    q.add_argument("--config", required=True)
    q.set_defaults(fn=cmd_outbox_pauses)
    p = sub.add_parser("sync-directory", help="read the organisation from WeCom's directory (通讯录) once")
    p.add_argument("--config", required=True)
    p.set_defaults(fn=cmd_sync_directory)
    p = sub.add_parser("demo", help="play a scripted day against the bundled WeCom emulator")
    p.add_argument("--verbose", action="store_true", help="also print the bot's log lines")
    p.add_argument(
        "--keep", metavar="DIR", help="keep the demo's database and write DIR/config.toml for the other commands"
    )
    p.set_defaults(fn=cmd_demo)
    args = parser.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
