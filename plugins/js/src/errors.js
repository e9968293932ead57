/**
 * Task errors: what an executor throws to fail an attempt. `RetryableError` lets the host retry
 * according to the task's retry policy; `FatalError` does not. Anything else thrown is fatal with
 * error type `exception` (see {@link toTaskError}).
 * @module
 */

/**
 * An error reported by an executor: `kind` (`retryable` | `fatal`), a short machine-readable
 * `errorType` such as `invalid_input` (recorded as `error_type`), a human-readable `message` and
 * optional JSON `detail`.
 */
export class TaskError extends Error {
  /**
   * @param {'retryable'|'fatal'} kind
   * @param {string} errorType
   * @param {string} message
   * @param {unknown} [detail] any JSON value
   */
  constructor(kind, errorType, message, detail) {
    super(message);
    if (kind !== 'retryable' && kind !== 'fatal') {
      throw new TypeError(`TaskError: kind must be 'retryable' or 'fatal', not ${JSON.stringify(kind)}`);
    }
    this.name = 'TaskError';
    /** @type {'retryable'|'fatal'} */
    this.kind = kind;
    /** @type {string} */
    this.errorType = String(errorType);
    /** @type {unknown} */
    this.detail = detail;
  }

  /** Whether the host may retry the attempt. */
  get retryable() {
    return this.kind === 'retryable';
  }

  /**
   * Attaches details (any JSON value); returns the error.
   * @param {unknown} detail
   * @returns {this}
   */
  withDetail(detail) {
    this.detail = detail;
    return this;
  }

  /** `{kind, error_type, message, detail?}`, as the host records it. */
  toJSON() {
    const json = { kind: this.kind, error_type: this.errorType, message: this.message };
    if (this.detail !== undefined) json.detail = this.detail;
    return json;
  }

  toString() {
    return `${this.errorType}: ${this.message}`;
  }
}

/** A transient failure: the host retries the task according to its retry policy. */
export class RetryableError extends TaskError {
  /**
   * @param {string} errorType such as `rate_limited`
   * @param {string} message
   * @param {unknown} [detail] any JSON value
   */
  constructor(errorType, message, detail) {
    super('retryable', errorType, message, detail);
    this.name = 'RetryableError';
  }
}

/** A permanent failure: the host does not retry. */
export class FatalError extends TaskError {
  /**
   * @param {string} errorType such as `invalid_input`
   * @param {string} message
   * @param {unknown} [detail] any JSON value
   */
  constructor(errorType, message, detail) {
    super('fatal', errorType, message, detail);
    this.name = 'FatalError';
  }
}

/**
 * A fatal `invalid_input` error (the Rust SDK's `TaskError::invalid_input`).
 * @param {string} message
 * @param {unknown} [detail]
 * @returns {FatalError}
 */
export function invalidInput(message, detail) {
  return new FatalError('invalid_input', message, detail);
}

/**
 * Turns anything thrown into a {@link TaskError}: task errors stay as they are, anything else is
 * fatal `exception` with `Name: message` and `{name, stack}` as detail.
 * @param {unknown} thrown
 * @returns {TaskError}
 */
export function toTaskError(thrown) {
  if (thrown instanceof TaskError) return thrown;
  if (thrown instanceof Error) {
    const name = thrown.name || 'Error';
    const detail = { name };
    if (thrown.stack) detail.stack = String(thrown.stack);
    if (thrown.cause !== undefined) detail.cause = String(thrown.cause);
    return new FatalError('exception', `${name}: ${thrown.message}`, detail);
  }
  let text;
  try {
    text = typeof thrown === 'string' ? thrown : JSON.stringify(thrown);
  } catch {
    text = undefined;
  }
  return new FatalError('exception', `thrown: ${text ?? String(thrown)}`, { value: text ?? String(thrown) });
}

/**
 * A handoff rejection: throw it from `validate` (or return the issues) to reject.
 */
export class ValidationError extends Error {
  /**
   * @param {Array<{path?: string, message: string}> | {path?: string, message: string} | string} issues
   *   the problems found; a string is one issue at the root (`""`)
   */
  constructor(issues) {
    const list = normalizeIssues(issues);
    super(list.map((i) => `${i.path || '/'}: ${i.message}`).join('; ') || 'handoff rejected');
    this.name = 'ValidationError';
    /** @type {Array<{path: string, message: string}>} */
    this.issues = list.length > 0 ? list : [{ path: '', message: 'handoff rejected' }];
  }
}

/**
 * One problem a validator found: `path` is the JSON pointer of the offending value, such as
 * `/context/task_description` (`""` is the whole handoff).
 * @param {string} path
 * @param {string} message
 * @returns {{path: string, message: string}}
 */
export function issue(path, message) {
  return { path: String(path ?? ''), message: String(message) };
}

/**
 * @param {unknown} issues
 * @returns {Array<{path: string, message: string}>}
 */
export function normalizeIssues(issues) {
  if (issues === undefined || issues === null) return [];
  const list = Array.isArray(issues) ? issues : [issues];
  return list.map((i) => {
    if (typeof i === 'string') return issue('', i);
    if (i && typeof i === 'object' && 'message' in i) return issue(i.path ?? '', i.message);
    return issue('', `invalid issue (expected {path, message}): ${safeJson(i)}`);
  });
}

function safeJson(value) {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
