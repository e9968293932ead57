// The task detail panel of a workflow page: input, output or error (with its backtrace),
// attempts (worker, plugin digest, timing, error, log), handoffs to and from it, egress.

import { api, ApiError } from './api.js';
import {
  h, replace, chip, ui, facts, time, fmtMs, fmtBytes, jsonBlock, notice, shortDigest, spanMs,
} from './util.js';

/** The error of a task or an attempt: type, message, and its detail (backtrace ...) preformatted. */
export function errorView(err, testid, { collapsed = false } = {}) {
  if (!err) return null;
  if (typeof err !== 'object') return notice('error', String(err));
  const detail = err.detail;
  let detailEl = null;
  if (detail != null) {
    // A backtrace or traceback is text: show it as text, the rest as JSON.
    const texts = [];
    const rest = {};
    if (typeof detail === 'string') texts.push(['detail', detail]);
    else if (typeof detail === 'object' && !Array.isArray(detail)) {
      for (const [k, v] of Object.entries(detail)) {
        if (typeof v === 'string' && !v.trim()) continue;
        if (typeof v === 'string' && (v.includes('\n') || /trace|stack|stderr|backtrace/i.test(k))) texts.push([k, v]);
        else rest[k] = v;
      }
    } else rest.detail = detail;
    detailEl = h(collapsed ? 'details' : 'div', { class: 'error-detail' },
      collapsed ? h('summary', 'Detail') : null,
      texts.map(([k, v]) => h('div', h('div', { class: 'label' }, k), h('pre', { class: 'trace', testid: 'error-trace' }, v))),
      Object.keys(rest).length ? jsonBlock(rest) : null);
  }
  return h('div', { class: 'error-box', testid },
    h('div', { class: 'error-head' },
      h('code', { class: 'error-type' }, err.error_type || 'error'),
      err.attempt != null ? h('span', { class: 'muted' }, ` attempt ${err.attempt}`) : null,
      err.retryable != null ? h('span', { class: 'muted' }, err.retryable ? ' · retryable' : ' · not retryable') : null),
    h('div', { class: 'error-message', testid: testid ? `${testid}-message` : null }, err.message ?? ''),
    detailEl);
}

function logView(lines) {
  if (!lines?.length) return h('p', { class: 'muted' }, 'No log lines.');
  return h('div', { class: 'log', testid: 'attempt-log' },
    lines.map((l) => h('div', { class: `log-line lvl-${l.level}` },
      h('span', { class: 'log-time' }, new Date(l.at_us / 1000).toISOString().slice(11, 23)),
      h('span', { class: 'log-level' }, l.level),
      h('span', { class: 'log-msg' }, l.message))));
}

function attemptView(a) {
  return h('div', { class: 'attempt', testid: 'attempt' },
    h('div', { class: 'attempt-head' },
      h('strong', `Attempt ${a.attempt}`), ' ', chip(a.status),
      h('span', { class: 'muted' }, ' ', a.duration_ms != null ? fmtMs(a.duration_ms) : 'running')),
    facts([
      ['Worker', h('code', a.worker_id)],
      ['Plugin', a.plugin_digest ? h('code', { title: a.plugin_digest }, shortDigest(a.plugin_digest)) : null],
      ['Started', time(a.started_at)],
      ['Finished', a.finished_at ? time(a.finished_at) : null],
      ['Queued', fmtMs(a.queue_time_ms)],
    ]),
    a.error ? errorView(a.error) : null,
    h('details', { open: (a.log?.length || 0) > 0 && a.log.length <= 30 },
      h('summary', `Log (${a.log?.length || 0} lines)`), logView(a.log)));
}

function handoffView(e, taskId) {
  const m = e.metadata || {};
  const incoming = e.task_id === taskId;
  const other = incoming ? m.source_task : e.task_id;
  return h('li', { class: 'handoff-item' },
    incoming ? 'from ' : 'to ',
    h('a', { href: ui.task(e.workflow_id, other) }, other), ' ',
    chip(e.status), h('span', { class: 'muted' }, ` checked by ${m.checked_by || '?'} · attempt ${m.attempt ?? '?'}`),
    Array.isArray(m.issues) && m.issues.length
      ? h('ul', { class: 'issues' }, m.issues.map((i) => h('li', h('code', i.path ?? ''), ' ', i.message ?? JSON.stringify(i))))
      : null);
}

function egressView(events) {
  if (!events.length) return h('p', { class: 'muted' }, 'No outbound requests.');
  const tokens = events.some((e) => e.metadata?.llm_usage);
  return h('div', { class: 'scroll-x' }, h('table', { class: 'table compact egress' },
    h('thead', h('tr', ['#', 'Request', 'Outcome', 'Time', 'Bytes out / in', tokens ? 'Tokens' : null].filter(Boolean).map((c) => h('th', c)))),
    h('tbody', events.map((e) => {
      const m = e.metadata || {};
      return h('tr',
        h('td', { title: 'attempt' }, m.attempt ?? ''),
        h('td', h('code', `${m.method || ''} ${m.origin || ''}${m.path || ''}`), m.reason ? h('div', { class: 'muted small' }, m.reason) : null),
        h('td', chip(m.outcome || e.status), m.status != null ? h('span', { class: 'http-status' }, ` ${m.status}`) : null),
        h('td', fmtMs(m.duration_ms ?? e.duration_ms)),
        h('td', `${fmtBytes(m.bytes_sent)} / ${fmtBytes(m.bytes_received)}`),
        tokens ? h('td', m.llm_usage ? `${m.llm_usage.prompt_tokens ?? 0} + ${m.llm_usage.completion_tokens ?? 0}` : '–') : null);
    }))));
}

