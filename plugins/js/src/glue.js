/**
 * The component glue: turns a plugin module (`export function execute(ctx)`, `export function
 * validate(handoff)`, `export const info`) into the interface objects componentize-js exports as
 * `hyphae:plugin/metadata`, `executor` and `validator` (jco convention: one exported object per
 * interface, functions and record fields in camelCase, `result` errors thrown with a `payload`).
 * `hyphae-plugin-js build` generates an entry module that calls {@link makeExports}.
 * @module
 */
import { TaskContext } from './context.js';
import { FatalError, RetryableError, TaskError, ValidationError, normalizeIssues, toTaskError } from './errors.js';
import { isNetworkError } from './http.js';
import { log } from './log.js';

/**
 * @typedef {{id: string, agentType: string}} WitAgent
 * @typedef {{taskId: string, agent: WitAgent, status: 'completed'|'failed', output?: string, error?: string}} WitPreviousResult
 * @typedef {{workflowId: string, taskId: string, agent: WitAgent, attempt: number, input: string,
 *   variables: string, context: string, metadata: string, previousResults: WitPreviousResult[],
 *   handoffs: string[]}} WitTaskContext
 * @typedef {{kind: 'retryable'|'fatal', errorType: string, message: string, detail?: string}} WitTaskError
 * @typedef {{path: string, message: string}} WitIssue
 * @typedef {{agentType?: string, version: string, description: string}} WitPluginInfo
 */

/** An error carrying the `err` value of a WIT `result`, as componentize-js expects (own `payload`). */
export class WitResultError extends Error {
  /** @param {unknown} payload */
  constructor(payload) {
    super('WIT result error (see payload)');
    this.name = 'WitResultError';
    Object.defineProperty(this, 'payload', { value: payload, enumerable: true });
  }
}

/** JSON text of `value`, or `undefined` when it has none. */
function jsonText(value) {
  if (value === undefined) return undefined;
  try {
    return JSON.stringify(value);
  } catch (e) {
    return JSON.stringify(String(value));
  }
}

/**
 * The WIT `task-error` for anything an executor threw. Errors that are not task errors are logged
 * with their stack at error level (as the Rust SDK logs panics).
 * @param {unknown} thrown
 * @returns {WitTaskError}
 */
export function witTaskError(thrown) {
  let error;
  if (thrown instanceof TaskError) {
    error = thrown;
  } else if (isNetworkError(thrown)) {
    // Plain `fetch()` outside the SDK's wrapper: no URL is known here.
    error = new RetryableError(
      'http_error',
      `fetch: ${thrown.message}: the connection failed, or the host denied the request: check ` +
        '`allowed_outbound_hosts` in the agent type\'s manifest (NAME.toml beside NAME.wasm) ' +
        '(`fetch` from @hyphae/plugin names the URL)',
      { code: 'network-error', stack: String(thrown.stack ?? '') },
    );
  } else {
    error = toTaskError(thrown);
    log.error(`execute threw ${error.message}${thrown instanceof Error && thrown.stack ? `\n${thrown.stack}` : ''}`);
  }
  return { kind: error.kind, errorType: error.errorType, message: error.message, detail: jsonText(error.detail) };
}

/**
 * The output of `execute` as JSON text (`undefined` becomes `null`).
 * @param {unknown} output
 * @returns {string}
 */
export function outputText(output) {
  let text;
  try {
    text = JSON.stringify(output === undefined ? null : output);
  } catch (e) {
    throw new FatalError('invalid_output', `execute returned a value that is not JSON: ${e.message}`);
  }
  if (text === undefined) {
    throw new FatalError('invalid_output', `execute returned a ${typeof output}, which has no JSON form`);
  }
  return text;
}

/**
 * The issues of a validation outcome: `undefined`, `null`, `true` or `[]` accept; an array of
 * `{path, message}` (or one issue, or a string) rejects.
 * @param {unknown} outcome what `validate` returned
 * @returns {WitIssue[]}
 */
export function issuesOf(outcome) {
  if (outcome === undefined || outcome === null || outcome === true) return [];
  if (outcome === false) return [{ path: '', message: 'handoff rejected (validate returned false)' }];
  return normalizeIssues(outcome);
}

/**
 * The WIT issues for anything `validate` threw: a {@link ValidationError}'s issues; any other
 * error rejects with one issue at the root (and is logged with its stack).
 * @param {unknown} thrown
 * @returns {WitIssue[]}
 */
export function issuesOfThrown(thrown) {
  if (thrown instanceof ValidationError) return thrown.issues;
  const error = toTaskError(thrown);
  log.error(`validate threw ${error.message}${thrown instanceof Error && thrown.stack ? `\n${thrown.stack}` : ''}`);
  return [{ path: '', message: `validator failed: ${error.message}` }];
}

/**
 * The interface objects for a plugin module.
 * @param {{execute?: Function, validate?: Function, info?: {version?: string, description?: string, agentType?: string}}} plugin
 *   the plugin module's exports
 * @param {{name?: string, version?: string, description?: string}} [pkg] from package.json: defaults of `info`
 * @returns {{metadata: {describe(): WitPluginInfo}, executor: {execute(ctx: WitTaskContext): Promise<string>},
 *   validator: {validate(handoff: string): Promise<void>}}}
 */
export function makeExports(plugin, pkg = {}) {
  const metadata = {
    describe() {
      const info = plugin.info ?? {};
      const agentType = info.agentType ? String(info.agentType) : undefined;
      return {
        agentType,
        version: String(info.version || pkg.version || ''),
        description: String(info.description || pkg.description || ''),
      };
    },
  };

  const executor = {
    /** @param {WitTaskContext} wit */
    async execute(wit) {
      let output;
      try {
        if (typeof plugin.execute !== 'function') {
          throw new FatalError('not_an_executor', 'this plugin exports no execute(ctx) function');
        }
        output = await plugin.execute(TaskContext.fromWit(wit));
        return outputText(output);
      } catch (e) {
        throw new WitResultError(witTaskError(e));
      }
    },
  };

  const validator = {
    /** @param {string} handoff JSON text */
    async validate(handoff) {
      let issues;
      try {
        if (typeof plugin.validate !== 'function') throw new Error('this plugin exports no validate(handoff) function');
        issues = issuesOf(await plugin.validate(JSON.parse(handoff)));
      } catch (e) {
        issues = issuesOfThrown(e);
      }
      if (issues.length > 0) throw new WitResultError(issues);
    },
  };

  return { metadata, executor, validator };
}
