/**
 * Failpoints: named places where a crash test can kill the process with
 * SIGKILL (no flush, no cleanup: a real crash). They are switched on by the
 * environment variable TWOPC_FAILPOINTS, a comma-separated list of names,
 * optionally `name@N` to fire on the N-th hit instead of the first. With the
 * variable unset, `hit` is one Set lookup.
 *
 * Coordinator points: coordinator.afterBegin, coordinator.afterFreeze,
 * coordinator.afterSomePrepares, coordinator.afterSomeVotes,
 * coordinator.afterVotes (votes decide, decision key not written),
 * coordinator.afterDecision (decision key written, participants not told).
 * Participant points: participant.afterWork, participant.afterPrepareDurable
 * (yes logged, vote not in the store), participant.afterVote (vote in the
 * store, nothing applied), participant.beforeApply, participant.afterApply
 * (applied and logged, ack not written).
 */
export const FAILPOINT_ENV = 'TWOPC_FAILPOINTS';

export class Failpoints {
  private readonly armed = new Map<string, number>();

  constructor(
    spec = '',
    private readonly action: (name: string) => void = killNow,
  ) {
    for (const part of spec.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
      const [name, nth] = part.split('@');
      const n = nth === undefined ? 1 : Number(nth);
      if (name === undefined || name === '' || !Number.isSafeInteger(n) || n < 1) throw new Error(`bad failpoint ${part}`);
      this.armed.set(name, n);
    }
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): Failpoints {
    return new Failpoints(env[FAILPOINT_ENV] ?? '');
  }

  get enabled(): boolean {
    return this.armed.size > 0;
  }

  hit(name: string): void {
    const left = this.armed.get(name);
    if (left === undefined) return;
    if (left > 1) {
      this.armed.set(name, left - 1);
      return;
    }
    this.armed.delete(name);
    this.action(name);
  }
}

function killNow(name: string): void {
  process.stderr.write(`failpoint ${name}: SIGKILL\n`);
  process.kill(process.pid, 'SIGKILL');
}
