// One workflow: header with actions, the DAG, the Gantt of attempts, the task table and the task
// detail panel, all kept up to date from the workflow's event stream.

import { api, all, ApiError, followEvents } from './api.js';
import { DagView } from './graph.js';
import { Gantt, attemptsFrom } from './gantt.js';
import { TaskPanel, errorView } from './taskpanel.js';
import {
  h, replace, chip, ui, facts, time, fmtMs, notice, card, throttle, confirmAction, modal, spanMs, jsonBlock,
} from './util.js';

export const TASK_STATUSES = ['pending', 'running', 'retrying', 'completed', 'failed', 'skipped', 'cancelled'];
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

/** The task status an event leaves its task in (none: no change). */
function taskStatusAfter(e) {
  switch (e.event_type) {
    case 'task_created': return 'pending';
    case 'task_started':
    case 'execution_start': return 'running';
    case 'task_completed': return 'completed';
    case 'failure':
    case 'task_retrying':
    case 'retry': return 'retrying';
    case 'task_failed': return 'failed';
    case 'task_skipped': return 'skipped';
    default: return null;
  }
}

/** The workflow status a workflow event leaves it in. */
function workflowStatusAfter(e) {
  if (!e.event_type.startsWith('workflow_') || e.event_type === 'workflow_budget_changed') return null;
  return e.status || null;
}

export class WorkflowPage {
  constructor(root, { params, setTitle }) {
    this.root = root;
    this.id = params.id;
    this.setTitle = setTitle;
    this.base = `/v1/workflows/${encodeURIComponent(this.id)}`;
    this.events = new Map();       // seq -> event (timeline and stream)
    this.handoffs = new Map();     // seq -> handoff event
    this.touched = new Map();      // task_id -> time of its last event here
    this.tableFilter = '';
    this.tableLimit = 300;
    this.streamState = 'connecting';
    this.stopStream = null;
    this.destroyed = false;
    this.refresh = throttle(() => this.reload(), () => (this.tasks?.length > 300 ? 2000 : 500));
    this.redraw = throttle(() => this.drawLive(), () => (this.tasks?.length > 300 ? 1500 : 500));
    this.tick = setInterval(() => { if (this.isLive() && !document.hidden) this.redraw(); }, 1000);
    this.build();
    this.load(params.task);
  }

  build() {
    this.header = h('div', { class: 'wf-header' });
    this.message = h('div', { class: 'action-message', testid: 'action-message' });
    this.graphBox = h('div', { class: 'graph-box' });
    this.graph = new DagView(this.graphBox, { onSelect: (t) => this.go(ui.task(this.id, t)) });
    this.legend = h('div', { class: 'legend' }, TASK_STATUSES.map((s) => h('span', { class: `lg s-${s}` }, h('i'), s)),
      h('span', { class: 'lg handoff' }, h('b'), 'handoff'), h('span', { class: 'lg handoff-rejected' }, h('b'), 'rejected'));
    const zoom = (f) => () => this.graph.zoom(f);
    const graphTools = [
      h('button', { type: 'button', class: 'ghost small', onClick: zoom(1.25), title: 'Zoom in (+)' }, '+'),
      h('button', { type: 'button', class: 'ghost small', onClick: zoom(0.8), title: 'Zoom out (−)' }, '−'),
      h('button', { type: 'button', class: 'ghost small', onClick: () => this.graph.fit(), title: 'Fit (0)' }, 'Fit'),
    ];
    this.ganttBox = h('div', { class: 'gantt-box' });
    this.gantt = new Gantt(this.ganttBox, { onSelect: (t) => this.go(ui.task(this.id, t)) });
    this.ganttLegend = h('div', { class: 'legend' },
      ['completed', 'running', 'retried', 'failed', 'timeout', 'cancelled', 'reset'].map((o) => h('span', { class: `lg o-${o}` }, h('i'), o)),
      h('span', { class: 'lg backoff' }, h('b'), 'backoff'));
    this.filterSelect = h('select', { 'aria-label': 'Filter tasks by status', testid: 'task-filter', onChange: (e) => { this.tableFilter = e.target.value; this.tableLimit = 300; this.drawTable(); } },
      h('option', { value: '' }, 'All statuses'), TASK_STATUSES.map((s) => h('option', { value: s }, s)));
    this.tableBox = h('div', { class: 'table-box' });
    this.content = h('div', { class: 'wf-content' },
      this.header,
      this.message,
      card('Graph', graphTools, this.graphBox, this.legend),
      card('Timeline', null, this.ganttBox, this.ganttLegend),
      card('Tasks', this.filterSelect, this.tableBox));
    replace(this.root, this.content);
    this.panel = new TaskPanel(this.root, {
      workflowId: this.id,
      handoffs: () => [...this.handoffs.values()],
      dependents: (t) => {
        const L = this.graph.layout;
        const i = L?.index.get(t);
        return i === undefined ? [] : L.dependents[i].map((j) => this.tasks[j].task_id);
      },
      closeHref: ui.workflow(this.id),
      close: () => this.go(ui.workflow(this.id)),
    });
  }

