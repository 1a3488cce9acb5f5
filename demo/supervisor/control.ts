/**
 * The supervisor's control API on loopback, and its client. The transfer
 * app's kill and restart buttons go through it; a chaos runner can too.
 *
 *   GET  /v1/processes                   {processes: [{name, role, port, url, pid, state, ...}]}
 *   GET  /v1/topology                    ports, URLs and data folder of the running demo
 *   POST /v1/processes/{name}/{action}   action: kill | pause | resume | restart | start | stop
 *   GET  /healthz
 *
 * Errors: 404 unknown_process, 400 unknown_action, 409 process_busy /
 * not_running / not_paused / already_running, 500 when a start failed.
 */
import type { Server } from 'node:http';
import type { DevCertFiles } from '../../lib/certs.js';
import { listenGuarded, PLAIN_HTTP } from '../../lib/http-guard.js';
import { tlsSettingsFrom } from '../../lib/tls.js';
import { silentLogger } from '../../lib/logger.js';
import { AppError } from '../../lib/errors.js';
import { Router } from '../../lib/http.js';
import { errorCode, errorMessage, fetchJson } from '../common/http.js';
import { PROCESS_ACTIONS, type ProcessAction, type ProcessInfo } from './process.js';

/** Ports, URLs and data folder of the running demo, as GET /v1/topology reports them. */
export interface DemoTopology {
  readonly basePort: number;
  readonly dataDir: string;
  readonly app: string;
  readonly storeEndpoints: readonly string[];
  readonly coordinators: readonly string[];
  readonly banks: readonly { readonly name: string; readonly url: string }[];
}

/** What the control API needs from whoever owns the processes (the supervisor). */
export interface ControlHost {
  list(): ProcessInfo[];
  topology(): DemoTopology;
  /** Runs one action; a refusal is an AppError, which the API passes on with its code and status. */
  act(name: string, action: ProcessAction): Promise<ProcessInfo>;
}

export interface ControlServer {
  readonly url: string;
  close(): Promise<void>;
}

/** With `certs` (the secure demo) it serves HTTPS and asks every caller for a certificate from the CA: only the demo's own processes may kill others. */
export async function serveControl(host: ControlHost, address: string, port: number, certs?: DevCertFiles): Promise<ControlServer> {
  const r = new Router();
  r.on('GET', '/healthz', () => ({ status: 200, body: { ok: true } }));
  r.on('GET', '/v1/processes', () => ({ status: 200, body: { processes: host.list() } }));
  r.on('GET', '/v1/topology', () => ({ status: 200, body: { ...host.topology(), processes: host.list() } }));
  r.on('POST', '/v1/processes/:name/:action', async ({ params }) => {
    const action = params['action'] as ProcessAction;
    if (!PROCESS_ACTIONS.includes(action)) throw new AppError('unknown_action', 400, `action must be one of ${PROCESS_ACTIONS.join(', ')}`);
    try {
      return { status: 200, body: await host.act(params['name'] as string, action) };
    } catch (e) {
      if (e instanceof AppError) throw e;
      throw new AppError('action_failed', 500, e instanceof Error ? e.message : String(e));
    }
  });
  // Loopback only, plain HTTP unless secure (the supervisor's own API), behind the same guard as every server.
  const tls = certs === undefined ? PLAIN_HTTP : tlsSettingsFrom({ 'cert-file': certs.serverCertFile, 'key-file': certs.serverKeyFile, 'trusted-ca-file': certs.caFile, 'client-cert-auth': true, insecure: false });
  const server: Server = await listenGuarded(r.handle, address, port, { tls, log: silentLogger });
  return {
    url: `${certs === undefined ? 'http' : 'https'}://${address}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A client of the control API (what the transfer app uses; nothing here needs the supervisor in-process). */
export class ControlClient {
  constructor(readonly url: string) {}

  async processes(timeoutMs = 1_000): Promise<ProcessInfo[]> {
    const a = await fetchJson(`${this.url}/v1/processes`, { timeoutMs });
    if (a.status !== 200) throw new AppError('control_unavailable', 503, `the supervisor's control API did not answer: ${errorMessage(a)}`);
    return (a.body as { processes: ProcessInfo[] }).processes;
  }

  /** Runs an action; a refusal keeps the supervisor's code and status. Restart and start wait until the process is healthy. */
  async act(name: string, action: ProcessAction, timeoutMs = 90_000): Promise<ProcessInfo> {
    const a = await fetchJson(`${this.url}/v1/processes/${encodeURIComponent(name)}/${action}`, { method: 'POST', timeoutMs });
    if (a.status === 200) return a.body as ProcessInfo;
    if (a.status === 0) throw new AppError('control_unavailable', 503, `the supervisor's control API did not answer: ${errorMessage(a)}`);
    throw new AppError(errorCode(a.body) ?? 'action_failed', a.status, errorMessage(a));
  }
}
