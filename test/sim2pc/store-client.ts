/**
 * The store client of a simulated process, mirroring store/client/client.ts
 * and the TxStore adapter (coordinator/txstore/txstore.ts) in callback form:
 *
 * - any node takes a request; a follower's `not_leader` hint sends the next
 *   attempt of a write to the leader;
 * - every attempt has a timeout, and a lost request or reply is an
 *   ambiguous outcome: the attempt is retried with backoff, within a bounded
 *   number of attempts and a deadline, after which the caller gets
 *   `unavailable` and must re-read (never assume what it meant to write);
 * - every write carries one Request-Id for all its attempts, on a lane of
 *   its own (one session per lane, one write in flight per session), so the
 *   store applies it at most once (Raft dissertation §6.3);
 * - txn guards map to etcd compares exactly as BuiltinTxStore maps them.
 *
 * A client belongs to one process incarnation: a crash loses it, and the
 * restarted process gets a new client id (a new set of sessions).
 */
import type { Random } from '../../lib/random.js';
import { backoffDelayMs, type BackoffPolicy } from '../../lib/retry.js';
import type { TxGuard, TxWrite } from '../../coordinator/txstore/txstore.js';
import type { CasResult, EventsResult, GetResult, KeyValue, PutResult, RangeResult, TxnResult } from '../../store/kv/index.js';
import type { RpcClient } from './net.js';
import type { StoreAnswer, StoreOp, StoreRequest } from './store-node.js';
import type { Proc } from './world.js';

export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly code: string };

export interface StoreClientOptions {
  readonly endpoints: readonly string[];
  readonly requestTimeoutMs: number;
  readonly deadlineMs: number;
  readonly maxAttempts: number;
}

/** Codes after which the same request may succeed (elections, lost packets, overload). */
const RETRYABLE = new Set(['timeout', 'not_leader', 'no_leader', 'busy', 'proposal_dropped', 'unavailable']);

export function isRetryable(code: string): boolean {
  return RETRYABLE.has(code);
}

export class SimStore {
  private readonly laneSeq: number[] = [];
  private readonly freeLanes: number[] = [];
  private preferred = 0;
  private leader: string | undefined;
  private readonly clientId: string;

  constructor(
    private readonly proc: Proc,
    private readonly rpc: RpcClient,
    private readonly random: Random,
    private readonly opts: StoreClientOptions,
  ) {
    this.clientId = `${proc.name}-${proc.incarnation}`;
  }

  get(key: string, cb: (o: Outcome<{ kv: KeyValue | null; revision: number }>) => void): void {
    this.call({ type: 'get', key }, false, (a) => cb(a.ok ? { ok: true, value: { kv: (a.result as GetResult).kv, revision: (a.result as GetResult).revision } } : a));
  }

  range(prefix: string, opts: { limit?: number; after?: string }, cb: (o: Outcome<{ kvs: readonly KeyValue[]; more: boolean; revision: number }>) => void): void {
    const op: StoreOp = { type: 'range', prefix, ...opts };
    this.call(op, false, (a) => {
      if (!a.ok) return cb(a);
      const r = a.result as RangeResult;
      cb({ ok: true, value: { kvs: r.kvs, more: r.more, revision: r.revision } });
    });
  }

  casCreate(key: string, value: string, cb: (o: Outcome<CasResult>) => void): void {
    this.call({ type: 'cas', key, expected: null, value }, true, (a) => cb(a.ok ? { ok: true, value: a.result as CasResult } : a));
  }

  casValue(key: string, expected: string, value: string, cb: (o: Outcome<CasResult>) => void): void {
    this.call({ type: 'cas', key, expected, value }, true, (a) => cb(a.ok ? { ok: true, value: a.result as CasResult } : a));
  }

  put(key: string, value: string, cb: (o: Outcome<PutResult>) => void): void {
    this.call({ type: 'put', key, value }, true, (a) => cb(a.ok ? { ok: true, value: a.result as PutResult } : a));
  }

  /** etcd semantics, as BuiltinTxStore: an absent key has version 0; a value compare on it fails. */
  txn(guards: readonly TxGuard[], writes: readonly TxWrite[], cb: (o: Outcome<{ succeeded: boolean; revision: number }>) => void): void {
    const compare = guards.map((g) =>
      g.value === null ? { key: g.key, target: 'version' as const, op: '=' as const, value: 0 } : { key: g.key, target: 'value' as const, op: '=' as const, value: g.value },
    );
    const success = writes.map((w) => (w.type === 'delete' ? { type: 'delete' as const, key: w.key } : { type: 'put' as const, key: w.key, value: w.value }));
    this.call({ type: 'txn', compare, success, failure: [] }, true, (a) => {
      if (!a.ok) return cb(a);
      const r = a.result as TxnResult;
      cb({ ok: true, value: { succeeded: r.succeeded, revision: r.revision } });
    });
  }

