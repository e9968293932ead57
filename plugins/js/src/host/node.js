/**
 * Host capabilities outside wasm (plain Node, for unit tests): `log` and `progress` write to
 * stderr, the configuration is the one the last `TaskContext.forTest(..., {config, secrets})` set.
 * The build never bundles this file into a component (package.json `imports`, condition
 * `hyphae-wasm`).
 * @module
 */

/** Where this code runs. */
export const runtime = 'node';

const LEVEL_NAMES = { trace: 'Trace', debug: 'Debug', info: 'Info', warn: 'Warn', error: 'Error' };

/** @type {Map<string, string>} */
let testConfig = new Map();

/**
 * Writes one log line to stderr, as `[Info] message` (the Rust SDK's native format).
 * @param {'trace'|'debug'|'info'|'warn'|'error'} level
 * @param {string} message
 */
export function log(level, message) {
  process.stderr.write(`[${LEVEL_NAMES[level] ?? level}] ${message}\n`);
}

/**
 * Writes `[progress 50%] note` to stderr.
 * @param {number} percent 0..=100
 * @param {string} note
 */
export function progress(percent, note) {
  process.stderr.write(`[progress ${percent}%] ${note}\n`);
}

/**
 * The test configuration's value of `key`.
 * @param {string} key
 * @returns {string | undefined}
 */
export function configGet(key) {
  return testConfig.get(key);
}

/**
 * Every pair of the test configuration.
 * @returns {Array<[string, string]>}
 */
export function configGetAll() {
  return [...testConfig.entries()];
}

/**
 * Replaces the test configuration (values already as text).
 * @param {Map<string, string>} pairs
 */
export function setTestConfig(pairs) {
  testConfig = new Map(pairs);
}
