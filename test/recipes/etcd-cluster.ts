/**
 * A 3-member etcd cluster for the recipes tests, in their own port block
 * (in 28900-28999: test/support/etcd.ts's EtcdCluster checks for 37000-37199,
 * which belong to the coordinator tests), built from the same EtcdMember.
 * Short election timeouts make etcd's minimum lease TTL 1 s, so lease
 * expiry tests take seconds, not tens of seconds.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EtcdMember } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';

const MEMBERS = 3;
/** Member i serves clients on base + 2i and peers on base + 10 + 2i: an odd base gives odd ports only (fault-targets.ts says why). */
const PEER_OFFSET = 10;
/** Restarts of a member that lost its port, at most. */
const MAX_PORT_RETRIES = 5;

export class RecipesEtcd {
  readonly members: EtcdMember[];

  constructor(bin: string, readonly dir: string, basePort: number) {
    if (basePort < 28500 || basePort + PEER_OFFSET + 2 * MEMBERS > 28999) throw new Error(`recipes etcd ports ${basePort}+ are outside 28500-28999`);
    mkdirSync(dir, { recursive: true });
    const peer = (i: number): string => `http://127.0.0.1:${basePort + PEER_OFFSET + 2 * i}`;
    const names = Array.from({ length: MEMBERS }, (_, i) => `e${i + 1}`);
    const initial = names.map((n, i) => `${n}=${peer(i)}`).join(',');
    this.members = names.map((name, i) => {
      const clientUrl = `http://127.0.0.1:${basePort + 2 * i}`;
      const args = [
        '--name', name, '--data-dir', join(dir, name),
        '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
        '--listen-peer-urls', peer(i), '--initial-advertise-peer-urls', peer(i),
        '--initial-cluster', initial, '--initial-cluster-state', 'new',
        '--initial-cluster-token', `recipes-${basePort}-${process.pid}`,
        '--heartbeat-interval', '50', '--election-timeout', '500',
        '--logger', 'zap', '--log-level', 'warn',
      ];
      return new EtcdMember(name, clientUrl, peer(i), join(dir, name), join(dir, `${name}.log`), bin, args);
    });
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  async start(timeoutMs = 30_000): Promise<void> {
    for (const m of this.members) m.start();
    await this.waitHealthy(timeoutMs);
  }

  /** Every member runs and reports healthy (it has a leader and serves reads). */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    await waitFor('etcd members healthy', timeoutMs, async () => {
      for (const m of this.members) this.checkAlive(m);
      const ok = await Promise.all(this.members.map((m) => healthy(m.clientUrl)));
      return ok.every(Boolean);
    });
  }

  /**
   * A client socket can hold a test port for a moment (where a machine's
   * ephemeral range covers it): a member that lost its port starts again
   * (bounded), as test/support/etcd.ts does.
   */
  private checkAlive(m: EtcdMember): void {
    if (m.running) return;
    if (m.lostPort() && m.portRetries < MAX_PORT_RETRIES) {
      m.portRetries++;
      m.start();
      return;
    }
    throw new Error(`etcd ${m.name} exited\n${m.logTail()}`);
  }

  async stop(keep: boolean): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
    if (keep) console.log(`etcd logs and data kept in ${this.dir}`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) });
    return ((await res.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}
