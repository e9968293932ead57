/**
 * Host capabilities inside an executor component (worlds `executor-plugin`, `agent-plugin`):
 * `hyphae:plugin/host` and `wasi:config/store`. Bundled by `hyphae-plugin-js build` (condition
 * `hyphae-wasm`).
 * @module
 */
import { get, getAll } from 'wasi:config/store@0.2.0-rc.1';
import { log } from './wasm-common.js';

export { runtime, log, progress, setTestConfig } from './wasm-common.js';

/** `wasi:config/store` error variant as text. */
function storeError(e) {
  const p = e && typeof e === 'object' && 'payload' in e ? e.payload : e;
  if (p && typeof p === 'object' && 'tag' in p) return `${p.tag}: ${p.val}`;
  return String(p);
}

/**
 * The manifest's value of `key`; a failing store is logged and gives `undefined` (as in the Rust
 * SDK).
 * @param {string} key
 * @returns {string | undefined}
 */
export function configGet(key) {
  try {
    return get(key) ?? undefined;
  } catch (e) {
    log('warn', `config: reading ${JSON.stringify(key)} failed: ${storeError(e)}`);
    return undefined;
  }
}

/** @returns {Array<[string, string]>} */
export function configGetAll() {
  try {
    return getAll();
  } catch (e) {
    log('warn', `config: listing the configuration failed: ${storeError(e)}`);
    return [];
  }
}
