/**
 * Linearizability checker: Wing and Gong's search with Lowe's memoization,
 * the way porcupine (github.com/anishathalye/porcupine) does it.
 *
 * The history of one partition (one key) becomes a doubly linked list of call
 * and return events sorted by time. The search walks the list: at a call it
 * tries to linearize that operation next (the model must accept its output);
 * if the model accepts and the pair (set of linearized operations, model
 * state) has not been seen before, the call and its return are lifted out of
 * the list and the search restarts at the head. Reaching a return event means
 * that operation should already have been linearized, so the search
 * backtracks by undoing the most recent linearization. An empty list means
 * every operation is linearized: the history is linearizable. Backtracking
 * past the first operation means it is not.
 *
 * Operations with status "unknown" get a return time of +infinity and an
 * unconstrained output (porcupine's treatment of pending calls): they may be
 * linearized anywhere after their call, including after every other operation,
 * which is the same as never having taken effect. "fail" operations are
 * dropped.
 */
import {
  describeOperation,
  validateHistory,
  type History,
  type HistoryOperation,
  type OpOutput,
} from './history.js';
import { createKvModel, kvApply, kvInputOf, type KvInput, type KvState } from './kv-model.js';

// ---------------------------------------------------------------------------
// Generic search

export type StepResult<S> = { ok: true; state: S } | { ok: false };

/** A sequential specification. */
export interface Model<S, I, O> {
  init(): S;
  /** Apply `input` to `state`; `output` undefined means any outcome is allowed. */
  step(state: S, input: I, output: O | undefined): StepResult<S>;
  equal(a: S, b: S): boolean;
  /** Equal states must hash equal. */
  hash(state: S): number;
  describe?(state: S): string;
}

/** One operation of a partition, as the search sees it. */
export interface SearchOperation<I, O> {
  input: I;
  /** undefined: unconstrained (status unknown). */
  output: O | undefined;
  call: number;
  /** +Infinity for status unknown. */
  return: number;
}

/** The named budget limits; exceeding one makes the result "unknown". */
export type LimitName = 'timeoutMs' | 'maxSteps';

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_STEPS = 20_000_000;

/** Time and step budget shared by every partition of one check. */
export class SearchBudget {
  readonly deadline: number;
  steps = 0;
  exceeded: LimitName | null = null;

  constructor(
    readonly timeoutMs: number = DEFAULT_TIMEOUT_MS,
    readonly maxSteps: number = DEFAULT_MAX_STEPS,
  ) {
    this.deadline = performance.now() + timeoutMs;
  }

  /** Counts one search step; returns the limit just exceeded, if any. */
  step(): LimitName | null {
    this.steps++;
    if (this.steps > this.maxSteps) this.exceeded = 'maxSteps';
    else if ((this.steps & 1023) === 0 && performance.now() > this.deadline) this.exceeded = 'timeoutMs';
    return this.exceeded;
  }
}

export type SearchOutcome<S> =
  | { result: 'ok'; steps: number; linearization: number[] }
  | {
      result: 'illegal';
      steps: number;
      /** The longest partial linearization found (indices into the operations). */
      longest: number[];
      /** states[i] is the state before longest[i]; states[longest.length] is the state after. */
      states: S[];
      /** The operation whose return was reached before it could be linearized. */
      blocked: number;
      /**
       * For every operation the search got stuck at, the longest partial
       * linearization that reached its return (same shape as longest/states).
       */
      partials: Map<number, { longest: number[]; states: S[] }>;
    }
  | { result: 'unknown'; steps: number; limit: LimitName };

interface EventNode {
  /** Index of the operation. -1 for the list head. */
  op: number;
  /** For a call event, its return event; null for return events and the head. */
  match: EventNode | null;
  prev: EventNode | null;
  next: EventNode | null;
}

function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * Lowe's cache of visited (linearized set, state) pairs: an open-addressing
 * hash table over entries whose bitsets live in one growing Uint32Array.
 */
class VisitedCache<S> {
  private pool: Uint32Array;
  private hashes: Int32Array;
  private table: Int32Array;
  private mask: number;
  private readonly states: S[] = [];

  constructor(
    private readonly words: number,
    private readonly equal: (a: S, b: S) => boolean,
  ) {
    this.pool = new Uint32Array(Math.max(1, words) * 1024);
    this.hashes = new Int32Array(1024);
    this.table = new Int32Array(2048).fill(-1);
    this.mask = 2047;
  }

