/**
 * The history format the linearizability checker reads, its validator, and a
 * recorder that tests use to write histories while they drive a store.
 *
 * The format is plain JSON (see docs/HISTORY_FORMAT.md) so that any external
 * checker (porcupine, Knossos, Elle) can read the same file.
 */
import type { Clock } from '../../lib/clock.js';

export const HISTORY_VERSION = 1;
export const HISTORY_CLOCK = 'monotonic-ms';

export type OpKind = 'get' | 'set' | 'cas' | 'delete';
export const OP_KINDS: readonly OpKind[] = ['get', 'set', 'cas', 'delete'];

/**
 * ok: completed with a known result.
 * fail: definitely did not take effect (dropped from checking).
 * unknown: may or may not have taken effect, possibly long after `return`.
 */
export type OpStatus = 'ok' | 'fail' | 'unknown';
export const OP_STATUSES: readonly OpStatus[] = ['ok', 'fail', 'unknown'];

/**
 * What an operation returned. Which fields are required depends on the op
 * (only for status "ok"): get needs `value`, cas needs `succeeded`, delete
 * needs `deleted`, set needs nothing. `previous` (the value before the op, as
 * the store API reports it) is optional on set, cas and delete and is checked
 * when present. Other fields (revision, error text) are allowed and ignored.
 */
export interface OpOutput {
  /** get: the value read, or null when the key was absent. */
  value?: string | null;
  /** cas: whether the swap happened. */
  succeeded?: boolean;
  /** delete: whether a key was there to delete. */
  deleted?: boolean;
  /** set, cas, delete: the value before the operation (null when absent). */
  previous?: string | null;
  [extra: string]: unknown;
}

export interface HistoryOperation {
  /** Unique within the history. */
  id: number;
  /** Who issued it; informational (the checker does not need clients to be sequential). */
  client: string | number;
  op: OpKind;
  key: string;
  /** set and cas: the value written. */
  value?: string;
  /** cas only: the value the key must hold, or null for "must be absent". */
  expected?: string | null;
  /** Monotonic milliseconds when the request was sent. */
  call: number;
  /**
   * Monotonic milliseconds when the response arrived. Required for "ok".
   * For "unknown" it may record when the client gave up, but the checker
   * ignores it and treats the return as +infinity.
   */
  return: number | null;
  status: OpStatus;
  output: OpOutput;
  /** Optional note for fail/unknown (e.g. "timeout", "503 no_leader"). */
  error?: string;
}

export interface History {
  version: 1;
  clock: 'monotonic-ms';
  operations: HistoryOperation[];
}

/** The request half of an operation, as passed to HistoryRecorder.begin. */
export type OperationSpec =
  | { op: 'get'; key: string }
  | { op: 'set'; key: string; value: string }
  | { op: 'cas'; key: string; expected: string | null; value: string }
  | { op: 'delete'; key: string };

export class HistoryFormatError extends Error {
  override readonly name = 'HistoryFormatError';
}

// ---------------------------------------------------------------------------
// Validation

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringOrNull(v: unknown): v is string | null {
  return v === null || typeof v === 'string';
}

function fail(path: string, message: string): never {
  throw new HistoryFormatError(`${path}: ${message}`);
}

/** Checks that `output` has the fields an "ok" result of `op` needs. */
export function validateOutput(op: OpKind, output: unknown, path = 'output'): OpOutput {
  if (!isObject(output)) fail(path, 'expected an object');
  if ('previous' in output && !isStringOrNull(output['previous'])) {
    fail(`${path}.previous`, 'expected a string or null');
  }
  switch (op) {
    case 'get':
      if (!('value' in output) || !isStringOrNull(output['value'])) {
        fail(`${path}.value`, 'a get with status "ok" needs value: string or null (null = absent)');
      }
      break;
    case 'set':
      break;
    case 'cas':
      if (typeof output['succeeded'] !== 'boolean') {
        fail(`${path}.succeeded`, 'a cas with status "ok" needs succeeded: boolean');
      }
      break;
    case 'delete':
      if (typeof output['deleted'] !== 'boolean') {
        fail(`${path}.deleted`, 'a delete with status "ok" needs deleted: boolean');
      }
      break;
  }
  return output as OpOutput;
}

