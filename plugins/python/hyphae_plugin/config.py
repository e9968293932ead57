"""The agent type's configuration (manifest `[config]`, read-only) and secret placeholders.

A plugin never sees a secret's value, only a placeholder: write it where the value belongs (a
header, the body) and the host puts the value in place in requests to the origins the operator
bound the secret to."""

from __future__ import annotations

from typing import Optional

from . import _host
from .errors import TaskError


def get(key: str) -> Optional[str]:
    """The value of `key`, or `None`."""
    return _host.config_get(key)


def require(key: str) -> str:
    """The value of `key`; absent: a fatal `missing_config` error saying where to set it."""
    value = get(key)
    if value is None:
        raise missing(key)
    return value


def all() -> list[tuple[str, str]]:  # noqa: A001 (the SDK's name for it in every language)
    """Every `(key, value)` pair, secret placeholders included."""
    return _host.config_all()


def missing(key: str) -> TaskError:
    message = (
        f"config key {key!r} is not set: add it under [config] in the agent type's manifest "
        "(NAME.toml beside NAME.wasm)"
    )
    return TaskError.fatal("missing_config", message, {"key": key})


def secret(name: str) -> str:
    """The placeholder of secret `name` (config key `secret.NAME`); absent: a fatal
    `missing_secret` error saying what to add to the manifest and the host configuration."""
    value = get(f"secret.{name}")
    if value is None:
        message = (
            f"secret {name!r} is not granted: add `secrets = [\"{name}\"]` to the agent type's manifest "
            f"(NAME.toml beside NAME.wasm) and define [secrets.{name}] (env or file, and hosts) in the "
            "host configuration"
        )
        raise TaskError.fatal("missing_secret", message, {"secret": name})
    return value
