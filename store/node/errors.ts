/** Errors a node's request API answers with; each maps to a 503 with Retry-After. */
import { AppError } from '../../lib/errors.js';

export class NoLeaderError extends AppError {
  constructor(reason = 'the cluster has no leader right now') {
    super('no_leader', 503, reason, { retryAfterSeconds: 1 });
  }
}

export class BusyError extends AppError {
  constructor(what: string) {
    super('busy', 503, `${what}; retry shortly`, { retryAfterSeconds: 1 });
  }
}

/** The entry at our proposal's index turned out to be another leader's: ours was never applied. */
export class ProposalDroppedError extends AppError {
  constructor() {
    super('proposal_dropped', 503, 'leadership changed before the write committed; it was not applied', { retryAfterSeconds: 1 });
  }
}
