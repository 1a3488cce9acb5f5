/**
 * Goal: lib/shutdown.ts drains a node:http server the way an operator
 * expects on SIGTERM: no new connections; a request in flight finishes and
 * its keep-alive connection closes right after; a long-lived stream is
 * ended at once; past the deadline the connections left are closed; the
 * service's cleanup runs last, and its failure makes the exit code 1.
 * In-process, on a real server on 127.0.0.1 (ports 32900-32909); the
 * handler's slowness is a promise the test resolves, not a sleep.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { GracefulShutdown } from '../../lib/shutdown.js';
import { silentLogger } from '../../lib/logger.js';
import { waitFor } from '../support/wait.js';

const PORT = 32901;
const servers: http.Server[] = [];
const agents: http.Agent[] = [];

afterEach(() => {
  for (const s of servers.splice(0)) s.closeAllConnections(), s.close();
  for (const a of agents.splice(0)) a.destroy();
});

/** A server whose /slow requests wait until `release()`, and whose /watch requests stream until ended. */
async function slowServer(): Promise<{ server: http.Server; release: () => void }> {
  let release = (): void => {};
  const released = new Promise<void>((r) => (release = r));
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    if (req.url === '/watch') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n');
      return;
    }
    if (req.url === '/slow') void released.then(() => res.end('done'));
    else res.end('fast');
  });
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(PORT, '127.0.0.1', resolve);
  });
  return { server, release };
}

interface Answer {
  readonly status: number;
  readonly connection: string | undefined;
  readonly body: string;
}

function get(path: string, agent: http.Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: PORT, path, agent }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

function keepAliveAgent(): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  agents.push(agent);
  return agent;
}

describe('GracefulShutdown', () => {
  it('lets a request in flight finish, closes its connection after it, refuses new ones, then cleans up', async () => {
    const { server, release } = await slowServer();
    const steps: string[] = [];
    const g = new GracefulShutdown({ servers: [server], timeoutMs: 30_000, log: silentLogger, cleanup: async () => void steps.push('cleanup') });
    const agent = keepAliveAgent();
    // An idle keep-alive connection, and one request in flight on another.
    expect((await get('/fast', agent)).body).toBe('fast');
    const slow = get('/slow', agent);
    await waitFor('the slow request in flight', 5_000, () => g.inFlightCount === 1);

    const t0 = Date.now();
    const done = g.shutdown('test').then((code) => (steps.push('exit'), code));
    await waitFor('the server to stop accepting', 5_000, () => !server.listening);
    await expect(get('/fast', new http.Agent())).rejects.toThrow(/ECONNREFUSED/);
    expect(steps).toEqual([]);

    release();
    const answer = await slow;
    expect(answer).toEqual({ status: 200, connection: 'close', body: 'done' });
    expect(await done).toBe(0);
    expect(steps).toEqual(['cleanup', 'exit']);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('ends long-lived streams at once (isStream and the closeStreams hook) instead of waiting for the deadline', async () => {
    const { server } = await slowServer();
    const hooked: string[] = [];
    const g = new GracefulShutdown({
      servers: [server],
      timeoutMs: 60_000,
      log: silentLogger,
      isStream: (req) => req.url === '/watch',
      closeStreams: () => void hooked.push('closeStreams'),
      cleanup: async () => {},
    });
    const watch = get('/watch', keepAliveAgent());
    await waitFor('the watch open', 5_000, () => g.inFlightCount === 1);
    const t0 = Date.now();
    expect(await g.shutdown('test')).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((await watch).body).toBe(': open\n\n');
    expect(hooked).toEqual(['closeStreams']);
  });

  it('past the deadline, closes what is left and still cleans up; a failed cleanup exits 1', async () => {
    const { server, release } = await slowServer();
    let cleaned = false;
    const g = new GracefulShutdown({
      servers: [server],
      timeoutMs: 200,
      log: silentLogger,
      cleanup: async () => {
        cleaned = true;
        throw new Error('fsync failed');
      },
    });
    const slow = get('/slow', keepAliveAgent());
    await waitFor('the slow request in flight', 5_000, () => g.inFlightCount === 1);
    expect(await g.shutdown('test')).toBe(1);
    expect(cleaned).toBe(true);
    await expect(slow).rejects.toThrow(/socket hang up|ECONNRESET/);
    release();
  });
});
