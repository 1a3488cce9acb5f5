/**
 * The two phases of bench/store/large-state.ts that only our store has:
 * a follower killed with SIGKILL and started again (time to /readyz 200 and
 * to the leader's applied index at the kill), and a new member with an empty
 * data dir added as a learner (time until its applied index reaches the
 * leader's; it arrives by a streamed snapshot when the log behind it is gone).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { keepAliveTimers } from '../../lib/timers.js';
import { formatClusterSpec, type MemberAddress } from '../../store/node/config.js';
import { clusterMembers, type LocalCluster, StoreProcess } from '../../store/node/launcher.js';
import { progress } from '../output.js';
import { getJson, metric, nodeStatus, ourLeader } from './large-state-probe.js';

/**
 * Starts a process and waits until it answers /healthz. Our ports sit in
 * Linux's ephemeral range, so a start that dies with EADDRINUSE is tried
 * again (as `npm run cluster` does); any other early exit is an error.
 */
async function launch(proc: StoreProcess, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const from = existsSync(logFile) ? statSync(logFile).size : 0;
    proc.start();
    while (proc.running && Date.now() < deadline) {
      const r = await getJson(`${proc.member.clientUrl}/healthz`, 500);
      if (r.status === 200) return;
      await keepAliveTimers.sleep(50);
    }
    if (proc.running) throw new Error(`${proc.member.id} (pid ${proc.pid}) not healthy within ${timeoutMs} ms`);
    const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(from) : '';
    if (!tail.includes('EADDRINUSE') || Date.now() > deadline) throw new Error(`${proc.member.id} exited: ${tail.trim().split('\n').slice(-3).join(' | ')}`);
    progress(`  ${proc.member.id}: a port was busy (EADDRINUSE), starting it again`, true);
    await keepAliveTimers.sleep(200);
  }
}

export interface RestartResult {
  readonly node: string;
  readonly leaderAppliedAtKill: number;
  /** From the start of the new process to /healthz 200 (it listens). */
  readonly healthzSeconds: number;
  /** From the start of the new process to /readyz 200. */
  readonly readySeconds: number;
  /** From the start of the new process to its applied index reaching leaderAppliedAtKill. */
  readonly caughtUpSeconds: number;
  readonly loadAvg: number;
}

/** SIGKILLs a follower, starts it again, and times /readyz and its applied index. */
export async function restartFollower(cluster: LocalCluster, timeoutMs: number, everyMs: number): Promise<RestartResult> {
  const leader = await ourLeader(cluster.endpoints);
  const proc = cluster.processes.find((p) => p.member.id !== leader.status.id && p.running);
  if (!proc) throw new Error('no running follower to restart');
  const target = leader.status.appliedIndex;
  progress(`  killing follower ${proc.member.id} (pid ${proc.pid}) with SIGKILL; leader ${leader.status.id} applied ${target}`, true);
  await proc.kill9();
  const logFile = join(cluster.opts.dataDir, `${proc.member.id}.log`);
  const t0 = performance.now();
  await launch(proc, logFile, timeoutMs);
  const healthzSeconds = (performance.now() - t0) / 1000;
  progress(`  ${proc.member.id} restarted, pid ${proc.pid}, /healthz 200 after ${healthzSeconds.toFixed(1)} s`, true);
  let readySeconds: number | undefined;
  let caughtUpSeconds: number | undefined;
  let lastLine = performance.now();
  while (readySeconds === undefined || caughtUpSeconds === undefined) {
    const s = (performance.now() - t0) / 1000;
    if (s * 1000 > timeoutMs) throw new Error(`${proc.member.id} not ready and caught up within ${timeoutMs / 1000} s of its restart`);
    if (!proc.running) throw new Error(`${proc.member.id} exited after its restart; see ${logFile}`);
    if (readySeconds === undefined && (await getJson(`${proc.member.clientUrl}/readyz`, 1_000)).status === 200) readySeconds = (performance.now() - t0) / 1000;
    const st = await nodeStatus(proc.member.clientUrl);
    if (caughtUpSeconds === undefined && st !== undefined && st.appliedIndex >= target) caughtUpSeconds = (performance.now() - t0) / 1000;
    if (performance.now() - lastLine >= everyMs) {
      lastLine = performance.now();
      progress(`  ${proc.member.id}: ${s.toFixed(1)} s  ready ${readySeconds !== undefined}  applied ${st?.appliedIndex ?? '-'}/${target}  load avg ${os.loadavg()[0]?.toFixed(1)}`, true);
    }
    await keepAliveTimers.sleep(25);
  }
  return { node: proc.member.id, leaderAppliedAtKill: target, healthzSeconds, readySeconds, caughtUpSeconds, loadAvg: os.loadavg()[0] ?? Number.NaN };
}

