// Statistics: event totals (/v1/stats), per agent type (/v1/agent-types) and outcomes over time
// (/v1/outcomes) as a stacked bar chart.

import { api, ApiError } from './api.js';
import { h, s, replace, fmtMs, fmtPct, fmtBytes, notice, card, every, qs } from './util.js';

const INTERVALS = ['1m', '5m', '15m', '1h'];
const OUTCOMES = ['completed', 'failed', 'timeout', 'cancelled'];
const DURATIONS = ['15m', '1h', '6h', '24h', '7d'];
const WINDOWS = ['1h', '6h', '24h', '7d', '30d'];

function errorText(e) {
  return e instanceof ApiError ? e.describe() : String(e?.message || e);
}

function stat(label, value, testid) {
  return h('div', { class: 'stat', testid }, h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-label' }, label));
}

/** Stacked bars of completed / failed / timeout per bucket. */
export function outcomeChart(data) {
  const buckets = data.buckets || [];
  const W = 760, H = 200, L = 40, B = 24, T = 10;
  const max = Math.max(1, ...buckets.map((b) => OUTCOMES.reduce((a, k) => a + (b[k] || 0), 0)));
  const bw = (W - L - 8) / Math.max(1, buckets.length);
  const Y = (v) => T + (H - T - B) * (1 - v / max);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': 'Outcomes over time', 'data-testid': 'outcome-chart' });
  // Y grid: 4 lines.
  for (let i = 0; i <= 4; i++) {
    const v = Math.round((max * i) / 4);
    const y = Y(v);
    svg.appendChild(s('line', { x1: L, x2: W, y1: y, y2: y, class: 'grid' }));
    svg.appendChild(s('text', { x: L - 6, y: y + 4, class: 'ylabel' }, String(v)));
  }
  const every = Math.max(1, Math.ceil(buckets.length / 8));
  buckets.forEach((b, i) => {
    const x = L + i * bw + 1;
    let acc = 0;
    for (const k of OUTCOMES) {
      const v = b[k] || 0;
      if (!v) continue;
      const y1 = Y(acc + v), y0 = Y(acc);
      svg.appendChild(s('rect', { x, y: y1, width: Math.max(1, bw - 2), height: Math.max(0.5, y0 - y1), class: `o-${k}` },
        s('title', {}, `${new Date(b.start).toLocaleTimeString()}: ${k} ${v}`)));
      acc += v;
    }
    if (i % every === 0) {
      const d = new Date(b.start);
      svg.appendChild(s('text', { x: x + bw / 2, y: H - 6, class: 'xlabel' },
        `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`));
    }
  });
  return svg;
}

export class StatsPage {
  constructor(root, { query, setTitle }) {
    setTitle('Statistics');
    this.interval = query.get('interval') || '5m';
    this.duration = query.get('duration') || '1h';
    this.window = query.get('since') || '24h';
    this.totals = h('div', { testid: 'stats' }, h('p', { class: 'muted' }, 'Loading…'));
    this.agents = h('div', { testid: 'agent-types' }, h('p', { class: 'muted' }, 'Loading…'));
    this.outcomes = h('div', { testid: 'outcomes' }, h('p', { class: 'muted' }, 'Loading…'));
    const sel = (name, values, current, label = name) => h('select', { 'aria-label': label, onChange: (e) => {
      const q = { interval: this.interval, duration: this.duration, since: this.window, [name]: e.target.value };
      window.hyphaeNavigate('/ui/stats' + qs(q));
    } }, values.map((v) => h('option', { value: v, selected: v === current }, `${label} ${v}`)));
    replace(root, h('div', { class: 'page' },
      h('div', { class: 'page-head' }, h('h1', 'Statistics')),
      this.totals,
      card('Outcomes over time', [sel('interval', INTERVALS, this.interval), sel('duration', DURATIONS, this.duration)], this.outcomes,
        h('div', { class: 'legend' }, OUTCOMES.map((k) => h('span', { class: `lg o-${k}` }, h('i'), k)))),
      card('Agent types', sel('since', WINDOWS, this.window, 'last'), this.agents)));
    this.load();
    this.stop = every(10000, () => this.load());
  }

  async load() {
    const [st, ag, oc] = await Promise.allSettled([
      api('/v1/stats'),
      api('/v1/agent-types', { query: { since: this.window } }),
      api('/v1/outcomes', { query: { interval: this.interval, duration: this.duration } }),
    ]);
    this.drawTotals(st);
    this.drawAgents(ag);
    this.drawOutcomes(oc);
  }

  drawTotals(r) {
    if (r.status === 'rejected') { replace(this.totals, notice('error', errorText(r.reason))); return; }
    const st = r.value;
    const counts = Object.entries(st.event_type_counts || {}).sort((a, b) => b[1] - a[1]);
    const maxCount = Math.max(1, ...counts.map((c) => c[1]));
    const eg = st.egress || {};
    replace(this.totals,
      h('div', { class: 'stats-grid' },
        stat('events', String(st.total_events), 'stat-events'),
        stat('workflows', String(st.unique_workflows)),
        stat('tasks', String(st.unique_tasks)),
        stat('agents', String(st.unique_agents)),
        stat('failures', String(st.failure_count)),
        stat('failure rate', fmtPct(st.failure_rate), 'stat-failure-rate'),
        stat('avg duration', fmtMs(st.avg_duration_ms)),
        stat('min / max', `${fmtMs(st.min_duration_ms)} / ${fmtMs(st.max_duration_ms)}`),
        stat('outbound requests', `${eg.requests ?? 0}${eg.denied ? ` (${eg.denied} denied)` : ''}`),
        stat('LLM tokens', `${(eg.llm_prompt_tokens ?? 0) + (eg.llm_completion_tokens ?? 0)}`)),
      h('div', { class: 'two-cols' },
        card('Events by type', null, counts.length
          ? h('div', { class: 'hbars' }, counts.map(([k, v]) => h('div', { class: 'hbar' },
            h('span', { class: 'hbar-label' }, k), h('span', { class: 'hbar-track' }, h('span', { class: 'hbar-fill', style: { width: `${(100 * v) / maxCount}%` } })),
            h('span', { class: 'hbar-value' }, String(v)))))
          : h('p', { class: 'muted' }, 'No events.')),
        card('Outbound requests by agent type', null, Object.keys(st.egress_by_agent_type || {}).length
          ? h('table', { class: 'table compact' }, h('thead', h('tr', ['Agent type', 'Requests', 'Denied', 'Prompt tokens', 'Completion tokens'].map((c) => h('th', c)))),
            h('tbody', Object.entries(st.egress_by_agent_type).map(([k, v]) => h('tr', h('td', h('code', k)), h('td', String(v.requests)), h('td', String(v.denied)),
              h('td', String(v.llm_prompt_tokens)), h('td', String(v.llm_completion_tokens))))))
          : h('p', { class: 'muted' }, 'No outbound request.'))));
  }

  drawAgents(r) {
    if (r.status === 'rejected') {
      const e = r.reason;
      replace(this.agents, e instanceof ApiError && e.status === 404
        ? notice('info', { testid: 'not-served' }, 'This host does not serve /v1/agent-types yet.')
        : notice('error', errorText(e)));
      return;
    }
    const items = r.value.items || [];
    if (!items.length) { replace(this.agents, h('p', { class: 'muted' }, 'No attempts yet.')); return; }
    const since = r.value.since ? h('p', { class: 'muted small' }, `Attempts since ${new Date(r.value.since).toLocaleString()}.`) : null;
    const rate = (x, cls) => h('span', { class: `rate ${cls}` }, fmtPct(x));
    replace(this.agents, since, h('table', { class: 'table', testid: 'agent-type-table' },
      h('thead', h('tr', ['Agent type', 'Attempts', 'Completed', 'Failed', 'Timeouts', 'Cancelled', 'Success', 'Failure', 'Timeout', 'p50', 'p95', 'Peak memory'].map((c) => h('th', c)))),
      h('tbody', items.map((a) => h('tr', { testid: 'agent-type-row', 'data-agent-type': a.agent_type },
        h('td', h('code', a.agent_type)), h('td', String(a.attempts)), h('td', String(a.completed)), h('td', String(a.failed)), h('td', String(a.timeouts)), h('td', String(a.cancelled ?? '–')),
        h('td', rate(a.success_rate, a.success_rate < 0.8 ? 'bad' : 'good')),
        h('td', rate(a.failure_rate, a.failure_rate > 0.2 ? 'bad' : '')),
        h('td', rate(a.timeout_rate, a.timeout_rate > 0.2 ? 'bad' : '')),
        h('td', fmtMs(a.p50_ms)), h('td', fmtMs(a.p95_ms)), h('td', a.peak_memory_bytes != null ? fmtBytes(a.peak_memory_bytes) : '–'))))));
  }

  drawOutcomes(r) {
    if (r.status === 'rejected') {
      const e = r.reason;
      replace(this.outcomes, e instanceof ApiError && e.status === 404
        ? notice('info', { testid: 'not-served' }, 'This host does not serve /v1/outcomes yet.')
        : notice('error', errorText(e)));
      return;
    }
    const d = r.value;
    const sum = (k) => (d.buckets || []).reduce((a, b) => a + (b[k] || 0), 0);
    replace(this.outcomes, outcomeChart(d),
      h('p', { class: 'muted small' }, `${(d.buckets || []).length} buckets of ${fmtMs((d.interval_s || 0) * 1000)}: `,
        `${sum('completed')} completed, ${sum('failed')} failed, ${sum('timeout')} timed out, ${sum('cancelled')} cancelled`));
  }

  destroy() { this.stop(); }
}