  get size(): number {
    return this.states.length;
  }

  /** Adds the pair unless present; returns whether it was added. */
  add(hash: number, bits: Uint32Array, state: S): boolean {
    const words = this.words;
    const table = this.table;
    let slot = hash & this.mask;
    for (let e = table[slot] as number; e !== -1; e = table[slot] as number) {
      if (this.hashes[e] === hash && this.equal(this.states[e] as S, state)) {
        const base = e * words;
        let same = true;
        for (let w = 0; w < words; w++) {
          if (this.pool[base + w] !== bits[w]) {
            same = false;
            break;
          }
        }
        if (same) return false;
      }
      slot = (slot + 1) & this.mask;
    }
    const e = this.states.length;
    if ((e + 1) * words > this.pool.length) {
      const bigger = new Uint32Array(this.pool.length * 2);
      bigger.set(this.pool);
      this.pool = bigger;
    }
    if (e >= this.hashes.length) {
      const bigger = new Int32Array(this.hashes.length * 2);
      bigger.set(this.hashes);
      this.hashes = bigger;
    }
    this.pool.set(bits, e * words);
    this.hashes[e] = hash;
    this.states.push(state);
    table[slot] = e;
    if ((e + 1) * 2 > table.length) this.grow();
    return true;
  }

  private grow(): void {
    const table = new Int32Array(this.table.length * 2).fill(-1);
    const mask = table.length - 1;
    for (let e = 0; e < this.states.length; e++) {
      let slot = (this.hashes[e] as number) & mask;
      while (table[slot] !== -1) slot = (slot + 1) & mask;
      table[slot] = e;
    }
    this.table = table;
    this.mask = mask;
  }
}

/** Builds the time-ordered event list; calls sort before returns at equal times (overlap). */
function buildEventList<I, O>(ops: readonly SearchOperation<I, O>[]): EventNode {
  const events: { time: number; isCall: boolean; op: number }[] = [];
  ops.forEach((op, i) => {
    events.push({ time: op.call, isCall: true, op: i });
    events.push({ time: op.return, isCall: false, op: i });
  });
  events.sort((a, b) => {
    if (a.time < b.time) return -1;
    if (a.time > b.time) return 1;
    if (a.isCall !== b.isCall) return a.isCall ? -1 : 1;
    return a.op - b.op;
  });
  const head: EventNode = { op: -1, match: null, prev: null, next: null };
  const returns = new Map<number, EventNode>();
  const calls: EventNode[] = [];
  let last = head;
  for (const e of events) {
    const node: EventNode = { op: e.op, match: null, prev: last, next: null };
    last.next = node;
    last = node;
    if (e.isCall) calls.push(node);
    else returns.set(e.op, node);
  }
  for (const c of calls) c.match = returns.get(c.op) ?? null;
  return head;
}

