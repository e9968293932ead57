"""`{{name}}`: a Hyphae agent written in Python.

Input `{"message": "..."}`; output `{"message", "length", "attempt"}`. An empty message is a fatal
`invalid_input` error (the host does not retry it).
"""

from hyphae_plugin import Plugin, TaskContext, invalid_input, log


class MyAgent(Plugin):
    info = {"description": "{{name}}: says how long a message is"}

    def execute(self, ctx: TaskContext) -> dict:
        message = ctx.require("message")
        if not message.strip():
            raise invalid_input("input.message is empty: give the text to measure")
        log.info(f"{{name}}: {len(message)} characters, attempt {ctx.attempt}")
        return {"message": message, "length": len(message), "attempt": ctx.attempt}
