/**
 * The fixed 3-node cluster of the test/store files: test/support/store-cluster.ts
 * (processes, ports, logs, kill by pid) plus the few waits these files share.
 */
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { StoreCluster, type NodeStatus } from '../../support/store-cluster.js';
import { waitFor } from './poll.js';

export type { NodeStatus };

export interface TestClusterOptions {
  /** Names the temp data directory. */
  readonly name: string;
  /** Client port of node i is basePort+i, peer port basePort+100+i (launcher.ts). */
  readonly basePort: number;
  readonly nodes?: number;
  readonly extraArgs?: readonly string[];
}

export class TestCluster extends StoreCluster {
  constructor(opts: TestClusterOptions) {
    super({ name: opts.name, basePort: opts.basePort, founders: opts.nodes ?? 3, ...(opts.extraArgs === undefined ? {} : { extraArgs: opts.extraArgs }) });
  }

  /** Starts every node, waits until each answers /healthz and a leader is known to a majority. */
  async startAll(timeoutMs = 45_000): Promise<string> {
    await Promise.all(this.ids.map((id) => this.launch(id, timeoutMs)));
    return this.leader(timeoutMs);
  }

  /** Restarts every node that is down (a previous test may have failed midway), then waits for a leader. */
  async ensureAllRunning(timeoutMs = 40_000): Promise<string> {
    for (const id of this.ids) if (!this.running(id)) await this.restart(id, timeoutMs);
    return this.leader(timeoutMs);
  }

  /** The leader among the running nodes, named by a majority of the whole cluster. */
  leader(timeoutMs = 15_000): Promise<string> {
    const majority = Math.floor(this.ids.length / 2) + 1;
    return waitFor(`a leader known to ${majority} nodes`, timeoutMs, async () => {
      const sts = (await Promise.all(this.runningIds.map((id) => this.status(id, 500)))).filter((s): s is NodeStatus => s !== undefined);
      const leader = sts.filter((s) => s.role === 'leader').sort((a, b) => b.term - a.term)[0];
      if (!leader) return undefined;
      return sts.filter((s) => s.leaderId === leader.id).length >= majority ? leader.id : undefined;
    }, 50);
  }

  async followers(timeoutMs = 15_000): Promise<{ leader: string; followers: string[] }> {
    const leader = await this.leader(timeoutMs);
    return { leader, followers: this.runningIds.filter((id) => id !== leader) };
  }

  /** One sample from the node's Prometheus text; throws when the metric is missing. */
  async metric(id: string, name: string): Promise<number> {
    const res = await fetch(`${this.url(id)}/metrics`, { signal: AbortSignal.timeout(1_000) });
    const text = await res.text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    if (line === undefined) throw new Error(`${id} /metrics has no ${name}`);
    return Number(line.slice(name.length + 1));
  }

  /** Resolves with the exit code and signal once the node's process has exited. */
  async waitExit(id: string, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const child = this.proc(id).child;
    if (!child) throw new Error(`${id} was never started`);
    if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${id} (pid ${child.pid}) still running after ${timeoutMs} ms`)), timeoutMs);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal });
      });
    });
  }
}

/**
 * The hooks every test/store file shares: start the cluster before the
 * suite (handing it to `set`), print the nodes' log tails when a test fails,
 * run `eachTest` before every test, and destroy the cluster after the suite
 * (keeping its files when anything failed).
 */
export function useTestCluster(opts: TestClusterOptions, set: (tc: TestCluster) => void, eachTest?: (tc: TestCluster) => Promise<unknown>): void {
  let tc: TestCluster | undefined;
  let failed = false;
  beforeAll(async () => {
    tc = new TestCluster(opts);
    set(tc);
    await tc.startAll();
  });
  beforeEach(async ({ onTestFailed }) => {
    onTestFailed(() => {
      failed = true;
      console.error(tc?.logTails());
    });
    if (eachTest !== undefined && tc !== undefined) await eachTest(tc);
  });
  afterAll(async () => {
    await tc?.destroy(failed);
  });
}