/** Removes a call event and its return event from the list. */
function lift(call: EventNode): void {
  const ret = call.match as EventNode;
  (call.prev as EventNode).next = call.next;
  (call.next as EventNode).prev = call.prev;
  (ret.prev as EventNode).next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Puts back what lift() removed (in the reverse order). */
function unlift(call: EventNode): void {
  const ret = call.match as EventNode;
  (ret.prev as EventNode).next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  (call.prev as EventNode).next = call;
  (call.next as EventNode).prev = call;
}

/**
 * Checks one partition. Pure search: no partitioning, no reporting.
 * Returns "unknown" as soon as `budget` is exceeded.
 */
export function searchLinearization<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly SearchOperation<I, O>[],
  budget: SearchBudget = new SearchBudget(),
): SearchOutcome<S> {
  const startSteps = budget.steps;
  const head = buildEventList(ops);
  const words = (ops.length + 31) >>> 5;
  const bits = new Uint32Array(words);
  const zobrist = Int32Array.from(ops, (_, i) => splitmix32(i));
  let setHash = 0; // XOR of the linearized operations' zobrist numbers
  const cache = new VisitedCache<S>(words, (a, b) => model.equal(a, b));
  // The linearization so far: the call events lifted, and the state before each.
  const stackNodes: EventNode[] = [];
  const stackStates: S[] = [];
  let state = model.init();
  let entry = head.next;

  let longest: number[] = [];
  let longestStates: S[] = [];
  let blocked = -1;
  const partials = new Map<number, { longest: number[]; states: S[] }>();

  while (head.next !== null) {
    const limit = budget.step();
    if (limit !== null) return { result: 'unknown', steps: budget.steps - startSteps, limit };
    if (entry === null) throw new Error('linearizability search: fell off the event list');

    if (entry.match !== null) {
      // A call: try to linearize this operation next.
      const i = entry.op;
      const op = ops[i] as SearchOperation<I, O>;
      const r = model.step(state, op.input, op.output);
      if (r.ok) {
        const w = i >>> 5;
        const bit = 1 << (i & 31);
        bits[w] = (bits[w] as number) | bit;
        setHash ^= zobrist[i] as number;
        const key = setHash ^ Math.imul(model.hash(r.state), 0x9e3779b1);
        if (cache.add(key, bits, r.state)) {
          stackNodes.push(entry);
          stackStates.push(state);
          state = r.state;
          lift(entry);
          entry = head.next;
        } else {
          bits[w] = (bits[w] as number) & ~bit;
          setHash ^= zobrist[i] as number;
          entry = entry.next;
        }
      } else {
        entry = entry.next;
      }
    } else {
      // A return: its operation was not linearized in time. Backtrack.
      const previous = partials.get(entry.op);
      if (previous === undefined || stackNodes.length > previous.longest.length) {
        const partial = { longest: stackNodes.map((n) => n.op), states: [...stackStates, state] };
        partials.set(entry.op, partial);
        if (blocked === -1 || partial.longest.length > longest.length) {
          longest = partial.longest;
          longestStates = partial.states;
          blocked = entry.op;
        }
      }
      const top = stackNodes.pop();
      if (top === undefined) {
        return {
          result: 'illegal',
          steps: budget.steps - startSteps,
          longest,
          states: longestStates,
          blocked,
          partials,
        };
      }
      entry = top;
      state = stackStates.pop() as S;
      const i = entry.op;
      const w = i >>> 5;
      bits[w] = (bits[w] as number) & ~(1 << (i & 31));
      setHash ^= zobrist[i] as number;
      unlift(entry);
      entry = entry.next;
    }
  }
  return { result: 'ok', steps: budget.steps - startSteps, linearization: stackNodes.map((n) => n.op) };
}

// ---------------------------------------------------------------------------
// Key-value histories

export type CheckVerdict = 'ok' | 'illegal' | 'unknown';

export interface CheckOptions {
  /** Wall-time budget for the whole check (all keys, counterexample included). */
  timeoutMs?: number;
  /** Search-step budget for the whole check. */
  maxSteps?: number;
  /** Shrink counterexamples to the shortest failing history prefix (default true). */
  minimize?: boolean;
}

export interface LinearizedStep {
  operation: HistoryOperation;
  stateBefore: KvState;
  stateAfter: KvState;
  /** What the model says the operation returned at this point. */
  modelOutput: OpOutput;
  /** The operation had not returned by the cut time, so its real output was not checked. */
  inFlightAtCut: boolean;
}

export interface Counterexample {
  key: string;
  /** The partial linearization, in order, then the operation that could not follow it. */
  operations: HistoryOperation[];
  linearized: LinearizedStep[];
  /** The operation that could not be linearized. */
  failed: HistoryOperation;
  /** The key's state after the partial linearization. */
  stateAtFailure: KvState;
  /**
   * The history of this key up to this time (operations called by then;
   * those still running treated as unknown) is already not linearizable,
   * and no earlier cut is.
   */
  cutTime: number;
  /** Human-readable explanation. */
  message: string;
}

export interface KeyResult {
  key: string;
  result: CheckVerdict;
  /** Operations checked (ok + unknown). */
  operations: number;
  /** Of those, status unknown. */
  unknownOperations: number;
  /** Status fail, dropped. */
  failedOperations: number;
  steps: number;
  elapsedMs: number;
  /** Set when result is "unknown": the limit that was hit. */
  limit?: LimitName;
  counterexample?: Counterexample;
}

export interface CheckResult {
  /** illegal if any key is illegal; else unknown if any key ran out of budget; else ok. */
  result: CheckVerdict;
  perKey: KeyResult[];
  /** The first illegal key's counterexample. */
  counterexample?: Counterexample;
  limit?: LimitName;
  operations: number;
  steps: number;
  elapsedMs: number;
}

type KvSearchOp = SearchOperation<KvInput, OpOutput>;

