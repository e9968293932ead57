"""Structured log lines (in the host's tracing output and the task's log, tagged with the workflow
and task ids) and progress reports."""

from . import _host


def write(level: str, message: str) -> None:
    """A line at `level`: `trace`, `debug`, `info`, `warn` or `error`."""
    _host.log(level, str(message))


def trace(message: str) -> None:
    write("trace", message)


def debug(message: str) -> None:
    write("debug", message)


def info(message: str) -> None:
    write("info", message)


def warn(message: str) -> None:
    write("warn", message)


def error(message: str) -> None:
    write("error", message)


def progress(percent: int, note: str = "") -> None:
    """Report progress of the current task: `percent` 0..100 (clamped), `note` what is happening."""
    _host.progress(percent, str(note))
