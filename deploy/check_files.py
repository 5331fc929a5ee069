"""Sanity checks of the deploy files against each other and against the bot's configuration schema.

    python deploy/check_files.py static    # standard library only
    python deploy/check_files.py compose   # docker-compose.yml's structure (needs PyYAML)

Run by deploy/check from the repository root. Prints one line per problem and exits 1 if any.
"""

from __future__ import annotations

import ast
import operator
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG_IN_CONTAINER = "/etc/infodesk/config.toml"

_OPS = {ast.Mult: operator.mul, ast.Add: operator.add, ast.Sub: operator.sub}


def _number(node: ast.expr) -> Any:
    """A literal, simple arithmetic on literals (1024 * 1024), or a tuple of them."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_number(node.left), _number(node.right))
    if isinstance(node, ast.Tuple | ast.List):  # metrics_allow = ()
        return tuple(_number(e) for e in node.elts)
    raise ValueError(ast.dump(node))


def server_defaults() -> dict[str, Any]:
    """ServerConfig's defaults, with `outbox.request_timeout_seconds` (how long the worker process
    may take to stop depends on it)."""
    server = class_defaults("ServerConfig")
    server["outbox_request_timeout_seconds"] = class_defaults("OutboxConfig")["request_timeout_seconds"]
    return server


def class_defaults(name: str) -> dict[str, Any]:
    """A config class's defaults, read from bot/config.py without importing it (no dependencies needed)."""
    tree = ast.parse((ROOT / "bot" / "config.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            out: dict[str, Any] = {}
            for item in node.body:
                if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.value):
                    continue
                value: ast.expr | None = item.value
                if isinstance(value, ast.Call):  # Field(default=..., ...)
                    value = next((k.value for k in value.keywords if k.arg == "default"), None)
                if value is not None:
                    out[item.target.id] = _number(value)
            return out
    raise SystemExit(f"bot/config.py has no class {name}: update deploy/check_files.py")


def env_overrides() -> list[str]:
    text = (ROOT / "bot" / "config.py").read_text(encoding="utf-8")
    block = re.search(r"ENV_OVERRIDES[^=]*=\s*\{(.*?)\n\}", text, re.S)
    if not block:
        raise SystemExit("bot/config.py has no ENV_OVERRIDES: update deploy/check_files.py")
    return re.findall(r'"(INFODESK_[A-Z_]+)"', block.group(1))


def seconds(value: str) -> float:
    """systemd/compose durations: 30, 30s, 1min, 1m30s, 2m."""
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    total, pos = 0.0, 0
    units = {"h": 3600, "min": 60, "m": 60, "s": 1, "sec": 1, "ms": 0.001}
    for m in re.finditer(r"(\d+(?:\.\d+)?)\s*(min|sec|ms|h|m|s)", value):
        if m.start() != pos:
            break
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(value) or not value:
        raise ValueError(f"cannot read the duration {value!r}")
    return total


def nginx_size(value: str) -> int:
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", value.strip())
    if not m:
        raise ValueError(f"cannot read the size {value!r}")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def check(self, ok: bool, where: str, message: str) -> None:
        if not ok:
            self.items.append(f"{where}: {message}")


def read(rel: str, p: Problems) -> str:
    path = ROOT / rel
    if not path.is_file():
        p.check(False, rel, "missing")
        return ""
    return path.read_text(encoding="utf-8")


def check_dockerfile(p: Problems) -> None:
    text = read("Dockerfile", p)
    if not text:
        return
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    froms = [ln.split()[1] for ln in lines if ln.upper().startswith("FROM ")]
    p.check(bool(froms) and all(f.startswith("python:3.11-slim") for f in froms), "Dockerfile", "FROM python:3.11-slim")
    users = [ln.split()[1] for ln in lines if ln.upper().startswith("USER ")]
    p.check(bool(users), "Dockerfile", "no USER: the bot would run as root")
    if users:
        p.check(users[-1].split(":")[0] not in ("root", "0"), "Dockerfile", f"USER {users[-1]} is root")
    p.check(any(ln.upper().startswith("HEALTHCHECK ") for ln in lines), "Dockerfile", "no HEALTHCHECK")
    p.check(any(re.fullmatch(r"EXPOSE\s+8080(/tcp)?", ln, re.I) for ln in lines), "Dockerfile", "no EXPOSE 8080")
    cmd = next((ln for ln in reversed(lines) if ln.upper().startswith("CMD ")), "")
    serves = "serve" in cmd and CONFIG_IN_CONTAINER in cmd
    p.check(serves, "Dockerfile", f"CMD must serve with --config {CONFIG_IN_CONTAINER}")
    p.check(
        not re.search(r"pip\S*\s+install\s+(.*\s)?(-e|--editable)\b", text), "Dockerfile", "editable install (pip -e)"
    )
    p.check("pip wheel" in text or "python -m build" in text, "Dockerfile", "the project is not built as a wheel")
    # Every COPY from the build context must exist and must not be excluded by .dockerignore.
    ignored = {
        ln.strip().rstrip("/")
        for ln in read(".dockerignore", p).splitlines()
        if ln.strip() and not ln.startswith("#") and not ln.startswith("!")
    }
    for ln in lines:
        if ln.upper().startswith("COPY ") and "--from" not in ln:
            sources = ln.split()[1:-1]
            for src in sources:
                p.check((ROOT / src).exists(), "Dockerfile", f"COPY {src}: not in the repository")
                p.check(src.rstrip("/") not in ignored, "Dockerfile", f"COPY {src}: excluded by .dockerignore")
    for must in (".venv", ".git", "build", "config.toml", "deploy/infodesk.env", "deploy/tls"):
        p.check(must in ignored, ".dockerignore", f"does not exclude {must}")
    p.check("/healthz" in read("deploy/healthcheck.py", p), "deploy/healthcheck.py", "does not call /healthz")


def check_unit(p: Problems, server: dict[str, Any]) -> None:
    text = read("deploy/infodesk.service", p)
    if not text:
        return
    keys: dict[str, list[str]] = {}
    for ln in text.splitlines():
        if "=" in ln and not ln.lstrip().startswith(("#", ";", "[")):
            k, v = ln.split("=", 1)
            keys.setdefault(k.strip(), []).append(v.strip())

    def one(key: str) -> str:
        return (keys.get(key) or [""])[-1]

    where = "deploy/infodesk.service"
    p.check(one("User") not in ("", "root", "0"), where, "User= must name a dedicated user")
    p.check(" migrate " in f"{one('ExecStartPre')} ", where, "ExecStartPre= must run migrate")
    p.check(" serve " in f"{one('ExecStart')} ", where, "ExecStart= must run serve")
    p.check(one("Restart") in ("on-failure", "always"), where, "Restart=on-failure")
    p.check(one("EnvironmentFile").lstrip("-") == "/etc/infodesk/infodesk.env", where, "EnvironmentFile=")
    p.check(one("NoNewPrivileges") in ("yes", "true"), where, "NoNewPrivileges=yes")
    p.check(one("ProtectSystem") == "strict", where, "ProtectSystem=strict")
    p.check("/var/lib/infodesk" in one("ReadWritePaths").split(), where, "ReadWritePaths=/var/lib/infodesk")
    try:
        stop = seconds(one("TimeoutStopSec"))
        p.check(
            stop > stopping(server),
            where,
            f"TimeoutStopSec={stop:g}s is not above server.shutdown_timeout_seconds "
            f"({server['shutdown_timeout_seconds']:g}s) and the worker's {worker_stop(server):g}s",
        )
    except ValueError as exc:
        p.check(False, where, f"TimeoutStopSec: {exc}")


# A stopping worker process's margin beyond its apply and its WeCom calls (bot/worker.stop_seconds;
# this script reads the files only, it does not import the bot).
WORKER_STOP_MARGIN_SECONDS = 5.0


def worker_stop(server: dict[str, Any]) -> float:
    if not server.get("worker_process", True):
        return 0.0
    shutdown, request = server["shutdown_timeout_seconds"], server["outbox_request_timeout_seconds"]
    return float(shutdown + request + WORKER_STOP_MARGIN_SECONDS)


def stopping(server: dict[str, Any]) -> float:
    """How long `serve` may take to stop on SIGTERM: in-flight requests, then the worker."""
    return float(server["shutdown_timeout_seconds"]) + worker_stop(server)


def check_nginx(p: Problems, server: dict[str, Any]) -> None:
    where = "deploy/nginx-infodesk.conf"
    text = read(where, p)
    if not text:
        return
    body = "\n".join(ln.split("#", 1)[0] for ln in text.splitlines())  # without comments
    sizes = re.findall(r"\bclient_max_body_size\s+(\S+?);", body)
    p.check(bool(sizes), where, "no client_max_body_size (nginx's default is 1m)")
    for s in sizes:
        p.check(
            nginx_size(s) >= server["max_body_bytes"],
            where,
            f"client_max_body_size {s} is below server.max_body_bytes ({server['max_body_bytes']})",
        )
    for directive in ("proxy_connect_timeout", "proxy_send_timeout", "proxy_read_timeout"):
        values = re.findall(rf"\b{directive}\s+(\S+?);", body)
        p.check(bool(values), where, f"no {directive} (set it above 5 s)")
        for v in values:
            p.check(seconds(v) > 5, where, f"{directive} {v} is not above 5 s (WeCom waits 5 s)")
    p.check(
        len(re.findall(r"^\s*server 127\.0\.0\.1:8080;", body, re.M)) == 1,
        where,
        "exactly one `server 127.0.0.1:8080;` upstream line (docker-compose.yml rewrites it)",
    )
    p.check(bool(re.search(r"return\s+301\s+https://", body)), where, "no HTTP → HTTPS redirect")
    p.check(bool(re.search(r"listen\s+443\s+ssl", body)), where, "no `listen 443 ssl`")
    locations = re.findall(r"\blocation\s+([^{]+?)\s*\{", body)
    proxied = set(re.findall(r"\blocation\s+([^{]+?)\s*\{[^}]*proxy_pass", body))
    p.check(proxied == {"/wecom/", "= /healthz"}, where, f"proxies {sorted(proxied)}; only /wecom/ and = /healthz")
    for path in (server["callback_path"], server["robot_path"]):
        p.check(path.startswith("/wecom/"), "bot/config.py", f"default path {path} is outside the proxied /wecom/")
    p.check(set(locations) <= {"/", "/wecom/", "= /healthz"}, where, f"unexpected locations {locations}")


def check_env_example(p: Problems) -> None:
    where = "deploy/infodesk.env.example"
    text = read(where, p)
    for var in [*env_overrides(), "POSTGRES_PASSWORD"]:
        p.check(re.search(rf"^#?{var}=", text, re.M) is not None, where, f"{var} is not mentioned")
    for ln in text.splitlines():
        if ln.strip() and not ln.startswith("#"):
            p.check(
                re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", ln) is not None,
                where,
                f"{ln!r} is not VAR=value (both docker and systemd must read it)",
            )


def check_compose(p: Problems, server: dict[str, Any]) -> None:
    import yaml  # PyYAML; deploy/check runs this only where it imports

    where = "docker-compose.yml"
    doc = yaml.safe_load(read(where, p)) or {}
    services = doc.get("services") or {}
    p.check(set(services) >= {"postgres", "bot", "nginx"}, where, f"services {sorted(services)}")
    pg, bot, nginx = (services.get(k) or {} for k in ("postgres", "bot", "nginx"))
    p.check(str(pg.get("image", "")).startswith("postgres:16"), where, "postgres: image postgres:16")
    p.check("healthcheck" in pg, where, "postgres: no healthcheck")
    p.check((bot.get("deploy") or {}).get("replicas") == 2, where, "bot: deploy.replicas must be 2")
    p.check("build" in bot, where, "bot: build the image from the Dockerfile")
    env_files = bot.get("env_file") or []
    env_files = [env_files] if isinstance(env_files, str) else env_files
    env_paths = [e if isinstance(e, str) else e.get("path", "") for e in env_files]
    p.check("deploy/infodesk.env" in env_paths, where, "bot: env_file deploy/infodesk.env")
    volumes = [
        v if isinstance(v, str) else f"{v.get('source')}:{v.get('target')}{':ro' if v.get('read_only') else ''}"
        for v in bot.get("volumes") or []
    ]
    p.check(
        any(v.split(":")[1:] == [CONFIG_IN_CONTAINER, "ro"] for v in volumes),
        where,
        f"bot: the config mounted read-only at {CONFIG_IN_CONTAINER}",
    )
    test = " ".join((bot.get("healthcheck") or {}).get("test") or [])
    p.check("healthcheck.py" in test or "/healthz" in test, where, "bot: healthcheck on /healthz")
    try:
        grace = seconds(str(bot.get("stop_grace_period", "10s")))
        p.check(
            grace > stopping(server),
            where,
            f"bot: stop_grace_period {grace:g}s is not above server.shutdown_timeout_seconds "
            f"and the worker's {worker_stop(server):g}s",
        )
    except ValueError as exc:
        p.check(False, where, f"bot: stop_grace_period: {exc}")
    p.check(
        (bot.get("depends_on") or {}).get("postgres", {}).get("condition") == "service_healthy",
        where,
        "bot: depends_on postgres (service_healthy)",
    )
    for name in ("bot", "postgres"):
        p.check("ports" not in (services.get(name) or {}), where, f"{name}: publishes ports; only nginx should")
    ports = [str(x) for x in nginx.get("ports") or []]
    p.check(any(x.split(":")[-1] in ("443", "443/tcp") for x in ports), where, "nginx: publish 443")
    mounts = " ".join(str(v) for v in nginx.get("volumes") or [])
    p.check("deploy/nginx-infodesk.conf" in mounts, where, "nginx: mount deploy/nginx-infodesk.conf")
    p.check("/etc/nginx/tls" in mounts, where, "nginx: mount the certificates at /etc/nginx/tls")
    p.check("server bot:8080;" in " ".join(nginx.get("command") or []), where, "nginx: upstream rewritten to bot:8080")


def main() -> int:
    which = sys.argv[1] if len(sys.argv) > 1 else "static"
    p = Problems()
    server = server_defaults()
    if which == "static":
        check_dockerfile(p)
        check_unit(p, server)
        check_nginx(p, server)
        check_env_example(p)
    elif which == "compose":
        check_compose(p, server)
    else:
        print(f"unknown check {which!r}; static or compose", file=sys.stderr)
        return 2
    for item in p.items:
        print(f"  {item}", file=sys.stderr)
    return 1 if p.items else 0


if __name__ == "__main__":
    sys.exit(main())
