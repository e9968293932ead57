// Listing pages: workflows, failures, stuck tasks, plugins, workers.

import { api, ApiError } from './api.js';
import {
  h, replace, chip, ui, time, fmtMs, notice, every, qs, confirmAction, shortDigest, ago,
} from './util.js';

const WORKFLOW_STATUSES = ['pending', 'running', 'paused', 'completed', 'failed', 'cancelled'];

function errorText(e) {
  return e instanceof ApiError ? e.describe() : String(e?.message || e);
}

function table(testid, head, rows) {
  return h('table', { class: 'table', testid },
    h('thead', h('tr', head.map((c) => h('th', c)))),
    h('tbody', rows));
}

function pageHead(title, ...tools) {
  return h('div', { class: 'page-head' }, h('h1', title), h('div', { class: 'page-tools' }, tools));
}

/**
 * Cursors of the pages before this one, per listing, for Prev (kept while the tab lives). A page
 * opened at a cursor it did not expect (a link, the back button) starts a new stack: Prev then
 * goes to the first page.
 */
const cursorStacks = new Map();
class CursorStack {
  constructor(key, cursor) {
    const s = cursorStacks.get(key);
    this.s = s && s.expect === cursor ? s : { list: [], expect: null };
    cursorStacks.set(key, this.s);
  }
  next(current, next) { this.s.list.push(current); this.s.expect = next; return next; }
  prev() { const c = this.s.list.pop() ?? ''; this.s.expect = c; return c; }
}

// ---------------------------------------------------------------------------------------------
// Workflows

export class WorkflowsPage {
  constructor(root, { query, setTitle }) {
    this.root = root;
    setTitle('Workflows');
    this.status = query.get('status') || '';
    this.cursor = query.get('cursor') || '';
    this.limit = query.get('limit') || '';
    this.stack = new CursorStack(`workflows:${this.status}:${this.limit}`, this.cursor);

    const statusSel = h('select', { testid: 'status-filter', 'aria-label': 'Status', onChange: (e) => {
      window.hyphaeNavigate('/ui/workflows' + qs({ status: e.target.value, limit: this.limit }));
    } }, h('option', { value: '' }, 'All statuses'),
    WORKFLOW_STATUSES.map((s) => h('option', { value: s, selected: s === this.status }, s)));
    const search = h('input', { type: 'search', placeholder: 'Workflow id', 'aria-label': 'Workflow id', testid: 'search-id', spellcheck: 'false' });
    const form = h('form', { class: 'search', onSubmit: (e) => {
      e.preventDefault();
      const id = search.value.trim();
      if (id) window.hyphaeNavigate(ui.workflow(id));
    } }, search, h('button', { type: 'submit' }, 'Open'));
    this.body = h('div', { class: 'card-content', testid: 'workflows' }, h('p', { class: 'muted' }, 'Loading…'));
    this.pager = h('div', { class: 'pager' });
    replace(root, h('div', { class: 'page' },
      pageHead('Workflows', form, statusSel),
      h('div', { class: 'card' }, this.body, this.pager)));
    this.load();
    this.stop = every(3000, () => this.load());
  }

  async load() {
    let page;
    try {
      page = await api('/v1/workflows', { query: { status: this.status, cursor: this.cursor, limit: this.limit || 50 } });
    } catch (e) {
      replace(this.body, notice('error', errorText(e)));
      return;
    }
    if (!page.items.length) {
      replace(this.body, h('p', { class: 'muted empty', testid: 'empty' },
        this.status ? `No ${this.status} workflow.` : 'No workflow yet: submit one with POST /v1/workflows (see the API page).'));
    } else {
      replace(this.body, table('workflow-table', ['Workflow', 'Name', 'Status', 'Version', 'Tasks', 'Created', 'Updated'],
        page.items.map((w) => h('tr', { testid: 'workflow-row', 'data-id': w.workflow_id, 'data-status': w.status },
          h('td', h('a', { href: ui.workflow(w.workflow_id) }, h('code', w.workflow_id))),
          h('td', w.name || h('span', { class: 'muted' }, '–')),
          h('td', chip(w.status)),
          h('td', String(w.version)),
          h('td', String(w.task_count)),
          h('td', time(w.created_at)),
          h('td', h('time', { datetime: w.updated_at, title: w.updated_at }, ago(w.updated_at)))))));
    }
    const prev = h('button', { type: 'button', testid: 'prev', disabled: !this.cursor, onClick: () => {
      window.hyphaeNavigate('/ui/workflows' + qs({ status: this.status, limit: this.limit, cursor: this.stack.prev() }));
    } }, '← Prev');
    const next = h('button', { type: 'button', testid: 'next', disabled: !page.next_cursor, onClick: () => {
      window.hyphaeNavigate('/ui/workflows' + qs({ status: this.status, limit: this.limit, cursor: this.stack.next(this.cursor, page.next_cursor) }));
    } }, 'Next →');
    replace(this.pager, prev, next, h('span', { class: 'muted' }, `auto-refresh every 3 s`));
  }

