"""What an executor is given for one attempt of a task, with its JSON already parsed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Optional

from .errors import invalid_input

COMPLETED = "completed"
FAILED = "failed"


@dataclass(frozen=True)
class Agent:
    """The actor that runs a task: its `agent_id` and its `agent_type` (the plugin's name)."""

    id: str
    agent_type: str


@dataclass(frozen=True)
class PreviousResult:
    """How a direct dependency ended: `status` is `"completed"` (its `output`) or `"failed"` (it had
    `allow_failure`; its `error`, `{"error_type", "message", ...}`)."""

    task_id: str
    agent: Agent
    status: str
    output: Any = None
    error: Any = None


@dataclass(frozen=True)
class TaskContext:
    """One attempt of a task. `input`, `variables`, `context`, `metadata` and `handoffs` are parsed
    JSON; `previous_results` follow the order of the task's `dependencies`."""

    workflow_id: str
    task_id: str
    agent: Agent
    attempt: int
    input: Any
    variables: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    previous_results: tuple = ()
    handoffs: tuple = ()

    @classmethod
    def for_test(cls, input: Any = None, **fields: Any) -> "TaskContext":
        """A context for unit tests: attempt 1 of task `t1` (agent `a1` of type `test`) with
        `input`; any other field by keyword."""
        base = cls("wf-test", "t1", Agent("a1", "test"), 1, input)
        return replace(base, **fields)

    def with_previous_output(self, task_id: str, output: Any, agent_type: str = "test") -> "TaskContext":
        """This context with one more completed dependency `task_id` whose output is `output`."""
        result = PreviousResult(task_id, Agent(task_id, agent_type), COMPLETED, output)
        return replace(self, previous_results=(*self.previous_results, result))

    def previous_outputs(self) -> Iterator[Any]:
        """The outputs of the dependencies that completed, in order."""
        return (r.output for r in self.previous_results if r.status == COMPLETED)

    def require(self, key: str, kind: type = str) -> Any:
        """`input[key]`, which must be present and of type `kind`; else an `invalid_input` error
        that says what is expected."""
        value = self.input.get(key) if isinstance(self.input, dict) else None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise invalid_input(f"input.{key}: a {kind.__name__} is required, got {json.dumps(value)}")
        return value

    @classmethod
    def _from_wit(cls, wit: Any) -> "TaskContext":
        """From the WIT record the host passes (JSON as text)."""
        results = tuple(
            PreviousResult(
                r.task_id,
                Agent(r.agent.id, r.agent.agent_type),
                COMPLETED if r.status.value == 0 else FAILED,
                _parse(r.output),
                _parse(r.error),
            )
            for r in wit.previous_results
        )
        return cls(
            wit.workflow_id,
            wit.task_id,
            Agent(wit.agent.id, wit.agent.agent_type),
            wit.attempt,
            _parse(wit.input),
            _parse(wit.variables) or {},
            _parse(wit.context) or {},
            _parse(wit.metadata) or {},
            results,
            tuple(_parse(h) for h in wit.handoffs),
        )


def _parse(text: Optional[str]) -> Any:
    return None if text is None else json.loads(text)


class Plugin:
    """Base class of an agent written as a class: define `execute(self, ctx) -> dict` (an
    executor), `validate(self, handoff)` (a validator) or both, and optionally a class attribute
    `info = {"version": ..., "description": ...}`. One instance serves every call of the component.

    ```python
    class Summarizer(Plugin):
        def execute(self, ctx: TaskContext) -> dict:
            return {"summary": ctx.require("text")[:100]}
    ```
    Module-level `def execute(ctx)` and `def validate(handoff)` work as well."""

