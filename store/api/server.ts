/**
 * The store API on node:http: the process's thin adapter around StoreApi
 * (api.ts). node:http's adapter (lib/http.ts) matches the route, reads and
 * caps the body when the route takes one, and writes the reply or the stream.
 */
import http from 'node:http';
import { HttpClient } from '../../lib/http-client.js';
import { nodeListener } from '../../lib/http.js';
import type { StoreNode } from '../node/node.js';
import { StoreApi } from './api.js';
import { FORWARD_TIMEOUT_MS } from './forward.js';

/** Idle keep-alive connections are closed after this long. */
const KEEP_ALIVE_TIMEOUT_MS = 30_000;

/** Serves `node`'s API on host:port; closing the server closes the API and its forwarding client. */
export async function listenStoreApi(node: StoreNode, host: string, port: number): Promise<http.Server> {
  // Follower-to-leader forwards ride keep-alive connections (lib/http-client.ts says why not fetch).
  const forwarder = new HttpClient({ requestTimeoutMs: FORWARD_TIMEOUT_MS });
  const api = new StoreApi({ node, forwarder, transport: node.transport, processMetrics: true });
  const server = http.createServer({ keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS }, nodeListener(api, node.cfg.maxBodyBytes));
  server.once('close', () => {
    api.close();
    forwarder.close();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
