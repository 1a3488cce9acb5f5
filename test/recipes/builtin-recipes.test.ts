// Goal: the recipes contract on the built-in store: a 3-node cluster of
// separate store processes on loopback, through BuiltinTxStore (the adapter
// every process uses); and kvctl's lock, elect and watch on the same cluster.
import { afterAll, beforeAll } from 'vitest';
import { BuiltinTxStore } from '../../coordinator/txstore/index.js';
import { StoreClient } from '../../store/client/index.js';
import { StoreCluster } from '../support/store-cluster.js';
import { recipesContract } from './recipes.case.js';
import { recipesMoreContract } from './recipes-more.case.js';
import { kvctlRecipesSuite } from './kvctl-recipes.case.js';

const BASE_PORT = 28500;

let cluster: StoreCluster | undefined;
let store: BuiltinTxStore;

beforeAll(async () => {
  // StoreCluster starts a node again if a client socket held its port for a moment (where a machine's ephemeral range covers the test ports).
  cluster = new StoreCluster({ name: 'recipes-builtin', basePort: BASE_PORT, founders: 3 });
  await cluster.startFounders(60_000);
  store = new BuiltinTxStore(new StoreClient({ endpoints: cluster.endpoints }));
}, 90_000);

afterAll(async () => {
  store?.client.close();
  await cluster?.destroy();
}, 30_000);

recipesContract('BuiltinTxStore on a 3-node cluster', () => store, { ttlMs: 2_000 });
recipesMoreContract('BuiltinTxStore on a 3-node cluster', () => store, { ttlMs: 2_000 });
kvctlRecipesSuite(() => cluster?.endpoints ?? [], () => store);
