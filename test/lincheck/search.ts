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

/** What a model's step answers: the next state, or that the output is impossible here. */
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
