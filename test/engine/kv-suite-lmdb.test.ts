// Every KV state machine test of test/kv (revisions, CAS, txn, range, watch
// history, leases, sessions, snapshots, bad input, the randomized model),
// run again on state machines whose keys live in LmdbKeyStore: the
// semantics are the engine's, whatever holds the keys.
import { afterAll, expect } from 'vitest';
import { KvStateMachine } from '../../store/kv/index.js';
import { useKvFactory } from '../kv/kv-factory.js';
import { openTempStore } from './lmdb-temp.js';

let built = 0;
useKvFactory({
  name: 'lmdb',
  create: (config) => (built++, new KvStateMachine(config, openTempStore())),
  restore: (data, config) => (built++, KvStateMachine.restore(data, config, openTempStore())),
});

// Proof that the imported tests really built their machines here, on LMDB.
afterAll(() => expect(built).toBeGreaterThan(150));

// Imported after the factory is set (static imports would run first).
await import('../kv/cas.test.js');
await import('../kv/lease.test.js');
await import('../kv/model.test.js');
await import('../kv/range.test.js');
await import('../kv/revision.test.js');
await import('../kv/session.test.js');
await import('../kv/snapshot.test.js');
await import('../kv/txn.test.js');
await import('../kv/validation.test.js');
await import('../kv/watch.test.js');
