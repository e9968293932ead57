// The operator console (/ui) in headless Chromium, against a running host with the echo, fib
// and testkit plugins:
//
//   HYPHAE_URL=http://127.0.0.1:PORT node --test tests/browser/console.test.mjs
//
// (HYPHAE_TOKEN when the host needs a token, CHROMIUM for another browser binary.) Each test
// submits its own workflows through the API and checks what the console shows; waits poll for
// conditions, never sleep. A failing test leaves a screenshot in /tmp (its path is in the error).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, request, get, submit, eventually, waitStatus, launch, newContext, unique } from './lib.mjs';

const T = 30000; // a wait on the page (the machine may be slow)
let browser;
let context;

before(async () => {
  const r = await request('GET', '/ui/assets/app.js');
  assert.equal(r.status, 200, `${BASE} does not serve the console's assets (/ui/assets/app.js answered ${r.status})`);
  browser = await launch();
  context = await newContext(browser);
});

after(async () => {
  await browser?.close();
});

/**
 * Run `body(page)` in a new page; on failure, save a screenshot and name it in the error. Errors
 * thrown in the page (uncaught exceptions) fail the test too.
 */
async function withPage(name, body) {
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e));
  try {
    await body(page);
    assert.deepEqual(pageErrors.map(String), [], 'uncaught errors in the page');
  } catch (e) {
    const file = `/tmp/hyphae-ui-${name.replace(/[^a-z0-9]+/gi, '-')}.png`;
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    e.message += `\n  page: ${page.url()}\n  screenshot: ${file}` + (pageErrors.length ? `\n  page errors: ${pageErrors.join('; ')}` : '');
    throw e;
  } finally {
    await page.close();
  }
}

const url = (path) => BASE + path;
const node = (page, task) => page.locator(`[data-testid="dag"] g.node[data-task="${task}"]`);
const nodeStatus = async (page, task) => {
  const cls = (await node(page, task).getAttribute('class', { timeout: T })) || '';
  return (cls.match(/\bs-([a-z_]+)/) || [])[1];
};
const text = (page, testid) => page.getByTestId(testid).first().textContent({ timeout: T });

async function waitText(page, testid, expected, timeout = T) {
  await eventually(async () => {
    const t = (await text(page, testid)).trim();
    const ok = expected instanceof RegExp ? expected.test(t) : t === expected;
    if (!ok) throw new Error(`${testid} shows "${t}", want ${expected}`);
  }, { timeout, what: `${testid} = ${expected}` });
}

async function waitNode(page, task, status, timeout = T) {
  await eventually(async () => {
    const s = await nodeStatus(page, task);
    if (s !== status) throw new Error(`node ${task} is ${s}, want ${status}`);
  }, { timeout, interval: 100, what: `node ${task} ${status}` });
}

