// The host's HTTP API: JSON requests with the bearer token, problem+json errors, and the
// server-sent event stream of a workflow (read with fetch so the token can be sent).

const TOKEN_KEY = 'hyphae.token';

export function getToken() {
  try { return localStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch { /* private mode: the token lasts as long as the page */ }
  window.dispatchEvent(new CustomEvent('hyphae:token'));
}

/** A failed request: `status` and the problem (`title`, `detail`, `code` ...). */
export class ApiError extends Error {
  constructor(status, problem, path) {
    const p = problem || {};
    super(p.detail || p.title || `HTTP ${status}`);
    this.status = status;
    this.problem = p;
    this.code = p.code || (status === 0 ? 'network' : `http_${status}`);
    this.path = path;
  }
  /** "Title: detail (code)". */
  describe() {
    const p = this.problem;
    const head = p.title || (this.status ? `HTTP ${this.status}` : 'Request failed');
    const detail = p.detail && p.detail !== head ? `: ${p.detail}` : '';
    return `${head}${detail}${p.code ? ` (${p.code})` : ''}`;
  }
}

export function authHeaders(extra = {}) {
  const headers = { ...extra };
  const t = getToken();
  if (t) headers.Authorization = `Bearer ${t}`;
  return headers;
}

function unauthorized(err) {
  window.dispatchEvent(new CustomEvent('hyphae:unauthorized', { detail: err }));
}

/** Read a response body as JSON or text. */
async function body(res) {
  const text = await res.text();
  if (!text) return null;
  const type = res.headers.get('content-type') || '';
  if (type.includes('json')) {
    try { return JSON.parse(text); } catch { return text; }
  }
  return text;
}

/**
 * `api('/v1/workflows', {method, body, signal, query})`: the parsed JSON of a 2xx, else throws
 * an ApiError. A 401 also raises the token prompt.
 */
export async function api(path, opts = {}) {
  const { method = 'GET', json, signal, query } = opts;
  let url = path;
  if (query) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v != null && v !== '') u.set(k, v);
    const t = u.toString();
    if (t) url += (url.includes('?') ? '&' : '?') + t;
  }
  const headers = authHeaders({ Accept: 'application/json' });
  const init = { method, headers, signal };
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, { title: 'The host cannot be reached', detail: String(e.message || e) }, path);
  }
  const data = await body(res);
  if (!res.ok) {
    const problem = data && typeof data === 'object' ? data : { title: `HTTP ${res.status}`, detail: data || res.statusText };
    const err = new ApiError(res.status, problem, path);
    if (res.status === 401) unauthorized(err);
    throw err;
  }
  return data;
}

/** Every page of a listing (`items` + `next_cursor`), at most `max` items. */
export async function all(path, query = {}, max = 100000, signal) {
  const items = [];
  let cursor;
  do {
    const page = await api(path, { query: { ...query, limit: 1000, cursor }, signal });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

/**
 * Follow a workflow's event stream. Calls `onEvent(event)` for each event (in order, never the
 * same `seq` twice, resuming with Last-Event-ID after a dropped connection), `onEnd({status,
 * last_seq})` once, and `onState('live' | 'reconnecting' | 'ended' | 'error', info)`.
 * Returns a stop function.
 */
export function followEvents(workflowId, { after = 0, onEvent, onBatch, onEnd, onState }) {
  const ctl = new AbortController();
  let last = after, stopped = false, failures = 0;
  const url = `/v1/workflows/${encodeURIComponent(workflowId)}/events/stream`;

  const run = async () => {
    while (!stopped) {
      let ended = false;
      try {
        const res = await fetch(`${url}?after=${last}`, {
          headers: authHeaders({ Accept: 'text/event-stream' }),
          signal: ctl.signal,
          cache: 'no-store',
        });
        if (!res.ok) {
          const data = await body(res);
          const err = new ApiError(res.status, data && typeof data === 'object' ? data : { detail: String(data) }, url);
          if (res.status === 401) unauthorized(err);
          // A workflow that does not exist, or a refused token: retrying does not help.
          if ([400, 401, 403, 404].includes(res.status)) { onState?.('error', err); return; }
          throw err;
        }
        failures = 0;
        onState?.('live');
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        let msg = { id: null, event: null, data: [] };
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          const batch = [];
          let nl;
          while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
            if (line === '') {
              // Dispatch the message.
              if (msg.data.length) {
                const data = msg.data.join('\n');
                if (msg.event === 'end') {
                  ended = true;
                  let info = {};
                  try { info = JSON.parse(data); } catch { /* keep {} */ }
                  if (batch.length) { deliver(batch); batch.length = 0; }
                  onEnd?.(info);
                  onState?.('ended', info);
                } else if (msg.event === 'error') {
                  // The host could not read on: reconnect from the last position.
                  console.warn('event stream error', data);
                } else {
                  let ev = null;
                  try { ev = JSON.parse(data); } catch { /* not JSON: skip */ }
                  const seq = msg.id != null ? Number(msg.id) : ev?.seq;
                  if (ev && !(seq <= last)) {
                    last = seq;
                    batch.push(ev);
                  }
                }
              }
              msg = { id: null, event: null, data: [] };
              continue;
            }
            if (line.startsWith(':')) continue; // comment (keep-alive)
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            let val = colon < 0 ? '' : line.slice(colon + 1);
            if (val.startsWith(' ')) val = val.slice(1);
            if (field === 'data') msg.data.push(val);
            else if (field === 'event') msg.event = val;
            else if (field === 'id') msg.id = val;
          }
          if (batch.length) deliver(batch);
          if (ended) { ctl.abort(); return; }
        }
      } catch (e) {
        if (stopped || e.name === 'AbortError') return;
        failures++;
        onState?.('reconnecting', e);
      }
      if (ended || stopped) return;
      // The connection dropped before the end: resume after the last event seen.
      onState?.('reconnecting');
      await new Promise((r) => setTimeout(r, Math.min(10000, 500 * 2 ** Math.min(failures, 5))));
    }
  };

  const deliver = (batch) => {
    if (onBatch) onBatch(batch.slice());
    else for (const ev of batch) onEvent?.(ev);
  };

  run();
  return () => { stopped = true; ctl.abort(); };
}
