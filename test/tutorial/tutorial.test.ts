// Goal: the tutorial's example (examples/tutorial, docs/TUTORIAL.md) runs
// as a user would run it: a real 3-node store cluster, a coordinator, and
// two warehouse services as processes (`node --import tsx`), each made a
// participant through `raft2pc/participant`; the app script moves stock
// through `raft2pc/client`. A move both warehouses can make commits, and
// each warehouse's stock shows it; a move the source cannot cover aborts,
// and neither warehouse's stock changes or stays reserved.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coordinatorProc, http, Proc, startStore, stopAll, type Stack } from '../twopc/support/procs.js';
import { waitFor } from '../support/wait.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const WAREHOUSE = join(ROOT, 'examples/tutorial/warehouse.ts');
const MOVE_STOCK = join(ROOT, 'examples/tutorial/move-stock.ts');
/** Store nodes on 32610..32612 (peers +100); the coordinator and the warehouses on odd ports from 32671. */
const BASE_PORT = 32610;
const COORDINATOR_PORT = 32671;

let dir = '';
let coordinator: Proc;
let east: Proc;
let west: Proc;

function warehouse(stack: Stack, name: string, port: number, stock: string): Proc {
  const args = ['--name', name, '--port', String(port), '--store', stack.storeFlag, '--data-dir', join(stack.dir, name), '--stock', stock];
  return new Proc(`warehouse ${name}`, `http://127.0.0.1:${port}`, WAREHOUSE, args, join(stack.dir, `${name}.log`));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tutorial-'));
  const stack = await startStore(dir, BASE_PORT);
  coordinator = coordinatorProc(stack, 'c1', COORDINATOR_PORT);
  east = warehouse(stack, 'east', 32673, 'widget=10');
  west = warehouse(stack, 'west', 32675, 'widget=2');
  for (const p of [coordinator, east, west]) p.start();
  await Promise.all([coordinator, east, west].map((p) => p.waitHealthy()));
  // /healthz says the process is up; /readyz that the participant recovered and serves.
  for (const w of [east, west]) await waitFor(`${w.name} ready`, 30_000, async () => (await http('GET', `${w.url}/readyz`)).status === 200);
}, 180_000);

afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** Runs the app script; its outcome line and exit code. */
async function moveStock(count: number): Promise<{ code: number; outcome: { outcome: string; txId: string; reason?: string } }> {
  const args = ['--import', 'tsx', MOVE_STOCK, '--coordinators', coordinator.url, '--from', `east=${east.url}`, '--to', `west=${west.url}`, '--sku', 'widget', '--count', String(count)];
  const run = await promisify(execFile)(process.execPath, args, { cwd: ROOT, timeout: 60_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout }),
    (e: { code?: number; stdout?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '' }),
  );
  const line = run.stdout.split('\n').find((l) => l.startsWith('{'));
  if (line === undefined) throw new Error(`move-stock printed no outcome (exit ${run.code}): ${run.stdout}`);
  return { code: run.code, outcome: JSON.parse(line) as { outcome: string; txId: string; reason?: string } };
}

async function stockOf(p: Proc): Promise<{ warehouse: string; quantities: Record<string, number>; reserved: Record<string, number> }> {
  const r = await http('GET', `${p.url}/stock`);
  expect(r.status).toBe(200);
  return r.body as { warehouse: string; quantities: Record<string, number>; reserved: Record<string, number> };
}

describe('the tutorial example', () => {
  it('moves stock between the two warehouses in one committed transaction', async () => {
    const { code, outcome } = await moveStock(3);
    expect(outcome.outcome).toBe('committed');
    expect(code).toBe(0);
    // The app returns once the decision is recorded; each warehouse applies it right after.
    await waitFor('both warehouses applied the move', 30_000, async () => (await stockOf(east)).quantities['widget'] === 7 && (await stockOf(west)).quantities['widget'] === 5);
    expect(await stockOf(east)).toEqual({ warehouse: 'east', quantities: { widget: 7 }, reserved: {} });
    expect(await stockOf(west)).toEqual({ warehouse: 'west', quantities: { widget: 5 }, reserved: {} });
    const logged = await http('GET', `${east.url}/v1/participant/transactions`);
    expect(logged.body.transactions[0]).toMatchObject({ txId: outcome.txId, vote: 'yes', decision: 'commit' });
  });

  it('aborts a move the source cannot cover: no stock changes hands, nothing stays reserved', async () => {
    const { code, outcome } = await moveStock(100);
    expect(outcome.outcome).toBe('aborted');
    expect(outcome.reason).toContain('only 7 widget free');
    expect(code).toBe(1);
    await waitFor('both warehouses applied the abort', 30_000, async () => {
      const logs = await Promise.all([east, west].map((p) => http('GET', `${p.url}/v1/participant/transactions`)));
      return logs.every((l) => l.body.transactions[0]?.txId === outcome.txId && l.body.transactions[0]?.phase === 'aborted');
    });
    expect(await stockOf(east)).toEqual({ warehouse: 'east', quantities: { widget: 7 }, reserved: {} });
    expect(await stockOf(west)).toEqual({ warehouse: 'west', quantities: { widget: 5 }, reserved: {} });
  });
});
