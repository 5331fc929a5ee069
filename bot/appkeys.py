"""Typed keys for what the aiohttp application holds (aiohttp's `web.AppKey`)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import Clock
from bot.config import Config
from bot.crypto import WeComCrypto
from bot.journal import Journal
from bot.outbox import Dispatcher
from bot.pipeline import Pipeline
from bot.render import Renderer
from bot.router import Registry
from bot.wecom_api import WeComAPI
from bot.worker import RemoteApplier

CONFIG = web.AppKey("config", Config)
CLOCK = web.AppKey("clock", Clock)
CRYPTO = web.AppKey("crypto", WeComCrypto)
ROBOT_CRYPTO = web.AppKey("robot_crypto", WeComCrypto)
REGISTRY = web.AppKey("registry", Registry)
RENDERER = web.AppKey("renderer", Renderer)
ENGINE = web.AppKey("engine", AsyncEngine)
PIPELINE = web.AppKey("pipeline", Pipeline)
API = web.AppKey("api", WeComAPI)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
JOURNAL = web.AppKey("journal", Journal)
WORKER = web.AppKey("worker", RemoteApplier)  # the front's view of the worker process (bot/worker.py)
