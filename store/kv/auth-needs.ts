/**
 * What a KV command reads and writes, for the permission checks: the API
 * node's before proposing (store/api/auth-check.ts) and the state machine's
 * at apply time (a write whose auth table changed since its check is
 * checked again). Pure; takes the command as JSON (any shape: what is not a
 * known command needs root, so nothing unknown slips by).
 */
import type { AuthTable } from './auth.js';

export interface Needs {
  readonly read: string[];
  readonly write: string[];
  readonly readPrefix: string[];
  root: boolean;
}

function str(v: unknown): string {
  // A non-string key never matches a permission; validation refuses it anyway.
  return typeof v === 'string' ? v : '\u0000not a key';
}

function list(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null) : [];
}

/** Reads of an op; puts and deletes also read (their answers carry the previous value). */
function addOp(n: Needs, op: Record<string, unknown>): void {
  switch (op['type']) {
    case 'get':
      n.read.push(str(op['key']));
      return;
    case 'range':
      n.readPrefix.push(typeof op['prefix'] === 'string' ? op['prefix'] : '');
      return;
    case 'put':
    case 'delete':
    case 'cas':
      n.read.push(str(op['key']));
      n.write.push(str(op['key']));
      return;
    default:
      n.root = true;
  }
}

/** The keys `cmd` touches; `leaseKeys` gives the keys a lease revoke would delete. */
export function commandNeeds(cmd: unknown, leaseKeys: (id: number) => string[]): Needs {
  const n: Needs = { read: [], write: [], readPrefix: [], root: false };
  const c = (typeof cmd === 'object' && cmd !== null ? cmd : {}) as Record<string, unknown>;
  switch (c['type']) {
    case 'txn':
      for (const guard of list(c['compare'])) n.read.push(str(guard['key']));
      for (const op of [...list(c['success']), ...list(c['failure'])]) addOp(n, op);
      break;
    case 'leaseGrant':
      break;
    case 'leaseRevoke':
      // Revoking deletes the attached keys (etcd asks for write on each).
      n.write.push(...leaseKeys(Number(c['id'])));
      break;
    default:
      addOp(n, c);
  }
  return n;
}

/** What `user` may not do of `needs` ("write \"k\""), or undefined when it may do all of it. */
export function deniedBy(table: Pick<AuthTable, 'isRoot' | 'allowsKey' | 'allowsPrefix'>, user: string, needs: Needs): string | undefined {
  if (table.isRoot(user)) return undefined;
  if (needs.root) return 'run this command (root only)';
  for (const key of needs.write) if (!table.allowsKey(user, key, 'write')) return `write ${JSON.stringify(key)}`;
  for (const key of needs.read) if (!table.allowsKey(user, key, 'read')) return `read ${JSON.stringify(key)}`;
  for (const prefix of needs.readPrefix) if (!table.allowsPrefix(user, prefix)) return `read every key under ${JSON.stringify(prefix)}`;
  return undefined;
}
