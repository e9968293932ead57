"""The component glue: turns a plugin module (`def execute(ctx)`, `def validate(handoff)`, an
optional `info = {...}`) into the classes componentize-py exports as `hyphae:plugin/metadata`,
`executor` and `validator`. `python -m hyphae_plugin build` generates an entry module calling
`exports`."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from . import log
from .context import Plugin, TaskContext
from .errors import FATAL, Issue, TaskError, ValidationError, issues_of, json_text, to_task_error


def _types() -> ModuleType:
    try:  # named so when the world also imports wasi:http's `types`
        from wit_world.imports import hyphae_plugin_types as types
    except ImportError:
        from wit_world.imports import types
    return types


def output_text(output: Any) -> str:
    """The output of `execute` as JSON text; not JSON: a fatal `invalid_output` error."""
    try:
        return json.dumps(output, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TaskError.fatal("invalid_output", f"execute returned a value that is not JSON: {e}") from None


def run_execute(app: Any, ctx: TaskContext) -> tuple[str | None, TaskError | None]:
    """(output text, None) or (None, the task error) of one call of `app.execute`; exceptions that
    are not task errors are logged with their traceback."""
    try:
        return output_text(app.execute(ctx)), None
    except Exception as e:  # noqa: BLE001 (everything a plugin raises becomes a task error)
        error = to_task_error(e)
        if not isinstance(e, TaskError):
            log.error(f"execute raised {error.message}\n{error.detail['traceback']}")
        return None, error


def run_validate(app: Any, handoff: Any) -> list[Issue]:
    """The issues `app.validate` found (empty: accepted); an exception rejects with one issue."""
    try:
        return issues_of(app.validate(handoff))
    except ValidationError as e:
        return e.issues
    except Exception as e:  # noqa: BLE001
        error = to_task_error(e)
        log.error(f"validate raised {error.message}")
        return [Issue("", f"validator failed: {error.message}")]


def plugin_of(app: ModuleType) -> Any:
    """What answers the calls: an instance of the module's `Plugin` subclass when it defines one,
    else the module itself (its top-level `execute` and `validate`)."""
    classes = [
        c for c in vars(app).values()
        if isinstance(c, type) and issubclass(c, Plugin) and c is not Plugin and c.__module__ == app.__name__
    ]
    return classes[0]() if classes else app


def exports(app: ModuleType, defaults: dict) -> tuple[type, type, type]:
    """The `Metadata`, `Executor` and `Validator` classes for plugin module `app`; `defaults`
    (from pyproject.toml: `version`, `description`) fill what `info` leaves out."""
    from componentize_py_types import Err

    module, app = app, plugin_of(app)

    class Metadata:
        def describe(self) -> Any:
            info = {**defaults, **getattr(module, "info", {}), **getattr(app, "info", {})}
            agent_type = info.get("agent_type") or None
            return _types().PluginInfo(agent_type, str(info.get("version", "")), str(info.get("description", "")))

    class Executor:
        def execute(self, context: Any) -> str:
            output, error = run_execute(app, TaskContext._from_wit(context))
            if error is None:
                return output
            t = _types()
            kind = t.ErrorKind.FATAL if error.kind == FATAL else t.ErrorKind.RETRYABLE
            raise Err(t.TaskError(kind, error.error_type, error.message, json_text(error.detail)))

    class Validator:
        def validate(self, handoff: str) -> None:
            issues = run_validate(app, json.loads(handoff))
            if issues:
                raise Err([_types().Issue(i.path, i.message) for i in issues])

    return Metadata, Executor, Validator
