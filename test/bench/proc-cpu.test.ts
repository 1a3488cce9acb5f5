// Goal: bench:store finds the CPU of a cluster it did not start (--endpoints)
// by the processes listening on the endpoints' ports, and sums CPU from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { cpuMs, cpuMsOf, pidsListeningOn } from '../../bench/proc-cpu.js';
import { waitFor } from '../support/wait.js';

const servers: net.Server[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function listen(host: string): Promise<number> {
  const server = net.createServer();
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as net.AddressInfo).port));
  });
}

describe('pidsListeningOn', () => {
  it('names this process for its own listening port', async () => {
    const port = await listen('127.0.0.1');
    expect(pidsListeningOn([port])).toEqual([process.pid]);
  });

  it('reads IPv6 listeners too (/proc/net/tcp6)', async (ctx) => {
    const v6 = await listen('::1').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRNOTAVAIL' || e.code === 'EAFNOSUPPORT') return undefined; // a machine without IPv6 loopback
      throw e;
    });
    if (v6 === undefined) return ctx.skip();
    const v4 = await listen('127.0.0.1');
    expect(pidsListeningOn([v6])).toEqual([process.pid]);
    expect(pidsListeningOn([v4, v6])).toEqual([process.pid]);
  });

  it('names another process by its port, and nothing for a port no one listens on', async () => {
    const child = spawn(process.execPath, ['-e', "const s = require('net').createServer().listen(0, '127.0.0.1', () => console.log(s.address().port))"], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    await waitFor('the child listens', 10_000, () => out.includes('\n'));
    const port = Number(out.trim());
    expect(pidsListeningOn([port])).toEqual([child.pid]);
    const free = await listen('127.0.0.1');
    await new Promise((r) => servers.pop()?.close(r));
    expect(pidsListeningOn([free])).toEqual([]);
  });
});

describe('cpuMs', () => {
  it('reads a live process and sums a list; nothing for an empty list or a pid that is gone', () => {
    const own = cpuMs(process.pid);
    expect(own).toBeGreaterThan(0);
    expect(cpuMsOf([process.pid, process.pid])).toBeGreaterThanOrEqual(2 * (own as number));
    expect(cpuMsOf([])).toBeUndefined();
    expect(cpuMs(2 ** 22 + 1)).toBeUndefined(); // above the kernel's pid_max
  });
});
