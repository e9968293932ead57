// Unit tests of `{{name}}`, run natively: `npm test`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TaskContext, TaskError } from '@hyphae/plugin';
import { execute } from '../src/agent.js';

test('measures the message', () => {
  assert.deepEqual(execute(TaskContext.forTest({ message: 'hello' })), { message: 'hello', length: 5, attempt: 1 });
});

test('an empty message is invalid_input', () => {
  assert.throws(
    () => execute(TaskContext.forTest({ message: ' ' })),
    (e) => e instanceof TaskError && e.kind === 'fatal' && e.errorType === 'invalid_input',
  );
});
