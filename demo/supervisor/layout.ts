/**
 * The demo's topology and port layout, as data. Every port is the base port
 * plus a fixed offset, so one `--base-port` moves the whole demo:
 *
 *   base+0         the transfer app (the page)
 *   base+1, +2     coordinators c1, c2
 *   base+9         the supervisor's control API (kill, pause, restart)
 *   base+11..+13   banks bank-a, bank-b, bank-c
 *   base+21..+23   store nodes n1..n3, client API
 *   base+31..+33   store nodes n1..n3, Raft peer transport
 *
 * The default base 7100 keeps clear of etcd's 2379/2380 and of the store
 * cluster that `npm run cluster` starts on 2379.
 */
import { isAccountId, isBankName } from '../bank/work.js';

export const DEFAULT_BASE_PORT = 7100;
export const HOST = '127.0.0.1';

/**
 * The coordinators elect one of them to run the recovery sweep (a recipes/
 * Election on a session lease; the page's "Recovery sweep" panel). A short
 * TTL, so a killed leader is replaced within seconds on the page.
 */
export const SWEEP_ELECTION = Object.freeze({ name: 'demo-recovery-sweep', ttlMs: 3_000 });

export const PORT_OFFSETS = Object.freeze({ app: 0, coordinator: 1, control: 9, bank: 11, storeClient: 21, storePeer: 31 });

export interface BankSpec {
  readonly name: string;
  /** Opening balances, used when the bank has no data yet. */
  readonly accounts: Readonly<Record<string, number>>;
}

const OPENING_BALANCE = 1_000;
const ACCOUNTS = ['alice', 'bob', 'carol', 'dave'];

/** Three banks, the same four account names in each, 1,000 units per account: 12,000 in all. */
export const DEFAULT_BANKS: readonly BankSpec[] = ['bank-a', 'bank-b', 'bank-c'].map((name) => ({
  name,
  accounts: Object.fromEntries(ACCOUNTS.map((a) => [a, OPENING_BALANCE])),
}));

export interface StoreNodeSpec {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
}

export interface DemoLayout {
  readonly basePort: number;
  readonly host: string;
  readonly appPort: number;
  readonly controlPort: number;
  readonly coordinators: readonly { readonly name: string; readonly port: number }[];
  readonly banks: readonly (BankSpec & { readonly port: number })[];
  readonly store: readonly StoreNodeSpec[];
}

const MAX_BANKS = 9;
const COORDINATORS = 2;
const STORE_NODES = 3;

export function demoLayout(basePort: number = DEFAULT_BASE_PORT, banks: readonly BankSpec[] = DEFAULT_BANKS): DemoLayout {
  if (!Number.isInteger(basePort) || basePort < 1024 || basePort > 65535 - 40) throw new Error(`base port must be an integer from 1024 to ${65535 - 40}, got ${basePort}`);
  if (banks.length === 0 || banks.length > MAX_BANKS) throw new Error(`from 1 to ${MAX_BANKS} banks`);
  for (const b of banks) {
    if (!isBankName(b.name)) throw new Error(`bank name ${b.name} must match [a-z][a-z0-9-]*`);
    for (const id of Object.keys(b.accounts)) if (!isAccountId(id)) throw new Error(`account id ${id} must match [a-z][a-z0-9_-]*`);
  }
  if (new Set(banks.map((b) => b.name)).size !== banks.length) throw new Error('bank names must differ');
  return {
    basePort,
    host: HOST,
    appPort: basePort + PORT_OFFSETS.app,
    controlPort: basePort + PORT_OFFSETS.control,
    coordinators: Array.from({ length: COORDINATORS }, (_, i) => ({ name: `c${i + 1}`, port: basePort + PORT_OFFSETS.coordinator + i })),
    banks: banks.map((b, i) => ({ ...b, port: basePort + PORT_OFFSETS.bank + i })),
    store: Array.from({ length: STORE_NODES }, (_, i) => ({ name: `n${i + 1}`, clientPort: basePort + PORT_OFFSETS.storeClient + i, peerPort: basePort + PORT_OFFSETS.storePeer + i })),
  };
}

/** Every port the layout listens on. */
export function layoutPorts(l: DemoLayout): number[] {
  return [l.appPort, l.controlPort, ...l.coordinators.map((c) => c.port), ...l.banks.map((b) => b.port), ...l.store.flatMap((s) => [s.clientPort, s.peerPort])];
}

export function urlOf(host: string, port: number, scheme: 'http' | 'https' = 'http'): string {
  return `${scheme}://${host}:${port}`;
}

/** The sum of every bank's opening balances: the total that must never change. */
export function openingTotal(banks: readonly BankSpec[]): number {
  return banks.reduce((sum, b) => sum + Object.values(b.accounts).reduce((s, v) => s + v, 0), 0);
}
