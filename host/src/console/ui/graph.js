// The DAG of a workflow as one SVG: layered layout (column = longest path from a root), drawn
// once; later updates only change node classes (status) and edge classes (handoffs). Pan with a
// drag, zoom with the wheel. Stays usable with thousands of tasks.

import { esc } from './util.js';

const NODE_W = 156;
const NODE_H = 30;
const ROW_GAP = 10;
const LAYER_GAP = 72;   // between layers
const SUB_GAP = 18;     // between the sub-columns of a wrapped layer
const PAD = 24;

/**
 * Layout: each task's depth (longest path from the roots through `dependencies`), its column and
 * row. Wide layers wrap into sub-columns so a 1,000-task fan-out stays a block, not a line.
 */
export function layout(tasks) {
  const n = tasks.length;
  const index = new Map(tasks.map((t, i) => [t.task_id, i]));
  const deps = tasks.map((t) => (t.dependencies || []).map((d) => index.get(d)).filter((d) => d !== undefined));
  const dependents = tasks.map(() => []);
  deps.forEach((ds, i) => ds.forEach((d) => dependents[d].push(i)));

  // Longest path from the roots, in topological order (Kahn).
  const indeg = deps.map((ds) => ds.length);
  const depth = new Array(n).fill(0);
  const queue = [];
  for (let i = 0; i < n; i++) if (indeg[i] === 0) queue.push(i);
  let seen = 0;
  for (let qi = 0; qi < queue.length; qi++) {
    const i = queue[qi];
    seen++;
    for (const j of dependents[i]) {
      if (depth[i] + 1 > depth[j]) depth[j] = depth[i] + 1;
      if (--indeg[j] === 0) queue.push(j);
    }
  }
  // A cycle cannot be submitted; should one appear, its tasks stay in the first layer.

  const layers = [];
  for (let i = 0; i < n; i++) (layers[depth[i]] ||= []).push(i);
  for (let d = 0; d < layers.length; d++) layers[d] ||= [];

  // Order within layers by barycenter of neighbours (two down-and-up sweeps).
  const pos = new Float64Array(n);
  const setPos = (layer) => layer.forEach((i, k) => { pos[i] = k / Math.max(1, layer.length - 1); });
  layers.forEach(setPos);
  const sortBy = (layer, nbrs) => {
    const key = new Float64Array(n);
    for (const i of layer) {
      const ns = nbrs[i];
      if (ns.length) {
        let sum = 0;
        for (const j of ns) sum += pos[j];
        key[i] = sum / ns.length;
      } else key[i] = pos[i];
    }
    layer.sort((a, b) => key[a] - key[b] || a - b);
    setPos(layer);
  };
  if (n <= 5000) {
    for (let it = 0; it < 2; it++) {
      for (let d = 1; d < layers.length; d++) sortBy(layers[d], deps);
      for (let d = layers.length - 2; d >= 0; d--) sortBy(layers[d], dependents);
    }
  }

  // Wrap wide layers into sub-columns.
  const maxRows = Math.max(24, Math.ceil(Math.sqrt(n * 1.5)));
  const rowsOf = (len) => Math.min(len, maxRows);
  const tallest = Math.max(1, ...layers.map((l) => rowsOf(l.length)));
  const height = tallest * (NODE_H + ROW_GAP) - ROW_GAP;
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  let cx = PAD;
  for (const layer of layers) {
    const rows = rowsOf(layer.length);
    const cols = Math.ceil(layer.length / maxRows) || 1;
    const top = PAD + (height - (rows * (NODE_H + ROW_GAP) - ROW_GAP)) / 2;
    layer.forEach((i, k) => {
      const c = Math.floor(k / maxRows);
      const r = k % maxRows;
      x[i] = cx + c * (NODE_W + SUB_GAP);
      y[i] = top + r * (NODE_H + ROW_GAP);
    });
    cx += cols * (NODE_W + SUB_GAP) - SUB_GAP + LAYER_GAP;
  }
  const width = Math.max(cx - LAYER_GAP + PAD, NODE_W + 2 * PAD);
  return { index, deps, dependents, depth, x, y, width, height: height + 2 * PAD, layers: layers.length };
}

