/**
 * kvctl's coordination commands, on the recipes (raft2pc/recipes), in the
 * manner of etcdctl:
 *
 *   kvctl lock NAME -- CMD [ARGS]     run CMD holding the lock NAME; CMD sees
 *                                     LOCK_KEY and LOCK_TOKEN (the fencing token);
 *                                     the lock goes when CMD exits; exit code of CMD
 *   kvctl elect NAME PROPOSAL         campaign; print the leadership once won and hold
 *                                     it until SIGINT/SIGTERM (or --hold-ms), then resign
 *   kvctl elect --listen NAME         print every leader in order
 *   kvctl watch --prefix P            print every change under P
 *
 * They run on the built-in store (--endpoints) or on any store --store names
 * (etcd://...). If the session is lost while CMD runs, CMD gets SIGTERM and
 * kvctl exits 1: it no longer holds the lock, and says so.
 */
import { spawn } from 'node:child_process';
import { openTxStore, parseStoreSpec, type OpenedStore, type StoreSpec, type TxStore } from '../../coordinator/txstore/index.js';
import { defineCommand, UsageError, type Command, type CommandContext, type FlagSpecs } from '../../lib/cli.js';
import { keepAliveTimers } from '../../lib/timers.js';
import { Election, Mutex, observeLeaders, Session, type Hold, type LeaderInfo } from '../../recipes/index.js';

const STORE_FLAGS = {
  store: { type: 'string', parse: parseStoreSpec, placeholder: 'http://...|etcd://...', description: 'the store to use instead of --endpoints (etcd://host:port,... for etcd)' },
} as const satisfies FlagSpecs;
const SESSION_FLAGS = {
  ...STORE_FLAGS,
  'ttl-ms': { type: 'int', default: 10_000, min: 1_000, description: "the session's lease TTL in ms: how long a dead holder blocks the others" },
  'wait-ms': { type: 'int', min: 1, description: 'give up (exit 1) if not granted within this many ms (default: wait)' },
} as const satisfies FlagSpecs;

/** The store from --store, else from the group's --endpoints. */
function openStore(values: Readonly<Record<string, unknown>>): Promise<OpenedStore> {
  const spec = (values['store'] as StoreSpec | undefined) ?? { kind: 'builtin' as const, endpoints: values['endpoints'] as string[] };
  return openTxStore(spec, 'kvctl');
}

/** Resolves on SIGINT or SIGTERM (the operator's ^C), or `abort`; the handlers go with it. */
function untilInterrupted(signal?: AbortSignal): { done: Promise<void>; stop: () => void } {
  let stop = (): void => {};
  const done = new Promise<void>((resolve) => {
    stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      signal?.removeEventListener('abort', stop);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    signal?.addEventListener('abort', stop, { once: true });
  });
  return { done, stop };
}

/** Runs `f` with a store and a session, closing both however it ends; errors are printed (exit 1). */
async function withSession(values: Readonly<Record<string, unknown>>, ctx: CommandContext, f: (s: Session) => Promise<number>): Promise<number> {
  const opened = await openStore(values);
  try {
    const session = await Session.open({ store: opened.store, ttlMs: values['ttl-ms'] as number, timers: keepAliveTimers });
    try {
      return await f(session);
    } finally {
      await session.close();
    }
  } catch (e) {
    return report(ctx, e);
  } finally {
    await opened.close();
  }
}

function report(ctx: CommandContext, e: unknown): number {
  const code = (e as { code?: unknown }).code;
  ctx.err(`Error: ${typeof code === 'string' ? `${code}: ` : ''}${e instanceof Error ? e.message : String(e)}`);
  return 1;
}

/**
 * Runs a recipe's wait with --wait-ms and an abort on SIGINT/SIGTERM, so ^C
 * while queued removes the queued key at once instead of leaving it to
 * block the line until the TTL (the handlers go when the wait ends).
 */
async function interruptibleWait<T>(values: Readonly<Record<string, unknown>>, wait: (opts: { timeoutMs?: number; signal: AbortSignal }) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const interrupt = untilInterrupted();
  void interrupt.done.then(() => ac.abort());
  const ms = values['wait-ms'] as number | undefined;
  try {
    return await wait(ms === undefined ? { signal: ac.signal } : { timeoutMs: ms, signal: ac.signal });
  } finally {
    interrupt.stop();
  }
}

/**
 * Runs CMD with the lock's key and token in its environment; resolves to its
 * exit code. SIGINT and SIGTERM sent to kvctl are passed on to CMD (kvctl
 * then releases the lock when CMD exits, instead of dying with it held until
 * the TTL). If the lock is lost, CMD gets SIGTERM (CMD itself, not what it
 * started: as etcdctl lock).
 */
function runHolding(hold: Hold, cmd: string, args: readonly string[], ctx: CommandContext): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(cmd, [...args], { stdio: 'inherit', env: { ...process.env, LOCK_KEY: hold.key, LOCK_TOKEN: String(hold.token) } });
    let lost = false;
    const onLost = (): void => {
      lost = true;
      ctx.err(`Error: session_lost: the lock was lost while ${cmd} ran; sending it SIGTERM`);
      child.kill('SIGTERM');
    };
    const forward = (sig: NodeJS.Signals): void => void child.kill(sig);
    hold.signal.addEventListener('abort', onLost, { once: true });
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const done = (code: number): void => {
      hold.signal.removeEventListener('abort', onLost);
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code);
    };
    child.on('error', (e) => {
      ctx.err(`Error: cannot run ${cmd}: ${e.message}`);
      done(127);
    });
    child.on('exit', (code, sig) => done(lost ? 1 : (code ?? 128 + signalNumber(sig))));
  });
}