export interface CatchUpResult {
  readonly node: string;
  readonly leaderApplied: number;
  /** From the start of its process to /healthz (empty data dir). */
  readonly startSeconds: number;
  /** From POST /v1/members to its applied index reaching the leader's at that moment. */
  readonly catchUpSeconds: number;
  readonly streamsPulled: number | undefined;
  readonly streamFailures: number | undefined;
  readonly snapshotsInstalled: number | undefined;
  readonly loadAvg: number;
}

/** POST to the leader, retrying while a configuration change or an election is in progress. */
async function addMember(endpoints: readonly string[], m: MemberAddress): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    const { url } = await ourLeader(endpoints);
    try {
      const res = await fetch(`${url}/v1/members`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: m.id, clientUrl: m.clientUrl, peerAddress: m.peerAddress, learner: true }),
        signal: AbortSignal.timeout(10_000),
      });
      last = `${res.status} ${await res.text()}`;
      if (res.status === 200) return;
      if (![409, 503, 504].includes(res.status)) throw new Error(`POST /v1/members: ${last}`);
    } catch (e) {
      if (e instanceof Error && e.message.startsWith('POST /v1/members')) throw e;
      last = String(e);
    }
    await keepAliveTimers.sleep(100);
  }
  throw new Error(`POST /v1/members did not succeed within 30 s (last: ${last})`);
}

/** Starts the next member (nK, same port scheme) with --join and an empty data dir, adds it as a learner, times its catch-up. `extra` collects the process for the cleanup. */
export async function catchUpNewMember(cluster: LocalCluster, extra: StoreProcess[], timeoutMs: number, everyMs: number): Promise<CatchUpResult> {
  const index = cluster.members.length;
  const m = clusterMembers(index + 1, cluster.opts.basePort, cluster.opts.host)[index] as MemberAddress;
  const dir = cluster.opts.dataDir;
  const logFile = join(dir, `${m.id}.log`);
  const args = ['--id', m.id, '--cluster', formatClusterSpec([...cluster.members, m]), '--data-dir', join(dir, m.id), '--join', ...(cluster.opts.extraArgs ?? [])];
  const proc = new StoreProcess(m, args, logFile);
  extra.push(proc);
  const tStart = performance.now();
  await launch(proc, logFile, 60_000);
  const startSeconds = (performance.now() - tStart) / 1000;
  progress(`  started ${m.id} (pid ${proc.pid}, empty data dir) in ${startSeconds.toFixed(1)} s; adding it as a learner`, true);
  const t0 = performance.now();
  await addMember(cluster.endpoints, m);
  const target = (await ourLeader(cluster.endpoints)).status.appliedIndex;
  let lastLine = performance.now();
  for (;;) {
    const s = (performance.now() - t0) / 1000;
    const st = await nodeStatus(m.clientUrl);
    if (st !== undefined && st.appliedIndex >= target) break;
    if (s * 1000 > timeoutMs) throw new Error(`${m.id} did not reach applied index ${target} within ${timeoutMs / 1000} s (at ${st?.appliedIndex ?? '-'})`);
    if (!proc.running) throw new Error(`${m.id} exited while catching up; see ${logFile}`);
    if (performance.now() - lastLine >= everyMs) {
      lastLine = performance.now();
      const pulled = await metric(m.clientUrl, 'store_snapshot_streams_pulled_total');
      const lead = await ourLeader(cluster.endpoints).catch(() => undefined);
      progress(`  ${m.id}: ${s.toFixed(1)} s  applied ${st?.appliedIndex ?? '-'}/${target}  streams pulled ${pulled ?? '-'}  leader ${lead?.status.id ?? '-'} term ${lead?.status.term ?? '-'}  load avg ${os.loadavg()[0]?.toFixed(1)}`, true);
    }
    await keepAliveTimers.sleep(25);
  }
  const catchUpSeconds = (performance.now() - t0) / 1000;
  return {
    node: m.id,
    leaderApplied: target,
    startSeconds,
    catchUpSeconds,
    streamsPulled: await metric(m.clientUrl, 'store_snapshot_streams_pulled_total'),
    streamFailures: await metric(m.clientUrl, 'store_snapshot_stream_failures_total'),
    snapshotsInstalled: await metric(m.clientUrl, 'store_snapshots_installed_total'),
    loadAvg: os.loadavg()[0] ?? Number.NaN,
  };
}