function label(text, max = 19) {
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

export class DagView {
  /** `container` gets the SVG; `onSelect(taskId)` on a click on a node. */
  constructor(container, { onSelect } = {}) {
    this.container = container;
    this.onSelect = onSelect;
    this.nodes = [];
    this.edges = new Map(); // "src\u0000dst" -> path element
    this.k = 1; this.tx = 0; this.ty = 0;
    this.selected = null;
    this.svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    this.svg.setAttribute('class', 'dag');
    this.svg.setAttribute('data-testid', 'dag');
    this.svg.setAttribute('role', 'img');
    this.svg.setAttribute('aria-label', 'Task graph');
    this.vp = document.createElementNS('http://www.w3.org/2000/svg', 'g');
    this.vp.setAttribute('class', 'vp');
    this.svg.appendChild(this.vp);
    container.appendChild(this.svg);
    this.bind();
    // Until the operator pans or zooms, keep the whole graph in view as the box changes size
    // (the task panel opens, the window or the box is resized).
    this.userMoved = false;
    this.ro = new ResizeObserver(() => { if (!this.userMoved) this.fit(); });
    this.ro.observe(this.svg);
  }

  /** Lay out and draw the tasks (once; call again only when the task set changes). */
  setTasks(tasks) {
    this.tasks = tasks;
    const L = (this.layout = layout(tasks));
    // A small graph gets a smaller box (the operator can still resize it).
    this.container.style.height = `${Math.round(Math.min(440, Math.max(180, L.height * 1.15 + 16)))}px`;
    // Fit before the nodes are in: measuring the box then costs nothing, and a zoomed-out
    // graph hides its labels before they are ever laid out.
    this.fit();
    const parts = ['<g class="edges">'];
    tasks.forEach((t, i) => {
      const x2 = L.x[i], y2 = L.y[i] + NODE_H / 2;
      for (const d of L.deps[i]) {
        const x1 = L.x[d] + NODE_W, y1 = L.y[d] + NODE_H / 2;
        const mx = (x1 + x2) / 2;
        parts.push(`<path class="edge" data-s="${d}" data-t="${i}" d="M${x1.toFixed(1)} ${y1.toFixed(1)}C${mx.toFixed(1)} ${y1.toFixed(1)} ${mx.toFixed(1)} ${y2.toFixed(1)} ${x2.toFixed(1)} ${y2.toFixed(1)}"/>`);
      }
    });
    parts.push('</g><g class="nodes">');
    tasks.forEach((t, i) => {
      const id = esc(t.task_id);
      parts.push(
        `<g class="node s-${esc(t.status)}" data-i="${i}" data-task="${id}" data-testid="dag-node" transform="translate(${L.x[i].toFixed(1)} ${L.y[i].toFixed(1)})">` +
        `<title>${id} · ${esc(t.agent_type)} · ${esc(t.status)}</title>` +
        `<rect width="${NODE_W}" height="${NODE_H}" rx="7"/><circle cx="13" cy="${NODE_H / 2}" r="4.5"/>` +
        `<text x="24" y="${NODE_H / 2 + 4}">${esc(label(t.task_id))}</text></g>`);
    });
    parts.push('</g>');
    this.vp.innerHTML = parts.join('');
    this.nodes = Array.from(this.vp.querySelectorAll('g.node'));
    this.titles = this.nodes.map((g) => g.firstChild);
    this.edges.clear();
    for (const p of this.vp.querySelectorAll('path.edge')) {
      this.edges.set(`${p.dataset.s}\u0000${p.dataset.t}`, p);
    }
    this.status = tasks.map((t) => t.status);
    this.svg.setAttribute('data-node-count', String(tasks.length));
    this.svg.classList.toggle('big', tasks.length > 150); // no animations: each frame would repaint it all
  }

  /** Change a task's status colour. */
  setStatus(taskId, status) {
    const i = this.layout?.index.get(taskId);
    if (i === undefined || this.status[i] === status) return;
    this.status[i] = status;
    const g = this.nodes[i];
    g.setAttribute('class', `node s-${status}${this.selected === i ? ' selected' : ''}`);
    const t = this.tasks[i];
    this.titles[i].textContent = `${t.task_id} · ${t.agent_type} · ${status}`;
  }

  /** Mark the edges handoffs passed along (accepted) or were refused on (rejected). */
  setHandoffs(events) {
    if (!this.layout) return;
    for (const e of events) {
      const src = e.metadata?.source_task;
      const s = this.layout.index.get(src);
      const t = this.layout.index.get(e.task_id);
      const p = this.edges.get(`${s}\u0000${t}`);
      if (!p) continue;
      const rejected = e.status === 'rejected';
      if (p.classList.contains('handoff-rejected') && !rejected) continue;
      p.setAttribute('class', `edge ${rejected ? 'handoff-rejected' : 'handoff'}`);
      if (rejected) p.parentNode.appendChild(p); // on top
    }
  }

  select(taskId) {
    const prev = this.selected;
    if (prev != null && this.nodes[prev]) this.nodes[prev].classList.remove('selected');
    this.selected = null;
    const i = taskId == null ? undefined : this.layout?.index.get(taskId);
    if (i === undefined) return;
    this.selected = i;
    this.nodes[i].classList.add('selected');
    // Bring it into view if it is outside.
    const r = this.svg.getBoundingClientRect();
    const sx = this.layout.x[i] * this.k + this.tx, sy = this.layout.y[i] * this.k + this.ty;
    if (sx < 0 || sy < 0 || sx > r.width - 20 || sy > r.height - 20) {
      this.tx = r.width / 2 - (this.layout.x[i] + NODE_W / 2) * this.k;
      this.ty = r.height / 2 - (this.layout.y[i] + NODE_H / 2) * this.k;
      this.apply();
    }
  }

  fit() {
    this.userMoved = false;
    if (!this.layout) return;
    const r = this.svg.getBoundingClientRect();
    const w = r.width || 800, hgt = r.height || 400;
    const k = Math.min(w / this.layout.width, hgt / this.layout.height, 1.25);
    this.k = k;
    this.tx = (w - this.layout.width * k) / 2;
    this.ty = (hgt - this.layout.height * k) / 2;
    this.apply();
  }

  zoom(factor, cx, cy) {
    this.userMoved = true;
    const r = this.svg.getBoundingClientRect();
    cx ??= r.width / 2; cy ??= r.height / 2;
    const k = Math.min(4, Math.max(0.01, this.k * factor));
    const f = k / this.k;
    this.tx = cx - (cx - this.tx) * f;
    this.ty = cy - (cy - this.ty) * f;
    this.k = k;
    this.apply();
  }

  pan(dx, dy) {
    this.userMoved = true;
    this.tx += dx;
    this.ty += dy;
    this.apply();
  }

  apply() {
    this.vp.setAttribute('transform', `translate(${this.tx.toFixed(2)} ${this.ty.toFixed(2)}) scale(${this.k.toFixed(5)})`);
    this.svg.classList.toggle('far', this.k < 0.45);
  }

  bind() {
    const svg = this.svg;
    svg.addEventListener('wheel', (e) => {
      e.preventDefault();
      const r = svg.getBoundingClientRect();
      const dy = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
      this.zoom(Math.exp(-dy * 0.0015), e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    let drag = null;
    svg.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, tx: this.tx, ty: this.ty, moved: false, node: e.target.closest?.('g.node') };
      svg.setPointerCapture(e.pointerId);
    });
    svg.addEventListener('pointermove', (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      drag.moved = true;
      this.userMoved = true;
      svg.classList.add('dragging');
      this.tx = drag.tx + dx;
      this.ty = drag.ty + dy;
      this.apply();
    });
    const end = (e) => {
      if (!drag) return;
      const d = drag;
      drag = null;
      svg.classList.remove('dragging');
      try { svg.releasePointerCapture(e.pointerId); } catch { /* already released */ }
      if (!d.moved && d.node && e.type === 'pointerup') {
        this.onSelect?.(this.tasks[Number(d.node.dataset.i)].task_id);
      }
    };
    svg.addEventListener('pointerup', end);
    svg.addEventListener('pointercancel', end);
    // Keyboard: +/- zoom, 0 fits, arrows pan.
    svg.setAttribute('tabindex', '0');
    svg.addEventListener('keydown', (e) => {
      const step = 60;
      const keys = {
        '+': () => this.zoom(1.25), '=': () => this.zoom(1.25), '-': () => this.zoom(0.8), '0': () => this.fit(),
        ArrowLeft: () => this.pan(step, 0), ArrowRight: () => this.pan(-step, 0),
        ArrowUp: () => this.pan(0, step), ArrowDown: () => this.pan(0, -step),
      };
      if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
    });
  }

  destroy() {
    this.ro.disconnect();
    this.svg.remove();
  }
}
