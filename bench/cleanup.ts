/** Benchmarks start clusters by pid; this makes sure they are stopped however the run ends. */

export interface Cleanup {
  /** Runs the cleanup (once, however often it is called). */
  run(): Promise<void>;
  /** After a normal end: removes the signal handlers. */
  done(): void;
}

/**
 * Runs `cleanup` once: at the end of the run, or on Ctrl-C or SIGTERM, after
 * `onInterrupt` says so, then exits 130.
 */
export function cleanupOnSignal(cleanup: () => Promise<void>, onInterrupt: () => void): Cleanup {
  let cleaned = false;
  const run = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    await cleanup();
  };
  const onSignal = (): void => {
    onInterrupt();
    void run().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    run,
    done() {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    },
  };
}
