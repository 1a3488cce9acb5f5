/**
 * The store API on node:http: the process's thin adapter around StoreApi
 * (api.ts). node:http's adapter (lib/http.ts) matches the route, reads and
 * caps the body when the route takes one, and writes the reply or the stream;
 * lib/http-guard.ts refuses hostile input before it, and serves HTTPS when
 * the process has a certificate.
 */
import type http from 'node:http';
import type { HttpRequester } from '../../lib/http-client.js';
import { listenGuarded, type HttpGuardLimits } from '../../lib/http-guard.js';
import { nodeListener } from '../../lib/http.js';
import { stderrLogger, type Logger } from '../../lib/logger.js';
import { tlsHttpClient, tlsSettingsFromEnv, type TlsSettings } from '../../lib/tls.js';
import type { StoreNode } from '../node/node.js';
import { StoreApi } from './api.js';
import { FORWARD_TIMEOUT_MS } from './forward.js';

export interface StoreServerOptions {
  /**
   * Default: the RAFT2PC_CERT_FILE, RAFT2PC_KEY_FILE, RAFT2PC_TRUSTED_CA_FILE,
   * RAFT2PC_CLIENT_CERT_AUTH and RAFT2PC_INSECURE variables (the store's
   * command line passes its TLS flags, which have these as twins).
   */
  readonly tls?: TlsSettings;
  readonly log?: Logger;
  /** Default: lib/http-guard.ts's. */
  readonly limits?: Partial<HttpGuardLimits>;
}

/**
 * Members know each other's client URLs as http://host:port (the cluster
 * spec has no scheme); under TLS every member serves https, so a forward
 * goes there.
 */
function httpsForwarder(inner: HttpRequester): HttpRequester {
  return {
    request: (r) => inner.request({ ...r, url: r.url.replace(/^http:\/\//, 'https://') }),
    close: () => inner.close(),
  };
}

/** Serves `node`'s API on host:port; closing the server closes the API and its forwarding client. */
export async function listenStoreApi(node: StoreNode, host: string, port: number, opts: StoreServerOptions = {}): Promise<http.Server> {
  const tls = opts.tls ?? tlsSettingsFromEnv();
  // Follower-to-leader forwards ride keep-alive connections (lib/http-client.ts says why not fetch).
  const client = tlsHttpClient({ requestTimeoutMs: FORWARD_TIMEOUT_MS }, tls.client);
  const forwarder = tls.server === undefined ? client : httpsForwarder(client);
  const api = new StoreApi({ node, forwarder, transport: node.transport, processMetrics: true });
  try {
    const server = await listenGuarded(nodeListener(api, node.cfg.maxBodyBytes), host, port, { tls, log: opts.log ?? stderrLogger('store'), ...(opts.limits === undefined ? {} : { limits: opts.limits }) });
    server.once('close', () => {
      api.close();
      forwarder.close();
    });
    return server;
  } catch (e) {
    api.close();
    forwarder.close();
    throw e;
  }
}
