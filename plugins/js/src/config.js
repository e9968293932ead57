/**
 * Configuration and secrets of the agent type: the `[config]` table of its manifest (`NAME.toml`
 * beside `NAME.wasm`), read through `wasi:config/store`. Strings come as written; other TOML values
 * (numbers, booleans, arrays, tables) as JSON text (`temperature = 0.2` reads `"0.2"`). Keys
 * `secret.NAME` hold secret placeholders. Outside wasm the configuration is the one given to
 * `TaskContext.forTest(input, {config, secrets})`.
 * @module
 */
import * as host from '#host';
import { FatalError } from './errors.js';

/**
 * A fatal `missing_config` error naming the key and where to set it.
 * @param {string} key
 * @returns {FatalError}
 */
export function missingConfig(key) {
  return new FatalError(
    'missing_config',
    `config key ${JSON.stringify(key)} is not set: add it under [config] in the agent type's manifest ` +
      `(NAME.toml beside NAME.wasm), e.g. ${key} = "..."`,
    { key },
  );
}

export const config = Object.freeze({
  /**
   * The value of `key`, if the manifest sets it (a failing store is logged and gives `undefined`).
   * @param {string} key
   * @returns {string | undefined}
   */
  get(key) {
    return host.configGet(String(key));
  },

  /**
   * The value of `key`; absent: throws a fatal `missing_config` error saying where to set it.
   * @param {string} key
   * @returns {string}
   */
  require(key) {
    const value = host.configGet(String(key));
    if (value === undefined) throw missingConfig(String(key));
    return value;
  },

  /**
   * Every key and value as the host lists them (secret placeholders included), as `[key, value]`
   * pairs: `Object.fromEntries(config.getAll())` gives an object.
   * @returns {Array<[string, string]>}
   */
  getAll() {
    return host.configGetAll().map(([k, v]) => [k, v]);
  },
});

export const secret = Object.freeze({
  /**
   * The placeholder of secret `name` (config key `secret.NAME`). Write it where the value belongs
   * (`authorization: Bearer <placeholder>`, a body); the host substitutes the value only in
   * requests to the secret's hosts. Absent: throws a fatal `missing_secret` error saying what to
   * add to the manifest and the host configuration.
   * @param {string} name
   * @returns {string}
   */
  placeholder(name) {
    const value = host.configGet(`secret.${name}`);
    if (value !== undefined) return value;
    throw new FatalError(
      'missing_secret',
      `secret ${JSON.stringify(name)} is not granted: add \`secrets = ["${name}"]\` to the agent type's manifest ` +
        `(NAME.toml beside NAME.wasm) and define [secrets.${name}] (env or file, and hosts) in the ` +
        `host configuration`,
      { secret: name },
    );
  },
});

/**
 * Config values as the host hands them over: strings as written, anything else as JSON text.
 * @param {Record<string, unknown>} values
 * @returns {Map<string, string>}
 */
export function configText(values) {
  const pairs = new Map();
  for (const [key, value] of Object.entries(values ?? {})) {
    if (value === undefined) continue;
    pairs.set(key, typeof value === 'string' ? value : JSON.stringify(value));
  }
  return pairs;
}