  go(href) {
    window.hyphaeNavigate(href);
  }

  isLive() {
    return this.wf && !TERMINAL.has(this.wf.status);
  }

  async load(taskId) {
    let wf;
    try {
      wf = await api(this.base);
    } catch (e) {
      if (this.destroyed) return;
      const notFound = e instanceof ApiError && e.status === 404;
      replace(this.root, h('div', { class: 'page-narrow' },
        h('p', h('a', { href: '/ui/workflows' }, '← Workflows')),
        notFound
          ? notice('error', { testid: 'not-found' }, h('strong', 'Workflow not found. '), `No workflow has the id “${this.id}” (or retention deleted it).`)
          : notice('error', e instanceof ApiError ? e.describe() : String(e))));
      return;
    }
    // The rest of the tasks, past the first 1,000.
    let tasks = wf.tasks;
    if (wf.tasks_next_cursor) {
      try {
        tasks = tasks.concat(await all(`${this.base}/tasks`, { cursor: wf.tasks_next_cursor }));
      } catch (e) { console.warn('tasks', e); }
    }
    if (this.destroyed) return;
    this.wf = wf;
    this.tasks = tasks;
    this.taskIndex = new Map(tasks.map((t, i) => [t.task_id, i]));
    this.setTitle(wf.name || wf.workflow_id);
    this.drawHeader();
    this.graph.setTasks(tasks);
    this.drawTable();
    if (taskId) this.openTask(taskId);
    // The timeline, then the live stream from where it ends.
    let after = 0;
    try {
      const tl = await api(`${this.base}/timeline`);
      for (const group of ['lifecycle', 'tasks', 'handoffs', 'failures']) for (const e of tl[group] || []) this.addEvent(e);
      after = Math.max(0, ...[...this.events.keys()]);
    } catch (e) {
      console.warn('timeline', e);
    }
    if (this.destroyed) return;
    this.graph.setHandoffs([...this.handoffs.values()]);
    this.drawGantt();
    if (this.panel.taskId) this.panel.refresh(); // now with its handoffs
    this.stopStream = followEvents(this.id, {
      after,
      onBatch: (batch) => this.onEvents(batch),
      onEnd: () => { this.refresh(); },
      onState: (state) => {
        this.streamState = state;
        this.drawLiveIndicator();
        if (state === 'live') this.refresh(); // catch what happened between the reads
      },
    });
  }

  addEvent(e) {
    if (this.events.has(e.seq)) return false;
    this.events.set(e.seq, e);
    this.eventsDirty = true;
    if (e.event_type === 'handoff') this.handoffs.set(e.seq, e);
    return true;
  }