test('the workflows list shows a submitted workflow, filters by status, pages and opens one by id', async () => {
  const name = unique('ui-list');
  const ids = [];
  for (const n of ['a', 'b', 'c']) ids.push(await submit({ name: `${name}-${n}`, tasks: [{ task_id: 'hello', agent_type: 'echo', input: { message: n } }] }));
  for (const w of ids) await waitStatus(w, 'completed');
  const id = ids[2];
  await withPage('list', async (page) => {
    // Paging, two at a time: newest first, Next, then Prev back to the first page.
    await page.goto(url('/ui/workflows?limit=2'));
    const shownIds = () => page.locator('[data-testid="workflow-row"]').evaluateAll((rows) => rows.map((r) => r.dataset.id));
    await eventually(async () => assert.deepEqual(await shownIds(), [ids[2], ids[1]]), { timeout: T, what: 'the first page' });
    await page.getByTestId('next').click();
    await page.waitForURL(/limit=2&cursor=/, { timeout: T });
    await eventually(async () => assert.equal((await shownIds())[0], ids[0]), { timeout: T, what: 'the second page' });
    await page.getByTestId('prev').click();
    await page.waitForURL(/\/ui\/workflows\?limit=2$/, { timeout: T });
    await eventually(async () => assert.deepEqual(await shownIds(), [ids[2], ids[1]]), { timeout: T, what: 'the first page again' });
    assert.ok(await page.getByTestId('prev').isDisabled(), 'Prev is enabled on the first page');

    await page.goto(url('/ui'));
    const row = page.locator(`[data-testid="workflow-row"][data-id="${id}"]`);
    await row.waitFor({ timeout: T });
    assert.match(await row.textContent(), new RegExp(`${name}-c`));

    // Filter: completed keeps it (and only completed rows), failed drops it.
    await page.getByTestId('status-filter').selectOption('completed');
    await page.waitForURL(/\/ui\/workflows\?status=completed$/, { timeout: T });
    await row.waitFor({ timeout: T });
    const statuses = await page.locator('[data-testid="workflow-row"]').evaluateAll((rows) => rows.map((r) => r.dataset.status));
    assert.ok(statuses.length > 0 && statuses.every((s) => s === 'completed'), `statuses shown: ${statuses}`);
    await page.getByTestId('status-filter').selectOption('failed');
    await page.waitForURL(/status=failed$/, { timeout: T });
    await eventually(async () => {
      const shown = await page.locator('[data-testid="workflow-row"]').evaluateAll((rows) => rows.map((r) => [r.dataset.id, r.dataset.status]));
      assert.ok(shown.every(([, s]) => s === 'failed'), `rows: ${JSON.stringify(shown)}`);
      assert.ok(!shown.some(([w]) => w === id), 'the completed workflow is still listed');
      assert.ok(shown.length > 0 || (await page.getByTestId('empty').count()) === 1, 'neither rows nor the empty message');
    }, { timeout: T, what: 'the failed filter' });

    // Search by id: opens the workflow; an unknown id says so.
    await page.getByTestId('search-id').fill(id);
    await page.getByTestId('search-id').press('Enter');
    await page.waitForURL(new RegExp(`/ui/workflows/${id}$`), { timeout: T });
    await waitText(page, 'wf-name', `${name}-c`);
    await page.goto(url('/ui/workflows'));
    await page.getByTestId('search-id').fill('no-such-workflow-' + Date.now());
    await page.getByTestId('search-id').press('Enter');
    await page.getByTestId('not-found').waitFor({ timeout: T });
  });
});

test('a workflow page shows its graph (one node per task) and its timeline', async () => {
  const id = await submit({
    name: unique('ui-graph'),
    tasks: [
      { task_id: 'a', agent_type: 'echo', input: { n: 1 } },
      { task_id: 'b', agent_type: 'fib', input: { n: 10 }, dependencies: ['a'] },
      { task_id: 'c', agent_type: 'echo', dependencies: ['a'] },
      { task_id: 'd', agent_type: 'echo', dependencies: ['b', 'c'] },
    ],
  });
  await waitStatus(id, 'completed');
  await withPage('graph', async (page) => {
    await page.goto(url(`/ui/workflows/${id}`));
    await waitText(page, 'wf-status', 'completed');
    await eventually(async () => assert.equal(await page.locator('[data-testid="dag"] g.node').count(), 4), { timeout: T, what: '4 nodes' });
    assert.equal(await page.locator('[data-testid="dag"] path.edge').count(), 4, 'one edge per dependency');
    for (const t of ['a', 'b', 'c', 'd']) assert.equal(await nodeStatus(page, t), 'completed');
    // Timeline: a row per task and a bar per attempt.
    await eventually(async () => {
      assert.equal(await page.locator('[data-testid="timeline-row"]').count(), 4);
      assert.equal(await page.locator('[data-testid="attempt-bar"].o-completed').count(), 4);
    }, { timeout: T, what: 'the timeline' });
    // Handoffs passed along the edges are marked.
    await eventually(async () => assert.equal(await page.locator('[data-testid="dag"] path.edge.handoff').count(), 4), { timeout: T, what: 'handoff edges' });
    assert.match(await text(page, 'task-counts'), /completed 4/);
    assert.equal(await page.locator('[data-testid="task-row"]').count(), 4);
    await waitText(page, 'live-indicator', 'ended');
  });
});

