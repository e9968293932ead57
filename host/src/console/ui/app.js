// The Hyphae console: a single-page app under /ui with client-side routing. Every page has its
// own URL (deep links work); links are real <a href> so they open in new tabs too.

import { getToken, setToken } from './api.js';
import { h, replace } from './util.js';
import { WorkflowsPage, FailuresPage, StuckPage, PluginsPage, WorkersPage } from './lists.js';
import { WorkflowPage } from './workflow.js';
import { StatsPage } from './stats.js';
import { ApiPage } from './apiref.js';

const ROUTES = [
  { re: /^\/ui\/?$/, page: WorkflowsPage, nav: 'workflows' },
  { re: /^\/ui\/workflows\/?$/, page: WorkflowsPage, nav: 'workflows' },
  { re: /^\/ui\/workflows\/([^/]+)\/tasks\/([^/]+)\/?$/, page: WorkflowPage, nav: 'workflows', params: ['id', 'task'], key: 'id' },
  { re: /^\/ui\/workflows\/([^/]+)\/?$/, page: WorkflowPage, nav: 'workflows', params: ['id'], key: 'id' },
  { re: /^\/ui\/failures\/?$/, page: FailuresPage, nav: 'failures' },
  { re: /^\/ui\/stuck\/?$/, page: StuckPage, nav: 'stuck' },
  { re: /^\/ui\/plugins\/?$/, page: PluginsPage, nav: 'plugins' },
  { re: /^\/ui\/workers\/?$/, page: WorkersPage, nav: 'workers' },
  { re: /^\/ui\/stats\/?$/, page: StatsPage, nav: 'stats' },
  { re: /^\/ui\/api\/?$/, page: ApiPage, nav: 'api' },
];

const NAV = [
  ['workflows', '/ui/workflows', 'Workflows', 'M3 5h18M3 12h18M3 19h12'],
  ['failures', '/ui/failures', 'Failures', 'M12 3 2 21h20L12 3zm0 7v5m0 3v.5'],
  ['stuck', '/ui/stuck', 'Stuck tasks', 'M12 7v5l3 3M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z'],
  ['plugins', '/ui/plugins', 'Plugins', 'M9 3v4M15 3v4M6 7h12v5a6 6 0 0 1-12 0V7zm6 11v3'],
  ['workers', '/ui/workers', 'Workers', 'M4 5h16v6H4zM4 13h16v6H4zM8 8h.01M8 16h.01'],
  ['stats', '/ui/stats', 'Statistics', 'M4 20V10M10 20V4M16 20v-7M22 20H2'],
  ['api', '/ui/api', 'API', 'M8 6 2 12l6 6M16 6l6 6-6 6'],
];

function icon(d) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'icon');
  const p = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  p.setAttribute('d', d);
  svg.appendChild(p);
  return svg;
}

class App {
  constructor() {
    this.main = h('main', { id: 'main', class: 'main', tabindex: '-1' });
    this.banner = h('div', { class: 'banner', testid: 'auth-banner', hidden: true });
    this.navLinks = new Map();
    const nav = h('nav', { class: 'nav', 'aria-label': 'Sections' },
      NAV.map(([key, href, label, d]) => {
        const a = h('a', { href, 'data-nav': key, testid: `nav-${key}` }, icon(d), h('span', label));
        this.navLinks.set(key, a);
        return a;
      }));
    this.tokenForm = this.buildTokenForm();
    const side = h('aside', { class: 'sidebar' },
      h('a', { class: 'brand', href: '/ui' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), h('span', 'Hyphae')),
      nav,
      h('div', { class: 'side-foot' }, this.tokenForm));
    replace(document.body, h('div', { class: 'layout' }, side, h('div', { class: 'content' }, this.banner, this.main)));
    this.current = null;

    document.addEventListener('click', (e) => this.onClick(e));
    window.addEventListener('popstate', () => this.route());
    window.addEventListener('hyphae:unauthorized', (e) => this.showAuth(e.detail));
    window.addEventListener('hyphae:token', () => this.drawTokenState());
    window.hyphaeNavigate = (href, replaceState = false) => this.navigate(href, replaceState);
    this.route();
  }

