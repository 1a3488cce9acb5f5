// Goal: BuiltinTxStore, the adapter the coordinator and participants use in
// production, passes the same TxStore contract as the in-memory model, on a
// real 3-node cluster of separate store processes (issue 5: "everything else
// runs on a real 3-node store cluster"). A store failure surfaces as a
// TxStoreError with the store's code.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuiltinTxStore, TxStoreError } from '../../coordinator/txstore/index.js';
import { LocalCluster } from '../../store/node/launcher.js';
import { StoreClient } from '../../store/client/index.js';
import { txStoreContract } from './txstore.case.js';

const BASE_PORT = 34700;

let cluster: LocalCluster | undefined;
let dataDir = '';
let store: BuiltinTxStore;

beforeAll(async () => {
  dataDir = mkdtempSync(join(os.tmpdir(), 'txstore-builtin-'));
  cluster = new LocalCluster({ nodes: 3, basePort: BASE_PORT, dataDir, logToFiles: true });
  cluster.start();
  await cluster.waitForLeader(30_000);
  store = new BuiltinTxStore(new StoreClient({ endpoints: cluster.endpoints }));
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
  if (dataDir !== '') rmSync(dataDir, { recursive: true, force: true });
}, 30_000);

txStoreContract('BuiltinTxStore on a 3-node cluster', () => store, {
  // Leadership moves by a Raft leader transfer: a leader change with no process killed.
  changeLeader: async () => {
    const c = cluster as LocalCluster;
    const from = await c.waitForLeader(30_000);
    const to = c.members.find((m) => m.id !== from)?.id as string;
    await store.client.transferLeader(to);
    const deadline = Date.now() + 30_000;
    while ((await c.waitForLeader(30_000)) !== to) {
      if (Date.now() > deadline) throw new Error(`leadership did not move to ${to}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  },
});

describe('BuiltinTxStore errors', () => {
  it('maps store errors to TxStoreError with the store code', async () => {
    const err = await store.put('x'.repeat(2_000), 'v').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TxStoreError);
    expect((err as TxStoreError).status).toBeGreaterThanOrEqual(400);
    expect((err as TxStoreError).status).toBeLessThan(500);
  });
});
