// An interactive API reference built from /openapi.json: operations by tag, their parameters,
// request body and responses (with $refs resolved), and a "Try it" form that sends the request
// with the console's token.

import { api, ApiError, authHeaders } from './api.js';
import { h, append, replace, notice, jsonBlock } from './util.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** A short type name of a schema: "string", "integer | null", "Task[]", "map of string" ... */
function typeName(schema, doc) {
  if (!schema) return 'any';
  if (schema.$ref) return refName(schema.$ref);
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  for (const k of ['oneOf', 'anyOf']) {
    if (schema[k]) return schema[k].map((s) => typeName(s, doc)).join(' | ');
  }
  if (schema.allOf) return schema.allOf.map((s) => typeName(s, doc)).join(' & ');
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  const names = types.map((t) => {
    if (t === 'array') return `${typeName(schema.items, doc)}[]`;
    if (t === 'object' && schema.additionalProperties && typeof schema.additionalProperties === 'object' && !schema.properties) {
      return `map of ${typeName(schema.additionalProperties, doc)}`;
    }
    return t + (schema.format && t !== 'null' ? ` (${schema.format})` : '');
  });
  if (!names.length && schema.properties) names.push('object');
  return names.join(' | ') || 'any';
}

function refName(ref) {
  return decodeURIComponent(ref.split('/').pop());
}

