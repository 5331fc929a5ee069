# Infodesk as a container image.
#
#   docker build -t infodesk:0.1.0 .
#   docker run -d --name infodesk -p 127.0.0.1:8080:8080 --stop-timeout 30 \
#     --env-file deploy/infodesk.env \
#     -v "$PWD/config.toml:/etc/infodesk/config.toml:ro" \
#     -v infodesk-data:/var/lib/infodesk \
#     infodesk:0.1.0
#
# The mounted config must say `host = "0.0.0.0"` under [server] (there is no environment
# override for it). Secrets come from the environment (INFODESK_WECOM_SECRET, ...); the SQLite
# database lands in the /var/lib/infodesk volume; PostgreSQL via INFODESK_DATABASE_URL.
# Migrations are applied by the bot itself at start (under an advisory lock on PostgreSQL).

# ---- build: the project as a wheel, installed (not editable) into a virtualenv ----
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# The whole build context: .dockerignore keeps out the virtualenv, git, caches, a stale build/,
# tests and local secrets (config.toml, deploy/infodesk.env, deploy/tls).
COPY . .

RUN python -m venv /opt/infodesk \
 && /opt/infodesk/bin/pip wheel --no-deps --wheel-dir /tmp/dist . \
 && /opt/infodesk/bin/pip install /tmp/dist/infodesk-*.whl \
 && /opt/infodesk/bin/python -m bot --help > /dev/null

# ---- runtime: the virtualenv only, run by an unprivileged user ----
FROM python:3.11-slim

LABEL org.opencontainers.image.title="Infodesk" \
      org.opencontainers.image.description="Chat-ops bot for WeCom (企业微信) that runs a school information center's daily work" \
      org.opencontainers.image.licenses="MIT"

ENV PATH=/opt/infodesk/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN groupadd --system --gid 10001 infodesk \
 && useradd --system --uid 10001 --gid infodesk --home-dir /var/lib/infodesk --no-create-home \
            --shell /usr/sbin/nologin infodesk \
 && mkdir -p /etc/infodesk /var/lib/infodesk \
 && chown infodesk:infodesk /var/lib/infodesk \
 && chmod 0750 /var/lib/infodesk

COPY --from=build /opt/infodesk /opt/infodesk
COPY deploy/healthcheck.py /opt/infodesk/healthcheck.py

# The default database URL (sqlite+aiosqlite:///infodesk.db) is relative to the working
# directory: the database and its WAL files land in the volume.
WORKDIR /var/lib/infodesk
VOLUME ["/var/lib/infodesk"]

USER 10001:10001
EXPOSE 8080

# /healthz answers 503 when the database is unreachable; the check reads server.port from the config.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/opt/infodesk/healthcheck.py", "--config", "/etc/infodesk/config.toml"]

# SIGTERM (docker stop) drains in-flight callbacks for server.shutdown_timeout_seconds (10 s by
# default): give the container more than that (docker run --stop-timeout 30, compose stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot", "serve", "--config", "/etc/infodesk/config.toml"]