test('a running workflow updates live: node colours, status and timeline, without a reload', async () => {
  const id = await submit({
    name: unique('ui-live'),
    tasks: [
      { task_id: 'slow', agent_type: 'testkit', input: { action: 'sleep', ms: 8000 }, timeout: 60 },
      { task_id: 'after', agent_type: 'echo', dependencies: ['slow'] },
    ],
  });
  await withPage('live', async (page) => {
    await page.goto(url(`/ui/workflows/${id}`));
    await waitNode(page, 'slow', 'running', 15000);
    await waitText(page, 'wf-status', 'running');
    await waitText(page, 'live-indicator', 'live');
    const wf = await get(`/v1/workflows/${id}?tasks_limit=0`);
    assert.equal(wf.status, 'running', 'the workflow ended before the page showed it running: make `slow` slower');
    // A mark that a reload would wipe out.
    await page.evaluate(() => { window.__noReload = 1; });
    await eventually(() => page.locator('[data-testid="attempt-bar"].o-running').count().then((n) => n === 1 || false),
      { timeout: T, what: 'the running attempt in the timeline' });

    await waitNode(page, 'slow', 'completed', 60000);
    await waitNode(page, 'after', 'completed', 60000);
    await waitText(page, 'wf-status', 'completed', 60000);
    await waitText(page, 'live-indicator', 'ended');
    await eventually(async () => assert.equal(await page.locator('[data-testid="attempt-bar"].o-completed').count(), 2),
      { timeout: T, what: 'both attempts completed in the timeline' });
    assert.match(await text(page, 'task-counts'), /completed 2/);
    assert.equal(await page.evaluate(() => window.__noReload), 1, 'the page was reloaded');
  });
});

test('pause and resume through the buttons', async () => {
  const sleep = (i) => ({ task_id: `s${i}`, agent_type: 'testkit', input: { action: 'sleep', ms: 2500 }, ...(i > 1 ? { dependencies: [`s${i - 1}`] } : {}) });
  const id = await submit({ name: unique('ui-pause'), tasks: [1, 2, 3, 4].map(sleep) });
  await withPage('pause', async (page) => {
    await page.goto(url(`/ui/workflows/${id}`));
    await waitText(page, 'wf-status', 'running');
    await page.getByTestId('btn-pause').click({ timeout: T });
    await waitText(page, 'wf-status', 'paused');
    assert.equal((await get(`/v1/workflows/${id}?tasks_limit=0`)).status, 'paused', 'the API does not say paused');
    assert.ok(await page.getByTestId('btn-pause').isDisabled(), 'Pause is still enabled on a paused workflow');

    await page.getByTestId('btn-resume').click({ timeout: T });
    await waitText(page, 'wf-status', /^(running|completed)$/);
    assert.ok(['running', 'completed'].includes((await get(`/v1/workflows/${id}?tasks_limit=0`)).status), 'the API does not say running');
    await waitText(page, 'wf-status', 'completed', 60000);
    for (const t of ['s1', 's2', 's3', 's4']) assert.equal(await nodeStatus(page, t), 'completed');
  });
});

const failure = { message: null, id: null };

test('a failed task shows its error in the detail panel', async () => {
  failure.message = unique('kaput');
  failure.id = await submit({
    name: unique('ui-fail'),
    tasks: [
      { task_id: 'ok', agent_type: 'echo' },
      { task_id: 'boom', agent_type: 'testkit', input: { action: 'fatal', message: failure.message }, dependencies: ['ok'] },
      { task_id: 'never', agent_type: 'echo', dependencies: ['boom'] },
    ],
  });
  await waitStatus(failure.id, 'failed');
  await withPage('failed-task', async (page) => {
    await page.goto(url(`/ui/workflows/${failure.id}`));
    await waitText(page, 'wf-status', 'failed');
    await waitNode(page, 'boom', 'failed');
    await waitNode(page, 'never', 'skipped');
    await node(page, 'boom').click();
    await page.waitForURL(new RegExp(`/ui/workflows/${failure.id}/tasks/boom$`), { timeout: T });
    const panel = page.getByTestId('task-panel');
    await panel.waitFor({ timeout: T });
    await eventually(async () => {
      const msg = await panel.getByTestId('task-error-message').textContent({ timeout: 1000 });
      assert.equal(msg.trim(), failure.message);
    }, { timeout: T, what: 'the error message in the panel' });
    assert.match(await panel.getByTestId('task-status').textContent(), /failed/);
    assert.ok(await panel.getByTestId('attempt').count() >= 1, 'no attempt shown');
    // Closing the panel goes back to the workflow's URL.
    await page.getByTestId('panel-close').click();
    await page.waitForURL(new RegExp(`/ui/workflows/${failure.id}$`), { timeout: T });
    assert.ok(await panel.isHidden());
  });
});

