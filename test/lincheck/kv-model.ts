/**
 * The sequential specification of one key of the store: a register holding a
 * string, or null when the key is absent. Keys are independent, so the
 * checker partitions a history by key and checks each against this model.
 */
import type { HistoryOperation, OpOutput } from './history.js';
import type { Model, StepResult } from './search.js';

/** A key's value, or null when absent. Every key starts absent. */
export type KvState = string | null;

/** The request part of an operation on one key. */
export type KvInput =
  | { op: 'get' }
  | { op: 'set'; value: string }
  | { op: 'cas'; expected: string | null; value: string }
  | { op: 'delete' };

/** What the operation returns when applied to `state`: the reference semantics. */
export function kvApply(state: KvState, input: KvInput): { state: KvState; output: OpOutput } {
  switch (input.op) {
    case 'get':
      return { state, output: { value: state } };
    case 'set':
      return { state: input.value, output: { previous: state } };
    case 'cas': {
      const succeeded = state === input.expected;
      return { state: succeeded ? input.value : state, output: { succeeded, previous: state } };
    }
    case 'delete':
      return { state: null, output: { deleted: state !== null, previous: state } };
  }
}

/**
 * Whether an observed `output` is what the model produced. `previous` is only
 * compared when the history recorded it.
 */
export function kvOutputMatches(input: KvInput, observed: OpOutput, produced: OpOutput): boolean {
  if (observed.previous !== undefined && observed.previous !== produced.previous) return false;
  switch (input.op) {
    case 'get':
      return observed.value === produced.value;
    case 'set':
      return true;
    case 'cas':
      return observed.succeeded === produced.succeeded;
    case 'delete':
      return observed.deleted === produced.deleted;
  }
}

/** The input half of a history operation. */
export function kvInputOf(op: HistoryOperation): KvInput {
  switch (op.op) {
    case 'get':
      return { op: 'get' };
    case 'set':
      return { op: 'set', value: op.value ?? '' };
    case 'cas':
      return { op: 'cas', expected: op.expected ?? null, value: op.value ?? '' };
    case 'delete':
      return { op: 'delete' };
  }
}

/**
 * The register model for the checker. `output` undefined means the outcome is
 * unknown and any result is allowed. Each call makes a fresh instance whose
 * hash numbers distinct values 1, 2, 3... (null is 0), so two states hash
 * equal exactly when they are equal.
 */
export function createKvModel(): Model<KvState, KvInput, OpOutput> {
  const ids = new Map<string, number>();
  return {
    init: () => null,
    step(state: KvState, input: KvInput, output: OpOutput | undefined): StepResult<KvState> {
      // Fast paths that allocate nothing for the common cases.
      if (input.op === 'get') {
        if (output === undefined || output.value === state) return { ok: true, state };
        return { ok: false };
      }
      const applied = kvApply(state, input);
      if (output !== undefined && !kvOutputMatches(input, output, applied.output)) return { ok: false };
      return { ok: true, state: applied.state };
    },
    equal: (a, b) => a === b,
    hash(state) {
      if (state === null) return 0;
      let id = ids.get(state);
      if (id === undefined) {
        id = ids.size + 1;
        ids.set(state, id);
      }
      return id;
    },
    describe: (state) => (state === null ? 'absent' : JSON.stringify(state)),
  };
}
