/** Maps the KV state machine's typed failures to HTTP errors of the public contract. */
import { AppError } from '../../lib/errors.js';
import type { KvFailure } from '../kv/index.js';

const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  invalid_command: 400,
  invalid_key: 400,
  invalid_value: 400,
  too_many_ops: 400,
  duplicate_key_in_txn: 400,
  limit_too_large: 400,
  invalid_argument: 400,
  key_too_large: 413,
  value_too_large: 413,
  lease_not_found: 404,
  lease_exists: 409,
  request_id_stale: 409,
  still_over_quota: 409,
  // Capacity limits: the caller must free space or wait; not the server's fault.
  too_many_leases: 429,
  store_full: 429,
  compacted: 410,
};

export function kvFailureToError(f: KvFailure): AppError {
  const { code, message, ...details } = f.error;
  return new AppError(code, STATUS_BY_CODE[code] ?? 400, message, details);
}