test('a deep link to a task opens the page with its panel', async () => {
  assert.ok(failure.id, 'needs the failed workflow of the previous test');
  await withPage('deep-link', async (page) => {
    await page.goto(url(`/ui/workflows/${failure.id}/tasks/boom`));
    const panel = page.locator('[data-testid="task-panel"][data-task="boom"]');
    await panel.waitFor({ timeout: T });
    await eventually(async () => assert.equal((await panel.getByTestId('task-error-message').textContent({ timeout: 1000 })).trim(), failure.message),
      { timeout: T, what: 'the error message' });
    await eventually(async () => assert.match((await node(page, 'boom').getAttribute('class')) || '', /\bselected\b/), { timeout: T, what: 'the node selected' });
  });
});

test('the failures page lists the failed attempt', async () => {
  assert.ok(failure.id, 'needs the failed workflow of an earlier test');
  await withPage('failures', async (page) => {
    await page.goto(url('/ui/failures'));
    const row = page.locator(`[data-testid="failure-row"][data-workflow="${failure.id}"][data-task="boom"]`);
    await row.waitFor({ timeout: T });
    assert.match(await row.textContent(), new RegExp(failure.message));
    await row.locator('a').first().click();
    await page.waitForURL(new RegExp(`/ui/workflows/${failure.id}/tasks/boom$`), { timeout: T });
    await page.locator('[data-testid="task-panel"][data-task="boom"]').waitFor({ timeout: T });
  });
});

test('the plugins and workers pages show echo and this host\'s worker', async () => {
  const ready = await (await fetch(url('/readyz'))).json();
  const workerId = ready.components?.engine?.detail?.worker_id;
  assert.ok(workerId, `no worker id in /readyz: ${JSON.stringify(ready)}`);
  await withPage('plugins-workers', async (page) => {
    await page.goto(url('/ui/plugins'));
    for (const type of ['echo', 'fib', 'testkit']) {
      const row = page.locator(`[data-testid="plugin-row"][data-agent-type="${type}"]`).first();
      await row.waitFor({ timeout: T });
      assert.equal(await row.getAttribute('data-state'), 'loaded', `${type} is not loaded`);
    }
    assert.match(await page.locator('[data-testid="plugin-row"][data-agent-type="echo"]').first().textContent(), /sha256:/);

    await page.getByTestId('nav-workers').click();
    await page.waitForURL(/\/ui\/workers$/, { timeout: T });
    const row = page.locator(`[data-testid="worker-row"][data-worker="${workerId}"]`);
    await row.waitFor({ timeout: T });
    assert.match(await row.getAttribute('data-health'), /^(HEALTHY|DEGRADED)$/);
    await row.getByTestId('this-host').waitFor({ timeout: T });
    assert.match(await row.textContent(), /echo/);
  });
});

test('the statistics page shows the event totals', async () => {
  await withPage('stats', async (page) => {
    await page.goto(url('/ui/stats'));
    await page.getByTestId('stat-events').waitFor({ timeout: T });
    const n = Number((await page.getByTestId('stat-events').locator('.stat-value').textContent()).trim());
    assert.ok(n > 0, `events: ${n}`);
  });
});

test('the API page lists submitWorkflow and "Try it" on GET /v1/workflows answers 200', async () => {
  await withPage('api', async (page) => {
    await page.goto(url('/ui/api'));
    await page.getByTestId('op-submitWorkflow').waitFor({ timeout: T });
    const op = page.getByTestId('op-listWorkflows');
    await op.locator('summary').click();
    await op.getByTestId('try-param-limit').fill('5');
    await op.getByTestId('try-send').click();
    await waitText(page, 'try-status', '200');
    const body = JSON.parse(await op.getByTestId('try-response').textContent());
    assert.ok(Array.isArray(body.items) && body.items.length <= 5, 'the response is a page of workflows');
  });
});
