/**
 * Reads a participant log's durable bytes for the checker's "durable votes"
 * check: what a crash right now would leave of the vote of a transaction.
 * The format is participant/log-file.ts's (checksummed JSON lines, header
 * first, the newest line of a transaction wins); a torn last line is what
 * the real loader drops too.
 */
import type { LogRecord } from '../../participant/log.js';

/** The vote of `txId` in the durable text of a log, or undefined. */
export function durableVote(text: string | undefined, txId: string): LogRecord['vote'] {
  if (text === undefined) return undefined;
  let vote: LogRecord['vote'];
  const lines = text.split('\n');
  // The last element is the unterminated tail (or ''): never a complete line.
  for (let i = 1; i < lines.length - 1; i++) {
    const line = lines[i] as string;
    if (!line.includes(`"txId":"${txId}"`)) continue;
    const rec = JSON.parse(line.slice(9)) as LogRecord;
    if (rec.txId === txId) vote = rec.vote;
  }
  return vote;
}