function signalNumber(sig: NodeJS.Signals | null): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
  return (sig === null ? undefined : numbers[sig]) ?? 1;
}

export const lockCommand: Command = defineCommand({
  name: 'lock',
  summary: 'run a command while holding a lock (LOCK_KEY and LOCK_TOKEN in its environment)',
  args: 'NAME -- CMD [ARGS...]',
  details: 'exit code: that of CMD; 1 if the lock could not be taken or was lost while CMD ran (CMD then gets SIGTERM)',
  flags: SESSION_FLAGS,
  run: async (values, positionals, ctx) => {
    const [name, cmd, ...args] = positionals;
    if (name === undefined || cmd === undefined) throw new UsageError(undefined, 'expected: lock NAME -- CMD [ARGS...]');
    return withSession(values, ctx, async (session) => {
      const hold = await interruptibleWait(values, (opts) => new Mutex(session, name).lock(opts));
      try {
        return await runHolding(hold, cmd, args, ctx);
      } finally {
        await hold.release();
      }
    });
  },
});

function printLeader(ctx: CommandContext, json: boolean, l: LeaderInfo): void {
  ctx.out(json ? JSON.stringify(l) : `${l.value}\t(token ${l.revision}, key ${l.key})`);
}

const ELECT_FLAGS = {
  ...SESSION_FLAGS,
  listen: { type: 'boolean', description: 'do not campaign: print every leader in order, until interrupted' },
  count: { type: 'int', min: 1, description: 'with --listen: stop after this many leaders' },
  'hold-ms': { type: 'int', min: 1, description: 'resign after this many ms (default: hold until SIGINT/SIGTERM)' },
} as const satisfies FlagSpecs;

/** Runs `f` with a store and a signal that aborts on SIGINT/SIGTERM, closing both however it ends; errors are printed (exit 1). */
async function untilStopped(values: Readonly<Record<string, unknown>>, ctx: CommandContext, f: (store: TxStore, signal: AbortSignal) => Promise<number>): Promise<number> {
  const opened = await openStore(values);
  const ac = new AbortController();
  const interrupt = untilInterrupted();
  void interrupt.done.then(() => ac.abort());
  try {
    return await f(opened.store, ac.signal);
  } catch (e) {
    return report(ctx, e);
  } finally {
    interrupt.stop();
    await opened.close();
  }
}

function listen(values: Readonly<Record<string, unknown>>, name: string, ctx: CommandContext): Promise<number> {
  return untilStopped(values, ctx, async (store, signal) => {
    let n = 0;
    for await (const l of observeLeaders(store, name, signal, keepAliveTimers)) {
      printLeader(ctx, values['json'] === true, l);
      if (++n === values['count']) break;
    }
    return 0;
  });
}

export const electCommand: Command = defineCommand({
  name: 'elect',
  summary: 'campaign to lead NAME with PROPOSAL and hold it until interrupted; or --listen to the leaders',
  args: 'NAME [PROPOSAL]',
  details: 'prints the leader as VALUE (token T, key K), or one JSON object per line with --json',
  flags: ELECT_FLAGS,
  run: async (values, positionals, ctx) => {
    const [name, proposal, ...extra] = positionals;
    if (name === undefined || extra.length > 0) throw new UsageError(undefined, 'expected: elect NAME PROPOSAL, or elect --listen NAME');
    if (values.listen) return listen(values, name, ctx);
    if (proposal === undefined) throw new UsageError(undefined, 'expected: elect NAME PROPOSAL (or --listen)');
    return withSession(values, ctx, async (session) => {
      const lead = await interruptibleWait(values, (opts) => new Election(session, name).campaign(proposal, opts));
      printLeader(ctx, (values as Record<string, unknown>)['json'] === true, { key: lead.key, value: proposal, revision: lead.token });
      const holding = untilInterrupted(lead.signal);
      const cancel = values['hold-ms'] === undefined ? () => {} : keepAliveTimers.after(values['hold-ms'], holding.stop);
      await holding.done;
      cancel();
      if (!lead.held) return report(ctx, lead.signal.reason);
      await lead.resign();
      return 0;
    });
  },
});

const WATCH_FLAGS = {
  ...STORE_FLAGS,
  prefix: { type: 'string', required: true, placeholder: 'P', description: 'the keys that start with P' },
  rev: { type: 'int', min: 1, description: 'start at this revision (default: changes from now on)' },
  count: { type: 'int', min: 1, description: 'stop after this many events' },
} as const satisfies FlagSpecs;

export const watchCommand: Command = defineCommand({
  name: 'watch',
  summary: 'print every change under a prefix, in order, until interrupted',
  details: 'prints PUT KEY VALUE / DELETE KEY with the revision, or one JSON event per line with --json',
  flags: WATCH_FLAGS,
  run: (values, _positionals, ctx) =>
    untilStopped(values, ctx, async (store, signal) => {
      let n = 0;
      const json = (values as Record<string, unknown>)['json'] === true;
      for await (const e of store.watch(values.prefix, values.rev === undefined ? { signal } : { signal, fromRevision: values.rev })) {
        ctx.out(json ? JSON.stringify(e) : e.type === 'put' ? `PUT ${e.key} ${e.value ?? ''} (revision ${e.revision})` : `DELETE ${e.key} (revision ${e.revision})`);
        if (++n === values.count) break;
      }
      return 0;
    }),
});

/** The commands kvctl adds to its group. */
export const recipeCommands: readonly Command[] = [lockCommand, electCommand, watchCommand];
