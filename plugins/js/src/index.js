/**
 * `@hyphae/plugin`: write Hyphae plugins in JavaScript.
 *
 * ```js
 * import { log, invalidInput } from '@hyphae/plugin';
 *
 * export function execute(ctx) {
 *   if (typeof ctx.input.text !== 'string') throw invalidInput('input.text: a string is required');
 *   log.info('counting words');
 *   return { words: ctx.input.text.split(/\s+/).filter(Boolean).length };
 * }
 * ```
 *
 * `hyphae-plugin-js build` turns such a module into a WebAssembly component (world
 * `executor-plugin`, `validator-plugin` or `agent-plugin`, from what it exports).
 * @module
 */
export { TaskContext } from './context.js';
export {
  TaskError,
  RetryableError,
  FatalError,
  ValidationError,
  invalidInput,
  issue,
  toTaskError,
} from './errors.js';
export { log, progress } from './log.js';
export { config, secret } from './config.js';
export { fetch } from './http.js';
export * as llm from './llm.js';
export { runtime } from '#host';
