/**
 * Failpoints: named places where a crash test can kill the process with
 * SIGKILL (no flush, no cleanup: a real crash). Runtimes depend on the
 * `FailpointHook` interface only, so a simulation can crash a simulated
 * process instead. The env-armed `Failpoints` is switched on by the
 * environment variable TWOPC_FAILPOINTS, a comma-separated list of names,
 * optionally `name@N` to fire on the N-th hit instead of the first. With the
 * variable unset, `hit` is one Map lookup.
 */
export const FAILPOINT_ENV = 'TWOPC_FAILPOINTS';

/** Every failpoint; a name outside this list does not compile, and is refused in TWOPC_FAILPOINTS. */
export const FAILPOINT_NAMES = [
  'coordinator.afterBegin',
  'coordinator.afterFreeze',
  'coordinator.afterSomePrepares',
  'coordinator.afterSomeVotes',
  /** Votes decide, decision key not written. */
  'coordinator.afterVotes',
  /** Decision key written, participants not told. */
  'coordinator.afterDecision',
  'participant.afterWork',
  /** Yes logged, vote not in the store. */
  'participant.afterPrepareDurable',
  /** Vote in the store, nothing applied. */
  'participant.afterVote',
  'participant.beforeApply',
  /** Applied and logged, ack not written. */
  'participant.afterApply',
] as const;

export type FailpointName = (typeof FAILPOINT_NAMES)[number];

/** What a runtime calls at each failpoint. */
export interface FailpointHook {
  hit(name: FailpointName): void;
}

/** Never fires. */
export const NO_FAILPOINTS: FailpointHook = Object.freeze({ hit: () => undefined });

const KNOWN: ReadonlySet<string> = new Set(FAILPOINT_NAMES);

export function isFailpointName(s: string): s is FailpointName {
  return KNOWN.has(s);
}

/** Parses `name[@N],...` into hits left per name; throws on an unknown name or a bad count. */
export function parseFailpointSpec(spec: string): Map<FailpointName, number> {
  const armed = new Map<FailpointName, number>();
  for (const part of spec.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const [name = '', nth, ...rest] = part.split('@');
    const n = nth === undefined ? 1 : Number(nth);
    if (!isFailpointName(name)) throw new Error(`${FAILPOINT_ENV}: unknown failpoint "${name}" in "${part}"; known: ${FAILPOINT_NAMES.join(', ')}`);
    if (rest.length > 0 || !Number.isSafeInteger(n) || n < 1) throw new Error(`${FAILPOINT_ENV}: bad failpoint "${part}"; use name or name@N with N >= 1`);
    armed.set(name, n);
  }
  return armed;
}

/** Failpoints armed from a spec; `action` runs when one fires (by default: SIGKILL this process). */
export class Failpoints implements FailpointHook {
  private readonly armed: Map<FailpointName, number>;

  constructor(
    spec = '',
    private readonly action: (name: FailpointName) => void = killNow,
  ) {
    this.armed = parseFailpointSpec(spec);
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env, action: (name: FailpointName) => void = killNow): Failpoints {
    return new Failpoints(env[FAILPOINT_ENV] ?? '', action);
  }

  get enabled(): boolean {
    return this.armed.size > 0;
  }

  hit(name: FailpointName): void {
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

function killNow(name: FailpointName): void {
  process.stderr.write(`failpoint ${name}: SIGKILL\n`);
  process.kill(process.pid, 'SIGKILL');
}
