// Goal: the recipes contract on the in-memory TxStore model, which runs in
// milliseconds; the same suite runs on the built-in cluster and on etcd.
import { MemoryTxStore } from '../../coordinator/txstore/index.js';
import { recipesContract } from './recipes.case.js';
import { recipesMoreContract } from './recipes-more.case.js';

const store = new MemoryTxStore();
recipesContract('MemoryTxStore', () => store, { ttlMs: 600 });
recipesMoreContract('MemoryTxStore', () => store, { ttlMs: 600 });
