/**
 * What the etcd adapter (etcd-store.ts) needs at the gRPC layer: etcd's
 * `hasleader` metadata on every call, and the mapping from what the etcd3
 * client throws to TxStoreError with the built-in store's codes.
 */
import type { Interceptor, InterceptingListener, InterceptorOptions, Metadata, NextCall, StatusObject } from '@grpc/grpc-js';
import {
  castGrpcError,
  ClientClosedError,
  EtcdError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCGenericError,
  GRPCInvalidArgumentError,
  GRPCResourceExhastedError,
} from 'etcd3';
import { TxStoreError } from '../txstore.js';

/** grpc-js's InterceptingCallInterface (not exported by name). */
type CallInterface = ReturnType<NextCall>;

/**
 * Adds etcd's `hasleader` metadata to every call (clientv3's WithRequireLeader):
 * a member cut off from the leader then refuses at once ("no leader") instead
 * of stalling a call until its deadline, and cancels watch streams after it has
 * been leaderless for a few election timeouts, so watches move to a member
 * that still hears the leader.
 */
class RequireLeaderCall implements CallInterface {
  constructor(private readonly next: CallInterface) {}
  start(metadata: Metadata, listener?: Partial<InterceptingListener>): void {
    metadata.set('hasleader', 'true');
    this.next.start(metadata, listener);
  }
  cancelWithStatus(status: StatusObject['code'], details: string): void {
    this.next.cancelWithStatus(status, details);
  }
  getPeer(): string {
    return this.next.getPeer();
  }
  sendMessageWithContext(context: Parameters<CallInterface['sendMessageWithContext']>[0], message: unknown): void {
    this.next.sendMessageWithContext(context, message);
  }
  sendMessage(message: unknown): void {
    this.next.sendMessage(message);
  }
  startRead(): void {
    this.next.startRead();
  }
  halfClose(): void {
    this.next.halfClose();
  }
  getAuthContext(): ReturnType<CallInterface['getAuthContext']> {
    return this.next.getAuthContext();
  }
}

// grpc-js types an interceptor's result as its InterceptingCall class but uses only the
// interface (no instanceof), so a delegating object serves without a runtime import of grpc-js.
export const requireLeader = ((options: InterceptorOptions, nextCall: NextCall) => new RequireLeaderCall(nextCall(options))) as unknown as Interceptor;

/** Rules from etcd's error text (etcdserver/api/v3rpc/rpctypes), lower case, to the store's codes; first match wins. */
const MESSAGE_RULES: readonly (readonly [string, string, number])[] = [
  ['requested lease not found', 'lease_not_found', 404],
  ['required revision has been compacted', 'compacted', 410],
  ['required revision is a future revision', 'future_revision', 400],
  ['duplicate key given in txn request', 'duplicate_key_in_txn', 400],
  ['too many operations in txn request', 'too_many_ops', 400],
  ['request is too large', 'value_too_large', 413],
  ['key is not provided', 'invalid_key', 400],
  ['database space exceeded', 'store_full', 429],
  ['too many requests', 'busy', 503],
  ['raft proposal dropped', 'proposal_dropped', 503],
  ['no leader', 'no_leader', 503],
  // The three "request timed out" variants: the proposal may still commit.
  ['request timed out', 'request_timeout', 504],
  // A leader change while the request waited: it may or may not have been applied.
  ['leader changed', 'outcome_unknown', 503],
  ['server stopped', 'unavailable', 503],
  ['unhealthy cluster', 'unavailable', 503],
  ['permission denied', 'permission_denied', 403],
  ['authentication failed', 'unauthenticated', 401],
  // An expired or revoked token: the adapter authenticates again and retries.
  ['invalid auth token', 'invalid_token', 401],
  ['received message larger than max', 'response_too_large', 413],
];

/**
 * Maps what the etcd3 client throws to TxStoreError with the built-in
 * store's codes. Errors that are not the store's (a bug here, a TypeError)
 * pass through unchanged.
 */
export function mapEtcdError(raw: unknown): unknown {
  if (raw instanceof TxStoreError || !(raw instanceof Error)) return raw;
  // Unary calls arrive typed by etcd3; a stream's errors arrive as grpc-js raw them (a plain Error with a numeric code).
  const e = typeof (raw as { code?: unknown }).code === 'number' ? castGrpcError(raw) : raw;
  const details = { etcd: e.message };
  const make = (code: string, status: number): TxStoreError => new TxStoreError(code, status, `etcd: ${e.message}`, details, { cause: e });
  const text = e.message.toLowerCase();
  for (const [rule, code, status] of MESSAGE_RULES) if (text.includes(rule)) return make(code, status);
  if (e instanceof EtcdLeaseInvalidError) return make('lease_not_found', 404);
  if (e instanceof EtcdPermissionDeniedError) return make('permission_denied', 403);
  if (e instanceof GRPCDeadlineExceededError) return make('request_timeout', 504);
  if (e instanceof GRPCInvalidArgumentError) return make('invalid_argument', 400);
  if (e instanceof GRPCResourceExhastedError) return make('busy', 503);
  // Connection refused or reset, the stream cancelled, every member's circuit open, the client closed.
  if (e instanceof GRPCGenericError || e instanceof ClientClosedError || e.name === 'BrokenCircuitError') return make('unavailable', 503);
  if (e instanceof EtcdError) return make('etcd_error', 500);
  return e;
}
