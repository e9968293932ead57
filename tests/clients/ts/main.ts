// A client of the host generated from its GET /openapi.json by @hey-api/openapi-ts: submits a
// workflow, waits until it completes and prints its id. Run by tests/all/contract.rs, which
// generates the client into ./client first.
//
// Usage: node out/main.js [BASE_URL [TOKEN]]  (or HYPHAE_URL, HYPHAE_TOKEN)

import { createClient } from './client/client/index.js';
import { getWorkflow, submitWorkflow } from './client/sdk.gen.js';
import type { WorkflowSpec, WorkflowStatus } from './client/types.gen.js';

const baseUrl = process.argv[2] ?? process.env.HYPHAE_URL ?? 'http://127.0.0.1:8080';
const token = process.argv[3] ?? process.env.HYPHAE_TOKEN;

const client = createClient({ baseUrl, ...(token === undefined ? {} : { auth: token }) });

const TERMINAL: readonly WorkflowStatus[] = ['completed', 'failed', 'cancelled'];

function fail(message: string): never {
  console.error(`error: ${message}`);
  process.exit(1);
}

async function main(): Promise<void> {
  const spec: WorkflowSpec = {
    name: 'client-test',
    tasks: [{ task_id: 'a', agent_id: 'a1', agent_type: 'echo', input: { x: 1 } }],
  };
  const submitted = await submitWorkflow({
    client,
    body: spec,
    // Not a parameter in the document (the body's `idempotency_key` is): sent as a plain header.
    headers: { 'Idempotency-Key': `client-test-${Date.now()}-${process.pid}` },
  });
  if (submitted.error !== undefined || submitted.data === undefined) {
    fail(`submitWorkflow: HTTP ${submitted.response.status}: ${JSON.stringify(submitted.error)}`);
  }
  const id: string = submitted.data.workflow_id;

  const deadline = Date.now() + 30_000;
  for (;;) {
    const got = await getWorkflow({ client, path: { id }, query: { tasks_limit: 0 } });
    if (got.error !== undefined || got.data === undefined) {
      fail(`getWorkflow ${id}: HTTP ${got.response.status}: ${JSON.stringify(got.error)}`);
    }
    const status: WorkflowStatus = got.data.status;
    if (status === 'completed') {
      break;
    }
    if (TERMINAL.includes(status)) {
      fail(`workflow ${id} ended ${status}: ${JSON.stringify(got.data.error ?? {})}`);
    }
    if (Date.now() > deadline) {
      fail(`workflow ${id} still ${status} after 30 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  console.log(id);
}

main().catch((e: unknown) => fail(e instanceof Error ? (e.stack ?? e.message) : String(e)));