  /** Events from the stream: recolour nodes, counts, status; redraw the timeline (throttled). */
  onEvents(batch) {
    if (this.destroyed) return;
    const handoffs = [];
    let wfChanged = false;
    const touchedTasks = new Set();
    for (const e of batch) {
      if (!this.addEvent(e)) continue;
      if (e.event_type === 'handoff') handoffs.push(e);
      const ts = taskStatusAfter(e);
      if (ts && e.task_id) {
        this.setTaskStatus(e.task_id, ts);
        this.touched.set(e.task_id, performance.now());
        touchedTasks.add(e.task_id);
      }
      const ws = workflowStatusAfter(e);
      if (ws && this.wf) {
        this.wf.status = ws;
        this.wfTouched = performance.now();
        wfChanged = true;
      }
    }
    if (handoffs.length) this.graph.setHandoffs(handoffs);
    this.drawCounts();
    if (wfChanged) this.drawHeader();
    if (this.panel.taskId && touchedTasks.has(this.panel.taskId)) this.panelRefresh();
    this.redraw();
    this.refresh();
  }

  panelRefresh() {
    clearTimeout(this.panelTimer);
    this.panelTimer = setTimeout(() => this.panel.refresh(), 300);
  }

  setTaskStatus(taskId, status) {
    const i = this.taskIndex?.get(taskId);
    if (i === undefined) return;
    const t = this.tasks[i];
    if (t.status === status) return;
    t.status = status;
    this.tableDirty = true;
    this.graph.setStatus(taskId, status);
  }

  /** Read the workflow again: status, version, counts, task states (throttled). */
  async reload() {
    if (this.destroyed) return;
    const asked = performance.now();
    let wf;
    try {
      wf = await api(this.base);
    } catch (e) {
      return;
    }
    if (this.destroyed) return;
    for (const t of wf.tasks) {
      const i = this.taskIndex.get(t.task_id);
      if (i === undefined) continue;
      // An event seen after this read was asked for is newer than the read.
      const seen = this.touched.get(t.task_id);
      const mine = this.tasks[i];
      const status = seen != null && seen > asked ? mine.status : t.status;
      if (mine.status !== status || mine.attempt !== t.attempt || mine.finished_at !== t.finished_at) this.tableDirty = true;
      Object.assign(mine, t, { status });
      this.graph.setStatus(t.task_id, status);
    }
    const local = this.wf.status;
    this.wf = { ...wf, tasks: undefined };
    if (this.wfTouched > asked) this.wf.status = local;
    this.drawHeader();
    if (this.tableDirty) this.drawTable();
  }

  /**
   * Redraw what changes with time while the workflow runs: the timeline (fully when events
   * came, else only its running bars) and the task table (when a status changed, else now and
   * then for the durations of running tasks).
   */
  drawLive() {
    if (this.destroyed) return;
    this.drawGantt();
    const now = Date.now();
    if (this.tableDirty || now - (this.tableDrawn || 0) > (this.tasks?.length > 300 ? 10000 : 2000)) this.drawTable();
  }

  openTask(taskId) {
    this.graph.select(taskId);
    this.panel.open(taskId);
    this.root.classList.add('with-panel');
    this.drawTable();
  }

  closeTask() {
    this.graph.select(null);
    this.panel.close();
    this.root.classList.remove('with-panel');
    this.drawTable();
  }

  /** The router calls this when only the task part of the URL changed. */
  update(params) {
    if (params.task) this.openTask(params.task);
    else this.closeTask();
  }

  counts() {
    // With every task here, count them; else what the host counted.
    if (this.tasks && this.wf && this.tasks.length >= Object.values(this.wf.task_counts || {}).reduce((a, b) => a + b, 0)) {
      const c = {};
      for (const t of this.tasks) c[t.status] = (c[t.status] || 0) + 1;
      return c;
    }
    return this.wf?.task_counts || {};
  }

