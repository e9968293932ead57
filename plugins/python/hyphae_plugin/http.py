"""Outbound HTTP over `wasi:http/outgoing-handler`.

The host checks every request against the agent type's `allowed_outbound_hosts` (manifest
`NAME.toml` beside `NAME.wasm`) before anything is sent, and puts secret values in place of their
placeholders. The host never follows redirects; `send` follows them itself (GET and HEAD: 5), each
one a new request the host checks again. Outside a component (unit tests) requests go out through
`http.client`, without any allow-list.

```python
from hyphae_plugin import http

response = http.get("https://api.example.com/v1/items").header("accept", "application/json").send()
items = response.json()
```
A failure raises `HttpError`; `execute` may let it through: it becomes a task error (denied: fatal
`egress_denied` naming the origin to allow; timeouts and connection failures: retryable
`http_error`; anything else: fatal `http_error`).
"""

from __future__ import annotations

import json as _json
import re
from typing import Any, Optional
from urllib.parse import urljoin, urlsplit

from . import _host
from .errors import TaskError

DEFAULT_REDIRECTS = 5
WRITE_CHUNK = 4096
READ_CHUNK = 65536
RETRYABLE_CODES = {
    "DNS-timeout", "connection-timeout", "connection-read-timeout", "connection-write-timeout",
    "HTTP-response-timeout", "DNS-error", "destination-unavailable", "connection-refused",
    "connection-terminated", "connection-limit-reached", "HTTP-response-incomplete",
}


class HttpError(TaskError):
    """A request that got no response: `code` is the `wasi:http` error code as spelled in WIT
    (`HTTP-request-denied`, `connection-timeout`, ...) or the SDK's own (`invalid-url`,
    `too-many-redirects`); as a task error, see the module description."""

    def __init__(self, code: str, message: str, method: str, url: str):
        self.code, self.method, self.url = code, method, url
        detail = {"code": code, "method": method, "url": url}
        if code == "HTTP-request-denied":
            text = (
                f"{method} {url}: the host denied the request (HTTP-request-denied): add "
                f"\"{origin(url) or url}\" to `allowed_outbound_hosts` in the agent type's manifest "
                "(NAME.toml beside NAME.wasm), or check the request budget"
            )
            super().__init__("fatal", "egress_denied", text, detail)
        else:
            kind = "retryable" if code in RETRYABLE_CODES else "fatal"
            super().__init__(kind, "http_error", f"{method} {url}: {code}: {message}", detail)

    @property
    def is_denied(self) -> bool:
        """The host refused the request (origin not allowed, or over budget); nothing was sent."""
        return self.code == "HTTP-request-denied"


def origin(url: str) -> Optional[str]:
    """`scheme://host[:port]` of `url` (default port left out), as `allowed_outbound_hosts` has it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = 443 if parts.scheme == "https" else 80
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


class Response:
    """A response, read completely: `status`, `headers` (`(name, value)` in order), `body` (bytes)
    and the `url` that answered (after redirects)."""

    def __init__(self, status: int, headers: list, body: bytes, url: str):
        self.status, self.headers, self.body, self.url = status, headers, body, url

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def header(self, name: str) -> Optional[str]:
        """The first value of header `name` (case-insensitive)."""
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)

    def text(self) -> str:
        """The body as text (invalid UTF-8 replaced)."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON; not JSON: a fatal `invalid_response` error with an excerpt."""
        try:
            return _json.loads(self.body)
        except ValueError as e:
            message = f"{self.url} ({self.status}): body is not JSON: {e}"
            raise TaskError.fatal("invalid_response", message, {"body": excerpt(self.text(), 300)}) from None


class Request:
    """A request to build, then `send()`."""

    def __init__(self, method: str, url: str):
        self.method, self.url = method.upper(), url
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.timeout: Optional[float] = None
        self.redirects: Optional[int] = None

    def header(self, name: str, value: str) -> "Request":
        self.headers.append((name.lower(), str(value)))
        return self

    def json(self, value: Any) -> "Request":
        """`value` as the JSON body (and `content-type: application/json`)."""
        self.body = _json.dumps(value).encode()
        if not any(n == "content-type" for n, _ in self.headers):
            self.headers.append(("content-type", "application/json"))
        return self

    def data(self, body: bytes | str) -> "Request":
        self.body = body.encode() if isinstance(body, str) else bytes(body)
        return self

    def with_timeout(self, seconds: float) -> "Request":
        """Connect and first-byte timeout."""
        self.timeout = seconds
        return self

    def max_redirects(self, n: int) -> "Request":
        self.redirects = n
        return self

    def send(self) -> Response:
        """Sends the request (following redirects) and reads the whole response."""
        method, url, headers, body = self.method, self.url, list(self.headers), self.body
        limit = self.redirects if self.redirects is not None else (DEFAULT_REDIRECTS if method in ("GET", "HEAD") else 0)
        for followed in range(limit + 1):
            response = _send_once(method, url, headers, body, self.timeout)
            location = response.header("location") if response.status in (301, 302, 303, 307, 308) else None
            if location is None or limit == 0:
                return response
            if followed == limit:
                raise HttpError("too-many-redirects", f"gave up after {limit} redirects (the next to {location})", method, url)
            following = urljoin(url, location)
            _host.log("debug", f"http: {method} {url} -> {response.status} {following}")
            if (response.status == 303 and method != "HEAD") or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", b""
                headers = [(n, v) for n, v in headers if n not in ("content-type", "content-length")]
            if origin(following) != origin(url):
                headers = [(n, v) for n, v in headers if n not in ("authorization", "cookie", "proxy-authorization")]
            url = following
        raise AssertionError("unreachable")


