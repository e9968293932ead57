// A Gantt chart of a workflow's attempts, built from its coordination events (the timeline, then
// the live stream): one row per task, one bar per attempt coloured by its outcome, the backoff
// before a retry as a dashed line, a time axis.

import { esc, fmtMs } from './util.js';

const ROW_H = 22;
const BAR_H = 12;
const LABEL_W = 170;
const AXIS_H = 26;

const ts = (e) => new Date(e.timestamp).getTime();

/**
 * Attempts per task from events (any order; sorted by `seq` here). Returns
 * `{rows: [{task_id, agent_type, attempts: [{attempt, start, end, outcome, error, worker, retry_until}], skipped}],
 *   start, end, ended}`.
 */
export function attemptsFrom(events) {
  const sorted = [...events].sort((a, b) => a.seq - b.seq);
  const tasks = new Map();
  let start = null, end = null, ended = null;
  const row = (e) => {
    let r = tasks.get(e.task_id);
    if (!r) {
      r = { task_id: e.task_id, agent_type: e.agent_type, attempts: new Map(), first: Infinity, order: tasks.size };
      tasks.set(e.task_id, r);
    }
    return r;
  };
  const attempt = (r, n, t) => {
    let a = r.attempts.get(n);
    if (!a) {
      a = { attempt: n, start: t, end: null, outcome: 'running' };
      r.attempts.set(n, a);
      r.first = Math.min(r.first, t);
    }
    return a;
  };
  for (const e of sorted) {
    const t = ts(e);
    if (!isFinite(t)) continue;
    if (start == null || t < start) start = t;
    if (end == null || t > end) end = t;
    const type = e.event_type;
    if (type === 'workflow_completed' || type === 'workflow_failed' || type === 'workflow_cancelled') {
      ended = t;
      // Attempts still open were stopped.
      for (const r of tasks.values()) {
        for (const a of r.attempts.values()) {
          if (a.end == null) { a.end = t; a.outcome = 'cancelled'; }
        }
      }
      continue;
    }
    if (!e.task_id || type.startsWith('workflow_')) continue;
    const r = row(e);
    const n = e.metadata?.attempt ?? e.error?.attempt;
    switch (type) {
      case 'task_started':
      case 'execution_start': {
        const a = attempt(r, n, t);
        if (e.metadata?.worker_id) a.worker = e.metadata.worker_id;
        break;
      }
      case 'task_completed': {
        const a = attempt(r, n, t - (e.performance?.execution_time_ms || 0));
        a.end = t; a.outcome = 'completed';
        break;
      }
      case 'failure': {
        const a = attempt(r, n, t);
        a.end = t;
        a.error = e.error;
        a.outcome = e.error?.error_type === 'reset' ? 'reset' : 'failed';
        break;
      }
      case 'task_retrying': {
        const a = attempt(r, n, t);
        if (a.end == null) a.end = t;
        a.outcome = 'retried';
        a.error ||= e.error;
        const delay = e.metadata?.delay_ms;
        if (delay) a.retry_until = t + delay;
        break;
      }
      case 'task_failed': {
        const a = attempt(r, n, t);
        if (a.end == null) a.end = t;
        a.outcome = a.error?.error_type === 'timeout' || e.error?.error_type === 'timeout' ? 'timeout' : 'failed';
        a.error ||= e.error;
        break;
      }
      case 'task_skipped':
        r.skipped = true;
        break;
      default:
        break;
    }
  }
  // A failed (retried) attempt that timed out is shown as a timeout.
  const rows = [...tasks.values()].map((r) => {
    const attempts = [...r.attempts.values()].sort((a, b) => a.attempt - b.attempt);
    for (const a of attempts) if (a.error?.error_type === 'timeout' && a.outcome !== 'retried') a.outcome = 'timeout';
    return { task_id: r.task_id, agent_type: r.agent_type, attempts, skipped: r.skipped, first: r.first, order: r.order };
  });
  rows.sort((a, b) => (a.first - b.first) || (a.order - b.order));
  return { rows, start, end, ended };
}

