/**
 * Linearizability of key-value histories: each key's operations are checked
 * on their own (search.ts has Wing and Gong's search), a failing key gets a
 * minimized counterexample, and budgets bound the whole check.
 */
import {
  describeOperation,
  validateHistory,
  type History,
  type HistoryOperation,
  type OpOutput,
} from './history.js';
import { createKvModel, kvApply, kvInputOf, type KvInput, type KvState } from './kv-model.js';
import { DEFAULT_MAX_STEPS, DEFAULT_TIMEOUT_MS, SearchBudget, searchLinearization, type LimitName, type SearchOperation, type SearchOutcome } from './search.js';

export { DEFAULT_MAX_STEPS, DEFAULT_TIMEOUT_MS, SearchBudget, searchLinearization } from './search.js';
export type { LimitName, Model, SearchOperation, SearchOutcome, StepResult } from './search.js';

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
