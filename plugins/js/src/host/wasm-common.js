/**
 * `log` and `progress` inside a component: the imports of `hyphae:plugin/host@0.1.0`.
 * @module
 */
import { log as hostLog, progress as hostProgress } from 'hyphae:plugin/host@0.1.0';

/** Where this code runs. */
export const runtime = 'wasm';

/**
 * @param {'trace'|'debug'|'info'|'warn'|'error'} level
 * @param {string} message
 */
export function log(level, message) {
  hostLog(level, message);
}

/**
 * @param {number} percent 0..=100 (an integer)
 * @param {string} note
 */
export function progress(percent, note) {
  hostProgress(percent, note);
}

/** Test configuration does not exist inside a component. */
export function setTestConfig(pairs) {
  if (pairs.size > 0) {
    throw new Error('TaskContext.forTest: `config` and `secrets` apply outside wasm only (unit tests under Node)');
  }
}
