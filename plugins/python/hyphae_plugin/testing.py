"""Helpers for unit tests run outside a component (`python -m unittest`): the config values the
plugin reads, and the log lines and progress reports it wrote.

```python
from hyphae_plugin import TaskContext, testing

testing.reset(config={"model": "m"})
output = app.execute(TaskContext.for_test({"message": "hi"}))
assert ("info", "...") in testing.logs()
```
"""

from __future__ import annotations

from typing import Optional

from ._host import NATIVE


def reset(config: Optional[dict] = None) -> None:
    """Forget logs and progress, and make `config` (values turned to text) what the plugin reads."""
    NATIVE.config = {k: str(v) for k, v in (config or {}).items()}
    NATIVE.logs.clear()
    NATIVE.progress.clear()


def logs() -> list[tuple[str, str]]:
    """`(level, message)` of each line logged since the last `reset`."""
    return list(NATIVE.logs)


def progress() -> list[tuple[int, str]]:
    """`(percent, note)` of each progress report since the last `reset`."""
    return list(NATIVE.progress)
