/**
 * Host capabilities inside a validator component (world `validator-plugin`): `hyphae:plugin/host`
 * only. That world imports no `wasi:config/store`, so configuration is not available.
 * @module
 */
export { runtime, log, progress, setTestConfig } from './wasm-common.js';

function unavailable() {
  throw new Error(
    'config is not available to validator-only plugins (world validator-plugin): ' +
      'export execute() as well (world agent-plugin) to read the manifest\'s [config]',
  );
}

/** @returns {never} */
export function configGet() {
  return unavailable();
}

/** @returns {never} */
export function configGetAll() {
  return unavailable();
}
