"""The HTTP API (aiohttp): `create_app(...)`, bearer auth with `check_bind`, JSON errors, OpenAPI document."""

from ivr.api.app import create_app
from ivr.api.auth import InsecureBind, check_bind, load_token

__all__ = ["InsecureBind", "check_bind", "create_app", "load_token"]
