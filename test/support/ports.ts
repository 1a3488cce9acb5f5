/** Ports for tests that need one with nothing behind it. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A loopback port nothing listens on: bound, then released (a connection there is refused). */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
