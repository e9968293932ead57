"""Chat completions from an OpenAI-compatible server (`POST {base_url}/chat/completions`).

```python
from hyphae_plugin import llm

client = llm.Client.from_config()          # config keys base_url, model, secret, ...
answer = client.chat([llm.system("Be brief."), llm.user("Say hi.")])
answer.content, answer.model, answer.usage["total_tokens"]
```
Failures: HTTP errors as in `hyphae_plugin.http`; a non-2xx status is `llm_error` (retryable
for 429 and 5xx); an unreadable answer, fatal `llm_error`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from . import config, http, log
from .errors import TaskError


def message(role: str, content: str) -> dict:
    return {"role": role, "content": content}


def system(content: str) -> dict:
    return message("system", content)


def user(content: str) -> dict:
    return message("user", content)


def assistant(content: str) -> dict:
    return message("assistant", content)


@dataclass
class Answer:
    """The first choice's text, the model that answered and the tokens used
    (`prompt_tokens`, `completion_tokens`, `total_tokens`; zeros when the server reports none)."""

    content: str
    model: str
    usage: dict = field(default_factory=dict)


@dataclass
class Client:
    """Settings shared by the requests of an agent type, usually from its manifest's `[config]`."""

    base_url: str
    model: str
    secret: Optional[str] = None
    temperature: Optional[float] = None
    max_tokens: Optional[int] = None
    timeout_s: Optional[float] = None

    @classmethod
    def from_config(cls, get: Callable[[str], Optional[str]] = config.get) -> "Client":
        """From config keys `base_url` and `model` (required: else fatal `missing_config`), and the
        optional `secret` (a secret's name), `temperature`, `max_tokens` and `timeout_s` (a bad
        number: fatal `invalid_config`)."""

        def require(key: str) -> str:
            value = get(key)
            if value is None:
                raise config.missing(key)
            return value

        timeout = _number(get, "timeout_s", float)
        if timeout is not None and not timeout > 0:
            raise TaskError.fatal("invalid_config", f'config key "timeout_s" = {timeout}: must be > 0')
        return cls(
            base_url=require("base_url"),
            model=require("model"),
            secret=get("secret") or None,
            temperature=_number(get, "temperature", float),
            max_tokens=_number(get, "max_tokens", int),
            timeout_s=timeout,
        )

    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def body(self, messages: list) -> dict:
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        return body

    def chat(self, messages: list) -> Answer:
        """Sends `messages` and returns the first choice."""
        url = self.url()
        request = http.post(url).header("accept", "application/json").json(self.body(messages))
        if self.secret:
            request.header("authorization", f"Bearer {config.secret(self.secret)}")
        if self.timeout_s is not None:
            request.with_timeout(self.timeout_s)
        response = request.send()
        answer = parse_response(url, self.model, response.status, response.body)
        log.debug(f"llm: {answer.model} answered with {answer.usage['total_tokens']} tokens")
        return answer


def _number(get: Callable[[str], Optional[str]], key: str, kind: type) -> Any:
    text = get(key)
    if text is None:
        return None
    try:
        return kind(text.strip().strip('"'))
    except ValueError:
        raise TaskError.fatal("invalid_config", f"config key {key!r} = {text!r}: not a valid number") from None


def parse_response(url: str, model: str, status: int, body: bytes) -> Answer:
    """Reads a chat completion response (`model` defaults to the requested one)."""
    text = body.decode("utf-8", "replace")
    detail = {"status": status, "body": http.excerpt(text, 300)}
    if not 200 <= status < 300:
        try:
            parsed = json.loads(text)
            error = parsed.get("error") if isinstance(parsed, dict) else None
            server = error.get("message") if isinstance(error, dict) else error or parsed.get("message")
        except (ValueError, AttributeError):
            server = None
        message = f"POST {url}: HTTP {status}: {http.excerpt(server if isinstance(server, str) else text, 200)}"
        kind = "retryable" if status == 429 or 500 <= status < 600 else "fatal"
        raise TaskError(kind, "llm_error", message, detail)
    try:
        parsed = json.loads(text)
    except ValueError as e:
        raise TaskError.fatal("llm_error", f"POST {url}: response is not JSON: {e}", detail) from None
    try:
        content = parsed["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise TypeError
    except (KeyError, IndexError, TypeError):
        raise TaskError.fatal("llm_error", f"POST {url}: response has no text at choices[0].message.content", detail) from None
    reported = parsed.get("usage") if isinstance(parsed.get("usage"), dict) else {}
    usage = {k: int(reported.get(k) or 0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    if usage["total_tokens"] == 0:
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return Answer(content, str(parsed.get("model") or model), usage)
