"""Task errors (what `execute` raises) and handoff issues (what `validate` reports)."""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from typing import Any, Optional

RETRYABLE = "retryable"
FATAL = "fatal"


class TaskError(Exception):
    """A failed attempt: `kind` is `"retryable"` (the host retries by the task's retry policy) or
    `"fatal"`; `error_type` is short and machine-readable (`invalid_input`), recorded as the
    task's `error_type`; `detail` is any JSON value."""

    def __init__(self, kind: str, error_type: str, message: str, detail: Any = None):
        if kind not in (RETRYABLE, FATAL):
            raise ValueError(f"TaskError kind must be 'retryable' or 'fatal', not {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.error_type = error_type
        self.message = message
        self.detail = detail

    @classmethod
    def fatal(cls, error_type: str, message: str, detail: Any = None) -> "TaskError":
        """A permanent failure: the host does not retry."""
        return cls(FATAL, error_type, message, detail)

    @classmethod
    def retryable(cls, error_type: str, message: str, detail: Any = None) -> "TaskError":
        """A transient failure: the host retries according to the task's retry policy."""
        return cls(RETRYABLE, error_type, message, detail)

    def __repr__(self) -> str:
        return f"TaskError({self.kind!r}, {self.error_type!r}, {self.message!r})"


def invalid_input(message: str, detail: Any = None) -> TaskError:
    """The fatal `invalid_input` error: the task's input cannot be used (say what is expected)."""
    return TaskError.fatal("invalid_input", message, detail)


def to_task_error(exc: BaseException) -> TaskError:
    """The task error for anything `execute` raised: task errors as they are, any other exception a
    fatal `exception` error with its type, message and traceback."""
    if isinstance(exc, TaskError):
        return exc
    name = type(exc).__name__
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return TaskError.fatal("exception", f"{name}: {exc}", {"name": name, "traceback": stack})


@dataclass(frozen=True)
class Issue:
    """One problem in a handoff: the JSON path of the offending value (`/context/task`) and what is
    wrong, and what is expected instead."""

    path: str
    message: str


class ValidationError(Exception):
    """Raise it from `validate` (or return the issues) to reject a handoff."""

    def __init__(self, issues: Any):
        self.issues = issues_of(issues)
        super().__init__("; ".join(f"{i.path or '/'}: {i.message}" for i in self.issues))


def issues_of(outcome: Any) -> list[Issue]:
    """The issues of what `validate` returned: `None`, `True` or `[]` accept; `False`, a string,
    an `Issue`, a `(path, message)` pair, a `{"path", "message"}` dict or a list of them reject."""
    if outcome is None or outcome is True:
        return []
    if outcome is False:
        return [Issue("", "handoff rejected (validate returned False)")]
    if isinstance(outcome, (str, Issue, tuple, dict)):
        outcome = [outcome]
    return [_issue(item) for item in outcome]


def _issue(item: Any) -> Issue:
    if isinstance(item, Issue):
        return item
    if isinstance(item, str):
        return Issue("", item)
    if isinstance(item, tuple) and len(item) == 2:
        return Issue(str(item[0]), str(item[1]))
    if isinstance(item, dict) and "message" in item:
        return Issue(str(item.get("path", "")), str(item["message"]))
    return Issue("", f"validator returned an issue of an unknown form: {item!r}")


def json_text(value: Any) -> Optional[str]:
    """JSON text of `value` (`None` stays `None`; what JSON cannot hold becomes its `str`)."""
    if value is None:
        return None
    return json.dumps(value, default=str)