  destroy() { this.stop(); }
}

// ---------------------------------------------------------------------------------------------
// Failures

const SINCE = [['', 'any time'], ['15m', 'last 15 minutes'], ['1h', 'last hour'], ['24h', 'last 24 hours'], ['7d', 'last 7 days']];

export class FailuresPage {
  constructor(root, { query, setTitle }) {
    setTitle('Failures');
    this.root = root;
    this.q = {
      agent_type: query.get('agent_type') || '',
      error_type: query.get('error_type') || '',
      since: query.get('since') || '',
      cursor: query.get('cursor') || '',
    };
    this.stack = new CursorStack('failures', this.q.cursor);
    const field = (name, label) => h('input', { name, value: this.q[name], placeholder: label, 'aria-label': label, testid: `filter-${name}` });
    const since = h('select', { name: 'since', 'aria-label': 'Since', testid: 'filter-since' },
      SINCE.map(([v, l]) => h('option', { value: v, selected: v === this.q.since }, l)));
    const form = h('form', { class: 'filters', onSubmit: (e) => {
      e.preventDefault();
      const f = new FormData(e.target);
      window.hyphaeNavigate('/ui/failures' + qs({ agent_type: f.get('agent_type'), error_type: f.get('error_type'), since: f.get('since') }));
    } }, field('agent_type', 'Agent type'), field('error_type', 'Error type'), since, h('button', { type: 'submit' }, 'Filter'));
    this.body = h('div', { class: 'card-content', testid: 'failures' }, h('p', { class: 'muted' }, 'Loading…'));
    this.pager = h('div', { class: 'pager' });
    replace(root, h('div', { class: 'page' },
      pageHead('Failures', form),
      h('p', { class: 'muted lead' }, 'Failed attempts, newest first: each links to its task.'),
      h('div', { class: 'card' }, this.body, this.pager)));
    this.load();
    this.stop = every(5000, () => this.load());
  }

  async load() {
    const q = { ...this.q, limit: 100 }; // `since` as a duration back from now (15m, 1h ...)
    let page;
    try {
      page = await api('/v1/failures', { query: q });
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        this.stop();
        replace(this.body, notice('info', { testid: 'not-served' }, 'This host does not serve /v1/failures yet.'));
        this.pager.replaceChildren();
      } else replace(this.body, notice('error', errorText(e)));
      return;
    }
    replace(this.body, page.items.length
      ? table('failure-table', ['When', 'Task', 'Agent type', 'Attempt', 'Error', 'Worker', 'Duration'],
        page.items.map((f) => h('tr', { testid: 'failure-row', 'data-workflow': f.workflow_id, 'data-task': f.task_id },
          h('td', time(f.finished_at || f.started_at)),
          h('td', h('a', { href: ui.task(f.workflow_id, f.task_id) }, f.task_id), h('div', { class: 'muted small' }, h('code', f.workflow_id))),
          h('td', h('code', f.agent_type)),
          h('td', String(f.attempt)),
          h('td', h('code', { class: 'error-type' }, f.error_type ?? 'error'), ' ', h('span', { class: 'error-message' }, f.message ?? '')),
          h('td', h('code', f.worker_id ?? '–')),
          h('td', fmtMs(f.duration_ms)))))
      : h('p', { class: 'muted empty' }, 'No failed attempt matches.'));
    const prev = h('button', { type: 'button', disabled: !this.q.cursor, onClick: () => {
      window.hyphaeNavigate('/ui/failures' + qs({ ...this.q, cursor: this.stack.prev() }));
    } }, '← Prev');
    const next = h('button', { type: 'button', disabled: !page.next_cursor, onClick: () => {
      window.hyphaeNavigate('/ui/failures' + qs({ ...this.q, cursor: this.stack.next(this.q.cursor, page.next_cursor) }));
    } }, 'Next →');
    replace(this.pager, prev, next);
  }

  destroy() { this.stop(); }
}