function validateOperation(raw: unknown, path: string): HistoryOperation {
  if (!isObject(raw)) fail(path, 'expected an object');
  const { id, client, op, key, call, status } = raw;
  const ret = raw['return'];
  if (typeof id !== 'number' || !Number.isFinite(id)) fail(`${path}.id`, 'expected a finite number');
  if (typeof client !== 'string' && (typeof client !== 'number' || !Number.isFinite(client))) {
    fail(`${path}.client`, 'expected a string or a number');
  }
  if (typeof op !== 'string' || !OP_KINDS.includes(op as OpKind)) {
    fail(`${path}.op`, `expected one of ${OP_KINDS.join(', ')}`);
  }
  const kind = op as OpKind;
  if (typeof key !== 'string') fail(`${path}.key`, 'expected a string');
  if (typeof status !== 'string' || !OP_STATUSES.includes(status as OpStatus)) {
    fail(`${path}.status`, `expected one of ${OP_STATUSES.join(', ')}`);
  }
  const st = status as OpStatus;
  if (typeof call !== 'number' || !Number.isFinite(call)) fail(`${path}.call`, 'expected a finite number');
  if (ret !== null && (typeof ret !== 'number' || !Number.isFinite(ret))) {
    fail(`${path}.return`, 'expected a finite number or null');
  }
  if (st === 'ok' && ret === null) fail(`${path}.return`, 'an "ok" operation needs a return time');
  if (typeof ret === 'number' && ret < call) fail(`${path}.return`, `return ${ret} is before call ${call}`);

  const writes = kind === 'set' || kind === 'cas';
  if (writes) {
    if (typeof raw['value'] !== 'string') fail(`${path}.value`, `a ${kind} needs value: string`);
  } else if ('value' in raw) {
    fail(`${path}.value`, `a ${kind} takes no value (a get's result goes in output.value)`);
  }
  if (kind === 'cas') {
    if (!('expected' in raw) || !isStringOrNull(raw['expected'])) {
      fail(`${path}.expected`, 'a cas needs expected: string, or null for "must be absent"');
    }
  } else if ('expected' in raw) {
    fail(`${path}.expected`, `only a cas takes expected, not a ${kind}`);
  }
  if ('error' in raw && typeof raw['error'] !== 'string') fail(`${path}.error`, 'expected a string');

  if (!('output' in raw)) fail(`${path}.output`, 'missing (use {} when there is no result)');
  if (st === 'ok') validateOutput(kind, raw['output'], `${path}.output`);
  else if (!isObject(raw['output'])) fail(`${path}.output`, 'expected an object');
  return raw as unknown as HistoryOperation;
}

/**
 * Checks that `input` (e.g. the result of JSON.parse) is a well-formed
 * history and returns it typed. Throws HistoryFormatError naming the first
 * bad field, e.g. `operations[3].output.value: ...`.
 */
export function validateHistory(input: unknown): History {
  if (!isObject(input)) fail('history', 'expected an object');
  if (input['version'] !== HISTORY_VERSION) {
    fail('version', `expected ${HISTORY_VERSION}, got ${JSON.stringify(input['version'])}`);
  }
  if (input['clock'] !== HISTORY_CLOCK) {
    fail('clock', `expected "${HISTORY_CLOCK}", got ${JSON.stringify(input['clock'])}`);
  }
  const ops = input['operations'];
  if (!Array.isArray(ops)) fail('operations', 'expected an array');
  const ids = new Set<number>();
  ops.forEach((raw, i) => {
    const op = validateOperation(raw, `operations[${i}]`);
    if (ids.has(op.id)) fail(`operations[${i}].id`, `duplicate id ${op.id}`);
    ids.add(op.id);
  });
  return input as unknown as History;
}

/** Parses and validates a history from JSON text. */
export function parseHistory(json: string): History {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw new HistoryFormatError(`not JSON: ${(err as Error).message}`);
  }
  return validateHistory(parsed);
}

// ---------------------------------------------------------------------------
// Describing operations (for counterexamples and the CLI)

function show(v: string | null | undefined): string {
  if (v === undefined) return '?';
  if (v === null) return 'null';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}..."` : s;
}

function time(t: number | null): string {
  if (t === null) return '∞';
  return Number.isInteger(t) ? String(t) : t.toFixed(3);
}

/** The request part, e.g. `cas("k", null -> "a")`. */
export function describeCall(op: HistoryOperation): string {
  const k = show(op.key);
  switch (op.op) {
    case 'get':
      return `get(${k})`;
    case 'set':
      return `set(${k}, ${show(op.value)})`;
    case 'cas':
      return `cas(${k}, ${show(op.expected)} -> ${show(op.value)})`;
    case 'delete':
      return `delete(${k})`;
  }
}

