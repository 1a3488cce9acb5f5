/**
 * Goal: the store's Raft peer links run over mutual TLS, on real processes
 * (LocalCluster with the dev certificates of `raft2pc certs`: https with
 * client certificates on the API, --peer-* on the peer port). A 3-node
 * cluster elects a leader and replicates. Whoever holds a certificate from
 * ANOTHER CA cannot talk Raft: a 4th store process configured with such
 * certificates, a forged heartbeat with a far higher term sent with such a
 * certificate, with none, or in plain TCP are all refused at the handshake,
 * the cluster's term does not move, and the members log the refusal. The
 * same forged frame with a certificate from the cluster's CA does move the
 * term: the refusal, not the frame, is what protects the cluster. SIGHUP
 * makes a member serve a rotated certificate on both its ports without a
 * restart.
 */
import { X509Certificate } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDevCertificates, type DevCertFiles } from '../../lib/certs.js';
import { nodeArgsFor, PACKAGE_ROOT, programPath } from '../../lib/entry.js';
import { HttpClient, type HttpClientTls } from '../../lib/http-client.js';
import { peerTlsFrom } from '../../lib/tls.js';
import { formatClusterSpec } from '../../store/node/config.js';
import { clusterMembers, LocalCluster, StoreProcess } from '../../store/node/launcher.js';
import { waitFor } from '../support/wait.js';

/** This file's ports: clients 29700-29703, peers 29800-29803; an in-process https server on 29710. */
const BASE_PORT = 29_700;
/** How long "nothing happens" is watched: several election timeouts of the default 500-1000 ms. */
const QUIET_WINDOW_MS = 2_500;

let dir: string;
let certs: DevCertFiles;
let rogue: DevCertFiles;
let cluster: LocalCluster;
let intruder: StoreProcess | undefined;

interface Status {
  id: string;
  role: string;
  term: number;
  leaderId: string | null;
  appliedIndex: number;
}

async function status(url: string): Promise<Status> {
  const res = await cluster.http.request({ method: 'GET', url: `${url}/v1/status`, timeoutMs: 2_000 });
  return JSON.parse(res.text) as Status;
}

async function terms(): Promise<number[]> {
  return Promise.all(cluster.members.map(async (m) => (await status(m.clientUrl)).term));
}

function pem(file: string): string {
  return readFileSync(file, 'utf8');
}

function peerPort(i: number): number {
  return BASE_PORT + 100 + i;
}

/** One length-prefixed frame of the peer protocol (transport.ts). */
function frame(messages: readonly unknown[]): Buffer {
  const payload = Buffer.from(JSON.stringify(messages), 'utf8');
  const header = Buffer.alloc(4);
  header.writeUInt32BE(payload.length, 0);
  return Buffer.concat([header, payload]);
}

/** A heartbeat from a "leader" 1000 terms ahead: any member that reads it steps down into that term. */
function forgedHeartbeats(term: number): Buffer {
  return frame(cluster.members.map((m) => ({ type: 'heartbeat', from: 'intruder', to: m.id, term: term + 1_000, commit: 0, readSeq: 0 })));
}

/**
 * Connects to a peer port (TLS with `opts`, or plain TCP), writes `bytes` as
 * soon as it can, and reports how the connection ended: whether our side
 * ever saw a complete handshake and the error, if any.
 */
function sendRaw(port: number, bytes: Buffer, opts: tls.ConnectionOptions | 'plain'): Promise<{ secured: boolean; closedByServer: boolean; error?: string }> {
  return new Promise((resolve) => {
    let secured = false;
    let closedByServer = true;
    const socket = opts === 'plain' ? net.connect({ host: '127.0.0.1', port }) : tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    // A member keeps an accepted peer connection open: one still open after this was accepted.
    const timer = setTimeout(() => {
      closedByServer = false;
      socket.destroy();
    }, 3_000);
    socket.once(opts === 'plain' ? 'connect' : 'secureConnect', () => {
      secured = opts !== 'plain';
      socket.write(bytes);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ secured, closedByServer, error: e.code ?? e.message });
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ secured, closedByServer });
    });
  });
}