def get(url: str) -> Request:
    return Request("GET", url)


def post(url: str) -> Request:
    return Request("POST", url)


def excerpt(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, with `...` when cut."""
    text = text.strip()
    return text[:limit] + "..." if len(text) > limit else text


def _split(method: str, url: str) -> tuple[bool, str, str]:
    """(https, authority, path and query) of an absolute http(s) URL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HttpError("invalid-url", "not an absolute http or https URL (scheme://host/path)", method, url)
    if "@" in parts.netloc:
        raise HttpError("invalid-url", "user info (user@host) is not supported: send credentials in a header", method, url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme == "https", parts.netloc.lower(), path


def _send_once(method: str, url: str, headers: list, body: bytes, timeout: Optional[float]) -> Response:
    https, authority, path = _split(method, url)
    if body or method in ("POST", "PUT", "PATCH"):
        if not any(n == "content-length" for n, _ in headers):
            headers = [*headers, ("content-length", str(len(body)))]
    send = _send_wasi if _host.IN_COMPONENT else _send_native
    return send(method, url, https, authority, path, headers, body, timeout)


def _code(error: Any) -> str:
    """The WIT spelling of a `wasi:http` error-code value (`ErrorCode_HttpRequestDenied` ->
    `HTTP-request-denied`)."""
    name = type(error).__name__.removeprefix("ErrorCode_")
    words = re.findall(r"[A-Z][a-z0-9]*", name)
    upper = {"Dns": "DNS", "Http": "HTTP", "Tls": "TLS"}
    return "-".join(upper.get(w, w.lower()) if i == 0 else w.lower() for i, w in enumerate(words))


def _send_wasi(method, url, https, authority, path, headers, body, timeout) -> Response:
    from componentize_py_types import Err, Ok
    from wit_world.imports import outgoing_handler, streams
    from wit_world.imports import wasi_http_types as t

    def fail(code: str, message: str) -> HttpError:
        return HttpError(code, message, method, url)

    try:
        fields = t.Fields.from_list([(n, v.encode()) for n, v in headers])
    except Err as e:
        names = ", ".join(n for n, _ in headers)
        raise fail("invalid-header", f"a header is not valid or not allowed ({type(e.value).__name__}; headers: {names})") from None
    request = t.OutgoingRequest(fields)
    known = {"GET": t.Method_Get, "HEAD": t.Method_Head, "POST": t.Method_Post, "PUT": t.Method_Put,
             "PATCH": t.Method_Patch, "DELETE": t.Method_Delete, "OPTIONS": t.Method_Options}
    request.set_method(known[method]() if method in known else t.Method_Other(method))
    request.set_scheme(t.Scheme_Https() if https else t.Scheme_Http())
    request.set_authority(authority)
    request.set_path_with_query(path)
    outgoing_body = request.body()
    options = None
    if timeout is not None:
        options = t.RequestOptions()
        options.set_connect_timeout(int(timeout * 1e9))
        options.set_first_byte_timeout(int(timeout * 1e9))
    try:
        future = outgoing_handler.handle(request, options)
    except Err as e:
        raise fail(_code(e.value), "the request was not sent") from None
    try:
        if body:
            with outgoing_body.write() as stream:
                for start in range(0, len(body), WRITE_CHUNK):
                    stream.blocking_write_and_flush(body[start:start + WRITE_CHUNK])
        t.OutgoingBody.finish(outgoing_body, None)
    except Err:
        pass  # the host closed the body: the request failed (denied, say), and the response says why
    with future.subscribe() as ready:
        ready.block()
    result = future.get()
    if not isinstance(result, Ok) or not isinstance(result.value, Ok):
        error = result.value.value if isinstance(result, Ok) else None
        raise fail(_code(error) if error is not None else "internal-error", _describe(error))
    response = result.value.value
    status = response.status()
    received = [(n, v.decode("utf-8", "replace")) for n, v in response.headers().entries()]
    incoming = response.consume()
    chunks = []
    with incoming.stream() as stream:
        while True:
            try:
                chunks.append(stream.blocking_read(READ_CHUNK))
            except Err as e:
                if isinstance(e.value, streams.StreamError_Closed):
                    break
                raise fail("HTTP-response-incomplete", "reading the response body failed") from None
    t.IncomingBody.finish(incoming)
    return Response(status, received, b"".join(chunks), url)


def _describe(error: Any) -> str:
    value = getattr(error, "value", None)
    return f"no response ({value})" if value not in (None, "") else "no response"


def _send_native(method, url, https, authority, path, headers, body, timeout) -> Response:
    import http.client
    import socket

    connection_type = http.client.HTTPSConnection if https else http.client.HTTPConnection
    connection = connection_type(authority, timeout=timeout)
    try:
        connection.request(method, path, body=body or None, headers=dict(headers))
        answer = connection.getresponse()
        return Response(answer.status, answer.getheaders(), answer.read(), url)
    except socket.timeout:
        raise HttpError("connection-timeout", f"no answer within {timeout} s", method, url) from None
    except ConnectionRefusedError:
        raise HttpError("connection-refused", "connection refused", method, url) from None
    except OSError as e:
        raise HttpError("destination-unavailable", str(e), method, url) from None
    finally:
        connection.close()
