/**
 * Outbound HTTP: the standard `fetch()`, whose errors become task errors.
 *
 * Inside a component, `fetch` goes through `wasi:http/outgoing-handler`: the host checks every
 * request against the agent type's `allowed_outbound_hosts` (manifest `NAME.toml` beside
 * `NAME.wasm`) before anything is sent, and puts secret values in place of their placeholders. The
 * host never follows redirects; `fetch` follows them itself (each one a new request the host
 * checks again). Outside wasm, Node's own `fetch` is used, without any allow-list.
 *
 * The component's `fetch` reports every failure before a response (refused connection, DNS,
 * timeout, or a request the host denied) as the same `TypeError: NetworkError`, without the
 * `wasi:http` error code, so this module cannot tell a denied request from a transient failure:
 * both become a retryable `http_error` whose message says to check `allowed_outbound_hosts`.
 * @module
 */
import { FatalError, RetryableError, TaskError } from './errors.js';

/** The text StarlingMonkey's fetch rejects with when no response arrived. */
const NETWORK_ERROR = 'NetworkError when attempting to fetch resource';

/**
 * `scheme://host[:port]` of a URL (the port left out when it is the scheme's default), as written
 * in `allowed_outbound_hosts`; `undefined` for a URL that does not parse.
 * @param {string} url
 * @returns {string | undefined}
 */
export function origin(url) {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/**
 * Whether an error thrown by `fetch` is a failure before any response.
 * @param {unknown} e
 */
export function isNetworkError(e) {
  return e instanceof TypeError && (e.message.includes(NETWORK_ERROR) || e.message === 'fetch failed');
}

/**
 * The task error for a failed `fetch` of `method url`.
 * @param {unknown} e what fetch threw
 * @param {string} method
 * @param {string} url
 * @param {number} [timeoutMs] the timeout that was set, if any
 * @returns {TaskError}
 */
export function fetchError(e, method, url, timeoutMs) {
  if (e instanceof TaskError) return e;
  const name = e instanceof Error ? e.name : '';
  const message = e instanceof Error ? e.message : String(e);
  const detail = (code) => ({ code, method, url });
  if (name === 'TimeoutError' || (name === 'AbortError' && timeoutMs !== undefined)) {
    return new RetryableError('http_error', `${method} ${url}: timed out after ${timeoutMs / 1000} s`, detail('timeout'));
  }
  if (name === 'AbortError') {
    return new FatalError('http_error', `${method} ${url}: aborted`, detail('aborted'));
  }
  if (isNetworkError(e)) {
    const o = origin(url) ?? url;
    const cause = e.cause instanceof Error ? ` (${e.cause.message})` : '';
    return new RetryableError(
      'http_error',
      `${method} ${url}: no response: the connection failed, or the host denied the request${cause}; ` +
        `if the host denied it, add "${o}" to \`allowed_outbound_hosts\` in the agent type's manifest ` +
        `(NAME.toml beside NAME.wasm), or check the request budget`,
      detail('network-error'),
    );
  }
  if (e instanceof TypeError && /URL/i.test(message)) {
    return new FatalError('http_error', `${method} ${url}: invalid URL: ${message}`, detail('invalid-url'));
  }
  return new FatalError('http_error', `${method} ${url}: ${name ? `${name}: ` : ''}${message}`, detail('request-failed'));
}

/**
 * `fetch()` whose failures are task errors (see the module description): a request that got no
 * response throws a retryable `http_error`; a timeout (option `timeoutMs`) a retryable
 * `http_error`; an invalid URL a fatal `http_error`. HTTP error statuses are responses, not
 * errors: check `response.ok`.
 * @param {string | URL | Request} input
 * @param {RequestInit & {timeoutMs?: number}} [init]
 * @returns {Promise<Response>}
 */
export async function fetch(input, init = {}) {
  const { timeoutMs, ...rest } = init;
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : String(input?.url ?? input);
  const method = String(rest.method ?? input?.method ?? 'GET').toUpperCase();
  if (timeoutMs !== undefined) {
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new TypeError(`fetch: timeoutMs must be > 0, not ${timeoutMs}`);
    if (!rest.signal) rest.signal = AbortSignal.timeout(timeoutMs);
  }
  try {
    return await globalThis.fetch(input, rest);
  } catch (e) {
    throw fetchError(e, method, url, timeoutMs);
  }
}

/**
 * The start of a text, at most `max` characters, with `...` when cut (the Rust SDK's excerpt).
 * @param {string} text
 * @param {number} max
 */
export function excerpt(text, max) {
  const t = String(text).trim();
  const chars = [...t];
  return chars.length > max ? `${chars.slice(0, max).join('')}...` : t;
}