/** The serial number of the certificate shown on `port` to a client with the cluster's client certificate. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: pem(certs.caFile), cert: pem(certs.clientCertFile), key: pem(certs.clientKeyFile) }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial);
    });
    socket.setTimeout(3_000, () => socket.destroy(new Error('timeout')));
    socket.on('error', reject);
  });
}

function logOf(id: string): string {
  try {
    return readFileSync(join(dir, 'store', `${id}.log`), 'utf8');
  } catch {
    return '';
  }
}

async function putAndReadEverywhere(key: string, value: string): Promise<void> {
  const leader = cluster.members.find((m) => m.id === 'n1') as (typeof cluster.members)[number];
  const put = await cluster.http.request({ method: 'PUT', url: `${leader.clientUrl}/v1/kv/${key}`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value }), timeoutMs: 10_000 });
  expect(put.status).toBe(200);
  for (const m of cluster.members) {
    await waitFor(`${m.id} to hold ${key}=${value}`, 10_000, async () => {
      const res = await cluster.http.request({ method: 'GET', url: `${m.clientUrl}/v1/kv/${key}?consistency=serializable`, timeoutMs: 2_000 });
      return res.status === 200 && (JSON.parse(res.text) as { value: string }).value === value;
    });
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sec-peer-mtls-'));
  certs = await makeDevCertificates({ dir: join(dir, 'certs') });
  rogue = await makeDevCertificates({ dir: join(dir, 'rogue') });
  cluster = new LocalCluster({ nodes: 3, basePort: BASE_PORT, dataDir: join(dir, 'store'), logToFiles: true, certs });
  cluster.start();
  await cluster.waitForLeader(60_000);
}, 90_000);

afterAll(async () => {
  await intruder?.stop();
  await cluster?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('mutual TLS between store peers', () => {
  it('a cluster on mTLS peer links elects a leader and replicates', async () => {
    for (const m of cluster.members) expect(m.clientUrl).toMatch(/^https:/);
    await putAndReadEverywhere('mtls-a', 'one');
    // The peer port speaks TLS and shows the cluster's certificate.
    const shown = new X509Certificate(await new Promise<Buffer>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: peerPort(0), ca: pem(certs.caFile), cert: pem(certs.clientCertFile), key: pem(certs.clientKeyFile) }, () => {
        resolve(s.getPeerCertificate().raw);
        s.destroy();
      });
      s.on('error', reject);
    }));
    expect(shown.checkIssued(new X509Certificate(pem(certs.caFile)))).toBe(true);
  });

  it('kvctl reaches the https cluster with the CA and a client certificate, and is refused without them', () => {
    const kvctl = (...extra: string[]): { status: number | null; out: string } => {
      const r = spawnSync(process.execPath, [...nodeArgsFor(programPath('store/cli/kvctl')), '--endpoints', cluster.endpoints.join(','), '--timeout-ms', '4000', ...extra], { cwd: PACKAGE_ROOT, encoding: 'utf8', timeout: 30_000 });
      return { status: r.status, out: `${r.stdout}${r.stderr}` };
    };
    const files = ['--trusted-ca-file', certs.caFile, '--cert-file', certs.clientCertFile, '--key-file', certs.clientKeyFile];
    expect(kvctl(...files, 'put', 'kvctl-tls', 'yes').status).toBe(0);
    const got = kvctl(...files, 'get', 'kvctl-tls');
    expect(got.status).toBe(0);
    expect(got.out).toContain('yes');
    // Without the client certificate the server ends the handshake; without the CA ours is not trusted.
    expect(kvctl('--trusted-ca-file', certs.caFile, 'get', 'kvctl-tls').status).not.toBe(0);
    expect(kvctl('--cert-file', certs.clientCertFile, '--key-file', certs.clientKeyFile, 'get', 'kvctl-tls').status).not.toBe(0);
    expect(kvctl('--trusted-ca-file', '/nonexistent.pem', 'get', 'kvctl-tls').status).toBe(2);
  });

  it('a 4th store process with a certificate from another CA cannot join the Raft conversation', async () => {
    const before = await terms();
    const members = [...cluster.members, ...clusterMembers(4, BASE_PORT, '127.0.0.1', 'https').slice(3)];
    const n4 = members[3] as (typeof members)[number];
    const tlsArgs = ['--cert-file', rogue.serverCertFile, '--key-file', rogue.serverKeyFile, '--trusted-ca-file', rogue.caFile, '--client-cert-auth'];
    const peerArgs = ['--peer-cert-file', rogue.serverCertFile, '--peer-key-file', rogue.serverKeyFile, '--peer-trusted-ca-file', rogue.caFile, '--peer-client-cert-auth'];
    // A founder of a 4-member cluster: it campaigns at once and keeps trying.
    intruder = new StoreProcess(n4, ['--id', 'n4', '--cluster', formatClusterSpec(members), '--data-dir', join(dir, 'store', 'n4'), '--election-ticks', '4', ...tlsArgs, ...peerArgs], join(dir, 'store', 'n4.log'));
    intruder.start();
    await waitFor('the members to log the refused peer', 20_000, () => cluster.members.some((m) => logOf(m.id).includes('peer connection refused: TLS handshake failed')));
    await waitFor('n4 to log its failed handshakes', 20_000, () => logOf('n4').includes('peer TLS handshake failed'));
    await new Promise((r) => setTimeout(r, QUIET_WINDOW_MS));
    expect(await terms()).toEqual(before);
    await intruder.stop();
    intruder = undefined;
  });

  it('a forged heartbeat is refused with another CA, without a certificate and in plain TCP; the term does not move', async () => {
    const before = await terms();
    const bytes = forgedHeartbeats(Math.max(...before));
    const otherCa = { cert: pem(rogue.clientCertFile), key: pem(rogue.clientKeyFile) };
    for (let i = 0; i < 3; i++) {
      // Under TLS 1.3 the client's side of the handshake may finish before the server checks its certificate: the server then closes it.
      expect((await sendRaw(peerPort(i), bytes, otherCa)).closedByServer).toBe(true);
      expect((await sendRaw(peerPort(i), bytes, {})).closedByServer).toBe(true);
      expect((await sendRaw(peerPort(i), bytes, 'plain')).closedByServer).toBe(true);
    }
    await new Promise((r) => setTimeout(r, QUIET_WINDOW_MS));
    expect(await terms()).toEqual(before);
    const refused = cluster.members.map((m) => logOf(m.id).match(/"refusedConnections":(\d+)/g)?.length ?? 0);
    expect(refused.every((n) => n >= 1)).toBe(true);
    await putAndReadEverywhere('mtls-b', 'two');
  });

  it('SIGHUP makes a member serve a rotated certificate on its API and peer ports, without a restart', async () => {
    const n1 = cluster.process('n1');
    const pid = n1.pid;
    const oldSerial = new X509Certificate(pem(certs.serverCertFile)).serialNumber;
    expect((await servedSerial(BASE_PORT)).toUpperCase()).toBe(oldSerial.toUpperCase());
    // New leaf certificates from the same CA, moved into place whole (a rename), then SIGHUP.
    const next = join(dir, 'next');
    mkdirSync(next);
    copyFileSync(certs.caFile, join(next, 'ca.crt'));
    copyFileSync(certs.caKeyFile, join(next, 'ca.key'));
    const fresh = await makeDevCertificates({ dir: next });
    const newSerial = new X509Certificate(pem(fresh.serverCertFile)).serialNumber;
    expect(newSerial).not.toBe(oldSerial);
    renameSync(fresh.serverKeyFile, certs.serverKeyFile);
    renameSync(fresh.serverCertFile, certs.serverCertFile);
    process.kill(pid as number, 'SIGHUP');
    for (const port of [BASE_PORT, peerPort(0)]) {
      await waitFor(`port ${port} to serve the new certificate`, 10_000, async () => (await servedSerial(port)).toUpperCase() === newSerial.toUpperCase());
    }
    expect(n1.pid).toBe(pid);
    expect(n1.running).toBe(true);
    expect(logOf('n1')).toMatch(/certificate reloaded.*"why":"SIGHUP"|"why":"SIGHUP".*certificate reloaded/);
    // The cluster still replicates, over connections made with the new certificate where n1 dials again.
    await putAndReadEverywhere('mtls-c', 'three');
  });

  it('control: the same forged heartbeat from a holder of the cluster CA does move the term', async () => {
    const before = await terms();
    const bytes = forgedHeartbeats(Math.max(...before));
    const trusted = { cert: pem(certs.clientCertFile), key: pem(certs.clientKeyFile) };
    const r = await sendRaw(peerPort(1), bytes, trusted);
    expect(r).toMatchObject({ secured: true, closedByServer: false });
    await waitFor('n2 to jump to the forged term', 10_000, async () => (await status(cluster.members[1]?.clientUrl as string)).term >= Math.max(...before) + 1_000);
  });
});

describe('peer TLS settings and client certificate reload', () => {
  it('peer TLS flags must come whole', () => {
    const none = { 'peer-client-cert-auth': false };
    expect(peerTlsFrom(none)).toBeUndefined();
    expect(() => peerTlsFrom({ ...none, 'peer-cert-file': 'a.crt' })).toThrow(/--peer-cert-file and --peer-key-file together/);
    expect(() => peerTlsFrom({ ...none, 'peer-trusted-ca-file': 'ca.crt' })).toThrow(/need --peer-cert-file/);
    expect(() => peerTlsFrom({ 'peer-cert-file': 'a.crt', 'peer-key-file': 'a.key', 'peer-client-cert-auth': true })).toThrow(/needs --peer-trusted-ca-file/);
    expect(peerTlsFrom({ 'peer-cert-file': 'a.crt', 'peer-key-file': 'a.key', 'peer-trusted-ca-file': 'ca.crt', 'peer-client-cert-auth': true })).toEqual({ certFile: 'a.crt', keyFile: 'a.key', caFile: 'ca.crt', clientCertAuth: true });
  });

  it('a store node refuses plain TCP Raft beyond loopback, before anything listens', () => {
    // 192.0.2.1 (TEST-NET-1) is never this machine's: the refusal must come before any bind.
    const api = ['--cert-file', certs.serverCertFile, '--key-file', certs.serverKeyFile];
    const args = ['--id', 'x1', '--cluster', 'x1=192.0.2.1:29704:29804', '--data-dir', join(dir, 'x1'), ...api];
    const r = spawnSync(process.execPath, [...nodeArgsFor(programPath('store/node/main')), ...args], { cwd: PACKAGE_ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/refusing plain TCP Raft on 192\.0\.2\.1, beyond loopback/);
  });

  it('an HttpClient that follows changing TLS settings shows the new client certificate on new connections', async () => {
    const seen: string[] = [];
    const server = https.createServer({ cert: pem(certs.serverCertFile), key: pem(certs.serverKeyFile), ca: [pem(certs.caFile), pem(rogue.caFile)], requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const socket = req.socket as tls.TLSSocket;
      seen.push(socket.getPeerCertificate().serialNumber);
      res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(29_710, '127.0.0.1', resolve));
    try {
      let current: HttpClientTls = { ca: pem(certs.caFile), cert: pem(certs.clientCertFile), key: pem(certs.clientKeyFile) };
      const client = new HttpClient({ tls: () => current });
      const url = 'https://127.0.0.1:29710/';
      expect((await client.request({ method: 'GET', url })).status).toBe(200);
      expect((await client.request({ method: 'GET', url })).status).toBe(200);
      current = { ca: pem(certs.caFile), cert: pem(rogue.clientCertFile), key: pem(rogue.clientKeyFile) };
      expect((await client.request({ method: 'GET', url })).status).toBe(200);
      client.close();
      const first = new X509Certificate(pem(certs.clientCertFile)).serialNumber.toUpperCase();
      const second = new X509Certificate(pem(rogue.clientCertFile)).serialNumber.toUpperCase();
      expect(seen.map((x) => x.toUpperCase())).toEqual([first, first, second]);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
