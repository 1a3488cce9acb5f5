/**
 * A throwaway 3-member etcd cluster on loopback for side-by-side benchmarks:
 * Debian's `etcd-server` binary, its own temp data dirs, each member managed
 * by pid (SIGTERM, then SIGKILL after 5 s).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { keepAliveTimers } from '../lib/timers.js';

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
}

export class EtcdCluster {
  readonly members: EtcdMember[];
  private readonly children: ChildProcess[] = [];

  constructor(
    readonly bin: string,
    readonly dataDir: string,
    clientBasePort: number,
    peerBasePort: number,
    size = 3,
  ) {
    this.members = Array.from({ length: size }, (_, i) => ({
      name: `e${i + 1}`,
      clientUrl: `http://127.0.0.1:${clientBasePort + i}`,
      peerUrl: `http://127.0.0.1:${peerBasePort + i}`,
    }));
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  start(): void {
    mkdirSync(this.dataDir, { recursive: true });
    const initial = this.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    for (const m of this.members) {
      const log = openSync(join(this.dataDir, `${m.name}.log`), 'a');
      const args = [
        '--name', m.name,
        '--data-dir', join(this.dataDir, m.name),
        '--listen-client-urls', m.clientUrl,
        '--advertise-client-urls', m.clientUrl,
        '--listen-peer-urls', m.peerUrl,
        '--initial-advertise-peer-urls', m.peerUrl,
        '--initial-cluster', initial,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', `bench-${process.pid}`,
        '--logger', 'zap',
        '--log-level', 'warn',
      ];
      this.children.push(spawn(this.bin, args, { stdio: ['ignore', log, log] }));
    }
  }

  /** Polls /health on every member until all report healthy. */
  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const ok = await Promise.all(
        this.members.map(async (m) => {
          try {
            const res = await fetch(`${m.clientUrl}/health`, { signal: AbortSignal.timeout(1_000) });
            const body = (await res.json()) as { health?: string };
            return body.health === 'true';
          } catch {
            return false;
          }
        }),
      );
      if (ok.every(Boolean)) return;
      for (const c of this.children) {
        if (c.exitCode !== null) throw new Error(`etcd member exited with code ${c.exitCode}; see ${this.dataDir}/*.log`);
      }
      await keepAliveTimers.sleep(100);
    }
    throw new Error(`etcd not healthy within ${timeoutMs} ms; see ${this.dataDir}/*.log`);
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
        const exited = new Promise<void>((r) => c.once('exit', () => r()));
        process.kill(c.pid, 'SIGTERM');
        const t = setTimeout(() => {
          if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, 'SIGKILL');
        }, 5_000);
        await exited;
        clearTimeout(t);
      }),
    );
  }
}

/** etcd's leader (its client URL, member id, term) and db size, asking each member's status until one is the leader (bounded). */
export async function etcdLeaderStatus(endpoints: readonly string[], timeoutMs: number): Promise<{ url: string; leader: string; term: number; dbSizeBytes: number }> {
  const { Etcd3 } = await import('etcd3');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const ep of endpoints) {
      const probe = new Etcd3({ hosts: ep, dialTimeout: 2_000 });
      try {
        const st = await probe.maintenance.status();
        if (st.leader === st.header.member_id) return { url: ep, leader: st.leader, term: Number(st.raftTerm), dbSizeBytes: Number(st.dbSize) };
      } catch {
        // not ready yet
      } finally {
        probe.close();
      }
    }
    await keepAliveTimers.sleep(100);
  }
  throw new Error(`etcd has no leader within ${timeoutMs} ms`);
}
