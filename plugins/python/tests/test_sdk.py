"""Unit tests of the Python SDK, run natively: `python -m unittest discover -s tests` (the test
suite runs them with the interpreter `build.sh` installs)."""

import json
import sys
import tempfile
import threading
import types
import unittest
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hyphae_plugin import Issue, Plugin, TaskContext, TaskError, ValidationError, config, llm, testing  # noqa: E402
from hyphae_plugin import _build, _glue  # noqa: E402
from hyphae_plugin.errors import issues_of, to_task_error  # noqa: E402


class ContextTest(unittest.TestCase):
    def test_for_test_and_previous_outputs(self):
        ctx = TaskContext.for_test({"n": 3}).with_previous_output("fetch", {"text": "x"})
        self.assertEqual((ctx.input, ctx.attempt, ctx.task_id), ({"n": 3}, 1, "t1"))
        self.assertEqual(list(ctx.previous_outputs()), [{"text": "x"}])
        self.assertEqual(ctx.previous_results[0].agent.agent_type, "test")

    def test_require_names_what_is_expected(self):
        ctx = TaskContext.for_test({"n": True, "s": "x"})
        self.assertEqual(ctx.require("s"), "x")
        with self.assertRaises(TaskError) as raised:
            ctx.require("n", int)
        self.assertEqual(raised.exception.error_type, "invalid_input")
        self.assertIn("input.n: a int is required, got true", raised.exception.message)


class ErrorsTest(unittest.TestCase):
    def test_any_exception_is_a_fatal_exception_error_with_its_traceback(self):
        try:
            {}["missing"]
        except KeyError as e:
            error = to_task_error(e)
        self.assertEqual((error.kind, error.error_type), ("fatal", "exception"))
        self.assertIn("KeyError", error.message)
        self.assertIn("Traceback", error.detail["traceback"])
        self.assertIs(to_task_error(TaskError.retryable("busy", "try later")).kind, "retryable")
        with self.assertRaises(ValueError):
            TaskError("sometimes", "x", "y")

    def test_validation_outcomes(self):
        self.assertEqual(issues_of(None), [])
        self.assertEqual(issues_of(True), [])
        self.assertEqual(issues_of("bad"), [Issue("", "bad")])
        self.assertEqual(issues_of([("/a", "no"), {"path": "/b", "message": "neither"}]), [Issue("/a", "no"), Issue("/b", "neither")])
        self.assertEqual(ValidationError(["x"]).issues, [Issue("", "x")])


class GlueTest(unittest.TestCase):
    def module(self, source: str) -> types.ModuleType:
        module = types.ModuleType("app")
        exec(source, module.__dict__)
        return module

    def test_a_plugin_class_or_module_functions_answer(self):
        by_class = self.module("from hyphae_plugin import Plugin\nclass A(Plugin):\n    def execute(self, ctx):\n        return {'by': 'class'}\n")
        by_function = self.module("def execute(ctx):\n    return {'by': 'function'}\n")
        ctx = TaskContext.for_test({})
        self.assertEqual(_glue.run_execute(_glue.plugin_of(by_class), ctx), ('{"by": "class"}', None))
        self.assertEqual(_glue.run_execute(_glue.plugin_of(by_function), ctx), ('{"by": "function"}', None))

    def test_output_that_is_not_json_is_a_fatal_invalid_output(self):
        app = self.module("def execute(ctx):\n    return {'x': float('nan')}\n")
        output, error = _glue.run_execute(app, TaskContext.for_test({}))
        self.assertIsNone(output)
        self.assertEqual((error.kind, error.error_type), ("fatal", "invalid_output"))

    def test_a_validator_that_raises_rejects_with_one_issue(self):
        app = self.module("def validate(handoff):\n    raise RuntimeError('boom')\n")
        testing.reset()
        issues = _glue.run_validate(app, {})
        self.assertEqual(len(issues), 1)
        self.assertIn("RuntimeError: boom", issues[0].message)


class BuildTest(unittest.TestCase):
    def world(self, source: str) -> str:
        with tempfile.TemporaryDirectory() as d:
            app = Path(d) / "app.py"
            app.write_text(source)
            return _build.world_of(app)

    def test_the_world_follows_what_the_module_defines(self):
        self.assertEqual(self.world("def execute(ctx): pass\n"), "executor-plugin")
        self.assertEqual(self.world("def validate(h): pass\n"), "validator-plugin")
        both = "from hyphae_plugin import Plugin\nclass A(Plugin):\n    def execute(self, c): pass\n    def validate(self, h): pass\n"
        self.assertEqual(self.world(both), "agent-plugin")
        with self.assertRaisesRegex(_build.BuildError, "neither"):
            self.world("def run(ctx): pass\n")
        with self.assertRaisesRegex(_build.BuildError, r"app.py:1"):
            self.world("def execute(:\n")


class LlmTest(unittest.TestCase):
    def test_config_and_a_chat_against_a_local_server(self):
        seen = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                seen.append((self.path, self.headers.get("authorization"), body))
                answer = {"model": body["model"], "choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 3}}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            base = f"http://127.0.0.1:{server.server_port}/v1"
            testing.reset(config={"base_url": base, "model": "m", "secret": "k", "secret.k": "PLACEHOLDER"})
            answer = llm.Client.from_config().chat([llm.user("hello")])
        finally:
            server.shutdown()
            server.server_close()
        self.assertEqual((answer.content, answer.model, answer.usage["total_tokens"]), ("hi", "m", 3))
        self.assertEqual(seen[0][:2], ("/v1/chat/completions", "Bearer PLACEHOLDER"))
        testing.reset(config={"model": "m"})
        with self.assertRaises(TaskError) as raised:
            llm.Client.from_config()
        self.assertEqual(raised.exception.error_type, "missing_config")
        self.assertIsNone(config.get("base_url"))


if __name__ == "__main__":
    unittest.main()