/** The result part, e.g. `"a"`, `succeeded`, `not deleted`, `?` for unknown. */
export function describeOutput(op: HistoryOperation): string {
  if (op.status !== 'ok') return op.status === 'fail' ? 'failed' : 'unknown';
  const prev = op.output.previous !== undefined ? ` (previous ${show(op.output.previous)})` : '';
  switch (op.op) {
    case 'get':
      return show(op.output.value);
    case 'set':
      return `ok${prev}`;
    case 'cas':
      return `${op.output.succeeded === true ? 'succeeded' : 'not succeeded'}${prev}`;
    case 'delete':
      return `${op.output.deleted === true ? 'deleted' : 'not deleted'}${prev}`;
  }
}

/** One line, e.g. `#4 client 2: get("x") -> null  [20, 30]`. */
export function describeOperation(op: HistoryOperation): string {
  const ret = op.status === 'unknown' ? null : op.return;
  return `#${op.id} client ${op.client}: ${describeCall(op)} -> ${describeOutput(op)}  [${time(op.call)}, ${time(ret)}]`;
}

// ---------------------------------------------------------------------------
// Recording

/** Returned by begin(); pass it to end(). */
export interface OperationHandle {
  readonly id: number;
}

export interface HistoryRecorderOptions {
  /** Monotonic milliseconds; a function or a lib/clock.ts Clock. Default performance.now(). */
  clock?: (() => number) | Pick<Clock, 'monotonicMs'>;
}

/**
 * Records operations as a test issues them. Call begin() right before
 * sending a request and end() right after its outcome is known:
 *
 *   const h = rec.begin('c1', { op: 'cas', key, expected: null, value: 'a' });
 *   try { const r = await client.cas(...); rec.ok(h, { succeeded: r.succeeded }); }
 *   catch (e) { isDefinitelyNotApplied(e) ? rec.fail(h, String(e)) : rec.unknown(h, String(e)); }
 *
 * Operations never ended are reported as "unknown" by toJSON().
 */
export class HistoryRecorder {
  private readonly now: () => number;
  private readonly ops: HistoryOperation[] = [];
  private readonly open = new Map<number, HistoryOperation>();
  private nextId = 0;

  constructor(options: HistoryRecorderOptions = {}) {
    const clock = options.clock;
    if (clock === undefined) this.now = () => performance.now();
    else if (typeof clock === 'function') this.now = clock;
    else this.now = () => clock.monotonicMs();
  }

  begin(client: string | number, spec: OperationSpec): OperationHandle {
    const id = this.nextId++;
    const op: HistoryOperation = {
      id,
      client,
      op: spec.op,
      key: spec.key,
      call: this.now(),
      return: null,
      status: 'unknown',
      output: {},
    };
    if (spec.op === 'set' || spec.op === 'cas') op.value = spec.value;
    if (spec.op === 'cas') op.expected = spec.expected;
    this.ops.push(op);
    this.open.set(id, op);
    return { id };
  }

  /** Records the outcome. For "ok" the output must carry the op's result fields. */
  end(handle: OperationHandle, status: OpStatus, output: OpOutput = {}, error?: string): void {
    const now = this.now();
    const op = this.open.get(handle.id);
    if (op === undefined) {
      throw new Error(`operation ${handle.id} was already ended or never begun`);
    }
    if (status === 'ok') validateOutput(op.op, output, `operation ${handle.id} output`);
    this.open.delete(handle.id);
    op.return = now;
    op.status = status;
    op.output = { ...output };
    if (error !== undefined) op.error = error;
  }

  ok(handle: OperationHandle, output: OpOutput = {}): void {
    this.end(handle, 'ok', output);
  }

  /** The operation definitely did not take effect (e.g. 4xx, or 503 before proposing). */
  fail(handle: OperationHandle, error?: string): void {
    this.end(handle, 'fail', {}, error);
  }

  /** The operation may or may not have taken effect (timeout, reset connection). */
  unknown(handle: OperationHandle, error?: string): void {
    this.end(handle, 'unknown', {}, error);
  }

  /** Operations begun but not yet ended. */
  get pending(): number {
    return this.open.size;
  }

  get size(): number {
    return this.ops.length;
  }

  toJSON(): History {
    return {
      version: HISTORY_VERSION,
      clock: HISTORY_CLOCK,
      operations: this.ops.map((op) => {
        const copy: HistoryOperation = { ...op, output: { ...op.output } };
        if (this.open.has(op.id)) copy.error = 'never completed';
        return copy;
      }),
    };
  }
}