  drawCounts() {
    if (!this.countsEl) return;
    const c = this.counts();
    const total = Object.values(c).reduce((a, b) => a + b, 0);
    replace(this.countsEl,
      h('span', { class: 'count total' }, `${total} task${total === 1 ? '' : 's'}`),
      TASK_STATUSES.filter((s) => c[s]).map((s) => h('span', { class: `count s-${s}`, 'data-status': s, title: s }, h('i'), `${s} ${c[s]}`)),
      h('div', { class: 'progress', title: 'Tasks by status' },
        TASK_STATUSES.filter((s) => c[s]).map((s) => h('span', { class: `s-${s}`, style: { width: `${(100 * c[s]) / Math.max(1, total)}%` } }))));
  }

  drawLiveIndicator() {
    if (!this.liveEl) return;
    const st = this.streamState;
    const text = { live: 'live', ended: 'ended', reconnecting: 'reconnecting…', connecting: 'connecting…', error: 'offline' }[st] || st;
    this.liveEl.className = `live live-${st}`;
    this.liveEl.setAttribute('data-state', st);
    this.liveEl.textContent = text;
    this.liveEl.title = st === 'live' ? 'Following the event stream' : st === 'ended' ? 'The workflow has ended: every event was received' : '';
  }

  /** The header's parts that stay (title, status, live mark, buttons), built once. */
  buildHeader() {
    const btn = (name, label, cls, handler) => h('button', { type: 'button', class: cls, testid: `btn-${name}`, onClick: handler }, label);
    this.buttons = {
      pause: btn('pause', 'Pause', '', () => this.control('pause', 'POST')),
      resume: btn('resume', 'Resume', 'primary', () => this.control('resume', 'POST')),
      rollback: btn('rollback', 'Roll back…', '', () => this.rollback()),
      cancel: btn('cancel', 'Cancel', 'danger', () => this.cancel()),
    };
    this.statusEl = chip('', { testid: 'wf-status' });
    this.nameEl = h('h1', { testid: 'wf-name' });
    this.liveEl = h('span', { class: 'live', testid: 'live-indicator' });
    this.countsEl = h('div', { class: 'counts', testid: 'task-counts' });
    this.factsEl = h('div');
    this.notesEl = h('div');
    replace(this.header,
      h('div', { class: 'crumbs' }, h('a', { href: '/ui/workflows' }, 'Workflows'), ' / ', h('code', this.id)),
      h('div', { class: 'wf-title' }, this.nameEl, this.statusEl, this.liveEl, h('div', { class: 'spacer' }),
        h('div', { class: 'actions' }, Object.values(this.buttons))),
      this.factsEl, this.countsEl, this.notesEl);
  }

