"""Unit tests of `{{name}}`, run natively: `python -m unittest`."""

import unittest

import app
from hyphae_plugin import TaskContext, TaskError, testing


class ExecuteTest(unittest.TestCase):
    def setUp(self):
        testing.reset()

    def test_measures_the_message(self):
        output = app.MyAgent().execute(TaskContext.for_test({"message": "hello"}))
        self.assertEqual(output, {"message": "hello", "length": 5, "attempt": 1})
        self.assertEqual(testing.logs(), [("info", "{{name}}: 5 characters, attempt 1")])

    def test_an_empty_message_is_invalid_input(self):
        with self.assertRaises(TaskError) as raised:
            app.MyAgent().execute(TaskContext.for_test({"message": " "}))
        self.assertEqual((raised.exception.kind, raised.exception.error_type), ("fatal", "invalid_input"))


if __name__ == "__main__":
    unittest.main()