function toSearchOps(ops: readonly HistoryOperation[], cut = Infinity): KvSearchOp[] {
  // Intern values so equal states are the same string object (cheap ===).
  const intern = new Map<string, string>();
  const canon = (s: string): string => {
    const c = intern.get(s);
    if (c !== undefined) return c;
    intern.set(s, s);
    return s;
  };
  const out: KvSearchOp[] = [];
  for (const op of ops) {
    if (op.call > cut) continue;
    const input = kvInputOf(op);
    if (input.op === 'set' || input.op === 'cas') input.value = canon(input.value);
    if (input.op === 'cas' && input.expected !== null) input.expected = canon(input.expected);
    const completed = op.status === 'ok' && op.return !== null && op.return <= cut;
    out.push({
      input,
      output: completed ? op.output : undefined,
      call: op.call,
      return: completed ? (op.return as number) : Infinity,
    });
  }
  return out;
}

function describeState(s: KvState): string {
  return s === null ? 'absent' : JSON.stringify(s);
}

function buildCounterexample(
  key: string,
  ops: readonly HistoryOperation[],
  cut: number,
  outcome: IllegalOutcome,
): Counterexample {
  // `ops` here are exactly the operations passed to the search, in order.
  // Prefer blaming an operation that returns exactly at the cut: its result
  // is the constraint that makes this prefix of the history fail.
  let blocked = outcome.blocked;
  let partial = { longest: outcome.longest, states: outcome.states };
  let bestAtCut = -1;
  for (const [i, p] of outcome.partials) {
    const op = ops[i] as HistoryOperation;
    if (op.status !== 'ok' || op.return !== cut) continue;
    if (p.longest.length > bestAtCut) {
      bestAtCut = p.longest.length;
      blocked = i;
      partial = p;
    }
  }
  const linearized: LinearizedStep[] = partial.longest.map((i, n) => {
    const operation = ops[i] as HistoryOperation;
    const stateBefore = partial.states[n] as KvState;
    const applied = kvApply(stateBefore, kvInputOf(operation));
    return {
      operation,
      stateBefore,
      stateAfter: partial.states[n + 1] as KvState,
      modelOutput: applied.output,
      inFlightAtCut: !(operation.status === 'ok' && operation.return !== null && operation.return <= cut),
    };
  });
  const failed = ops[blocked] as HistoryOperation;
  const stateAtFailure = partial.states[partial.longest.length] as KvState;
  const expectedNow = kvApply(stateAtFailure, kvInputOf(failed)).output;
  const lines = [
    `key ${JSON.stringify(key)} is not linearizable; the history up to t=${cut} already is not.`,
    `Longest partial linearization (${linearized.length} operation${linearized.length === 1 ? '' : 's'}):`,
    ...linearized.map(
      (s) =>
        `  ${describeOperation(s.operation)}${s.inFlightAtCut ? '  (in flight at the cut)' : ''}  => ${describeState(s.stateAfter)}`,
    ),
    `then ${describeOperation(failed)}`,
    `cannot be linearized: in state ${describeState(stateAtFailure)} the model returns ${JSON.stringify(expectedNow)},`,
    'and no other order of the concurrent operations explains the observed results.',
  ];
  return {
    key,
    operations: [...linearized.map((s) => s.operation), failed],
    linearized,
    failed,
    stateAtFailure,
    cutTime: cut,
    message: lines.join('\n'),
  };
}

type IllegalOutcome = Extract<SearchOutcome<KvState>, { result: 'illegal' }>;

/**
 * Finds the earliest cut (a return time of an "ok" operation) at which the
 * key's history is already not linearizable. Being not linearizable is
 * monotone in the cut: a later cut adds constraints, and the operations it
 * adds start after every return the earlier cut kept. So: try the return time
 * of the operation the full search got stuck on (usually the answer), check
 * the cut just before it, and binary-search the rest. Each probe is a full
 * search on the shorter history, under the same budget. Returns null when
 * the budget runs out.
 */
