/**
 * Log compaction, one pass: drops acknowledged records past the retention
 * or past the log's byte budget for them (oldest first), but only of
 * transactions the store has collected. While `tx/{id}` lives,
 * a watch resync or a recovery pass may show it to us again, and without
 * our record we would take its frozen list for a new prepare (and our own
 * "yes" in the store for one we never logged). A store that does not answer
 * skips the pass.
 */
import type { Logger } from '../lib/logger.js';
import type { Timers } from '../lib/timers.js';
import { parseKey, TX_PREFIX } from '../coordinator/protocol/index.js';
import { rangeAll, type TxStore } from '../coordinator/txstore/index.js';
import type { ParticipantLog } from './log.js';

export interface CompactionDeps {
  readonly log: ParticipantLog;
  readonly store: TxStore;
  readonly timers: Timers;
  readonly logger: Logger;
  readonly retentionMs: number;
}

/** Rejects only when the log's rewrite failed (fail-stop for the caller). */
export async function compactLog(deps: CompactionDeps): Promise<void> {
  const { log, store, timers, logger, retentionMs } = deps;
  const now = timers.nowMs();
  if (!log.compactionDue(now, retentionMs)) return;
  let live: Set<string>;
  try {
    const { kvs } = await rangeAll(store, TX_PREFIX);
    live = new Set(kvs.map((kv) => parseKey(kv.key)).flatMap((k) => (k?.kind === 'tx' ? [k.id] : [])));
  } catch (e) {
    logger('warn', 'log compaction skipped: the store did not answer', { error: e });
    return;
  }
  await log.compact(now, retentionMs, (txId) => !live.has(txId));
}
