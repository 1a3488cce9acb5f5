/**
 * Reading files again without a restart: on SIGHUP, and when one of them
 * changes (polled, as a rename into place or an edit both show). One
 * mechanism for every such file of a process: the TLS certificates
 * (lib/tls.ts) and the token files (lib/token-auth.ts). Polling rather
 * than fs.watch: it sees a file replaced by a rename, on every platform.
 *
 * What a reload does with a bad file (keep the old contents) is the
 * caller's `reload`; this only says when.
 */
import { unwatchFile, watchFile } from 'node:fs';

/** How often watched files are checked for a change. */
export const FILE_POLL_INTERVAL_MS = 2_000;

/** Where change notices come from: the process's signals and file polling, or a test's own. */
export interface ReloadTriggers {
  /** Calls `onChange` when `file` changes; returns the stop function. */
  watch(file: string, intervalMs: number, onChange: () => void): () => void;
  /** Calls `fn` on SIGHUP; returns the stop function. */
  onHangup(fn: () => void): () => void;
}

export const systemReloadTriggers: ReloadTriggers = {
  watch(file, intervalMs, onChange) {
    // Not persistent: a watched file never keeps a process alive on its own.
    const listener = (): void => onChange();
    watchFile(file, { interval: intervalMs, persistent: false }, listener);
    return () => unwatchFile(file, listener);
  },
  onHangup(fn) {
    process.on('SIGHUP', fn);
    return () => void process.off('SIGHUP', fn);
  },
};

export interface ReloadOnChangeOptions {
  readonly files: readonly string[];
  /** Reads the files again; `why` is 'SIGHUP' or 'file changed'. Must not throw (it logs its own failures). */
  readonly reload: (why: string) => void;
  readonly triggers?: ReloadTriggers;
  readonly intervalMs?: number;
}

/** Calls `reload` on SIGHUP and whenever one of `files` changes; returns the stop function. */
export function reloadOnChange(opts: ReloadOnChangeOptions): () => void {
  const triggers = opts.triggers ?? systemReloadTriggers;
  const interval = opts.intervalMs ?? FILE_POLL_INTERVAL_MS;
  const stops = [triggers.onHangup(() => opts.reload('SIGHUP')), ...opts.files.map((f) => triggers.watch(f, interval, () => opts.reload('file changed')))];
  return () => {
    for (const stop of stops.splice(0)) stop();
  };
}
