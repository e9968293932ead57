// Unit tests of the JavaScript SDK, run natively: `npm test` (the test suite runs them).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FatalError, RetryableError, TaskContext, TaskError, ValidationError, config, llm, toTaskError } from '../src/index.js';
import { issuesOf, makeExports, outputText, witTaskError } from '../src/glue.js';
import { worldFor, entrySource } from '../src/build.js';
import { startFakeOpenAI } from './fake-openai.js';

test('forTest builds a context with previous results and config', () => {
  const ctx = TaskContext.forTest({ n: 3 }, { previousResults: [{ taskId: 'fetch', output: { text: 'x' } }], config: { model: 'm' } });
  assert.equal(ctx.attempt, 1);
  assert.deepEqual(ctx.previousOutputs(), [{ text: 'x' }]);
  assert.equal(config.get('model'), 'm');
  assert.throws(() => TaskContext.forTest({}, { bogus: 1 }), /unknown option "bogus"/);
});

test('anything thrown becomes a task error; task errors keep their kind', () => {
  assert.equal(toTaskError(new RetryableError('busy', 'later')).kind, 'retryable');
  const wrapped = witTaskError(new RangeError('out of range'));
  assert.equal(wrapped.kind, 'fatal');
  assert.match(wrapped.message, /RangeError: out of range/);
  assert.throws(() => new TaskError('sometimes', 'x', 'y'), TypeError);
  assert.equal(witTaskError(new FatalError('invalid_input', 'no')).errorType, 'invalid_input');
});

test('outputs must be JSON and validation outcomes become issues', () => {
  assert.equal(outputText(undefined), 'null');
  assert.throws(() => outputText(10n), (e) => e instanceof FatalError && e.errorType === 'invalid_output');
  assert.deepEqual(issuesOf(true), []);
  assert.equal(issuesOf(false).length, 1);
  assert.deepEqual(new ValidationError([{ path: '/a', message: 'no' }]).issues, [{ path: '/a', message: 'no' }]);
});

test('the glue answers as the WIT interfaces do', async () => {
  const glue = makeExports({ execute: (ctx) => ({ got: ctx.input }), info: { description: 'd' } }, { version: '1.2.3' });
  assert.deepEqual(glue.metadata.describe(), { agentType: undefined, version: '1.2.3', description: 'd' });
  const wit = { workflowId: 'w', taskId: 't', agent: { id: 'a', agentType: 'x' }, attempt: 2, input: '{"a":1}', variables: '{}', context: '{}', metadata: '{}', previousResults: [], handoffs: [] };
  assert.equal(await glue.executor.execute(wit), '{"got":{"a":1}}');
  const failing = makeExports({ validate: () => [{ path: '/x', message: 'bad' }] });
  await assert.rejects(failing.validator.validate('{}'), (e) => e.payload[0].path === '/x');
});

test('the world follows the exports', () => {
  assert.equal(worldFor(['execute']), 'executor-plugin');
  assert.equal(worldFor(['validate']), 'validator-plugin');
  assert.equal(worldFor(['execute', 'validate', 'info']), 'agent-plugin');
  assert.equal(worldFor(['run']), undefined);
  assert.doesNotMatch(entrySource('/p/a.js', 'executor-plugin', { name: 'n' }), /validator/);
});

test('llm: a chat against a local OpenAI-compatible server, errors by status', async () => {
  const server = await startFakeOpenAI();
  try {
    TaskContext.forTest({}, { config: { base_url: `${server.url}/v1`, model: 'm', secret: 'k' }, secrets: { k: 'PLACEHOLDER' } });
    const answer = await llm.Client.fromConfig().chat([llm.user('hello')]);
    assert.match(answer.model, /^m/);
    assert.match(answer.content, /hello/);
    assert.equal(server.requests[0].headers.authorization, 'Bearer PLACEHOLDER');
    const failing = new llm.Client(`${server.url}/v1`, 'status-503');
    await assert.rejects(failing.chat([llm.user('x')]), (e) => e instanceof RetryableError && e.errorType === 'llm_error');
  } finally {
    await server.close();
  }
  TaskContext.forTest({}, { config: { model: 'm' } });
  assert.throws(() => llm.Client.fromConfig(), (e) => e.errorType === 'missing_config');
});
