// Benchmark (not a test): how long the console takes to draw a 1,000-task workflow's page.
//
//   HYPHAE_URL=http://127.0.0.1:PORT node tests/browser/render-bench.mjs [--runs 3] [--tasks 1000]
//
// Submits a layered fan-out / fan-in of echo tasks (root -> A -> B -> C -> sink, so the graph
// has depth and wide layers), waits until it has completed (so every run draws the same thing),
// then, per run, opens /ui/workflows/{id} in a fresh page and measures the time from navigation
// to the graph being drawn with all of its nodes, and to the timeline having a row per task
// (each: the first frame rendered with them).
// Prints the figures (median of the runs) and a JSON line. Target: graph under 2 s.

import { BASE, submit, waitStatus, launch, newContext, unique } from './lib.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const RUNS = arg('runs', 3);
const TASKS = arg('tasks', 1000);

/** root, then three layers of about a third each, then a sink that joins the last layer. */
function layered(n) {
  const tasks = [{ task_id: 'root', agent_type: 'echo', input: { layer: 0 } }];
  const w = Math.floor((n - 2) / 3);
  const last = n - 2 - 2 * w;
  for (let i = 0; i < w; i++) tasks.push({ task_id: `a${i}`, agent_type: 'echo', dependencies: ['root'] });
  for (let i = 0; i < w; i++) tasks.push({ task_id: `b${i}`, agent_type: 'echo', dependencies: [`a${i}`, `a${(i + 1) % w}`] });
  for (let i = 0; i < last; i++) tasks.push({ task_id: `c${i}`, agent_type: 'echo', dependencies: [`b${i % w}`] });
  tasks.push({ task_id: 'sink', agent_type: 'echo', dependencies: tasks.filter((t) => t.task_id.startsWith('c')).map((t) => t.task_id) });
  return tasks;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const id = await submit({ name: unique('bench-1000'), max_parallel_tasks: 50, tasks: layered(TASKS) });
process.stderr.write(`submitted ${TASKS} tasks as ${id}; waiting for it to complete\n`);
const t0 = Date.now();
await waitStatus(id, 'completed', 600000);
process.stderr.write(`completed in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);

const browser = await launch();
const context = await newContext(browser);
const graph = [];
const timeline = [];
try {
  // A warm-up load (compiles the scripts, fills the HTTP cache as a returning operator's would).
  for (let run = 0; run <= RUNS; run++) {
    const page = await context.newPage();
    await page.goto(`${BASE}/ui/workflows/${id}`, { waitUntil: 'commit' });
    // In the page's own clock (ms since its navigation started): the first frame rendered with
    // every node in the graph (a frame, then a task after it: style, layout and paint are done),
    // and the same for the timeline's rows.
    const [g, tl] = await page.evaluate(async (n) => {
      const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
      const drawn = async (ready) => {
        while (!ready()) await new Promise((r) => requestAnimationFrame(r));
        await frame();
        return performance.now();
      };
      const deadline = performance.now() + 120000;
      const check = (f) => () => { if (performance.now() > deadline) throw new Error('not drawn in 120 s'); return f(); };
      const graphMs = await drawn(check(() => document.querySelectorAll('[data-testid="dag"] g.node').length >= n));
      const timelineMs = await drawn(check(() => Number(document.querySelector('[data-testid="timeline"]')?.dataset.rows) >= n));
      return [graphMs, timelineMs];
    }, TASKS);
    if (run > 0) {
      graph.push(g);
      timeline.push(tl);
    }
    await page.close();
  }
} finally {
  await browser.close();
}

const ms = (x) => `${Math.round(x)} ms`;
console.log(`${TASKS}-task workflow page, ${RUNS} run(s) after a warm-up:`);
console.log(`  graph drawn (all ${TASKS} nodes): median ${ms(median(graph))} (runs: ${graph.map(ms).join(', ')})  target < 2000 ms`);
console.log(`  timeline drawn (${TASKS} rows):     median ${ms(median(timeline))} (runs: ${timeline.map(ms).join(', ')})`);
console.log(JSON.stringify({ bench: 'console_render', tasks: TASKS, graph_ms: Math.round(median(graph)), timeline_ms: Math.round(median(timeline)) }));
