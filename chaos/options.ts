/**
 * The chaos runner's options: parsed from the command line, validated at
 * start with explicit limits, and turned back into the command that replays
 * a run (the fault schedule comes from the seed; timing does not replay).
 */
import { parseFlags } from '../lib/args.js';

export type FaultKind = 'kill' | 'pause' | 'partition' | 'disk';
export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'pause', 'partition', 'disk'];

export type StoreChoice = 'builtin' | 'etcd';

export interface ChaosOptions {
  readonly durationS: number;
  readonly seed: number;
  readonly faults: readonly FaultKind[];
  readonly store: StoreChoice;
  /** The demo layout's base port (layout.ts): every process port is an offset from it. */
  readonly basePort: number;
  /** Concurrent transfer clients. */
  readonly clients: number;
  /** Transfers started per second across the clients (chaos/pacer.ts); undefined: each client as fast as it goes. */
  readonly rate: number | undefined;
  /** Mean time between audits. */
  readonly auditEveryMs: number;
  /** Where runs write data, logs and reports (a folder per run inside). */
  readonly outDir: string;
  /** Keep the processes' data folders after a clean run (they are always kept after a violation). */
  readonly keep: boolean;
  /** Where to write the run's summary as JSON (besides the report), for scripts and tests. */
  readonly summaryFile: string | undefined;
  /** TLS on every link, store auth and a store user per process (demo/supervisor/secure.ts); built-in store only. */
  readonly secure: boolean;
}

export const LIMITS = Object.freeze({
  minDurationS: 5,
  maxDurationS: 86_400,
  maxClients: 32,
  maxRate: 100_000,
  minAuditEveryMs: 500,
});

export const DEFAULT_BASE_PORT = 7300;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const USAGE = `usage: npm run chaos -- --duration SECONDS --seed N [--faults kill,pause,partition,disk|none]
                      [--store builtin|etcd] [--base-port P] [--clients N] [--rate TX_PER_S] [--audit-every-ms MS]
                      [--out-dir DIR] [--keep] [--summary FILE] [--secure]`;

function int(name: string, raw: string | boolean | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = typeof raw === 'string' ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${String(raw)}`);
  return n;
}

export function parseChaosArgs(argv: readonly string[]): ChaosOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseFlags(
      {
        duration: { type: 'string' },
        seed: { type: 'string' },
        faults: { type: 'string' },
        store: { type: 'string' },
        'base-port': { type: 'string' },
        clients: { type: 'string' },
        rate: { type: 'string' },
        'audit-every-ms': { type: 'string' },
        'out-dir': { type: 'string' },
        keep: { type: 'boolean' },
        summary: { type: 'string' },
        secure: { type: 'boolean' },
      },
      [...argv],
    ).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values['seed'] === undefined) throw new UsageError('--seed is required (any integer; it fixes the fault schedule)');
  const store = values['store'] ?? 'builtin';
  if (store !== 'builtin' && store !== 'etcd') throw new UsageError(`--store must be builtin or etcd, got ${String(store)}`);
  const faultsText = typeof values['faults'] === 'string' ? values['faults'] : FAULT_KINDS.join(',');
  // "none": the same load with no faults, a baseline to compare a report against.
  const faults = faultsText === 'none' ? [] : [...new Set(faultsText.split(',').map((s) => s.trim()).filter((s) => s !== ''))];
  for (const f of faults) if (!FAULT_KINDS.includes(f as FaultKind)) throw new UsageError(`unknown fault kind "${f}"; known: ${FAULT_KINDS.join(', ')}`);
  const summary = values['summary'];
  if (values['secure'] === true && store !== 'builtin') throw new UsageError('--secure runs the built-in store only (etcd with TLS and auth: docs/SECURITY.md, RAFT2PC_ETCD_*)');
  return {
    durationS: int('duration', values['duration'], 120, LIMITS.minDurationS, LIMITS.maxDurationS),
    seed: int('seed', values['seed'], 0, 0, 2 ** 32 - 1),
    faults: faults as FaultKind[],
    store,
    basePort: int('base-port', values['base-port'], DEFAULT_BASE_PORT, 1024, 65_000),
    clients: int('clients', values['clients'], 4, 1, LIMITS.maxClients),
    rate: values['rate'] === undefined ? undefined : int('rate', values['rate'], 0, 1, LIMITS.maxRate),
    auditEveryMs: int('audit-every-ms', values['audit-every-ms'], 3_000, LIMITS.minAuditEveryMs, 600_000),
    outDir: typeof values['out-dir'] === 'string' ? values['out-dir'] : '.artifacts/chaos',
    keep: values['keep'] === true,
    summaryFile: typeof summary === 'string' ? summary : undefined,
    secure: values['secure'] === true,
  };
}

/** The command that runs the same schedule again (same seed, faults, store, load). */
export function replayCommand(o: ChaosOptions): string {
  const parts = ['npm run chaos --', `--duration ${o.durationS}`, `--seed ${o.seed}`, `--faults ${o.faults.length === 0 ? 'none' : o.faults.join(',')}`, `--store ${o.store}`];
  if (o.clients !== 4) parts.push(`--clients ${o.clients}`);
  if (o.rate !== undefined) parts.push(`--rate ${o.rate}`);
  if (o.auditEveryMs !== 3_000) parts.push(`--audit-every-ms ${o.auditEveryMs}`);
  if (o.secure) parts.push('--secure');
  return parts.join(' ');
}