  /**
   * A CAS create-if-absent of `key` while `guardKey` holds exactly
   * `guardValue` (one txn), as coordinator/txstore/txstore.ts `guardedCreate`: the
   * frozen record guards the coordinator's vote fills and decision. When the
   * guard fails the answer says so instead of creating an orphan.
   */
  guardedCreate(key: string, value: string, guardKey: string, guardValue: string, cb: (o: Outcome<CasResult & { guardMissing: boolean }>) => void): void {
    const compare = [
      { key: guardKey, target: 'value' as const, op: '=' as const, value: guardValue },
      { key, target: 'version' as const, op: '=' as const, value: 0 },
    ];
    const op: StoreOp = { type: 'txn', compare, success: [{ type: 'put', key, value }], failure: [{ type: 'get', key: guardKey }, { type: 'get', key }] };
    this.call(op, true, (a) => {
      if (!a.ok) return cb(a);
      const r = a.result as TxnResult;
      if (r.succeeded) return cb({ ok: true, value: { type: 'cas', succeeded: true, previous: null, revision: r.revision, guardMissing: false } });
      const guard = r.results[0] as GetResult;
      const mine = r.results[1] as GetResult;
      if (guard.kv?.value !== guardValue) return cb({ ok: true, value: { type: 'cas', succeeded: false, previous: null, revision: r.revision, guardMissing: true } });
      cb({ ok: true, value: { type: 'cas', succeeded: false, previous: mine.kv?.value ?? null, revision: r.revision, guardMissing: false } });
    });
  }

  /** One watch poll: a single attempt (the watcher has its own loop and backoff). */
  events(prefix: string, fromRevision: number, limit: number, cb: (o: Outcome<EventsResult>) => void): void {
    const target = this.opts.endpoints[this.preferred] as string;
    const req: StoreRequest = { kind: 'store', op: { type: 'events', prefix, fromRevision, limit } };
    this.rpc.call(target, req, this.opts.requestTimeoutMs, (body) => {
      const a = body === undefined ? { ok: false as const, code: 'timeout' } : (body as StoreAnswer);
      if (!a.ok && isRetryable(a.code)) this.preferred = (this.preferred + 1) % this.opts.endpoints.length;
      cb(a.ok ? { ok: true, value: a.result as EventsResult } : { ok: false, code: a.code });
    });
  }

  private call(op: StoreOp, write: boolean, cb: (a: StoreAnswer) => void): void {
    let lane: number | undefined;
    let req: StoreRequest = { kind: 'store', op };
    if (write) {
      lane = this.freeLanes.pop() ?? this.laneSeq.push(0) - 1;
      const seq = (this.laneSeq[lane] ?? 0) + 1;
      this.laneSeq[lane] = seq;
      req = { kind: 'store', op, requestId: { clientId: `${this.clientId}.${lane}`, seq } };
    }
    const startedMs = this.proc.simMs;
    const done = (a: StoreAnswer): void => {
      if (lane !== undefined) this.freeLanes.push(lane);
      cb(a);
    };
    const attempt = (n: number): void => {
      const eps = this.opts.endpoints;
      const target = write && this.leader !== undefined ? this.leader : (eps[(this.preferred + n) % eps.length] as string);
      this.rpc.call(target, req, this.opts.requestTimeoutMs, (body) => {
        const a: StoreAnswer = body === undefined ? { ok: false, code: 'timeout' } : (body as StoreAnswer);
        if (a.ok) {
          this.preferred = Math.max(0, eps.indexOf(target));
          return done(a);
        }
        if (!isRetryable(a.code)) return done(a);
        this.leader = a.code === 'not_leader' ? a.leader : undefined;
        if (n + 1 >= this.opts.maxAttempts || this.proc.simMs - startedMs >= this.opts.deadlineMs) return done({ ok: false, code: 'unavailable' });
        const backoffMs = Math.min(200, 10 * 2 ** Math.min(n, 5)) * (0.5 + this.random.float() / 2);
        this.proc.after(backoffMs, () => attempt(n + 1));
      });
    };
    attempt(0);
  }
}

/**
 * `withRetries` of lib/retry.ts in callback form: repeats `f` on
 * retryable failures with equal-jitter backoff, at most `policy.maxAttempts`
 * times, then reports the last failure.
 */
export function withRetries<T>(proc: Proc, random: Random, policy: BackoffPolicy, f: (cb: (o: Outcome<T>) => void) => void, cb: (o: Outcome<T>) => void, onRetry?: () => void): void {
  const attempt = (n: number): void => {
    f((o) => {
      if (o.ok || !isRetryable(o.code) || n + 1 >= policy.maxAttempts) return cb(o);
      onRetry?.();
      proc.after(backoffDelayMs(n, policy, random), () => attempt(n + 1));
    });
  };
  attempt(0);
}