// ---------------------------------------------------------------------------------------------
// Stuck tasks

export class StuckPage {
  constructor(root, { setTitle }) {
    setTitle('Stuck tasks');
    this.body = h('div', { class: 'card-content', testid: 'stuck' }, h('p', { class: 'muted' }, 'Loading…'));
    this.message = h('div');
    replace(root, h('div', { class: 'page' },
      pageHead('Stuck tasks'),
      h('p', { class: 'muted lead' }, 'Attempts running longer than their timeout. Reset one to fence it off (its late result is refused) and start a new attempt.'),
      this.message,
      h('div', { class: 'card' }, this.body)));
    this.load();
    this.stop = every(5000, () => this.load());
  }

  async load() {
    let page;
    try {
      page = await api('/v1/stuck');
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        this.stop();
        replace(this.body, notice('info', { testid: 'not-served' }, 'This host does not serve /v1/stuck yet.'));
      } else replace(this.body, notice('error', errorText(e)));
      return;
    }
    replace(this.body, page.items.length
      ? table('stuck-table', ['Task', 'Agent type', 'Attempt', 'Worker', 'Started', 'Running', 'Timeout', ''],
        page.items.map((t) => h('tr', { testid: 'stuck-row', 'data-task': t.task_id },
          h('td', h('a', { href: ui.task(t.workflow_id, t.task_id) }, t.task_id), h('div', { class: 'muted small' }, h('code', t.workflow_id))),
          h('td', h('code', t.agent_type)),
          h('td', String(t.attempt)),
          h('td', h('code', t.worker_id ?? '–')),
          h('td', time(t.started_at)),
          h('td', fmtMs((t.running_s ?? 0) * 1000)),
          h('td', t.timeout_s != null ? fmtMs(t.timeout_s * 1000) : '–'),
          h('td', h('button', { type: 'button', class: 'danger small', testid: 'reset', onClick: () => this.reset(t) }, 'Reset')))))
      : h('p', { class: 'muted empty' }, 'Nothing is stuck.'));
  }

  async reset(t) {
    const ok = await confirmAction(`Reset ${t.task_id}?`,
      `Attempt ${t.attempt} is fenced off (a late result from it is refused) and a new attempt of the task runs.`, 'Reset', true);
    if (!ok) return;
    try {
      const out = await api(`/v1/workflows/${encodeURIComponent(t.workflow_id)}/tasks/${encodeURIComponent(t.task_id)}/reset`, { method: 'POST' });
      const n = out?.reset_attempt ?? t.attempt;
      replace(this.message, notice('ok', `Reset ${t.task_id}: attempt ${n} is fenced off; the task is ${out?.status ?? 'retrying'} and attempt ${n + 1} runs next.`));
    } catch (e) {
      replace(this.message, notice('error', h('strong', 'Could not reset: '), errorText(e)));
    }
    this.load();
  }

  destroy() { this.stop(); }
}

// ---------------------------------------------------------------------------------------------
// Plugins

export class PluginsPage {
  constructor(root, { setTitle }) {
    setTitle('Plugins');
    this.body = h('div', { class: 'card-content', testid: 'plugins' }, h('p', { class: 'muted' }, 'Loading…'));
    replace(root, h('div', { class: 'page' }, pageHead('Plugins'),
      h('p', { class: 'muted lead' }, 'Executor and validator components by file: what is in service, what failed to load and why, and what each may do (its manifest).'),
      h('div', { class: 'card' }, this.body)));
    this.load();
    this.stop = every(10000, () => this.load());
  }

