/**
 * Chat completions from an OpenAI-compatible server (OpenAI, Ollama, vLLM, llama.cpp, ...), as the
 * Rust SDK's `llm` module.
 *
 * ```js
 * const client = llm.Client.fromConfig(); // [config] base_url, model, secret?, temperature?, max_tokens?, timeout_s?
 * const answer = await client.chat([llm.system('Be brief.'), llm.user('Why is the sky blue?')]);
 * return { content: answer.content, model: answer.model, usage: answer.usage };
 * ```
 *
 * The request is `POST {base_url}/chat/completions` with `{model, messages, temperature?,
 * max_tokens?}` and, when a secret is named, `authorization: Bearer <placeholder>` (the host puts
 * the key in). A non-2xx answer is an `llm_error` naming the status and the server's message:
 * retryable for 429 and 5xx, fatal otherwise.
 * @module
 */
import { config, missingConfig, secret } from './config.js';
import { FatalError, RetryableError } from './errors.js';
import { excerpt, fetch } from './http.js';
import { log } from './log.js';

/**
 * @typedef {{role: string, content: string}} Message
 * @typedef {{prompt_tokens: number, completion_tokens: number, total_tokens: number}} Usage
 * @typedef {{content: string, model: string, usage: Usage}} ChatResponse
 * @typedef {object} ChatRequest
 * @property {string} baseUrl API base up to and including the version: `https://api.openai.com/v1`
 * @property {string} model
 * @property {Message[]} messages
 * @property {number} [temperature]
 * @property {number} [maxTokens]
 * @property {string} [secret] name of the secret holding the API key
 * @property {number} [timeoutS] request timeout in seconds
 */

/** @param {string} role @param {string} content @returns {Message} */
export const message = (role, content) => ({ role: String(role), content: String(content) });
/** A `system` message (instructions). @param {string} content @returns {Message} */
export const system = (content) => message('system', content);
/** A `user` message. @param {string} content @returns {Message} */
export const user = (content) => message('user', content);
/** An `assistant` message (an earlier answer). @param {string} content @returns {Message} */
export const assistant = (content) => message('assistant', content);

/**
 * `{base_url}/chat/completions`.
 * @param {string} baseUrl
 */
export function chatUrl(baseUrl) {
  return `${baseUrl.replace(/\/+$/, '')}/chat/completions`;
}

/**
 * The JSON body sent for `request`.
 * @param {ChatRequest} request
 */
export function requestBody(request) {
  const body = { model: request.model, messages: request.messages };
  if (request.temperature !== undefined) body.temperature = request.temperature;
  if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
  return body;
}

/**
 * Sends `request` and returns the first choice.
 * @param {ChatRequest} request
 * @returns {Promise<ChatResponse>}
 */
export async function chat(request) {
  const url = chatUrl(request.baseUrl);
  const headers = { accept: 'application/json', 'content-type': 'application/json' };
  if (request.secret) headers.authorization = `Bearer ${secret.placeholder(request.secret)}`;
  const init = { method: 'POST', headers, body: JSON.stringify(requestBody(request)) };
  if (request.timeoutS !== undefined) init.timeoutMs = request.timeoutS * 1000;
  const response = await fetch(url, init);
  const body = await response.text();
  const answer = parseResponse(url, request.model, response.status, body);
  log.debug(`llm: ${answer.model} answered with ${answer.usage.total_tokens} tokens`);
  return answer;
}

/**
 * Reads a chat completion response (`model` defaults to the requested one).
 * @param {string} url
 * @param {string} model
 * @param {number} status
 * @param {string} body
 * @returns {ChatResponse}
 */
export function parseResponse(url, model, status, body) {
  if (status < 200 || status >= 300) throw statusError(url, status, body);
  const unreadable = (what) =>
    new FatalError('llm_error', `POST ${url}: ${what}`, { status, body: excerpt(body, 300) });
  let v;
  try {
    v = JSON.parse(body);
  } catch (e) {
    throw unreadable(`response is not JSON: ${e.message}`);
  }
  const content = v?.choices?.[0]?.message?.content;
  if (typeof content !== 'string') throw unreadable('response has no text at choices[0].message.content');
  const u = v.usage && typeof v.usage === 'object' ? v.usage : {};
  const count = (n) => (Number.isInteger(n) && n >= 0 ? n : 0);
  const usage = {
    prompt_tokens: count(u.prompt_tokens),
    completion_tokens: count(u.completion_tokens),
    total_tokens: count(u.total_tokens),
  };
  if (usage.total_tokens === 0) usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  return { content, model: typeof v.model === 'string' ? v.model : model, usage };
}

