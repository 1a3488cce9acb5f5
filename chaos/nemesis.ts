/**
 * Runs the fault schedule (schedule.ts) against the real processes: each
 * lane injects a fault, holds it, lifts it, and waits until the system is
 * whole again before its next fault. "Whole" for the store lane means every
 * node runs, follows one leader and has caught up with its commit index, so
 * the next store fault never leaves a majority without the data; for the
 * service lane, the process answers /healthz again.
 *
 * A process that does not come back within the bound is a liveness
 * violation: the point of the run is also that the system keeps working.
 */
import { keepAliveTimers } from '../lib/timers.js';
import type { ChaosCluster } from './cluster.js';
import type { FaultKind } from './options.js';
import type { FaultRecord, RunRecord } from './record.js';
import { describeFault, FaultPlan, type Lane, type PlannedFault } from './schedule.js';

export interface NemesisOptions {
  readonly cluster: ChaosCluster;
  readonly record: RunRecord;
  readonly seed: number;
  readonly faults: readonly FaultKind[];
  /** No fault starts after this run time (ms since start). */
  readonly stopAtMs: number;
  readonly log: (line: string) => void;
  readonly signal: AbortSignal;
}

/** How long the system may take to be whole again after a fault is lifted. */
export const HEAL_TIMEOUT_MS = 60_000;
/** The most faults one lane injects, whatever the duration (a bound on the loop). */
const MAX_FAULTS_PER_LANE = 100_000;

export async function runNemesis(o: NemesisOptions): Promise<void> {
  const targets = { store: o.cluster.storeNodes, coordinators: o.cluster.coordinators.map((c) => c.name), banks: o.cluster.banks.map((b) => b.name) };
  const lanes = (['store', 'service'] as const).map((lane) => new FaultPlan(lane, o.seed, o.faults, targets));
  await Promise.all(lanes.filter((p) => !p.empty).map((p) => runLane(o, p)));
}

async function runLane(o: NemesisOptions, plan: FaultPlan): Promise<void> {
  for (let i = 0; i < MAX_FAULTS_PER_LANE && !o.signal.aborted; i++) {
    const f = plan.draw();
    await keepAliveTimers.sleep(f.gapMs, o.signal);
    // Leave time for the fault to be lifted and healed before the load stops.
    if (o.signal.aborted || o.record.now() + f.holdMs >= o.stopAtMs) return;
    const ok = await inject(o, f);
    if (!ok) {
      o.log(`${plan.lane} lane stops: the system did not become whole again (see violations)`);
      return;
    }
  }
}

/** Injects, holds, lifts and waits for healing; false when the system did not heal (the lane then stops). */
async function inject(o: NemesisOptions, f: PlannedFault): Promise<boolean> {
  const c = o.cluster;
  const target = await resolveTarget(c, f);
  const rec = o.record.faultBegan({ lane: f.lane, kind: f.kind, target, description: describeFault(f, target) });
  o.log(`+ ${rec.description} for ${f.holdMs} ms`);
  try {
    await begin(c, f, target, rec);
  } catch (e) {
    // Could not inject (e.g. the admin call failed): lift whatever half happened, note it, go on.
    rec.note = `not injected: ${(e as Error).message}`;
    o.log(`! ${rec.description}: ${rec.note}`);
  }
  await keepAliveTimers.sleep(f.holdMs, o.signal);
  o.record.faultLifted(rec);
  let lifted = true;
  try {
    await lift(c, f, target);
  } catch (e) {
    lifted = false;
    o.record.violation({ check: 'liveness', message: `${rec.description}: could not lift the fault: ${(e as Error).message} (log: ${c.logFile(target)})` });
  }
  if (f.kind === 'disk' && lifted) {
    // A cut at a record boundary leaves a shorter log but no torn record, so the message is not always there.
    const repaired = /torn tail/i.test(c.supervisor.process(target).logSinceStart());
    rec.note = `${rec.note ?? ''}${repaired ? '; torn tail repaired at start' : '; no torn record found at start'}`;
  }
  const healed = lifted && (await waitWhole(c, f.lane, target));
  if (!healed) {
    o.record.violation({ check: 'liveness', message: `${rec.description}: not whole again within ${HEAL_TIMEOUT_MS} ms of lifting the fault (log: ${c.logFile(target)})` });
    return false;
  }
  o.record.faultHealed(rec);
  o.log(`- ${rec.description}: whole again ${((rec.healedMs ?? 0) - (rec.endMs ?? 0)).toFixed(0)} ms after lifting began`);
  return true;
}

async function resolveTarget(c: ChaosCluster, f: PlannedFault): Promise<string> {
  if (f.target !== 'leader') return f.target;
  // No leader known (mid-election): fall back to a node the seed picks.
  return (await c.leader()) ?? (c.storeNodes[f.index % c.storeNodes.length] as string);
}

async function begin(c: ChaosCluster, f: PlannedFault, target: string, rec: FaultRecord): Promise<void> {
  switch (f.kind) {
    case 'kill':
      await c.kill(target);
      return;
    case 'pause':
      await c.pauseProcess(target);
      return;
    case 'partition':
      if (f.lane === 'store') await c.isolateStore(target);
      else await c.blockHints(target, f.blocked);
      return;
    case 'disk': {
      await c.kill(target);
      const t = c.tearWal(target, f.tearBytes);
      rec.note = `${t.segment}: ${t.before} -> ${t.after} bytes`;
      return;
    }
  }
}

async function lift(c: ChaosCluster, f: PlannedFault, target: string): Promise<void> {
  switch (f.kind) {
    case 'kill':
    case 'disk':
      if (c.state(target) !== 'running' && c.state(target) !== 'paused') await c.startProcess(target);
      return;
    case 'pause':
      if (c.state(target) === 'paused') await c.resumeProcess(target);
      return;
    case 'partition':
      if (f.lane === 'store') {
        if (!(await c.healStorePartitions())) throw new Error('a store node did not clear its blocklist');
      } else if (!(await c.unblockHints(target))) {
        throw new Error(`${target} did not clear its blocked URLs`);
      }
      return;
  }
}

async function waitWhole(c: ChaosCluster, lane: Lane, target: string): Promise<boolean> {
  if (lane === 'store') return c.waitStoreWhole(HEAL_TIMEOUT_MS);
  const deadline = Date.now() + HEAL_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await c.supervisor.process(target).healthy()) return true;
    await keepAliveTimers.sleep(200);
  }
  return false;
}
