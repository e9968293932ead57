/**
 * Logging and progress. Inside a component, lines go to the host (its tracing output and the
 * task's log, tagged with workflow and task); outside wasm (unit tests) to stderr.
 * @module
 */
import * as host from '#host';

/**
 * @param {'trace'|'debug'|'info'|'warn'|'error'} level
 * @param {unknown[]} parts joined by spaces; non-strings as JSON (errors with their stack)
 */
function write(level, parts) {
  host.log(level, parts.map(text).join(' '));
}

function text(part) {
  if (typeof part === 'string') return part;
  if (part instanceof Error) return part.stack ? `${part.name}: ${part.message}\n${part.stack}` : String(part);
  try {
    return JSON.stringify(part) ?? String(part);
  } catch {
    return String(part);
  }
}

/**
 * Log lines at each level. Arguments are joined by spaces; objects are written as JSON.
 * `log.info('processed', 3, 'items')`.
 */
export const log = Object.freeze({
  /** @param {...unknown} parts */
  trace: (...parts) => write('trace', parts),
  /** @param {...unknown} parts */
  debug: (...parts) => write('debug', parts),
  /** @param {...unknown} parts */
  info: (...parts) => write('info', parts),
  /** @param {...unknown} parts */
  warn: (...parts) => write('warn', parts),
  /** @param {...unknown} parts */
  error: (...parts) => write('error', parts),
});

/**
 * Reports progress of the current task: `percent` (rounded, clamped to 0..=100) and what is
 * happening.
 * @param {number} percent
 * @param {string} [note]
 */
export function progress(percent, note = '') {
  const p = Number.isFinite(percent) ? Math.min(100, Math.max(0, Math.round(percent))) : 0;
  host.progress(p, String(note));
}