  /** Update the header in place (its buttons stay the same elements, so no click is lost). */
  drawHeader() {
    const wf = this.wf;
    if (!wf) return;
    if (!this.buttons) this.buildHeader();
    const st = wf.status;
    const can = {
      pause: st === 'running' || st === 'pending',
      resume: st === 'paused' || st === 'pending',
      cancel: st === 'running' || st === 'paused' || st === 'pending',
      rollback: st !== 'running',
    };
    for (const [name, b] of Object.entries(this.buttons)) b.disabled = !can[name] || !!this.busy;
    this.statusEl.className = `chip s-${st}`;
    this.statusEl.setAttribute('data-status', st);
    this.statusEl.textContent = st;
    replace(this.nameEl, wf.name || h('span', { class: 'muted' }, 'unnamed workflow'));
    const pr = wf.pause_reason;
    replace(this.factsEl, facts([
      ['Id', h('code', { testid: 'wf-id' }, wf.workflow_id)],
      ['Version', h('span', { testid: 'wf-version' }, String(wf.version))],
      ['Created', time(wf.created_at)],
      ['Started', wf.started_at ? time(wf.started_at) : null],
      ['Finished', wf.finished_at ? time(wf.finished_at) : null],
      ['Duration', wf.started_at ? fmtMs(spanMs(wf.started_at, wf.finished_at, !TERMINAL.has(st))) : null],
      ['Parallel', String(wf.max_parallel_tasks)],
      ['Budget', wf.budget && Object.keys(wf.budget).length
        ? Object.entries(wf.budget).map(([k, v]) => `${k.replace(/^max_/, '')} ${wf.usage?.[k.replace(/^max_/, '')] ?? 0} / ${v}`).join(', ') : null],
      ['Usage', wf.usage && (wf.usage.egress_requests || wf.usage.llm_tokens)
        ? `${wf.usage.egress_requests} requests, ${wf.usage.llm_tokens} LLM tokens` : null],
    ], { class: 'wf-facts' }));
    replace(this.notesEl,
      pr && st === 'paused' ? notice('warn', { testid: 'pause-reason' }, h('strong', 'Paused: '), pr.reason === 'budget_exhausted'
        ? `the ${pr.budget || 'budget'} is spent (${pr.used ?? '?'} of ${pr.limit ?? '?'}${pr.task_id ? `, task ${pr.task_id} refused` : ''}): raise it, then resume`
        : pr.reason === 'rolled_back' ? 'rolled back; resume re-runs what was not done at that version' : 'paused by an operator')
        : null,
      wf.error ? h('div', { class: 'wf-error', testid: 'wf-error' },
        h('h3', 'Workflow error', wf.error.task_id ? [': task ', h('a', { href: ui.task(this.id, wf.error.task_id) }, wf.error.task_id), ' failed'] : null),
        wf.error.error && typeof wf.error.error === 'object' ? errorView(wf.error.error, 'wf-error-detail', { collapsed: true }) : jsonBlock(wf.error)) : null);
    this.drawCounts();
    this.drawLiveIndicator();
  }

  showMessage(kind, ...text) {
    replace(this.message, notice(kind, ...text));
    clearTimeout(this.msgTimer);
    if (kind !== 'error') this.msgTimer = setTimeout(() => this.message.replaceChildren(), 6000);
  }

  async control(op, method, json) {
    this.busy = true;
    this.drawHeader();
    try {
      const out = await api(`${this.base}/${op}`, { method, json });
      this.wf.status = out.status;
      this.wf.version = out.version;
      const verb = { pause: 'Paused', resume: 'Resumed', cancel: 'Cancelled', rollback: 'Rolled back' }[op];
      this.showMessage('ok', out.changed === false ? `Nothing to do: the workflow is already ${out.status}.` : `${verb}: the workflow is ${out.status} (version ${out.version}).`);
    } catch (e) {
      this.showMessage('error', h('strong', `Could not ${op}: `), e instanceof ApiError ? e.describe() : String(e));
    } finally {
      this.busy = false;
      this.drawHeader();
      this.refresh();
    }
  }

  async cancel() {
    const ok = await confirmAction('Cancel this workflow?',
      'Running tasks are interrupted and the rest will not run. A cancelled workflow cannot be resumed.', 'Cancel workflow', true);
    if (ok) this.control('cancel', 'POST');
  }

  async rollback() {
    let versions;
    try {
      versions = await all(`${this.base}/versions`, {}, 20000);
    } catch (e) {
      this.showMessage('error', h('strong', 'Could not list versions: '), e instanceof ApiError ? e.describe() : String(e));
      return;
    }
    versions.reverse();
    const select = h('select', { testid: 'rollback-version', 'aria-label': 'Version' },
      versions.map((v) => h('option', { value: v.version },
        `v${v.version} · ${v.reason} · ${v.status} · ${new Date(v.at).toLocaleTimeString()} · ${v.changed_tasks} task(s)`)));
    if (versions.length > 1) select.selectedIndex = 1;
    const body = h('div',
      h('p', 'Task states go back to those at the chosen version; the workflow is left paused, and resume re-runs what was not done then.'),
      h('label', { class: 'field' }, 'Version ', select));
    const v = await modal('Roll back to a version', body, [
      { label: 'Back', value: null, testid: 'modal-cancel' },
      { label: 'Roll back', value: () => Number(select.value), class: 'primary', testid: 'modal-confirm' },
    ]);
    if (v != null) this.control('rollback', 'POST', { version: v });
  }