function resolve(schema, doc) {
  let s = schema;
  let guard = 0;
  while (s?.$ref && guard++ < 20) {
    const path = s.$ref.replace(/^#\//, '').split('/').map((p) => decodeURIComponent(p.replace(/~1/g, '/').replace(/~0/g, '~')));
    s = path.reduce((o, k) => o?.[k], doc);
  }
  return s || {};
}

/** The schema as a nested list of its properties (refs expanded once per branch). */
function schemaView(schema, doc, seen = new Set(), depth = 0) {
  if (!schema) return h('span', { class: 'muted' }, 'any');
  const name = schema.$ref ? refName(schema.$ref) : null;
  const s = resolve(schema, doc);
  if (name && seen.has(name)) return h('span', { class: 'schema-ref' }, name, h('span', { class: 'muted' }, ' (see above)'));
  const nextSeen = name ? new Set([...seen, name]) : seen;
  const parts = [];
  if (s.description && depth === 0) parts.push(h('p', { class: 'schema-desc' }, s.description));
  const variants = s.oneOf || s.anyOf;
  if (variants) {
    parts.push(h('div', { class: 'muted small' }, s.oneOf ? 'one of:' : 'any of:'),
      h('ul', { class: 'schema' }, variants.map((v) => h('li', h('span', { class: 'schema-type' }, typeName(v, doc)),
        depth < 6 && (v.$ref || v.properties) ? schemaView(v, doc, nextSeen, depth + 1) : null))));
  }
  if (s.allOf) {
    for (const part of s.allOf) parts.push(schemaView(part, doc, nextSeen, depth + 1));
  }
  const props = s.properties || {};
  const required = new Set(s.required || []);
  if (Object.keys(props).length) {
    parts.push(h('ul', { class: 'schema' }, Object.entries(props).map(([k, p]) => {
      const target = p.type === 'array' || (Array.isArray(p.type) && p.type.includes('array')) ? p.items : p;
      const r = resolve(target, doc);
      const nested = depth < 6 && target && (r.properties || r.oneOf || r.anyOf || r.allOf) && !(target.$ref && nextSeen.has(refName(target.$ref)));
      return h('li',
        h('code', { class: 'prop' }, k), required.has(k) ? h('span', { class: 'req', title: 'required' }, '*') : null, ' ',
        h('span', { class: 'schema-type' }, typeName(p, doc)),
        p.description || (p.$ref && r.description) ? h('span', { class: 'schema-desc' }, ' — ', p.description || r.description) : null,
        nested ? h('details', h('summary', 'fields'), schemaView(target, doc, nextSeen, depth + 1)) : null);
    })));
  } else if (s.type === 'array' && s.items) {
    parts.push(h('div', h('span', { class: 'schema-type' }, typeName(s, doc))), depth < 6 ? schemaView(s.items, doc, nextSeen, depth + 1) : null);
  } else if (!variants && !s.allOf) {
    parts.push(h('span', { class: 'schema-type' }, typeName(schema, doc)));
  }
  return h('div', { class: 'schema-view' }, name && depth === 0 ? h('div', { class: 'schema-name' }, name) : null, parts);
}

/** An example value for a schema (its example, else a skeleton of its required fields). */
function example(schema, doc, depth = 0) {
  if (!schema || depth > 4) return null;
  const s = resolve(schema, doc);
  if (s.example !== undefined) return s.example;
  if (s.examples?.length) return s.examples[0];
  if (s.default !== undefined) return s.default;
  if (s.enum) return s.enum[0];
  if (s.oneOf || s.anyOf) return example((s.oneOf || s.anyOf)[0], doc, depth + 1);
  if (s.allOf) return Object.assign({}, ...s.allOf.map((p) => example(p, doc, depth + 1) || {}));
  const types = Array.isArray(s.type) ? s.type.filter((t) => t !== 'null') : [s.type];
  const t = types[0] || (s.properties ? 'object' : undefined);
  switch (t) {
    case 'object': {
      const out = {};
      const req = new Set(s.required || []);
      for (const [k, p] of Object.entries(s.properties || {})) if (req.has(k)) out[k] = example(p, doc, depth + 1);
      return out;
    }
    case 'array': return s.items ? [example(s.items, doc, depth + 1)] : [];
    case 'integer': case 'number': return s.minimum ?? 0;
    case 'boolean': return false;
    case 'string': return s.format === 'date-time' ? new Date().toISOString() : 'string';
    default: return null;
  }
}

/** Sample bodies worth more than a skeleton. */
const SAMPLES = {
  submitWorkflow: {
    name: 'hello',
    tasks: [
      { task_id: 'greet', agent_type: 'echo', input: { message: 'hello' } },
      { task_id: 'again', agent_type: 'echo', dependencies: ['greet'] },
    ],
  },
  rollbackWorkflow: { version: 1 },
  createToken: { role: 'reader', name: 'dashboard' },
};

/** A Location header, linked to the console's page for a workflow. */
function location(loc) {
  if (!loc) return null;
  const m = loc.match(/^\/v1\/workflows\/([^/?#]+)$/);
  return h('span', { class: 'muted' }, ' · Location: ', m ? h('a', { href: `/ui/workflows/${m[1]}` }, loc) : loc);
}

function tryIt(path, method, op, doc) {
  const params = (op.parameters || []).map((p) => (p.$ref ? resolve(p, doc) : p));
  const inputs = new Map();
  const rows = params.filter((p) => ['path', 'query', 'header'].includes(p.in)).map((p) => {
    const input = h('input', {
      name: `${p.in}:${p.name}`, placeholder: typeName(p.schema, doc), required: p.in === 'path',
      testid: `try-param-${p.name}`, spellcheck: 'false',
    });
    inputs.set(p, input);
    return h('label', { class: 'try-field' }, h('span', h('code', p.name), h('span', { class: 'muted small' }, ` ${p.in}`)), input);
  });
  let bodyInput = null;
  const content = op.requestBody && (op.requestBody.$ref ? resolve(op.requestBody, doc) : op.requestBody).content;
  const bodyType = content ? Object.keys(content)[0] : null;
  if (bodyType) {
    let sample = '';
    if (bodyType.includes('json')) {
      const ex = SAMPLES[op.operationId] ?? example(content[bodyType].schema, doc);
      sample = JSON.stringify(ex, null, 2);
    }
    bodyInput = h('textarea', { rows: Math.min(16, sample.split('\n').length + 1), spellcheck: 'false', testid: 'try-body', 'aria-label': 'Request body' }, sample);
  }
  const result = h('div', { class: 'try-result', testid: 'try-result' });
  const send = h('button', { type: 'submit', class: 'primary', testid: 'try-send' }, 'Send');
  const form = h('form', { class: 'try', onSubmit: async (e) => {
    e.preventDefault();
    let url = path;
    const query = new URLSearchParams();
    const headers = authHeaders();
    for (const [p, input] of inputs) {
      const v = input.value.trim();
      if (!v) continue;
      if (p.in === 'path') url = url.replace(`{${p.name}}`, encodeURIComponent(v));
      else if (p.in === 'query') query.set(p.name, v);
      else headers[p.name] = v;
    }
    if (/\{[^}]+\}/.test(url)) {
      replace(result, notice('error', 'Fill in the path parameters.'));
      return;
    }
    const q = query.toString();
    if (q) url += '?' + q;
    const init = { method: method.toUpperCase(), headers };
    if (bodyInput && bodyInput.value.trim()) {
      headers['Content-Type'] = bodyType;
      init.body = bodyInput.value;
    }
    const ctl = new AbortController();
    init.signal = ctl.signal;
    send.disabled = true;
    replace(result, h('p', { class: 'muted' }, 'Sending…'));
    const t0 = performance.now();
    try {
      const res = await fetch(url, init);
      const type = res.headers.get('content-type') || '';
      let text = '';
      if (type.includes('event-stream')) {
        // Read what arrives within 5 s (or 64 KiB), then stop.
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        const timer = setTimeout(() => ctl.abort(), 5000);
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            text += value;
            if (text.length > 65536) break;
          }
        } catch { /* stopped after 5 s */ }
        clearTimeout(timer);
        ctl.abort();
        text += '\n… (stream: what arrived in the first 5 s)';
      } else {
        text = await res.text();
      }
      const ms = performance.now() - t0;
      let bodyEl;
      if (type.includes('json')) {
        try { bodyEl = jsonBlock(JSON.parse(text), { testid: 'try-response' }); } catch { /* not JSON */ }
      }
      if (!bodyEl) bodyEl = h('pre', { class: 'json', testid: 'try-response' }, text.length > 200000 ? text.slice(0, 200000) + '\n… (cut)' : text);
      replace(result,
        h('div', { class: 'try-status' },
          h('span', { class: `http http-${String(res.status)[0]}xx`, testid: 'try-status' }, String(res.status)), ' ',
          res.statusText, h('span', { class: 'muted' }, ` · ${Math.round(ms)} ms · ${type || 'no body'}`),
          location(res.headers.get('location'))),
        bodyEl);
    } catch (err) {
      replace(result, notice('error', `The request failed: ${err.message || err}`));
    } finally {
      send.disabled = false;
    }
  } },
  rows.length ? h('div', { class: 'try-fields' }, rows) : null,
  bodyInput ? h('label', { class: 'try-body' }, h('span', `Body (${bodyType})`), bodyInput) : null,
  h('div', { class: 'try-actions' }, send, h('span', { class: 'muted small' }, 'Sent with the token set in the sidebar, if any.')),
  result);
  return form;
}

function opView(path, method, op, doc) {
  const id = op.operationId || `${method}-${path}`;
  const params = (op.parameters || []).map((p) => (p.$ref ? resolve(p, doc) : p));
  const body = op.requestBody && (op.requestBody.$ref ? resolve(op.requestBody, doc) : op.requestBody);
  let built = false;
  const inner = h('div', { class: 'op-body' });
  const details = h('details', { class: 'op', id: `op-${id}`, testid: `op-${id}`, 'data-operation': id },
    h('summary',
      h('span', { class: `method m-${method}` }, method.toUpperCase()),
      h('code', { class: 'op-path' }, path),
      h('span', { class: 'op-summary' }, op.summary || ''),
      h('span', { class: 'op-id' }, id)),
    inner);
  // Build the body when first opened: the document has dozens of operations.
  details.addEventListener('toggle', () => {
    if (!details.open || built) return;
    built = true;
    const open = (op.security && op.security.length === 1 && Object.keys(op.security[0]).length === 0);
    append(inner, [
      op.description ? h('p', { class: 'op-desc' }, op.description) : null,
      open ? h('p', { class: 'muted small' }, 'No token needed.') : null,
      params.length ? h('div', h('h4', 'Parameters'), h('table', { class: 'table compact' },
        h('thead', h('tr', ['Name', 'In', 'Type', 'Description'].map((c) => h('th', c)))),
        h('tbody', params.map((p) => h('tr',
          h('td', h('code', p.name), p.required ? h('span', { class: 'req', title: 'required' }, '*') : null),
          h('td', p.in), h('td', h('span', { class: 'schema-type' }, typeName(p.schema, doc))), h('td', p.description || '')))))) : null,
      body ? h('div', h('h4', 'Request body', body.required ? h('span', { class: 'req' }, '*') : null),
        Object.entries(body.content || {}).map(([type, c]) => h('div', h('div', { class: 'muted small' }, type), schemaView(c.schema, doc)))) : null,
      h('div', h('h4', 'Responses'), h('ul', { class: 'responses' },
        Object.entries(op.responses || {}).map(([code, r]) => {
          const resp = r.$ref ? resolve(r, doc) : r;
          const c = Object.entries(resp.content || {});
          return h('li',
            h('span', { class: `http http-${code[0]}xx` }, code), ' ', resp.description || '',
            c.length ? h('details', h('summary', c.map(([t, v]) => `${t}${v.schema ? ': ' + typeName(v.schema, doc) : ''}`).join(', ')),
              c.map(([, v]) => (v.schema ? schemaView(v.schema, doc) : null))) : null);
        }))),
      h('div', { class: 'try-box' }, h('h4', 'Try it'), tryIt(path, method, op, doc))]);
  });
  return details;
}

export class ApiPage {
  constructor(root, { setTitle }) {
    setTitle('API');
    this.root = root;
    replace(root, h('div', { class: 'page' }, h('div', { class: 'page-head' }, h('h1', 'API reference')), h('p', { class: 'muted' }, 'Loading /openapi.json…')));
    this.load();
  }

  async load() {
    let doc;
    try {
      doc = await api('/openapi.json');
    } catch (e) {
      replace(this.root, h('div', { class: 'page' }, notice('error', e instanceof ApiError ? e.describe() : String(e))));
      return;
    }
    const byTag = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const m of METHODS) {
        const op = item[m];
        if (!op) continue;
        const tag = op.tags?.[0] || 'other';
        if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
        byTag.get(tag).ops.push([path, m, { ...op, parameters: [...(item.parameters || []), ...(op.parameters || [])] }]);
      }
    }
    const filter = h('input', { type: 'search', placeholder: 'Filter operations', 'aria-label': 'Filter operations', testid: 'api-filter' });
    const sections = [...byTag.values()].filter((g) => g.ops.length).map((g) => h('section', { class: 'api-tag', 'data-tag': g.tag.name },
      h('h2', g.tag.name), g.tag.description ? h('p', { class: 'muted' }, g.tag.description) : null,
      g.ops.map(([p, m, op]) => opView(p, m, op, doc))));
    filter.addEventListener('input', () => {
      const q = filter.value.trim().toLowerCase();
      for (const d of this.root.querySelectorAll('details.op')) {
        d.hidden = !!q && !d.querySelector('summary').textContent.toLowerCase().includes(q);
      }
    });
    const info = doc.info || {};
    replace(this.root, h('div', { class: 'page api-page', testid: 'api-page' },
      h('div', { class: 'page-head' }, h('h1', info.title ? `${info.title} API` : 'API reference'),
        h('div', { class: 'page-tools' }, filter, h('a', { href: '/openapi.json', class: 'button ghost', target: '_blank' }, 'openapi.json'))),
      h('p', { class: 'muted lead' }, info.description || '', info.version ? ` · version ${info.version}` : '', ` · OpenAPI ${doc.openapi || ''}`),
      sections));
    // A link to one operation (#op-submitWorkflow) opens it.
    const target = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target?.tagName === 'DETAILS') { target.open = true; target.scrollIntoView(); }
  }

  destroy() {}
}