/**
 * The panel. `ctx` gives `workflowId`, `handoffs()` (the page's handoff events), `dependents(id)`
 * and `closeHref`.
 */
export class TaskPanel {
  constructor(host, ctx) {
    this.ctx = ctx;
    this.el = h('aside', { class: 'panel', testid: 'task-panel', 'aria-label': 'Task detail', hidden: true });
    host.appendChild(this.el);
    this.taskId = null;
    this.loading = null;
    document.addEventListener('keydown', this.onKey = (e) => {
      if (e.key === 'Escape' && this.taskId && !document.querySelector('dialog[open]')) ctx.close();
    });
  }

  async open(taskId) {
    if (this.taskId !== taskId) {
      this.taskId = taskId;
      this.el.hidden = false;
      this.el.setAttribute('data-task', taskId);
      replace(this.el, this.head(taskId), h('div', { class: 'panel-body' }, h('p', { class: 'muted' }, 'Loading…')));
    }
    await this.refresh();
  }

  close() {
    this.taskId = null;
    this.el.hidden = true;
    this.el.removeAttribute('data-task');
    this.el.replaceChildren();
  }

  head(taskId) {
    return h('div', { class: 'panel-head' },
      h('h2', { title: taskId }, taskId),
      h('a', { class: 'button ghost', href: this.ctx.closeHref, 'aria-label': 'Close', testid: 'panel-close' }, '✕'));
  }

  /** Read the task again (after an event about it). */
  async refresh() {
    const taskId = this.taskId;
    if (!taskId) return;
    const wid = this.ctx.workflowId;
    const base = `/v1/workflows/${encodeURIComponent(wid)}`;
    let task, egress = [];
    try {
      [task, egress] = await Promise.all([
        api(`${base}/tasks/${encodeURIComponent(taskId)}`),
        api(`${base}/events`, { query: { task_id: taskId, type: 'egress', limit: 1000 } }).then((p) => p.items).catch(() => []),
      ]);
    } catch (e) {
      if (this.taskId !== taskId) return;
      replace(this.el, this.head(taskId), h('div', { class: 'panel-body' },
        notice('error', e instanceof ApiError ? e.describe() : String(e))));
      return;
    }
    if (this.taskId !== taskId) return;
    const scroll = this.el.querySelector('.panel-body')?.scrollTop || 0;
    const handoffs = this.ctx.handoffs().filter((e) => e.task_id === taskId || e.metadata?.source_task === taskId);
    const dependents = this.ctx.dependents(taskId);
    const link = (id) => h('a', { href: ui.task(wid, id) }, id);
    const join = (ids) => ids.length ? ids.flatMap((d, i) => (i ? [', ', link(d)] : [link(d)])) : null;
    const rp = task.retry_policy || {};
    const body = h('div', { class: 'panel-body' },
      h('div', { class: 'panel-status' }, chip(task.status, { testid: 'task-status' }),
        task.waiting_for_worker ? h('span', { class: 'badge warn' }, 'waiting for a worker') : null),
      facts([
        ['Agent type', h('code', task.agent_type)],
        ['Agent id', task.agent_id !== task.agent_type ? h('code', task.agent_id) : null],
        ['Attempts', String(task.attempt)],
        ['Retry policy', `${rp.max_attempts ?? '?'} attempts, ${rp.initial_delay ?? '?'} s × ${rp.exponential_base ?? '?'} up to ${rp.max_delay ?? '?'} s`],
        ['Timeout', task.timeout != null ? `${task.timeout} s` : null],
        ['Allow failure', task.allow_failure ? 'yes' : null],
        ['Depends on', join(task.dependencies || [])],
        ['Dependents', join(dependents)],
        ['Started', task.started_at ? time(task.started_at) : null],
        ['Finished', task.finished_at ? time(task.finished_at) : null],
        ['Duration', task.started_at ? fmtMs(spanMs(task.started_at, task.finished_at, true)) : null],
      ]),
      task.error ? h('section', h('h3', 'Error'), errorView(task.error, 'task-error')) : null,
      task.output !== undefined ? h('section', h('h3', 'Output'), jsonBlock(task.output, { testid: 'task-output' })) : null,
      h('section', h('h3', 'Input'), jsonBlock(task.input, { testid: 'task-input' })),
      task.metadata && Object.keys(task.metadata).length ? h('section', h('h3', 'Metadata'), jsonBlock(task.metadata)) : null,
      h('section', h('h3', `Attempts (${task.attempts?.length || 0})`),
        task.attempts?.length ? task.attempts.slice().reverse().map(attemptView) : h('p', { class: 'muted' }, 'Not started.')),
      h('section', { testid: 'task-handoffs' }, h('h3', `Handoffs (${handoffs.length})`),
        handoffs.length ? h('ul', { class: 'handoffs' }, handoffs.map((e) => handoffView(e, taskId))) : h('p', { class: 'muted' }, 'None.')),
      h('section', { testid: 'task-egress' }, h('h3', `Outbound requests (${egress.length})`), egressView(egress)));
    replace(this.el, this.head(taskId), body);
    body.scrollTop = scroll;
  }

  destroy() {
    document.removeEventListener('keydown', this.onKey);
    this.el.remove();
  }
}
