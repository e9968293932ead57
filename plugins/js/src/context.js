/**
 * The task context: everything an executor is given for one attempt, with the JSON text that
 * crosses the WIT boundary already parsed.
 * @module
 */
import * as host from '#host';
import { FatalError } from './errors.js';
import { configText } from './config.js';

/**
 * @typedef {{id: string, agentType: string}} Agent
 * @typedef {{taskId: string, agent: Agent, status: 'completed'|'failed', output?: unknown, error?: unknown}} PreviousResult
 */

/** Parses one JSON text of the context; the host only sends valid JSON, so failures are fatal. */
function parse(what, text) {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FatalError('invalid_input', `${what} is not valid JSON: ${e.message}`);
  }
}

const testAgent = () => ({ id: 'test', agentType: 'test' });

/** Everything an executor is given to perform one attempt of a task. */
export class TaskContext {
  /**
   * @param {object} fields
   * @param {string} fields.workflowId
   * @param {string} fields.taskId
   * @param {Agent} fields.agent
   * @param {number} fields.attempt attempt number, from 1
   * @param {unknown} fields.input
   * @param {Record<string, unknown>} fields.variables
   * @param {Record<string, unknown>} fields.context
   * @param {Record<string, unknown>} fields.metadata
   * @param {PreviousResult[]} fields.previousResults
   * @param {unknown[]} fields.handoffs
   */
  constructor(fields) {
    /** Id of the workflow the task belongs to. @type {string} */
    this.workflowId = fields.workflowId;
    /** Id of the task. @type {string} */
    this.taskId = fields.taskId;
    /** The agent that runs the task: `{id, agentType}`. @type {Agent} */
    this.agent = fields.agent;
    /** Attempt number, starting at 1. @type {number} */
    this.attempt = fields.attempt;
    /** Task input (parsed JSON). @type {any} */
    this.input = fields.input;
    /** Workflow variables (a JSON object). @type {Record<string, any>} */
    this.variables = fields.variables;
    /** Workflow context (a JSON object). @type {Record<string, any>} */
    this.context = fields.context;
    /** Task metadata (a JSON object). @type {Record<string, any>} */
    this.metadata = fields.metadata;
    /** Results of the direct dependencies, in the order of the task's `dependencies`. @type {PreviousResult[]} */
    this.previousResults = fields.previousResults;
    /** The handoff message of each incoming edge, in the order of `previousResults`. @type {any[]} */
    this.handoffs = fields.handoffs;
  }

  /**
   * The context from the WIT record (JSON as text), as the component glue receives it.
   * @param {import('./glue.js').WitTaskContext} wit
   * @returns {TaskContext}
   */
  static fromWit(wit) {
    return new TaskContext({
      workflowId: wit.workflowId,
      taskId: wit.taskId,
      agent: { id: wit.agent.id, agentType: wit.agent.agentType },
      attempt: wit.attempt,
      input: parse('input', wit.input),
      variables: parse('variables', wit.variables),
      context: parse('context', wit.context),
      metadata: parse('metadata', wit.metadata),
      previousResults: wit.previousResults.map((r, i) => {
        const result = { taskId: r.taskId, agent: { id: r.agent.id, agentType: r.agent.agentType }, status: r.status };
        if (r.output !== undefined && r.output !== null) result.output = parse(`previous_results[${i}].output`, r.output);
        if (r.error !== undefined && r.error !== null) result.error = parse(`previous_results[${i}].error`, r.error);
        return result;
      }),
      handoffs: wit.handoffs.map((h, i) => parse(`handoffs[${i}]`, h)),
    });
  }

  /**
   * A context for unit tests: attempt 1 of task `test` of workflow `test`, agent `test` of type
   * `test`, the given input, empty variables, context and metadata. Options override any field;
   * `previousResults` entries need only `taskId` and `output` (completed) or `error` (failed), and
   * each gets an empty handoff unless `handoffs` is given. `config` (values as in a manifest's
   * `[config]`) and `secrets` (name -> placeholder) become what `config` and `secret` read outside
   * wasm, until the next `forTest`.
   *
   * `const ctx = TaskContext.forTest({text: 'hi'}, {previousResults: [{taskId: 'fetch', output: {text: 'x'}}]})`
   *
   * @param {unknown} [input] the task input (default `{}`)
   * @param {object} [options]
   * @param {Array<Partial<PreviousResult> & {taskId: string}>} [options.previousResults]
   * @param {unknown[]} [options.handoffs]
   * @param {Record<string, unknown>} [options.config]
   * @param {Record<string, string>} [options.secrets]
   * @param {string} [options.workflowId]
   * @param {string} [options.taskId]
   * @param {Partial<Agent>} [options.agent]
   * @param {number} [options.attempt]
   * @param {Record<string, unknown>} [options.variables]
   * @param {Record<string, unknown>} [options.context]
   * @param {Record<string, unknown>} [options.metadata]
   * @returns {TaskContext}
   */
  static forTest(input = {}, options = {}) {
    const known = new Set([
      'previousResults', 'handoffs', 'config', 'secrets', 'workflowId', 'taskId', 'agent', 'attempt',
      'variables', 'context', 'metadata',
    ]);
    for (const key of Object.keys(options)) {
      if (!known.has(key)) throw new TypeError(`TaskContext.forTest: unknown option ${JSON.stringify(key)} (known: ${[...known].join(', ')})`);
    }
    const previousResults = (options.previousResults ?? []).map((r) => {
      if (!r || typeof r.taskId !== 'string') throw new TypeError('TaskContext.forTest: each previous result needs a string `taskId`');
      const status = r.status ?? (r.error !== undefined && r.output === undefined ? 'failed' : 'completed');
      const result = { taskId: r.taskId, agent: { ...testAgent(), ...r.agent }, status };
      if (r.output !== undefined) result.output = r.output;
      if (r.error !== undefined) result.error = r.error;
      return result;
    });
    const pairs = configText(options.config);
    for (const [name, placeholder] of Object.entries(options.secrets ?? {})) pairs.set(`secret.${name}`, String(placeholder));
    host.setTestConfig(pairs);
    return new TaskContext({
      workflowId: options.workflowId ?? 'test',
      taskId: options.taskId ?? 'test',
      agent: { ...testAgent(), ...options.agent },
      attempt: options.attempt ?? 1,
      input,
      variables: options.variables ?? {},
      context: options.context ?? {},
      metadata: options.metadata ?? {},
      previousResults,
      handoffs: options.handoffs ?? previousResults.map(() => ({})),
    });
  }

  /**
   * Outputs of the dependencies that completed, in dependency order.
   * @returns {unknown[]}
   */
  previousOutputs() {
    return this.previousResults.filter((r) => r.status === 'completed' && r.output !== undefined).map((r) => r.output);
  }

  /**
   * Workflow variable `name`, or `undefined`.
   * @param {string} name
   * @returns {any}
   */
  variable(name) {
    const v = this.variables;
    return v && typeof v === 'object' && Object.hasOwn(v, name) ? v[name] : undefined;
  }
}