/**
 * A non-2xx answer: its status and the server's message (or the start of the body).
 * @param {string} url
 * @param {number} status
 * @param {string} body
 */
function statusError(url, status, body) {
  let serverMessage;
  try {
    const v = JSON.parse(body);
    const m = v?.error?.message ?? v?.error ?? v?.message;
    if (typeof m === 'string') serverMessage = excerpt(m, 200);
  } catch {
    // not JSON: the body itself
  }
  const message = `POST ${url}: HTTP ${status}: ${serverMessage ?? excerpt(body, 200)}`;
  const detail = { status, body: excerpt(body, 300) };
  return status === 429 || (status >= 500 && status < 600)
    ? new RetryableError('llm_error', message, detail)
    : new FatalError('llm_error', message, detail);
}

/**
 * A number from config key `key`, or `undefined` (a bad number: fatal `invalid_config`).
 * @param {string} key
 * @param {string | undefined} text
 * @param {boolean} integer
 */
function number(key, text, integer) {
  if (text === undefined) return undefined;
  const t = text.trim().replace(/^"+|"+$/g, '');
  const n = t === '' ? NaN : Number(t);
  if (!Number.isFinite(n) || (integer && !(Number.isInteger(n) && n >= 0))) {
    throw new FatalError('invalid_config', `config key ${JSON.stringify(key)} = ${JSON.stringify(text)}: not a valid number`);
  }
  return n;
}

/** Settings shared by the requests of an agent type, usually from its manifest's `[config]`. */
export class Client {
  /**
   * A client for `model` at `baseUrl`, without secret.
   * @param {string} baseUrl such as `https://api.openai.com/v1`
   * @param {string} model
   * @param {{secret?: string, temperature?: number, maxTokens?: number, timeoutS?: number}} [options]
   */
  constructor(baseUrl, model, options = {}) {
    this.baseUrl = baseUrl;
    this.model = model;
    this.secret = options.secret;
    this.temperature = options.temperature;
    this.maxTokens = options.maxTokens;
    this.timeoutS = options.timeoutS;
  }

  /**
   * From config keys `base_url` and `model` (required: else fatal `missing_config`), and the
   * optional `secret` (a secret's name), `temperature`, `max_tokens` and `timeout_s` (a bad
   * number: fatal `invalid_config`).
   * @param {(key: string) => string | undefined} [get] where to read keys (default `config.get`)
   * @returns {Client}
   */
  static fromConfig(get = config.get) {
    const require = (key) => {
      const v = get(key);
      if (v === undefined) throw missingConfig(key);
      return v;
    };
    const timeoutS = number('timeout_s', get('timeout_s'), false);
    if (timeoutS !== undefined && !(timeoutS > 0)) {
      throw new FatalError('invalid_config', `config key "timeout_s" = ${timeoutS}: must be > 0`);
    }
    const s = get('secret');
    return new Client(require('base_url'), require('model'), {
      secret: s === undefined || s === '' ? undefined : s,
      temperature: number('temperature', get('temperature'), false),
      maxTokens: number('max_tokens', get('max_tokens'), true),
      timeoutS,
    });
  }

  /**
   * The request this client sends for `messages`.
   * @param {Message[]} messages
   * @returns {ChatRequest}
   */
  request(messages) {
    const r = { baseUrl: this.baseUrl, model: this.model, messages };
    for (const k of ['temperature', 'maxTokens', 'secret', 'timeoutS']) if (this[k] !== undefined) r[k] = this[k];
    return r;
  }

  /**
   * Sends `messages` (see {@link chat}).
   * @param {Message[]} messages
   * @returns {Promise<ChatResponse>}
   */
  chat(messages) {
    return chat(this.request(messages));
  }
}
