"""`py-llm`: one chat completion from an OpenAI-compatible server per task (the Python twin of
`llm-chat`; the agent type is the file name, so one component serves several agent types).

Manifest (`NAME.toml` beside `NAME.wasm`):

```toml
allowed_outbound_hosts = ["https://api.openai.com"]
secrets = ["openai"]
[config]
base_url = "https://api.openai.com/v1"
model = "gpt-4o-mini"
secret = "openai"                 # the secret holding the API key (none: no authorization)
system_prompt = "You are a careful researcher."
```
Input `{"prompt": "..."}` (optional). The user message is the prompt followed by the outputs of
the completed dependencies (their `content` when it is a string, else the whole output as JSON),
each under a `## Result of TASK (AGENT_TYPE)` heading. Output: `{"content", "model", "usage"}`.
"""

import json
from typing import Optional

from hyphae_plugin import Plugin, TaskContext, config, invalid_input, llm, progress


def user_message(prompt: Optional[str], previous_results) -> Optional[str]:
    """The prompt, then each completed dependency's output; `None` when there is neither."""
    parts = [prompt.strip()] if prompt and prompt.strip() else []
    for result in previous_results:
        if result.status != "completed":
            continue
        output = result.output
        content = output.get("content") if isinstance(output, dict) else None
        text = content if isinstance(content, str) else json.dumps(output, separators=(",", ":"))
        parts.append(f"## Result of {result.task_id} ({result.agent.agent_type})\n\n{text.strip()}")
    return "\n\n".join(parts) if parts else None


class LlmAgent(Plugin):
    def execute(self, ctx: TaskContext) -> dict:
        prompt = ctx.input.get("prompt") if isinstance(ctx.input, dict) else None
        user = user_message(prompt, ctx.previous_results)
        if user is None:
            raise invalid_input("nothing to ask: no `prompt` in the input and no previous results")
        client = llm.Client.from_config()
        messages = []
        system_prompt = config.get("system_prompt")
        if system_prompt and system_prompt.strip():
            messages.append(llm.system(system_prompt))
        messages.append(llm.user(user))
        progress(10, f"asking {client.model}")
        answer = client.chat(messages)
        progress(100, "answered")
        return {"content": answer.content, "model": answer.model, "usage": answer.usage}
