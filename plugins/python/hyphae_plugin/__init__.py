"""`hyphae_plugin`: write Hyphae plugins (WebAssembly components) in Python.

A plugin is a module `app.py` with a `Plugin` subclass whose `execute(self, ctx)` makes it an
executor and `validate(self, handoff)` a handoff validator (either or both); module-level
`execute(ctx)` / `validate(handoff)` functions work too:

```python
from hyphae_plugin import Plugin, TaskContext, log

class Counter(Plugin):
    def execute(self, ctx: TaskContext) -> dict:
        text = ctx.require("text")
        log.info(f"counting {len(text)} characters")
        return {"length": len(text)}
```
`python -m hyphae_plugin build DIR` (or `hyphae plugin build DIR`) turns it into a component;
`TaskContext.for_test` and `hyphae_plugin.testing` run it in plain unit tests.
"""

from . import config, http, llm, log, testing
from .config import secret
from .context import Agent, Plugin, PreviousResult, TaskContext
from .errors import Issue, TaskError, ValidationError, invalid_input
from .log import progress

__version__ = "0.1.0"
__all__ = [
    "Agent", "Issue", "Plugin", "PreviousResult", "TaskContext", "TaskError", "ValidationError", "config",
    "http", "invalid_input", "llm", "log", "progress", "secret", "testing",
]