  buildTokenForm() {
    this.tokenInput = h('input', { type: 'password', placeholder: 'Bearer token', autocomplete: 'off', 'aria-label': 'API token', testid: 'token-input' });
    this.tokenState = h('span', { class: 'token-state', testid: 'token-state' });
    return h('form', { class: 'token-form', onSubmit: (e) => {
      e.preventDefault();
      setToken(this.tokenInput.value.trim());
      this.tokenInput.value = '';
      this.banner.hidden = true;
      this.reload();
    } },
    h('label', { class: 'token-label' }, 'Token ', this.tokenState),
    h('div', { class: 'token-row' }, this.tokenInput, h('button', { type: 'submit', class: 'small', testid: 'token-save' }, 'Set')),
    h('button', { type: 'button', class: 'link small', onClick: () => { setToken(''); this.reload(); } }, 'Forget token'));
  }

  drawTokenState() {
    const t = getToken();
    this.tokenState.textContent = t ? `set (…${t.slice(-4)})` : 'none';
    this.tokenState.className = `token-state ${t ? 'set' : ''}`;
  }

  showAuth(err) {
    if (!this.banner.hidden) return;
    const input = h('input', { type: 'password', placeholder: 'hyphae_…', autocomplete: 'off', 'aria-label': 'API token', testid: 'banner-token' });
    replace(this.banner,
      h('form', { class: 'banner-form', onSubmit: (e) => {
        e.preventDefault();
        setToken(input.value.trim());
        this.banner.hidden = true;
        this.reload();
      } },
      h('strong', getToken() ? 'The host refused this token. ' : 'This host needs a token. '),
      h('span', { class: 'muted' }, err?.problem?.detail || 'Make one with `hyphae token create --role reader`.'),
      input, h('button', { type: 'submit', class: 'primary small' }, 'Use token')));
    this.banner.hidden = false;
  }

  onClick(e) {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = e.target.closest('a[href]');
    if (!a || a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !/^\/ui(\/|$)/.test(url.pathname)) return;
    e.preventDefault();
    this.navigate(url.pathname + url.search + url.hash);
  }

  navigate(href, replaceState = false) {
    const url = new URL(href, location.href);
    const now = location.pathname + location.search + location.hash;
    const next = url.pathname + url.search + url.hash;
    if (next === now) { this.route(); return; }
    if (replaceState) history.replaceState(null, '', next);
    else history.pushState(null, '', next);
    this.route();
  }

  reload() {
    this.current?.instance.destroy?.();
    this.current = null;
    this.route();
  }

  route() {
    this.drawTokenState();
    const path = location.pathname;
    const query = new URLSearchParams(location.search);
    let match = null, route = null;
    for (const r of ROUTES) {
      match = path.match(r.re);
      if (match) { route = r; break; }
    }
    for (const [key, a] of this.navLinks) {
      if (route && key === route.nav) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const setTitle = (t) => { document.title = `${t} · Hyphae`; };
    if (!route) {
      this.current?.instance.destroy?.();
      this.current = null;
      setTitle('Not found');
      replace(this.main, h('div', { class: 'page' }, h('h1', 'Page not found'),
        h('p', 'No console page at ', h('code', path), '. ', h('a', { href: '/ui/workflows' }, 'Go to the workflows.'))));
      return;
    }
    const params = {};
    (route.params || []).forEach((name, i) => { params[name] = decodeURIComponent(match[i + 1]); });
    // Same page, same workflow: let it update (e.g. open or close the task panel).
    const c = this.current;
    if (c && c.route.page === route.page && route.key && c.params[route.key] === params[route.key]
      && c.search === location.search && c.instance.update) {
      c.params = params;
      c.instance.update(params);
      return;
    }
    c?.instance.destroy?.();
    this.main.replaceChildren();
    this.main.className = 'main';
    const instance = new route.page(this.main, { params, query, setTitle });
    this.current = { route, params, search: location.search, instance };
    if (!location.hash) window.scrollTo(0, 0);
  }
}

new App();