  async load() {
    let items = [];
    try {
      let cursor;
      do {
        const page = await api('/v1/plugins', { query: { limit: 1000, cursor } });
        items = items.concat(page.items);
        cursor = page.next_cursor;
      } while (cursor);
    } catch (e) {
      replace(this.body, notice('error', errorText(e)));
      return;
    }
    if (!items.length) {
      replace(this.body, h('p', { class: 'muted empty' }, 'No plugin: put components in the plugins directory or install one with PUT /v1/plugins/{agent_type}.'));
      return;
    }
    const policy = (p) => {
      if (!p) return h('span', { class: 'muted' }, 'no manifest: nothing granted');
      return h('div', { class: 'policy' },
        h('div', h('span', { class: 'label' }, 'outbound '), p.allowed_outbound_hosts?.length
          ? p.allowed_outbound_hosts.map((o) => h('code', { class: 'tag' }, o)) : h('span', { class: 'muted' }, 'none')),
        p.secrets?.length ? h('div', h('span', { class: 'label' }, 'secrets '), p.secrets.map((s) => h('code', { class: 'tag' }, s))) : null,
        h('div', h('span', { class: 'label' }, 'memory '), `${p.memory_limit_mib} MiB`,
          p.timeout_s != null ? [h('span', { class: 'label' }, ' · timeout '), `${p.timeout_s} s`] : null,
          p.max_concurrency != null ? [h('span', { class: 'label' }, ' · concurrency '), String(p.max_concurrency)] : null),
        p.config && Object.keys(p.config).length
          ? h('div', h('span', { class: 'label' }, 'config '), Object.entries(p.config).map(([k, v]) => h('code', { class: 'tag' }, `${k}=${v}`))) : null);
    };
    replace(this.body, table('plugin-table', ['Agent type', 'File', 'State', 'Roles', 'Digest', 'Source', 'Policy'],
      items.map((p) => h('tr', { testid: 'plugin-row', 'data-agent-type': p.agent_type, 'data-state': p.state, class: p.state !== 'loaded' ? 'row-failed' : null },
        h('td', h('strong', p.agent_type), p.version ? h('span', { class: 'muted' }, ` ${p.version}`) : null,
          p.description ? h('div', { class: 'muted small' }, p.description) : null),
        h('td', h('code', p.file)),
        h('td', chip(p.state), p.error ? h('div', { class: 'error-message', testid: 'plugin-error' }, p.error) : null),
        h('td', p.roles.join(', '), h('div', { class: 'muted small' }, p.world)),
        h('td', h('code', { title: p.digest }, shortDigest(p.digest))),
        h('td', p.source),
        h('td', policy(p.policy))))));
  }

  destroy() { this.stop(); }
}

// ---------------------------------------------------------------------------------------------
// Workers

export class WorkersPage {
  constructor(root, { setTitle }) {
    setTitle('Workers');
    this.body = h('div', { class: 'card-content', testid: 'workers' }, h('p', { class: 'muted' }, 'Loading…'));
    replace(root, h('div', { class: 'page' }, pageHead('Workers'),
      h('p', { class: 'muted lead' }, 'Host workers and their health from heartbeats: HEALTHY below one interval since the last beat, DEGRADED below two, CRITICAL below the miss threshold, FAILED at it (its leases are taken over).'),
      h('div', { class: 'card' }, this.body)));
    this.load();
    this.stop = every(3000, () => this.load());
  }

  async load() {
    let page, self = null;
    try {
      [page, self] = await Promise.all([
        api('/v1/workers', { query: { limit: 1000 } }),
        fetch('/readyz').then((r) => r.json()).then((r) => r?.components?.engine?.detail?.worker_id).catch(() => null),
      ]);
    } catch (e) {
      replace(this.body, notice('error', errorText(e)));
      return;
    }
    replace(this.body, page.items.length
      ? table('worker-table', ['Worker', 'Health', 'Last heartbeat', 'Running tasks', 'Serves', 'Host', 'Started'],
        page.items.map((w) => h('tr', { testid: 'worker-row', 'data-worker': w.worker_id, 'data-health': w.health, class: w.stopped ? 'row-muted' : null },
          h('td', h('code', w.worker_id), w.worker_id === self ? h('span', { class: 'badge', testid: 'this-host' }, 'this host') : null,
            w.stopped ? h('span', { class: 'badge' }, 'stopped') : null),
          h('td', chip(w.health)),
          h('td', h('time', { datetime: w.last_heartbeat, title: w.last_heartbeat }, `${fmtMs(w.since_last_heartbeat_ms)} ago`),
            h('div', { class: 'muted small' }, `every ${fmtMs(w.interval_ms)}`)),
          h('td', String(w.running_tasks)),
          h('td', { class: 'serves' }, Object.entries(w.serves || {}).map(([t, d]) => h('code', { class: 'tag', title: d }, t))),
          h('td', `${w.hostname}`, h('div', { class: 'muted small' }, `pid ${w.pid}`)),
          h('td', time(w.started_at)))))
      : h('p', { class: 'muted empty' }, 'No worker has registered.'));
  }

  destroy() { this.stop(); }
}

