/**
 * Goal: the HTTP links run over TLS end to end, on real processes started
 * from their mains with the dev certificates of `raft2pc certs`: a store
 * node (TLS from its RAFT2PC_* variables), a coordinator and a participant
 * (the demo's bank), all with --client-cert-auth. A transaction commits; a
 * client that does not trust the CA is refused; a client with no
 * certificate is refused; SIGHUP makes the coordinator serve a new
 * certificate without a restart.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoordinatorClient } from '../../client/index.js';
import { transferWork } from '../../demo/bank/work.js';
import { makeDevCertificates, type DevCertFiles } from '../../lib/certs.js';
import type { ClientTls } from '../../lib/tls.js';
import { waitFor } from '../support/wait.js';
import { freePorts, startProcess, stopProcess, waitReady, type ServiceProcess } from './processes.js';

/** Ports 29600-29639 are this file's. */
const FIRST_PORT = 29_600;
let storeUrl: string;
let coordinatorTlsPort: number;
let coordinatorUrl: string;
let bankUrl: string;

let dir: string;
let certs: DevCertFiles;
let clientTls: ClientTls;
const processes: ServiceProcess[] = [];

function serverFlags(): string[] {
  return ['--cert-file', certs.serverCertFile, '--key-file', certs.serverKeyFile, '--trusted-ca-file', certs.caFile, '--client-cert-auth'];
}

beforeAll(async () => {
  const [storePort, peerPort, coordinatorPort, bankPort] = (await freePorts(FIRST_PORT, 40, 4)) as [number, number, number, number];
  storeUrl = `https://127.0.0.1:${storePort}`;
  coordinatorTlsPort = coordinatorPort;
  coordinatorUrl = `https://127.0.0.1:${coordinatorPort}`;
  bankUrl = `https://127.0.0.1:${bankPort}`;
  dir = mkdtempSync(join(tmpdir(), 'sec-tls-'));
  certs = await makeDevCertificates({ dir: join(dir, 'certs') });
  clientTls = { ca: readFileSync(certs.caFile, 'utf8'), cert: readFileSync(certs.clientCertFile, 'utf8'), key: readFileSync(certs.clientKeyFile, 'utf8') };
  const storeEnv = { RAFT2PC_CERT_FILE: certs.serverCertFile, RAFT2PC_KEY_FILE: certs.serverKeyFile, RAFT2PC_TRUSTED_CA_FILE: certs.caFile, RAFT2PC_CLIENT_CERT_AUTH: '1' };
  const store = startProcess('store', 'store/node/main', ['--id', 'n1', '--cluster', `n1=127.0.0.1:${storePort}:${peerPort}`, '--data-dir', join(dir, 'n1')], storeEnv);
  processes.push(store);
  await waitReady(store, /"event":"ready"/);
  const coordinator = startProcess('coordinator', 'coordinator/service/main', ['--port', String(coordinatorPort), '--store', storeUrl, '--id', 'c-tls', ...serverFlags()]);
  const bank = startProcess('bank', 'demo/bank/main', ['--name', 'bank-a', '--port', String(bankPort), '--store', storeUrl, '--data-dir', join(dir, 'bank-a'), '--accounts', 'alice=100,bob=100', ...serverFlags()]);
  processes.push(coordinator, bank);
  await Promise.all([waitReady(coordinator, /listening on/), waitReady(bank, /listening on/)]);
}, 90_000);

afterAll(async () => {
  await Promise.all(processes.map((p) => stopProcess(p)));
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** One GET over https with the given client TLS: the status, or the connection's error code. */
function httpsGet(url: string, opts: ClientTls): Promise<{ status?: number; error?: string }> {
  return new Promise((resolve) => {
    const req = https.get(url, { ...opts, agent: false, timeout: 5_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
  });
}

/** The serial number of the certificate a server shows now. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...clientTls }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

describe('HTTPS end to end', () => {
  it('commits a transaction: client, coordinator, participant and store all over mutual TLS', { timeout: 30_000 }, async () => {
    const client = new CoordinatorClient({ coordinators: [coordinatorUrl], tls: clientTls });
    try {
      const work = transferWork([{ account: 'alice', delta: -5 }, { account: 'bob', delta: 5 }]);
      const outcome = await client.run({ participants: [{ name: 'bank-a', url: bankUrl, work }] });
      expect(outcome.outcome, JSON.stringify(outcome)).toBe('committed');
    } finally {
      client.close();
    }
    await waitFor('the bank to apply the transfer', 10_000, async () => {
      const res = await new Promise<string>((resolve, reject) => https.get(`${bankUrl}/v1/accounts`, { ...clientTls, agent: false }, (r) => { let t = ''; r.on('data', (d: Buffer) => (t += d.toString())); r.on('end', () => resolve(t)); }).on('error', reject));
      const accounts = JSON.parse(res) as { id: string; balance: number }[];
      return accounts.find((a) => a.id === 'alice')?.balance === 95;
    });
  });

  it('refuses a client that does not trust the CA, on every server', async () => {
    for (const url of [storeUrl, coordinatorUrl, bankUrl]) {
      const r = await httpsGet(`${url}/healthz`, {});
      expect(r.error, url).toMatch(/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/);
    }
  });

  it('refuses a client without a certificate under --client-cert-auth, and serves one with it', async () => {
    for (const url of [storeUrl, coordinatorUrl, bankUrl]) {
      const refused = await httpsGet(`${url}/healthz`, { ca: clientTls.ca as string });
      expect(refused.status, url).toBeUndefined();
      expect(refused.error, url).toBeDefined();
      expect((await httpsGet(`${url}/healthz`, clientTls)).status, url).toBe(200);
    }
  });

  it('serves a new certificate after SIGHUP, without a restart', { timeout: 30_000 }, async () => {
    const coordinator = processes.find((p) => p.name === 'coordinator');
    if (coordinator?.child.pid === undefined) throw new Error('no coordinator');
    const before = await servedSerial(coordinatorTlsPort);
    await makeDevCertificates({ dir: join(dir, 'certs') });
    const expected = new X509Certificate(readFileSync(certs.serverCertFile)).serialNumber;
    expect(expected).not.toBe(before);
    process.kill(coordinator.child.pid, 'SIGHUP');
    await waitFor('the coordinator to serve the new certificate', 10_000, async () => (await servedSerial(coordinatorTlsPort)) === expected);
    expect(coordinator.child.exitCode).toBeNull();
    expect(coordinator.output()).toContain('certificate reloaded');
  });
});
