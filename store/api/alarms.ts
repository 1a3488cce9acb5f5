/**
 * The store's alarms (store/kv/alarm.ts), as etcd's `etcdctl alarm list` and
 * `etcdctl alarm disarm`:
 *   GET  /v1/alarms          the raised alarms, the stored bytes and the quota (this node's view)
 *   POST /v1/alarms/disarm   clears NOSPACE through the log (on the leader);
 *                            409 still_over_quota while the write that raised it would not fit
 */
import type { Router } from '../../lib/http.js';
import type { ApiNode } from './common.js';
import { ok, unwrap, type RouteDeps } from './common.js';

/** The quota facts /v1/status and /v1/alarms share. */
export function quotaView(node: ApiNode): { storeBytes: number; quotaBytes: number; alarms: { type: string; raisedAtRevision: number; storeBytes: number; growthBytes: number }[] } {
  const kv = node.kvState;
  return { storeBytes: kv.storeBytes, quotaBytes: kv.config.maxStoreBytes, alarms: kv.alarms.map((a) => ({ ...a })) };
}

export function addAlarmRoutes(r: Router, { node, onLeader }: RouteDeps): void {
  r.on('GET', '/v1/alarms', () => ok(quotaView(node)));
  r.on('POST', '/v1/alarms/disarm', async (req) => {
    const disarm = async (): Promise<Record<string, unknown>> => {
      const res = unwrap(await node.write({ type: 'alarmDisarm' }));
      return { disarmed: res['disarmed'], storeBytes: res['storeBytes'], quotaBytes: res['maxStoreBytes'] };
    };
    return ok(await onLeader(req, undefined, disarm));
  });
}
