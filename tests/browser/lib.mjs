// Helpers of the console's browser test and benchmark: the host's API, polling waits, Chromium.

import { chromium } from 'playwright-core';

export const BASE = (process.env.HYPHAE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const TOKEN = process.env.HYPHAE_TOKEN || '';

/** A request to the host's API; returns `{status, body}` (body parsed when JSON). */
export async function request(method, path, body) {
  const headers = { accept: 'application/json' };
  if (TOKEN) headers.authorization = `Bearer ${TOKEN}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed = text;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, body: parsed };
}

/** GET that must answer 200. */
export async function get(path) {
  const r = await request('GET', path);
  if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Submit a workflow; returns its id. */
export async function submit(spec) {
  const r = await request('POST', '/v1/workflows', spec);
  if (r.status !== 201 && r.status !== 200) throw new Error(`submit: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.workflow_id;
}

/**
 * Run `fn` until it returns without throwing (and, if it returns something, something truthy),
 * every `interval` ms, for at most `timeout` ms; then throw its last error.
 */
export async function eventually(fn, { timeout = 30000, interval = 150, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v !== false) return v;
      last = new Error(`${what}: not yet`);
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const err = new Error(`timed out after ${timeout} ms waiting for ${what}: ${last?.message || last}`);
      err.cause = last;
      throw err;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Wait until the workflow's status (from the API) is one of `statuses`. */
export async function waitStatus(id, statuses, timeout = 60000) {
  const want = [].concat(statuses);
  return eventually(async () => {
    const wf = await get(`/v1/workflows/${id}?tasks_limit=0`);
    if (!want.includes(wf.status)) throw new Error(`status is ${wf.status}, want ${want.join(' or ')}`);
    return wf;
  }, { timeout, interval: 200, what: `workflow ${id} ${want.join('/')}` });
}

/** Chromium, headless (CHROMIUM overrides the executable). */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

/** A browser context whose pages send the token (kept in localStorage, as the console does). */
export async function newContext(browser) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  if (TOKEN) {
    await context.addInitScript((t) => { try { localStorage.setItem('hyphae.token', t); } catch { /* ignore */ } }, TOKEN);
  }
  return context;
}

export function unique(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}
