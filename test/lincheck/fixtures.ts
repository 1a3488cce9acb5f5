/** Compact builders for hand-written histories in tests. */
import type { History, HistoryOperation, OpOutput, OpStatus } from './history.js';

type Draft = Omit<HistoryOperation, 'id'>;

function draft(
  client: string | number,
  fields: Pick<HistoryOperation, 'op' | 'key'> & { value?: string; expected?: string | null },
  call: number,
  ret: number | null,
  output: OpOutput,
  status: OpStatus = 'ok',
): Draft {
  const d: Draft = { client, op: fields.op, key: fields.key, call, return: ret, status, output };
  if (fields.value !== undefined) d.value = fields.value;
  if (fields.expected !== undefined) d.expected = fields.expected;
  return d;
}

/** get(key) -> value over [call, ret]. */
export const get = (client: string | number, key: string, value: string | null, call: number, ret: number): Draft =>
  draft(client, { op: 'get', key }, call, ret, { value });

export const set = (client: string | number, key: string, value: string, call: number, ret: number): Draft =>
  draft(client, { op: 'set', key, value }, call, ret, {});

export const cas = (
  client: string | number,
  key: string,
  expected: string | null,
  value: string,
  succeeded: boolean,
  call: number,
  ret: number,
): Draft => draft(client, { op: 'cas', key, expected, value }, call, ret, { succeeded });

export const del = (client: string | number, key: string, deleted: boolean, call: number, ret: number): Draft =>
  draft(client, { op: 'delete', key }, call, ret, { deleted });

/** The same request, but its outcome is unknown (e.g. timed out at `ret`). */
export const unknown = (d: Draft): Draft => ({ ...d, status: 'unknown', output: {} });

/** The same request, but it definitely failed (output kept, to show it is ignored). */
export const failed = (d: Draft): Draft => ({ ...d, status: 'fail' });

/** Adds previous to an output. */
export const withPrevious = (d: Draft, previous: string | null): Draft => ({
  ...d,
  output: { ...d.output, previous },
});

/** Numbers the drafts 0, 1, 2... in order. */
export function history(...drafts: Draft[]): History {
  return {
    version: 1,
    clock: 'monotonic-ms',
    operations: drafts.map((d, id) => ({ id, ...d })),
  };
}