/** Tick step (ms) near `range / n` among 1, 2, 5 × 10^k. */
function niceStep(range, n) {
  const raw = range / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

export class Gantt {
  constructor(container, { onSelect } = {}) {
    this.container = container;
    this.onSelect = onSelect;
    this.el = document.createElement('div');
    this.el.className = 'gantt';
    this.el.setAttribute('data-testid', 'timeline');
    container.appendChild(this.el);
    this.el.addEventListener('click', (e) => {
      const row = e.target.closest('[data-task]');
      if (row) this.onSelect?.(row.getAttribute('data-task'));
    });
  }

  /** Draw `model` (from attemptsFrom); `live`: open attempts run to now. */
  render(model, { live = false, tasksWithoutEvents = [] } = {}) {
    const now = Date.now();
    const rows = model.rows.slice();
    for (const t of tasksWithoutEvents) rows.push({ task_id: t.task_id, agent_type: t.agent_type, attempts: [], skipped: t.status === 'skipped', pending: true });
    if (model.start == null || !rows.length) {
      this.el.innerHTML = '<p class="muted empty">No attempts yet.</p>';
      this.el.setAttribute('data-rows', '0');
      return;
    }
    const t0 = model.start;
    let t1 = model.ended ?? (live ? Math.max(model.end, now) : model.end);
    for (const r of rows) for (const a of r.attempts) if (a.retry_until && !model.ended) t1 = Math.max(t1, a.retry_until);
    live = live && model.ended == null;
    if (live) {
      // Headroom, so that bars growing with the clock need no full redraw for a while.
      const span = Math.max(t1 - t0, 2000);
      if (!this.horizon || this.horizonStart !== t0 || t1 > this.horizon || this.horizon - t0 > span * 1.6) {
        this.horizon = t0 + span * 1.25;
        this.horizonStart = t0;
      }
      t1 = this.horizon;
    }
    this.model = model;
    this.opts = { live, tasksWithoutEvents };
    const range = Math.max(t1 - t0, 1);
    const width = Math.max(320, (this.el.clientWidth || this.container.clientWidth || 900) - 2);
    const plotW = width - LABEL_W - 16;
    const X = (t) => LABEL_W + ((t - t0) / range) * plotW;
    const height = AXIS_H + rows.length * ROW_H + 6;
    const parts = [`<svg width="${width}" height="${height}" class="gantt-svg" role="img" aria-label="Attempts over time">`];
    // Axis and grid.
    const step = niceStep(range, Math.max(2, Math.floor(plotW / 110)));
    parts.push('<g class="axis">');
    for (let v = 0; v <= range + 1e-9; v += step) {
      const x = X(t0 + v).toFixed(1);
      const anchor = Number(x) > width - 40 ? ' class="end"' : '';
      parts.push(`<line x1="${x}" x2="${x}" y1="${AXIS_H - 6}" y2="${height}"/><text x="${x}" y="${AXIS_H - 10}"${anchor}>${v === 0 ? '0' : '+' + esc(fmtMs(v))}</text>`);
    }
    parts.push('</g><g class="rows">');
    rows.forEach((r, i) => {
      const y = AXIS_H + i * ROW_H;
      const id = esc(r.task_id);
      const name = r.task_id.length > 22 ? r.task_id.slice(0, 21) + '…' : r.task_id;
      parts.push(`<g class="grow${i % 2 ? ' odd' : ''}" data-task="${id}" data-testid="timeline-row">` +
        `<rect class="band" x="0" y="${y}" width="${width}" height="${ROW_H}"/>` +
        `<text class="tlabel" x="6" y="${y + ROW_H / 2 + 4}">${esc(name)}<title>${id} (${esc(r.agent_type || '')})</title></text>`);
      for (const a of r.attempts) {
        const end = a.end ?? (live ? now : model.end);
        const x1 = X(a.start), x2 = Math.max(X(end), x1 + 2);
        const dur = (a.end ?? now) - a.start;
        const title = `${r.task_id} attempt ${a.attempt}: ${a.outcome}${a.error ? ` (${a.error.error_type}: ${a.error.message})` : ''}, ${fmtMs(dur)}${a.worker ? ` on ${a.worker}` : ''}`;
        parts.push(`<rect class="bar o-${a.outcome}" data-testid="attempt-bar" data-attempt="${a.attempt}" data-x="${x1.toFixed(1)}" x="${x1.toFixed(1)}" y="${y + (ROW_H - BAR_H) / 2}" width="${(x2 - x1).toFixed(1)}" height="${BAR_H}" rx="3"><title>${esc(title)}</title></rect>`);
        if (a.retry_until && a.end != null) {
          const rx2 = X(Math.min(a.retry_until, model.ended ?? Infinity, t1));
          if (rx2 > x2 + 1) parts.push(`<line class="backoff" x1="${x2.toFixed(1)}" x2="${rx2.toFixed(1)}" y1="${y + ROW_H / 2}" y2="${y + ROW_H / 2}"><title>backoff before attempt ${a.attempt + 1}</title></line>`);
        }
      }
      if (r.skipped) parts.push(`<text class="note" x="${LABEL_W + 4}" y="${y + ROW_H / 2 + 4}">skipped</text>`);
      else if (!r.attempts.length) parts.push(`<text class="note" x="${LABEL_W + 4}" y="${y + ROW_H / 2 + 4}">not started</text>`);
      parts.push('</g>');
    });
    parts.push('</g></svg>');
    const scroll = this.el.scrollTop;
    this.el.innerHTML = parts.join('');
    this.el.scrollTop = scroll;
    this.el.setAttribute('data-rows', String(rows.length));
    this.X = X;
    this.running = live ? Array.from(this.el.querySelectorAll('rect.bar.o-running')) : [];
  }

  /** Between redraws: grow the running bars to now (redraw when now passes the axis' end). */
  tick() {
    if (!this.opts?.live || !this.model) return;
    const now = Date.now();
    if (now > this.horizon) {
      this.render(this.model, this.opts);
      return;
    }
    for (const bar of this.running) {
      const x1 = Number(bar.getAttribute('data-x'));
      bar.setAttribute('width', Math.max(2, this.X(now) - x1).toFixed(1));
    }
  }

  destroy() { this.el.remove(); }
}