  drawGantt() {
    const live = this.isLive() && this.streamState !== 'ended';
    if (!this.eventsDirty && this.ganttModel && this.ganttLive === live) {
      this.gantt.tick();
      return;
    }
    this.eventsDirty = false;
    this.ganttLive = live;
    const model = (this.ganttModel = attemptsFrom(this.events.values()));
    const seen = new Set(model.rows.map((r) => r.task_id));
    const rest = (this.tasks || []).filter((t) => !seen.has(t.task_id));
    this.gantt.render(model, { live, tasksWithoutEvents: rest });
  }

  /**
   * The task table, updated in place: a row per task is made once and only its changing cells
   * are rewritten, so links under the pointer are never replaced.
   */
  drawTable() {
    if (!this.tasks) return;
    this.tableDirty = false;
    this.tableDrawn = Date.now();
    if (!this.tbody) {
      this.rowCache = new Map();
      this.tbody = h('tbody');
      this.table = h('table', { class: 'table', testid: 'task-table' },
        h('thead', h('tr', ['Task', 'Agent type', 'Status', 'Attempts', 'Duration', 'Started'].map((c) => h('th', c)))),
        this.tbody);
      this.emptyEl = h('p', { class: 'muted empty' }, 'No task in this status.');
      this.moreEl = h('button', { type: 'button', class: 'ghost', onClick: () => { this.tableLimit = Infinity; this.drawTable(); } });
      replace(this.tableBox, this.table, this.emptyEl, this.moreEl);
    }
    const f = this.tableFilter;
    const rows = f ? this.tasks.filter((t) => t.status === f) : this.tasks;
    const shown = rows.slice(0, this.tableLimit);
    const live = this.isLive();
    const trs = shown.map((t) => {
      let r = this.rowCache.get(t.task_id);
      if (!r) {
        r = { status: h('td'), attempt: h('td'), duration: h('td'), started: h('td'), waiting: h('span') };
        r.tr = h('tr', { 'data-task': t.task_id, testid: 'task-row' },
          h('td', h('a', { href: ui.task(this.id, t.task_id) }, t.task_id), r.waiting),
          h('td', h('code', t.agent_type)), r.status, r.attempt, r.duration, r.started);
        this.rowCache.set(t.task_id, r);
      }
      const sig = `${t.status}|${t.attempt}|${t.started_at}|${t.finished_at}|${t.waiting_for_worker}`;
      if (r.sig !== sig) {
        r.sig = sig;
        replace(r.status, chip(t.status));
        r.attempt.textContent = String(t.attempt);
        replace(r.started, time(t.started_at));
        replace(r.waiting, t.waiting_for_worker ? h('span', { class: 'badge warn', title: 'No live worker serves its agent type' }, 'waiting') : null);
      }
      const d = t.started_at ? fmtMs(spanMs(t.started_at, t.finished_at, live && !t.finished_at)) : '–';
      if (r.duration.textContent !== d) r.duration.textContent = d;
      r.tr.classList.toggle('selected', this.panel.taskId === t.task_id);
      return r.tr;
    });
    const order = shown.map((t) => t.task_id).join('\u0000');
    if (order !== this.tableOrder) {
      this.tableOrder = order;
      this.tbody.replaceChildren(...trs);
    }
    this.table.hidden = !rows.length;
    this.emptyEl.hidden = rows.length > 0;
    this.moreEl.hidden = rows.length <= shown.length;
    this.moreEl.textContent = `Show all ${rows.length}`;
  }

  destroy() {
    this.destroyed = true;
    this.stopStream?.();
    this.refresh.cancel();
    this.redraw.cancel();
    clearInterval(this.tick);
    clearTimeout(this.panelTimer);
    clearTimeout(this.msgTimer);
    this.panel.destroy();
    this.root.classList.remove('with-panel');
  }
}