function minimizeCut(
  ops: readonly HistoryOperation[],
  budget: SearchBudget,
  guess: number | null,
): { cut: number; ops: HistoryOperation[]; outcome: IllegalOutcome } | null {
  const cuts = [...new Set(ops.filter((o) => o.status === 'ok').map((o) => o.return as number))].sort((a, b) => a - b);
  if (cuts.length === 0) return null;
  const probes = new Map<number, { ops: HistoryOperation[]; outcome: SearchOutcome<KvState> }>();
  const probe = (idx: number): SearchOutcome<KvState>['result'] => {
    const cut = cuts[idx] as number;
    const kept = ops.filter((o) => o.call <= cut);
    const outcome = searchLinearization(createKvModel(), toSearchOps(kept, cut), budget);
    probes.set(idx, { ops: kept, outcome });
    return outcome.result;
  };
  // Invariant: every cut below lo is linearizable; the cut at hi is not (the
  // last cut keeps every constraint of the full history).
  let lo = 0;
  let hi = cuts.length - 1;
  const narrow = (idx: number): boolean => {
    const r = probe(idx);
    if (r === 'illegal') hi = idx;
    else if (r === 'ok') lo = idx + 1;
    return r !== 'unknown';
  };
  let going = true;
  const g = guess === null ? -1 : cuts.indexOf(guess);
  if (g >= lo && g < hi) going = narrow(g);
  if (going && lo < hi) going = narrow(hi - 1);
  while (going && lo < hi) going = narrow((lo + hi) >>> 1);
  if (!probes.has(hi) && budget.exceeded === null) probe(hi);
  const final = probes.get(hi);
  if (final === undefined || final.outcome.result !== 'illegal') return null;
  return { cut: cuts[hi] as number, ops: final.ops, outcome: final.outcome };
}

/**
 * Checks a key-value history for linearizability, key by key.
 * Throws HistoryFormatError if the history is malformed.
 */
export function checkHistory(history: History, options: CheckOptions = {}): CheckResult {
  const started = performance.now();
  validateHistory(history);
  const budget = new SearchBudget(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, options.maxSteps ?? DEFAULT_MAX_STEPS);

  const byKey = new Map<string, HistoryOperation[]>();
  const failedByKey = new Map<string, number>();
  for (const op of history.operations) {
    if (op.status === 'fail') {
      failedByKey.set(op.key, (failedByKey.get(op.key) ?? 0) + 1);
      if (!byKey.has(op.key)) byKey.set(op.key, []);
      continue;
    }
    let list = byKey.get(op.key);
    if (list === undefined) {
      list = [];
      byKey.set(op.key, list);
    }
    list.push(op);
  }

  const perKey: KeyResult[] = [];
  for (const key of [...byKey.keys()].sort()) {
    const ops = byKey.get(key) as HistoryOperation[];
    const keyStart = performance.now();
    const stepsBefore = budget.steps;
    const base = {
      key,
      operations: ops.length,
      unknownOperations: ops.filter((o) => o.status === 'unknown').length,
      failedOperations: failedByKey.get(key) ?? 0,
    };
    let kr: KeyResult;
    if (budget.exceeded !== null) {
      kr = { ...base, result: 'unknown', steps: 0, elapsedMs: 0, limit: budget.exceeded };
    } else {
      const outcome = searchLinearization(createKvModel(), toSearchOps(ops), budget);
      if (outcome.result === 'ok') {
        kr = { ...base, result: 'ok', steps: 0, elapsedMs: 0 };
      } else if (outcome.result === 'unknown') {
        kr = { ...base, result: 'unknown', steps: 0, elapsedMs: 0, limit: outcome.limit };
      } else {
        const stuck = ops[outcome.blocked];
        const guess = stuck !== undefined && stuck.status === 'ok' ? stuck.return : null;
        const small = options.minimize === false ? null : minimizeCut(ops, budget, guess);
        const counterexample =
          small !== null
            ? buildCounterexample(key, small.ops, small.cut, small.outcome)
            : buildCounterexample(key, ops, Infinity, outcome);
        kr = { ...base, result: 'illegal', steps: 0, elapsedMs: 0, counterexample };
      }
    }
    kr.steps = budget.steps - stepsBefore;
    kr.elapsedMs = performance.now() - keyStart;
    perKey.push(kr);
  }

  const illegal = perKey.find((k) => k.result === 'illegal');
  const unknown = perKey.find((k) => k.result === 'unknown');
  const result: CheckResult = {
    result: illegal !== undefined ? 'illegal' : unknown !== undefined ? 'unknown' : 'ok',
    perKey,
    operations: perKey.reduce((n, k) => n + k.operations, 0),
    steps: budget.steps,
    elapsedMs: performance.now() - started,
  };
  if (illegal?.counterexample !== undefined) result.counterexample = illegal.counterexample;
  if (unknown?.limit !== undefined) result.limit = unknown.limit;
  return result;
}
