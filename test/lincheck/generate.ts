/**
 * Generates linearizable histories by simulating a real atomic register per
 * key with concurrent clients: every operation takes effect at one instant
 * strictly inside its [call, return] interval (or, for a timed-out request,
 * at any time after its call, or never). Used to test the checker and to
 * measure it.
 */
import type { SeededRandom } from '../../lib/random.js';
import type { History, HistoryOperation, OpKind } from './history.js';
import { kvApply, kvInputOf, type KvState } from './kv-model.js';

export interface GenerateOptions {
  operations: number;
  keys: number;
  clients: number;
  /** Distinct values written per key; small means many equal values (harder). Default: unique values. */
  valuesPerKey?: number;
  /** Probability an operation ends "unknown" (default 0). Half of those take effect, possibly late. */
  unknownRate?: number;
  /** Probability an operation ends "fail" (default 0); it never takes effect. */
  failRate?: number;
  /** Maximum latency in ms (default 10). Times are integers, so ties happen. */
  maxLatencyMs?: number;
  /** Include `previous` in set/cas/delete outputs, as the store API does (default true). */
  recordPrevious?: boolean;
}

interface Planned {
  op: HistoryOperation;
  /** When it takes effect; null if it never does. */
  at: number | null;
}

export function generateHistory(rng: SeededRandom, options: GenerateOptions): History {
  const maxLatency = options.maxLatencyMs ?? 10;
  const unknownRate = options.unknownRate ?? 0;
  const failRate = options.failRate ?? 0;
  const recordPrevious = options.recordPrevious ?? true;
  const keys = Array.from({ length: options.keys }, (_, i) => `k${i}`);
  const clientTime = Array.from({ length: options.clients }, () => rng.int(5));
  const planned: Planned[] = [];

  // Pass 1: timing. Each client runs one operation at a time.
  for (let id = 0; id < options.operations; id++) {
    const client = rng.int(options.clients);
    const call = (clientTime[client] as number) + rng.int(4);
    const latency = 1 + rng.int(maxLatency);
    const ret = call + latency;
    const roll = rng.float();
    const kind: OpKind = roll < 0.4 ? 'get' : roll < 0.65 ? 'set' : roll < 0.85 ? 'cas' : 'delete';
    const op: HistoryOperation = {
      id,
      client: `c${client}`,
      op: kind,
      key: rng.pick(keys),
      call,
      return: ret,
      status: 'ok',
      output: {},
    };
    // Strictly inside the interval.
    let at: number | null = call + latency * (0.01 + 0.98 * rng.float());
    const r = rng.float();
    if (r < failRate) {
      op.status = 'fail';
      op.error = 'simulated 503 no_leader';
      at = null;
    } else if (r < failRate + unknownRate) {
      op.status = 'unknown';
      op.error = 'simulated timeout';
      // Took effect in time, late (after the client gave up), or never.
      const fate = rng.int(3);
      at = fate === 0 ? at : fate === 1 ? call + latency * (1 + 20 * rng.float()) : null;
    }
    planned.push({ op, at });
    clientTime[client] = ret;
  }

  // Pass 2: apply in effect order and fill in inputs and outputs.
  const state = new Map<string, KvState>();
  const written = new Map<string, string[]>();
  let counter = 0;
  const newValue = (key: string): string => {
    if (options.valuesPerKey !== undefined) return `v${rng.int(options.valuesPerKey)}`;
    return `${key}-v${counter++}`;
  };
  const applied = planned.filter((p) => p.at !== null).sort((a, b) => (a.at as number) - (b.at as number));
  const notApplied = planned.filter((p) => p.at === null);
  const chooseInput = (p: Planned, current: KvState): void => {
    const op = p.op;
    if (op.op === 'set' || op.op === 'cas') op.value = newValue(op.key);
    if (op.op === 'cas') {
      const seen = written.get(op.key) ?? [];
      op.expected = rng.chance(0.6) ? current : seen.length > 0 && rng.chance(0.7) ? rng.pick(seen) : null;
    }
  };
  for (const p of applied) {
    const op = p.op;
    const current = state.get(op.key) ?? null;
    chooseInput(p, current);
    const r = kvApply(current, kvInputOf(op));
    state.set(op.key, r.state);
    if ((op.op === 'set' || op.op === 'cas') && r.state === op.value) {
      const list = written.get(op.key) ?? [];
      list.push(op.value);
      written.set(op.key, list);
    }
    if (op.status === 'ok') {
      const out = { ...r.output };
      if (!recordPrevious || op.op === 'get') delete out.previous;
      op.output = out;
    }
  }
  for (const p of notApplied) chooseInput(p, null);

  return {
    version: 1,
    clock: 'monotonic-ms',
    operations: planned.map((p) => p.op).sort((a, b) => a.id - b.id),
  };
}
