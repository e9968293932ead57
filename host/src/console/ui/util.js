// Small DOM and formatting helpers shared by every page.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Append children (strings, nodes, arrays, null/false ignored) to `el`. */
export function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected' || k === 'open') el[k] = !!v;
    else if (k === 'testid') el.setAttribute('data-testid', v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

/** `h('a', {href: '/ui', class: 'x', onClick: fn}, 'text', child, [more])` */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** Replace the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Escape text for HTML or SVG markup built as a string. */
export function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** A status chip: `<span class="chip s-running">running</span>`. */
export function chip(status, attrs = {}) {
  const st = String(status ?? 'unknown');
  return h('span', { ...attrs, class: ['chip', 's-' + st.toLowerCase(), attrs.class] }, st);
}

export const ui = {
  workflow: (id) => `/ui/workflows/${encodeURIComponent(id)}`,
  task: (id, task) => `/ui/workflows/${encodeURIComponent(id)}/tasks/${encodeURIComponent(task)}`,
};

/** Milliseconds as "812 ms", "3.4 s", "2 m 05 s", "1 h 02 m". */
export function fmtMs(ms) {
  if (ms == null || !isFinite(ms)) return '–';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  const hh = Math.floor(m / 60);
  return `${hh} h ${String(m % 60).padStart(2, '0')} m`;
}

/** An RFC 3339 time as local "2026-05-09 14:03:07". */
export function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** "12 s ago", "3 m ago" ... */
export function ago(iso) {
  if (!iso) return '–';
  const ms = Date.now() - new Date(iso).getTime();
  if (!isFinite(ms)) return iso;
  if (ms < 0) return 'just now';
  return fmtMs(ms).replace(/\.\d+ s$/, ' s') + ' ago';
}

/** A time element: local time, with the exact value on hover. */
export function time(iso, relative = false) {
  if (!iso) return h('span', { class: 'muted' }, '–');
  return h('time', { datetime: iso, title: iso }, relative ? ago(iso) : fmtTime(iso));
}

/** Duration between two RFC 3339 times, in ms (to now when `end` is absent and `live`). */
export function spanMs(start, end, live = false) {
  if (!start) return null;
  const a = new Date(start).getTime();
  const b = end ? new Date(end).getTime() : live ? Date.now() : NaN;
  return isFinite(b - a) ? b - a : null;
}

export function fmtBytes(n) {
  if (n == null) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

export function fmtPct(x) {
  if (x == null || !isFinite(x)) return '–';
  return `${(x * 100).toFixed(x > 0 && x < 0.001 ? 2 : 1)} %`;
}

export function shortDigest(d) {
  if (!d) return '–';
  const [alg, hex] = String(d).includes(':') ? String(d).split(':') : ['', String(d)];
  return (alg ? alg + ':' : '') + hex.slice(0, 12);
}

/** Pretty JSON in a <pre>. */
export function jsonBlock(value, attrs = {}) {
  let text;
  try { text = JSON.stringify(value, null, 2); } catch { text = String(value); }
  return h('pre', { ...attrs, class: ['json', attrs.class] }, text ?? 'null');
}

/** A message box: kind = 'error' | 'info' | 'warn' | 'ok'. */
export function notice(kind, ...children) {
  const first = children[0];
  const attrs = first && typeof first === 'object' && !(first instanceof Node) && !Array.isArray(first) ? children.shift() : {};
  return h('div', { ...attrs, class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...children);
}

/** A card with a title row (title + right-hand tools) and a body. */
export function card(title, tools, ...body) {
  return h('section', { class: 'card' },
    h('div', { class: 'card-head' }, h('h2', title), h('div', { class: 'card-tools' }, tools)),
    h('div', { class: 'card-body' }, ...body));
}

/** A definition list from [label, value] pairs (values null/undefined skipped). */
export function facts(pairs, attrs = {}) {
  const dl = h('dl', { ...attrs, class: ['facts', attrs.class] });
  for (const [k, v] of pairs) {
    if (v == null || v === '') continue;
    dl.appendChild(h('div', h('dt', k), h('dd', v)));
  }
  return dl;
}

/** Run `fn` at most once every `ms` (trailing call kept). */
export function throttle(fn, ms) {
  let last = 0, timer = null, pending = false;
  const wrapped = () => {
    const now = Date.now();
    const wait = last + (typeof ms === 'function' ? ms() : ms) - now;
    if (wait <= 0) {
      last = now;
      pending = false;
      fn();
    } else if (!timer) {
      pending = true;
      timer = setTimeout(() => { timer = null; if (pending) wrapped(); }, wait);
    } else {
      pending = true;
    }
  };
  wrapped.cancel = () => { clearTimeout(timer); timer = null; pending = false; };
  return wrapped;
}

/** Repeat `fn` every `ms` while the tab is visible; returns a stop function. */
export function every(ms, fn) {
  let stopped = false, timer = null;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try { await fn(); } catch (e) { console.warn(e); }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  return () => { stopped = true; clearTimeout(timer); };
}

/** Build a query string from an object (empty values left out). */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') u.set(k, v);
  const t = u.toString();
  return t ? '?' + t : '';
}

/** The modal used for confirmations and small forms; resolves with the clicked value. */
export function modal(title, body, buttons) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'modal', testid: 'modal' });
    const close = (v) => { dlg.close(); dlg.remove(); resolve(v); };
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); close(null); });
    append(dlg, [
      h('h2', title),
      h('div', { class: 'modal-body' }, body),
      h('div', { class: 'modal-buttons' },
        buttons.map((b) => h('button', {
          type: 'button', class: b.class || '', testid: b.testid,
          onClick: () => close(typeof b.value === 'function' ? b.value() : b.value),
        }, b.label))),
    ]);
    document.body.appendChild(dlg);
    dlg.showModal();
    const primary = dlg.querySelector('.primary, .danger');
    if (primary) primary.focus();
  });
}

export function confirmAction(title, text, label = 'Confirm', danger = false) {
  return modal(title, h('p', text), [
    { label: 'Back', value: false, testid: 'modal-cancel' },
    { label, value: true, class: danger ? 'danger' : 'primary', testid: 'modal-confirm' },
  ]);
}
