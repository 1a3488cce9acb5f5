// How the KV tests build state machines: on the in-memory Keyspace by
// default; test/engine/kv-suite-lmdb.test.ts switches to LmdbKeyStore and
// runs the same test files again, so every KV test covers both engines.
import { KvStateMachine, type KvConfig } from '../../store/kv/index.js';

export interface KvFactory {
  readonly name: string;
  create(config?: Partial<KvConfig>): KvStateMachine;
  restore(data: string, config?: Partial<KvConfig>): KvStateMachine;
}

export const memoryKv: KvFactory = {
  name: 'memory',
  create: (config) => new KvStateMachine(config),
  restore: (data, config) => KvStateMachine.restore(data, config),
};

let current: KvFactory = memoryKv;

/** Call before the test files are imported (a runner's top-level code). */
export function useKvFactory(factory: KvFactory): void {
  current = factory;
}

/** An empty state machine on the current engine. */
export function newKv(config?: Partial<KvConfig>): KvStateMachine {
  return current.create(config);
}

/** A state machine restored from `snapshot()` output, on a fresh store of the current engine. */
export function restoreKv(data: string, config?: Partial<KvConfig>): KvStateMachine {
  return current.restore(data, config);
}
