/**
 * Goal: plain HTTP stays the default on loopback only. A service told to
 * listen beyond loopback without a certificate refuses to start (exit 2,
 * a message naming --cert-file and --insecure) before it binds anything;
 * --insecure lets it. Nothing here binds beyond loopback: the refusal
 * comes first, and acceptance is checked on the rule itself.
 */
import { describe, expect, it } from 'vitest';
import { PLAIN_HTTP } from '../../lib/http-guard.js';
import { silentLogger } from '../../lib/logger.js';
import { assertExposureAllowed, isLoopbackHost, tlsSettingsFrom } from '../../lib/tls.js';
import { listenStoreApi } from '../../store/api/server.js';
import type { StoreNode } from '../../store/node/node.js';
import { MemoryCluster } from '../store2/support/memory-cluster.js';
import { startProcess, stopProcess } from './processes.js';

/** Port 29640 is this file's (never bound: the refusal comes first). */
const PORT = 29_640;
const BEYOND_LOOPBACK = '0.0.0.0';

const MAINS: readonly (readonly [string, string, readonly string[]])[] = [
  ['coordinator', 'coordinator/service/main', ['--store', 'http://127.0.0.1:1']],
  ['bank', 'demo/bank/main', ['--name', 'bank-x', '--store', 'http://127.0.0.1:1', '--data-dir', '/nonexistent/never-made']],
  ['demo app', 'demo/app/main', ['--store', 'http://127.0.0.1:1', '--coordinators', 'http://127.0.0.1:1', '--banks', 'bank-a=http://127.0.0.1:1']],
];

describe('listening beyond loopback without TLS', () => {
  it.each(MAINS)('%s refuses with exit 2 and says how to fix it', { timeout: 30_000 }, async (name, program, args) => {
    const p = startProcess(name, program, [...args, '--host', BEYOND_LOOPBACK, '--port', String(PORT)]);
    try {
      expect(await p.exited).toBe(2);
      expect(p.output()).toMatch(/refusing to serve plain HTTP on 0\.0\.0\.0.*--cert-file.*--insecure/);
    } finally {
      await stopProcess(p);
    }
  });

  it('the store API refuses it too, before binding', async () => {
    const cluster = await MemoryCluster.start(1);
    try {
      const node = cluster.nodes.get('n1') as unknown as StoreNode;
      await expect(listenStoreApi(node, BEYOND_LOOPBACK, PORT, { tls: PLAIN_HTTP, log: silentLogger })).rejects.toThrow(/refusing to serve plain HTTP/);
    } finally {
      await cluster.stop();
    }
  });

  it('is allowed with --insecure or a certificate, and on loopback always', () => {
    expect(() => assertExposureAllowed(BEYOND_LOOPBACK, { insecure: true })).not.toThrow();
    expect(() => assertExposureAllowed(BEYOND_LOOPBACK, { insecure: false, server: { certFile: 'c', keyFile: 'k', clientCertAuth: false } })).not.toThrow();
    for (const host of ['127.0.0.1', '::1', 'localhost', '127.0.0.2']) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com']) expect(isLoopbackHost(host), host).toBe(false);
  });

  it('a certificate without its key, or client-cert auth without a CA, is a usage error', () => {
    const base = { 'client-cert-auth': false, insecure: false };
    expect(() => tlsSettingsFrom({ ...base, 'cert-file': 'c' })).toThrow(/together/);
    expect(() => tlsSettingsFrom({ ...base, 'client-cert-auth': true })).toThrow(/--trusted-ca-file/);
  });
});
